"""Verilator: the C++ model of a project's Verilog, and the batch harness the C simulation calls.

The C simulation (:mod:`fastml_lab.hls.csim`) compiles a project's recipe; a Verilog project's
recipe has a ``verilate`` entry (:func:`verilate_entry`), so that before g++ runs, Verilator
translates the Verilog into C++ (:func:`verilate_into`) in the build folder. Its batch entry point
(:func:`batch_source`) turns each event's float inputs into the bit vector the design's input port
takes (truncated to each input's LSB, wrapped to its width, as da4ml's own binder does), clocks the
pipeline (one event per cycle, results read ``latency`` cycles later) and turns the output port's
bits back into numbers.

Debian's Verilator 5.006 builds no ``libverilated.a``; its runtime sources (``verilated.cpp``,
``verilated_threads.cpp``) are compiled with the model instead.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .._deps import program
from ..exceptions import CompileError, ToolchainNotFoundError

#: Flags for the C++ of a Verilated model (the runtime needs C++17 and threads).
CXXFLAGS = ("-O1", "-fPIC", "-std=c++17", "-fno-gnu-unique", "-pthread")
VERILATE_TIMEOUT_S = 600
#: Lint codes newer than Debian's 5.006 that da4ml's Verilog switches off in comments (5.006 would
#: stop on a code it does not know; ``-Wfuture-CODE`` lets it pass).
_NEWER_LINT_CODES = ("WIDTHTRUNC", "WIDTHEXPAND", "UNUSEDSIGNAL", "UNUSEDPARAM", "UNDRIVEN")
_APT_HINT = "Install it with `apt-get install verilator` (Debian 12 has 5.006)."


def verilator() -> str:
    """The ``verilator`` executable; ToolchainNotFoundError when it is not on PATH."""
    return program("verilator", "The RTL simulation of a Verilog project", _APT_HINT)


@functools.lru_cache(maxsize=1)
def verilator_version() -> str:
    return subprocess.run([verilator(), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()


@functools.lru_cache(maxsize=1)
def verilator_root() -> Path:
    """Where Verilator keeps its runtime (``include/verilated.cpp``)."""
    proc = subprocess.run([verilator(), "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True, timeout=60)
    root = Path(proc.stdout.strip() or "/usr/share/verilator")
    if not (root / "include" / "verilated.cpp").is_file():
        raise ToolchainNotFoundError(f"Verilator's runtime sources are not under {root}/include. {_APT_HINT}")
    return root


def verilate_entry(top: str, sources, include_dirs=()) -> dict:
    """The recipe's ``verilate`` entry: the top module and the Verilog files (relative to the
    project's generator folder, in the order Verilator reads them)."""
    return {"top": top, "sources": list(sources), "include_dirs": list(include_dirs)}


def verilator_command(root: Path, entry: dict, out_dir: Path, *options) -> list:
    """Verilator's command line for ``entry``'s Verilog (paths under ``root``) into ``out_dir``,
    with ``options`` (e.g. ``--cc``, or ``--exe --build --trace`` and a main program)."""
    root, top = Path(root), entry["top"]
    return [verilator(), *options, "-Wno-fatal", "-Wno-lint", "-Wno-style",
            *(f"-Wfuture-{code}" for code in _NEWER_LINT_CODES), "--top-module", top, "--prefix", f"V{top}",
            "-Mdir", str(out_dir), *(f"-I{root / inc}" for inc in entry.get("include_dirs", ())),
            *(str(root / src) for src in entry["sources"])]


def verilate_into(root: Path, entry: dict, out_dir: Path) -> tuple:
    """Run Verilator on ``entry``'s sources (paths under ``root``) into ``out_dir``; return the C++
    files to compile (the model's and Verilator's runtime) and the include flags they need."""
    root, out_dir = Path(root), Path(out_dir)
    top = entry["top"]
    cmd = verilator_command(root, entry, out_dir, "--cc")
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=VERILATE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CompileError(f"Verilator did not translate {top} within {VERILATE_TIMEOUT_S} s (in {root}).") from None
    if proc.returncode != 0:
        raise CompileError(f"Verilator failed on {top} (exit status {proc.returncode}) in {root}:\n{proc.stderr[-3000:]}")
    include = verilator_root() / "include"
    generated = sorted(p for p in out_dir.glob("*.cpp"))
    runtime = [include / "verilated.cpp", include / "verilated_threads.cpp"]
    return [*generated, *runtime], (f"-I{out_dir}", f"-I{include}", f"-I{include / 'vltstd'}")


def batch_source(input_type, output_type) -> str:
    """``fastml_predict`` for da4ml's binder (``inference(int32*, int32*, n, threads)``):
    ``input_type`` and ``output_type`` are the ports' uniform :class:`~fastml_lab.fixed.FixedType`
    (the wrapper pads every value to them; truncation and wrap-around, as the port's bits do)."""
    width_in, f_in = input_type.width, input_type.fractional
    width_out, f_out, k_out = output_type.width, output_type.fractional, int(output_type.signed)
    return f"""\
// Batch entry point of the RTL simulation: floats -> the input port's bits -> the clocked pipeline -> floats.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>
extern "C" void inference(int32_t *c_inp, int32_t *c_out, size_t n_samples, size_t n_threads);
extern "C" void fastml_predict(double *x, double *y, long n, long n_in, long n_out) {{
    std::vector<int32_t> in(n * n_in), out(n * n_out);
    const double modulus_in = std::ldexp(1.0, {width_in});
    for (long j = 0; j < n * n_in; j++) {{
        double v = std::fmod(std::floor(std::ldexp(x[j], {f_in})), modulus_in);  // truncate, then wrap
        if (v < 0) v += modulus_in;
        in[j] = (int32_t)(uint32_t)(uint64_t)v;
    }}
    inference(in.data(), out.data(), (size_t)n, 1);
    const int64_t modulus_out = (int64_t)1 << {width_out}, bias = {k_out} ? modulus_out / 2 : 0;
    for (long j = 0; j < n * n_out; j++) {{
        int64_t bits = (int64_t)(uint32_t)out[j] & (modulus_out - 1);
        y[j] = std::ldexp((double)(((bits + bias) % modulus_out) - bias), -{f_out});
    }}
}}
"""
