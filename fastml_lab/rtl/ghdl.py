"""GHDL runs a VHDL project's testbench: the "C simulation" of projects whose record names ``"ghdl"``.

The record's ``csim`` entry says what to analyse and run (:func:`fastml_lab.bdt.vhdl.ghdl_recipe`
writes it for conifer's VHDL BDTs)::

    {"simulator": "ghdl", "std": "08",
     "sources": [... in compile order, relative to the project's hls_dir ...],
     "libraries": {"BDT": [...], "xil_defaultlib": [...]},     # the library each source goes into
     "top": "testbench", "top_library": "xil_defaultlib",
     "testbench": {"input_file", "output_file", "n_inputs", "n_outputs", "input_type",
                   "output_type", "clock_period_ns", "valid_in", "valid_out"}}

The testbench reads one event per clock cycle from ``input_file`` (a line of the inputs' stored
integers in ``input_type``, one space apart) and writes one line of the outputs' stored integers in
``output_type`` per valid output to ``output_file``, then ends the simulation.

* :func:`compile` analyses the sources (``ghdl -a``) and elaborates the top (``ghdl -e``) into
  ``PRJ/csim/ghdl-<key>``, the key made of GHDL's version, the sources' paths and contents: a second
  call finds it. The folder is built beside it under a name of this process's own and renamed into
  place, so a killed or concurrent compile never leaves half of one.
* :func:`run` writes the events as the testbench reads them, runs ``ghdl -r`` (one process per core
  for large batches, each in a folder of its own, with a stop time and a timeout) and returns the
  outputs as float64 ``(n, n_outputs)``.
* :func:`measure_latency` counts the clock cycles between the testbench's input valid and output
  valid in a waveform (VCD) of a short run.

Debian's GHDL 2.0 (mcode backend): ``ghdl -r`` generates the code in memory from the analysed
libraries each time it starts (a fraction of a second), so there is no executable to cache.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .._io import remove_stale
from .._system import DIE_WITH_PARENT, parts
from .._deps import program
from ..exceptions import CompileError, CsimError, DataError, ToolchainNotFoundError
from ..fixed import FixedType
from ..project import open_project

log = logging.getLogger("fastml_lab")

COMPILE_TIMEOUT_S = 600
RUN_TIMEOUT_S = 600
#: Clock cycles the simulation may run beyond the events and the pipeline before it is stopped.
STOP_SLACK_CYCLES = 1000
#: Fewer events than twice this run in one GHDL process (each one starts in about 0.2 s).
MIN_EVENTS_PER_PART = 1000
#: Options of ``ghdl -r``: numeric_std's warnings about metavalues before the first clock edge are noise.
RUN_OPTIONS = ("--ieee-asserts=disable",)
_INSTALL_HINT = "GHDL runs the VHDL simulation; install it (Debian/Ubuntu: apt-get install ghdl)."


def ghdl_path() -> str:
    """The ``ghdl`` on PATH; ToolchainNotFoundError with how to install it otherwise."""
    return program("ghdl", "The VHDL simulation", _INSTALL_HINT)


@functools.lru_cache(maxsize=4)
def ghdl_version(path: str | None = None) -> str:
    """The first line of ``ghdl --version`` (part of the build key)."""
    path = path or ghdl_path()
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainNotFoundError(f"{path} --version did not answer ({exc}). {_INSTALL_HINT}") from None
    return (proc.stdout.splitlines() or ["unknown"])[0].strip()


def _recipe(project) -> dict:
    recipe = project.csim_recipe
    if recipe.get("simulator") != "ghdl":
        raise CsimError(f"The project {project.path} is not simulated with GHDL (its record names "
                        f"{recipe.get('simulator', 'g++')!r}).")
    return recipe


def _library_of(recipe: dict) -> dict:
    """``{source: library}``; every source in exactly one library."""
    owner = {src: lib for lib, sources in recipe["libraries"].items() for src in sources}
    missing = [src for src in recipe["sources"] if src not in owner]
    if missing:
        raise DataError(f"The record's csim.libraries names no library for {', '.join(missing)}. "
                        "Export the project again.")
    return owner


def _key(hls_dir: Path, recipe: dict, version: str) -> str:
    h = hashlib.sha256(
        f"{version}\n{hls_dir}\n{recipe.get('std', '08')}\n{recipe['top_library']}.{recipe['top']}".encode())
    owner = _library_of(recipe)
    for src in recipe["sources"]:
        path = hls_dir / src
        if not path.is_file():
            raise CompileError(f"{path} is missing: the project's VHDL is incomplete. Export the project again.")
        h.update(f"\n{owner[src]}:{src}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def compile(project) -> Path:
    """Analyse and elaborate the project's VHDL with GHDL, or find it done; return the work folder."""
    project = open_project(project)
    recipe = _recipe(project)
    hls_dir = project.hls_dir.resolve()
    ghdl = ghdl_path()
    out_dir = project.path.resolve() / "csim"
    work = out_dir / f"ghdl-{_key(hls_dir, recipe, ghdl_version(ghdl))}"
    if work.is_dir():
        return work
    out_dir.mkdir(exist_ok=True)
    remove_stale(out_dir, "ghdl", ".partial")
    tmp = Path(tempfile.mkdtemp(prefix=f".ghdl.{os.getpid()}.", suffix=".partial", dir=out_dir))
    std = f"--std={recipe.get('std', '08')}"
    owner = _library_of(recipe)
    try:
        log.info("Analysing the VHDL with GHDL (%d files)...", len(recipe["sources"]))
        # Consecutive sources of one library are analysed by one ghdl, in order.
        for lib, group in itertools.groupby(recipe["sources"], key=owner.get):
            sources = list(group)
            _run_tool([ghdl, "-a", std, f"--work={lib}", f"--workdir={tmp}", f"-P{tmp}",
                       *(str(hls_dir / src) for src in sources)], tmp, project,
                      f"the analysis of {sources[0] if len(sources) == 1 else f'{len(sources)} files'} into {lib}")
        _run_tool([ghdl, "-e", std, f"--work={recipe['top_library']}", f"--workdir={tmp}", f"-P{tmp}", recipe["top"]],
                  tmp, project, f"the elaboration of {recipe['top']}")
        try:
            os.replace(tmp, work)
        except OSError:  # another process finished the same build first
            if not work.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return work


def _run_tool(cmd, cwd, project, what) -> None:
    try:
        proc = subprocess.run([*DIE_WITH_PARENT, *cmd], cwd=cwd, capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CompileError(f"GHDL did not finish {what} of {project.path} within {COMPILE_TIMEOUT_S} s.") from None
    if proc.returncode != 0:
        raise CompileError(f"GHDL failed on {what} of {project.path} (exit status {proc.returncode}):\n"
                           f"{(proc.stderr or proc.stdout)[-3000:]}")


def _run_args(recipe: dict, work: Path) -> list:
    return [ghdl_path(), "-r", f"--std={recipe.get('std', '08')}", f"--work={recipe['top_library']}",
            f"--workdir={work}", f"-P{work}", recipe["top"], *RUN_OPTIONS]


def _stop_time(project, tb: dict, n_events: int) -> str:
    cycles = n_events + int(project.timing.get("latency_cycles") or 0) + STOP_SLACK_CYCLES
    return f"--stop-time={int(cycles * float(tb['clock_period_ns']))}ns"


def run(project, X) -> np.ndarray:
    """The testbench's outputs for the events ``X`` (n, n_inputs), as float64 (n, n_outputs).

    Each input is written as the stored integer of the testbench's input type (its rounding and
    overflow modes, as the ap_fixed cast does); each output integer is read back in its output type.
    """
    from ..inputs import check_events

    project = open_project(project)
    recipe = _recipe(project)
    tb = recipe["testbench"]
    n_in, n_out = int(tb["n_inputs"]), int(tb["n_outputs"])
    X = check_events(X, n_in, min_rows=0)
    if not X.shape[0]:
        return np.zeros((0, n_out))
    work = compile(project)
    raw = FixedType.parse(tb["input_type"]).to_raw(X).astype(np.int64)
    n_parts = parts(X.shape[0], MIN_EVENTS_PER_PART)
    with tempfile.TemporaryDirectory(prefix="fastml-ghdl-") as tmp:
        runs = []
        try:
            for k, part in enumerate(np.array_split(raw, n_parts)):
                folder = Path(tmp) / f"part{k}"
                folder.mkdir()
                np.savetxt(folder / tb["input_file"], part, fmt="%d", delimiter=" ")
                cmd = [*DIE_WITH_PARENT, *_run_args(recipe, work), _stop_time(project, tb, len(part))]
                runs.append((subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True), folder, len(part)))
            deadline = time.monotonic() + RUN_TIMEOUT_S
            logs = [proc.communicate(timeout=max(0.0, deadline - time.monotonic()))[0] for proc, _, _ in runs]
        except subprocess.TimeoutExpired:
            raise CsimError(f"The GHDL simulation of {project.path} did not finish {X.shape[0]:,} events within "
                            f"{RUN_TIMEOUT_S} s.") from None
        finally:
            for proc, _, _ in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        outputs = [_read_outputs(project, proc, folder / tb["output_file"], n, n_out, text)
                   for (proc, folder, n), text in zip(runs, logs)]
    return FixedType.parse(tb["output_type"]).from_raw(np.concatenate(outputs))


def _read_outputs(project, proc, path: Path, n_events: int, n_out: int, log_text: str) -> np.ndarray:
    """The integers the testbench wrote, ``(n_events, n_out)``; CsimError with GHDL's words otherwise."""
    lines = [line for line in (log_text or "").splitlines() if line.strip()]
    tail = "; ".join(lines[-3:])
    if proc.returncode != 0:
        raise CsimError(f"The GHDL simulation of {project.path} stopped (exit status {proc.returncode}): "
                        f"{tail[-600:]}")
    try:
        values = np.array(path.read_text().split(), dtype=np.int64) if path.is_file() else np.zeros(0, np.int64)
    except ValueError:
        raise CsimError(f"The GHDL simulation of {project.path} wrote something other than integers to "
                        f"{path.name}.") from None
    if values.size != n_events * n_out:
        raise CsimError(f"The GHDL simulation of {project.path} wrote {values.size} values for {n_events} events of "
                        f"{n_out} outputs ({tail[-400:] or 'no message'}).")
    return values.reshape(n_events, n_out)


# ------------------------------------------------------------------ the pipeline's latency
_VCD_VAR = re.compile(r"\$var\s+\w+\s+\d+\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end")


def measure_latency(project, n_events: int = 3) -> int:
    """Clock cycles from the testbench's input valid to its output valid (the record's ``valid_in``
    and ``valid_out`` signals), read from a waveform (VCD) of a run on ``n_events`` zero events."""
    project = open_project(project)
    recipe = _recipe(project)
    tb = recipe["testbench"]
    work = compile(project)
    signals = [tb["valid_in"], tb["valid_out"]]
    with tempfile.TemporaryDirectory(prefix="fastml-ghdl-") as tmp:
        folder = Path(tmp)
        np.savetxt(folder / tb["input_file"], np.zeros((n_events, int(tb["n_inputs"])), dtype=np.int64),
                   fmt="%d", delimiter=" ")
        (folder / "wave.opt").write_text("$ version 1.1\n" + "".join(s + "\n" for s in signals))
        cmd = [*_run_args(recipe, work), _stop_time(project, tb, n_events), "--read-wave-opt=wave.opt",
               "--vcd=wave.vcd"]
        try:
            proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CsimError(f"The GHDL simulation of {project.path} did not finish within {RUN_TIMEOUT_S} s.") from None
        if proc.returncode != 0:
            raise CsimError(f"The GHDL simulation of {project.path} stopped (exit status {proc.returncode}): "
                            f"{(proc.stderr or proc.stdout)[-600:]}")
        rises = _first_rises(folder / "wave.vcd")
    missing = [s for s in signals if s.lower() not in rises]
    if missing:
        raise CsimError(f"The waveform of {project.path}'s testbench shows no rise of {', '.join(missing)}.")
    period_fs = float(tb["clock_period_ns"]) * 1e6
    cycles = (rises[signals[1].lower()] - rises[signals[0].lower()]) / period_fs
    if cycles != int(cycles):
        raise CsimError(f"The output valid of {project.path} rises {cycles} clock periods after the input valid.")
    return int(cycles)


def _first_rises(path: Path) -> dict:
    """``{"/scope/.../name": time of its first rise to 1}`` of the 1-bit signals of a VCD (GHDL: fs)."""
    scope, codes, rises, now = [], {}, {}, 0
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("$scope"):
            scope.append(line.split()[2])
        elif line.startswith("$upscope"):
            scope.pop()
        elif line.startswith("$var"):
            match = _VCD_VAR.match(line)
            if match:
                codes[match.group(1)] = "/" + "/".join([*scope, match.group(2)]).lower()
        elif line.startswith("#"):
            now = int(line[1:])
        elif line[:1] == "1" and line[1:] in codes:
            rises.setdefault(codes[line[1:]], now)
    return rises
