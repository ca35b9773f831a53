"""See the circuit: a Verilog project's ports and stages, and a waveform of events through its pipeline.

:func:`record_vcd` builds the project's Verilog with Verilator's tracing into a small program that
feeds a few events, one per clock cycle, and writes every signal to a VCD file; :func:`read_vcd`
reads the clock and the ports back; :func:`plot_waveform` draws them with matplotlib, each event's
number on the input and on the output it became ``latency`` cycles later; :func:`describe_rtl`
lists the top module's ports and its stages.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .._system import usable_cores
from ..exceptions import CompileError, ConfigError
from ..project import VERILATOR, open_project
from .verilator import verilator_command

_MAIN = """\
// Feeds N events (one per clock), then LATENCY idle cycles, tracing every signal to argv[2].
#include <cstdio>
#include <cstdint>
#include <vector>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "V{top}.h"
#include "ioutil.hh"
int main(int argc, char **argv) {{
    Verilated::traceEverOn(true);
    FILE *in = std::fopen(argv[1], "r");
    long n; if (std::fscanf(in, "%ld", &n) != 1) return 2;
    std::vector<int32_t> values(n * {n_in});
    for (long j = 0; j < n * {n_in}; j++) if (std::fscanf(in, "%d", &values[j]) != 1) return 2;
    std::fclose(in);
    V{top} dut;
    VerilatedVcdC vcd;
    dut.trace(&vcd, 99);
    vcd.open(argv[2]);
    vluint64_t t = 0;
    for (long cycle = 0; cycle < n + {latency} + 1; cycle++) {{
        if (cycle < n) write_input<{n_in}, {bw_in}>(dut.model_inp, &values[cycle * {n_in}]);
        dut.clk = 0; dut.eval(); vcd.dump(t++);
        dut.clk = 1; dut.eval(); vcd.dump(t++);
    }}
    vcd.close();
    return 0;
}}
"""


def _rtl_project(project):
    project = open_project(project)
    recipe = project.csim_recipe
    if project.simulator != VERILATOR or "verilate" not in recipe:
        raise ConfigError(f"{project.path} has no Verilog to trace (a {project.backend} project); export a network "
                          "with --backend rtl.")
    return project, recipe


def record_vcd(project, X, path, timeout_s: int = 600) -> Path:
    """Write the VCD of the first events of ``X`` (at most 64) through ``project``'s pipeline to ``path``."""
    project, recipe = _rtl_project(project)
    firmware = project.firmware()
    X = firmware.validate_input(X)[:64]
    in_type = firmware.input_type
    # The port's bits of each value (the harness's conversion: truncate, wrap), as int32 words.
    raw = (in_type.to_raw(in_type.quantize(X)) % (1 << in_type.width)).astype(np.uint32).view(np.int32)
    verilate = recipe["verilate"]
    root = project.hls_dir.resolve()
    top = verilate["top"]
    latency = int(project.timing["latency_cycles"])
    with tempfile.TemporaryDirectory(prefix="fastml-vcd-") as tmp:
        tmp = Path(tmp)
        (tmp / "main.cpp").write_text(_MAIN.format(top=top, n_in=firmware.n_inputs, bw_in=in_type.width,
                                                   latency=latency))
        (tmp / "events.txt").write_text(f"{len(raw)}\n" + "\n".join(" ".join(map(str, row)) for row in raw) + "\n")
        # Only the top's ports are drawn: tracing one level deep, unoptimised, builds three times faster.
        cmd = [*verilator_command(root, verilate, tmp / "obj", "--cc", "--exe", "--build", "--trace", "--trace-depth",
                                  "1", "-j", str(usable_cores()), "-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0",
                                  "-CFLAGS", f"-std=c++17 -I{root / 'sim'}"), str(tmp / "main.cpp")]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise CompileError(f"Verilator could not build the traced simulation of {project.path}:\n{proc.stderr[-2000:]}")
        path = Path(path)
        run = subprocess.run([str(tmp / "obj" / f"V{top}"), str(tmp / "events.txt"), str(path.resolve())],
                             capture_output=True, text=True, timeout=timeout_s)
        if run.returncode != 0:
            raise CompileError(f"The traced simulation of {project.path} failed: {run.stderr[-800:]}")
    return path


_VAR = re.compile(r"\$var\s+\w+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end")


def read_vcd(path, signals=("clk", "model_inp", "model_out")) -> dict:
    """``{signal: [(time, value), ...]}`` for the top-level ``signals`` of a VCD file (values as ints)."""
    text = Path(path).read_text()
    ids, scope_depth, wanted = {}, 0, set(signals)
    header, _, body = text.partition("$enddefinitions")
    for line in header.splitlines():
        line = line.strip()
        if line.startswith("$scope"):
            scope_depth += 1
        elif line.startswith("$upscope"):
            scope_depth -= 1
        else:
            m = _VAR.match(line)
            if m and m.group(3) in wanted and m.group(2) not in ids and scope_depth <= 2:
                ids[m.group(2)] = m.group(3)
    changes = {name: [] for name in signals}
    time, tokens, k = 0, body.split(), 0
    while k < len(tokens):
        token = tokens[k]
        if token.startswith("#"):
            time = int(token[1:])
        elif token[0] in "bB" and k + 1 < len(tokens):
            k += 1
            if tokens[k] in ids:
                bits = token[1:].lower().replace("x", "0").replace("z", "0")
                changes[ids[tokens[k]]].append((time, int(bits, 2)))
        elif token[0] in "01xzXZ" and token[1:] in ids:
            changes[ids[token[1:]]].append((time, int(token[0]) if token[0] in "01" else 0))
        k += 1
    return changes


def plot_waveform(vcd, latency: int | None = None, ax=None):
    """Draw the clock and the ports of a VCD (a path or :func:`read_vcd`'s dict): each port's value
    as a band that changes where the value does, labelled with the event it carries (with the
    pipeline's ``latency``; without it, outputs are numbered in order of change)."""
    import matplotlib.pyplot as plt

    changes = read_vcd(vcd) if not isinstance(vcd, dict) else vcd
    ax = ax or plt.subplots(figsize=(10, 3))[1]
    end = max(t for values in changes.values() for t, _ in values) + 1
    rows = list(changes)
    for row, name in enumerate(reversed(rows)):
        values = changes[name]
        if name == "clk":
            times = [t / 2 for t, _ in values]
            ax.step(times, [row + 0.1 + 0.6 * v for _, v in values], where="post", color="k", lw=1)
            continue
        # Event k is written at time 2k and caught by the rising edge at 2k+1; its result changes the
        # output at the edge ``latency`` cycles later. Outputs hold their reset value until then.
        first = 1 if name != "model_inp" else 0
        for k, (t, v) in enumerate(values):
            t_next = values[k + 1][0] if k + 1 < len(values) else end
            if name == "model_inp":
                event = t // 2
            else:
                event = (t - 1) // 2 - latency if latency else k - first
            colour = "0.85" if event < 0 else f"C{event % 10}"
            ax.fill_between([t / 2, t_next / 2], row + 0.15, row + 0.75, color=colour, alpha=0.4)
            if event >= 0 and t_next - t >= 2:
                ax.text((t + t_next) / 4, row + 0.45, f"{'e' if first == 0 else 'y'}{event}", ha="center",
                        va="center", fontsize=7)
    ax.set_yticks([r + 0.45 for r in range(len(rows))], list(reversed(rows)))
    ax.set_xlabel("clock cycles (event k enters as ek; its result leaves as yk)")
    title = "Events entering and results leaving the pipeline (Verilator's VCD)"
    ax.set_title(title + (f": latency {latency} cycles, one event per cycle" if latency else ""))
    return ax


def describe_rtl(project) -> str:
    """The top module's ports (name, direction, width) and its pipeline stages, as text."""
    project = open_project(project)
    rtl = project.rtl
    if rtl is None:
        raise ConfigError(f"{project.path} records no RTL.")
    top_file = next((project.hls_dir / src for src in rtl["sources"] if Path(src).stem == rtl["top"]), None)
    lines = [f"top module {rtl['top']} ({rtl['language']}, {len(rtl['sources'])} files)"]
    if top_file is not None and top_file.is_file():
        for m in re.finditer(r"\b(input|output)\s+(?:reg\s+|wire\s+)?(?:\[(\d+):(\d+)\]\s*)?(\w+)", top_file.read_text()):
            width = int(m.group(2)) - int(m.group(3)) + 1 if m.group(2) else 1
            lines.append(f"  {m.group(1):6} {m.group(4):10} {width:5} bits")
    stages = [src for src in rtl["sources"] if re.search(r"_stage\d+\.", src)]
    if stages:
        lines.append(f"  {len(stages)} pipeline stages: " + ", ".join(Path(s).stem for s in stages))
    return "\n".join(lines)
