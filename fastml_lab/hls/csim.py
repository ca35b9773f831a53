"""C simulation: compile an exported project's C++ with g++ and run it on a batch.

The project record says how its C++ is built (its ``csim`` entry, written by the export of its
family: :func:`nn_recipe` for hls4ml's sources, :mod:`fastml_lab.bdt.csim` for conifer's); this
module compiles what the record names and never asks which family wrote it. The record also names
the simulator: g++ on the HLS C++ (the default); Verilator, whose C++ model of the project's Verilog
(the recipe's ``verilate`` entry, :mod:`fastml_lab.rtl.verilator`) is compiled the same way; or
GHDL for VHDL (:mod:`fastml_lab.rtl.ghdl`, which runs its own testbench). Each recipe adds a
small batch entry point, ``fastml_predict``, that loops over events in C. The shared library is
cached in ``PRJ/csim`` under a key made of the sources' hashes, so a second run does not
recompile, and (where the library names no file of its project) in :mod:`.build_cache`, shared by
projects compiled from the same C++.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._io import remove_stale
from .._system import DIE_WITH_PARENT, available_memory, parts, usable_cores
from . import build_cache
from ..exceptions import CompileError, CsimError, ToolchainNotFoundError
from ..project import open_project

log = logging.getLogger("fastml_lab")

CXXFLAGS = ("-O3", "-fPIC", "-std=c++11", "-fno-gnu-unique")
COMPILE_TIMEOUT_S = 900
_BATCH_SOURCE = """\
// Batch entry point for the C simulation: one call runs n events through the top function.
extern "C" void myproject_double(double *in, double *out);
extern "C" void fastml_predict(double *x, double *y, long n, long n_in, long n_out) {
    for (long i = 0; i < n; i++) myproject_double(x + i * n_in, y + i * n_out);
}
"""

__all__ = ["CompileError", "CsimBuild", "CsimError", "compile_csim", "compile_jobs", "csim_recipe",
           "csim_seconds", "run_csim"]


@dataclass(frozen=True)
class CsimBuild:
    """How a project's C simulation compiles, with absolute paths (see :func:`build_from_record`).

    ``sources`` are compiled one by one (``flags``) and linked with ``batch_source`` (written to
    ``PRJ/csim``, it defines ``fastml_predict``); ``key_files`` and the flags make the cache key.
    """

    stem: str
    flags: tuple
    sources: tuple
    batch_source: str
    key_files: tuple


def csim_recipe(stem: str, flags, include_dirs, sources, batch_source: str, key_files,
                path_defines: dict | None = None) -> dict:
    """The project record's ``csim`` entry: how the exported C++ compiles, paths relative to the
    project's generator folder (``hls_dir``). The export of each family writes it; the C simulation
    reads it (:func:`build_from_record`) and never asks which family wrote it."""
    return {"stem": stem, "flags": list(flags), "include_dirs": list(include_dirs),
            "path_defines": dict(path_defines or {}), "sources": list(sources),
            "batch_source": batch_source, "key_files": list(key_files)}


def nn_recipe(hls_dir: Path) -> dict:
    """hls4ml's sources as it wrote them, with its ``ap_types`` and weights folder."""
    fw = Path(hls_dir) / "firmware"
    sources = ["firmware/myproject.cpp"]
    if (fw / "myproject_axi.cpp").exists():
        sources.append("firmware/myproject_axi.cpp")
    sources.append("myproject_bridge.cpp")
    key_files = [p.relative_to(hls_dir).as_posix() for p in sorted(fw.rglob("*"))
                 if p.is_file() and "ap_types" not in p.relative_to(fw).parts]
    return csim_recipe("libcsim", CXXFLAGS, ("firmware/ap_types", "firmware"), sources, _BATCH_SOURCE,
                       (*key_files, "myproject_bridge.cpp"), {"WEIGHTS_DIR": "firmware/weights"})


def build_from_record(project) -> CsimBuild:
    """The :class:`CsimBuild` of the project's ``csim`` record entry, paths made absolute."""
    hls_dir = project.hls_dir.resolve()
    recipe = project.csim_recipe
    flags = (*recipe["flags"], *(f"-I{hls_dir / inc}" for inc in recipe["include_dirs"]),
             *(f'-D{name}="{hls_dir / rel}"' for name, rel in recipe["path_defines"].items()))
    return CsimBuild(recipe["stem"], flags, tuple(hls_dir / src for src in recipe["sources"]),
                     recipe["batch_source"], tuple(hls_dir / key for key in recipe["key_files"]))


def _cache_key(hls_dir: Path, build: CsimBuild) -> str:
    h = hashlib.sha256(str(hls_dir).encode())
    h.update(" ".join(build.flags).encode() + build.batch_source.encode())
    for path in build.key_files:
        h.update(path.relative_to(hls_dir).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def compile_jobs(memory_per_job: int = 600 << 20) -> int:
    """How many g++ processes to run at once: one per core this process may use, as many as the
    memory available holds (each g++ on these sources takes 200-500 MB; Binder's 2 GB session takes
    two), at least one."""
    return max(1, min(usable_cores(), available_memory() // memory_per_job))


#: Simulators that do not go through the C++ recipe: the record's name -> the module that has
#: ``compile(project) -> Path`` and ``run(project, X) -> outputs``.
_OWN_RUNNERS = {"ghdl": "fastml_lab.rtl.ghdl"}


def _own_runner(project):
    import importlib

    name = project.simulator
    return importlib.import_module(_OWN_RUNNERS[name]) if name in _OWN_RUNNERS else None


def compile_csim(project, jobs: int | None = None, header_checks: bool = True) -> Path:
    """Compile the project's C simulation (or reuse the cached build); return the library path.

    ``jobs`` g++ processes run at once (default :func:`compile_jobs`: the cores, as the memory
    allows).
    ``header_checks=False`` compiles without the ``assert`` checks of the ap_types headers
    (``-DNDEBUG``), as synthesis sees the code: see :data:`BEYOND_MSB`.
    """
    project = open_project(project)
    runner = _own_runner(project)
    if runner is not None:
        return runner.compile(project)
    hls_dir = project.hls_dir.resolve()
    build = build_from_record(project)
    verilate = project.csim_recipe.get("verilate")
    if not header_checks:
        build = replace(build, flags=(*build.flags, "-DNDEBUG"))
    out_dir = project.path.resolve() / "csim"
    lib = out_dir / f"{build.stem}-{_cache_key(hls_dir, build)}.so"
    if lib.exists():
        return lib
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise ToolchainNotFoundError("The C simulation needs g++ on PATH (Debian: apt-get install g++).")
    out_dir.mkdir(exist_ok=True)
    shared = build_cache.content_key(hls_dir, project.csim_recipe, () if header_checks else ("-DNDEBUG",), cxx,
                                     tools=_tool_versions(verilate))
    if shared is not None and build_cache.fetch(shared, lib):
        log.info("Reusing a C simulation compiled earlier from the same C++ (%s).", build_cache.cache_dir())
        return lib
    # Sources, objects and the library are built in a folder of this process's own and only the
    # finished library is renamed into place: two processes may compile one project at once, and
    # what a killed compile leaves is removed by the next one.
    remove_stale(out_dir, "build", ".partial")
    work = Path(tempfile.mkdtemp(prefix=f".build.{os.getpid()}.", suffix=".partial", dir=out_dir))
    batch = work / f"{build.stem}_batch.cpp"
    batch.write_text(build.batch_source)
    sources = [*build.sources, batch]
    if verilate:
        from ..rtl.verilator import verilate_into

        generated, flags = verilate_into(hls_dir, verilate, work / "obj_dir")
        sources += generated
        build = replace(build, flags=(*build.flags, *flags))
    objects = [work / f"{k}_{src.stem}.o" for k, src in enumerate(sources)]
    jobs = max(1, min(jobs or compile_jobs(), len(sources)))
    log.info("Compiling with g++ (%d files, %d at a time)...", len(sources), jobs)

    def compile_one(pair):
        src, obj = pair
        _run([cxx, *build.flags, "-c", str(src), "-o", str(obj)], cwd=hls_dir, what=src.name)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(compile_one, zip(sources, objects)))
        tmp = work / lib.name
        _run([cxx, *build.flags, "-shared", *map(str, objects), "-o", str(tmp)], cwd=hls_dir,
             what="the shared library")
        os.replace(tmp, lib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if shared is not None:
        build_cache.store(shared, lib)
    return lib


def _tool_versions(verilate) -> tuple:
    """What else makes the library: Verilator's version when the recipe verilates."""
    if not verilate:
        return ()
    from ..rtl.verilator import verilator_version

    return (verilator_version(),)


def _run(cmd, cwd, what):
    try:
        proc = subprocess.run([*DIE_WITH_PARENT, *cmd], cwd=cwd, capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CompileError(f"The C simulation did not compile: g++ did not finish {what} within "
                           f"{COMPILE_TIMEOUT_S} s (in {cwd}).") from None
    if proc.returncode != 0:
        raise CompileError(f"The C simulation did not compile: g++ failed on {what} (exit status "
                           f"{proc.returncode}) in {cwd}:\n{proc.stderr[-3000:]}")


#: Runs the compiled library on one batch in a child process: argv = library, inputs, outputs, n_out,
#: the parent's pid, repeats. With repeats > 0 it also prints the shortest of that many timed calls,
#: after one warm-up call (:func:`csim_seconds`).
_RUNNER = """
import ctypes, os, signal, sys, time
import numpy as np
try:  # end with the process that started this one (Linux's PR_SET_PDEATHSIG), even if it is killed
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[5]):
    sys.exit("the process that started the C simulation is gone")
lib = ctypes.CDLL(sys.argv[1])
lib.fastml_predict.restype = None
lib.fastml_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_long]
x = np.ascontiguousarray(np.load(sys.argv[2]), dtype=np.float64)
y = np.zeros((x.shape[0], int(sys.argv[4])), dtype=np.float64)
times = []
for _ in range(int(sys.argv[6]) + 1):
    start = time.perf_counter()
    lib.fastml_predict(x.ctypes.data, y.ctypes.data, x.shape[0], x.shape[1], y.shape[1])
    times.append(time.perf_counter() - start)
np.save(sys.argv[3], y)
if len(times) > 1:
    print(min(times[1:]))
"""


def _runner(lib_path, x_path, y_path, n_outputs: int, repeats: int = 0) -> list:
    """The command that runs :data:`_RUNNER` on one batch."""
    return [sys.executable, "-c", _RUNNER, str(lib_path), str(x_path), str(y_path), str(n_outputs),
            str(os.getpid()), str(int(repeats))]


RUN_TIMEOUT_S = 600
#: Fewer events than twice this run in one child process (starting one takes about 0.1 s).
MIN_EVENTS_PER_PART = 1000


def csim_seconds(project, X, repeats: int = 3) -> float:
    """The shortest time the compiled C simulation takes for the batch ``X`` (one thread, best of
    ``repeats`` after a warm-up call, in a child process): the firmware's C++ run as a CPU would."""
    project = open_project(project)
    firmware = project.firmware()
    X = firmware.validate_input(X)
    lib_path = compile_csim(project)
    with tempfile.TemporaryDirectory(prefix="fastml-csim-") as tmp:
        x_path = Path(tmp) / "x.npy"
        np.save(x_path, np.ascontiguousarray(X, dtype=np.float64))
        try:
            proc = subprocess.run(_runner(lib_path, x_path, Path(tmp) / "y.npy", firmware.n_outputs, max(1, repeats)),
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CsimError(f"Timing the C simulation of {project.path} took over {RUN_TIMEOUT_S} s.") from None
    if proc.returncode != 0:
        raise CsimError(f"Timing the C simulation of {project.path} failed (exit status {proc.returncode}): "
                        f"{proc.stderr.strip()[-400:]}")
    return float(proc.stdout.split()[-1])


#: The ap_types headers' check that stops some C simulations. Converting a fixed-point value to a
#: type whose rounding bit lies above the value's most significant bit (all of its bits below the
#: new type's LSB, with a rounding mode) reads a bit beyond the source's MSB before deciding it
#: does not need it; the result is well defined (the sign decides the rounding), and synthesis,
#: which has no asserts, computes it. ``header_checks=False`` runs the simulation that way.
BEYOND_MSB = "Attempting to read bit beyond MSB"


def run_csim(project, X, header_checks: bool = True) -> np.ndarray:
    """Outputs of the compiled C simulation for inputs ``X`` (n, n_inputs), as float64.

    The simulation runs in child processes (a large batch in parts, one per core): the ap_types
    headers abort (``assert``) on some type combinations, which must end in a CsimError here, not
    take the notebook's kernel down with it.
    ``header_checks=False`` compiles it without those checks (see :data:`BEYOND_MSB`).
    """
    project = open_project(project)
    runner = _own_runner(project)
    if runner is not None:
        return runner.run(project, X)
    firmware = project.firmware()
    X = firmware.validate_input(X)
    lib_path = compile_csim(project, header_checks=header_checks)
    if not X.shape[0]:
        return np.zeros((0, firmware.n_outputs))
    # Large batches are cut into parts that run in child processes of their own, one per core.
    n_parts = parts(X.shape[0], MIN_EVENTS_PER_PART)
    with tempfile.TemporaryDirectory(prefix="fastml-csim-") as tmp:
        runs = []
        for k, part in enumerate(np.array_split(np.ascontiguousarray(X, dtype=np.float64), n_parts)):
            x_path, y_path = Path(tmp) / f"x{k}.npy", Path(tmp) / f"y{k}.npy"
            np.save(x_path, part)
            runs.append((subprocess.Popen(_runner(lib_path, x_path, y_path, firmware.n_outputs),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), y_path))
        deadline = time.monotonic() + RUN_TIMEOUT_S
        try:
            errors = [proc.communicate(timeout=max(0.0, deadline - time.monotonic()))[1] for proc, _ in runs]
        except subprocess.TimeoutExpired:
            raise CsimError(f"The C simulation of {project.path} did not finish {X.shape[0]:,} events within "
                            f"{RUN_TIMEOUT_S} s.") from None
        finally:
            for proc, _ in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for (proc, y_path), stderr in zip(runs, errors):
            if proc.returncode == 0 and y_path.is_file():
                continue
            lines = [line for line in stderr.splitlines() if line.strip()]
            why = next((line for line in lines if "Assertion" in line), lines[-1] if lines else "")
            if BEYOND_MSB in why:
                why = why[why.find(os.sep + "ap_types" + os.sep) + 1:] if "ap_types" in why else why
                hint = (" The ap_types headers check a conversion of this model's types to a type whose "
                        "rounding bit lies above all of the value's bits (the HLS tool's C simulation "
                        "stops there too; synthesis has no such check and the result is well defined). "
                        "Run the C simulation without the headers' checks (header_checks=False, "
                        "--no-header-checks) to compare it with the emulator, or choose other widths.")
            elif "Assertion" in why:
                why = why[why.find(os.sep + "ap_types" + os.sep) + 1:] if "ap_types" in why else why
                hint = (" The ap_types headers rejected a value of this model's types (an internal check "
                        "that the HLS tool's C simulation would hit too); choose other widths or modes.")
            else:
                hint = ""
            raise CsimError(f"The C simulation of {project.path} stopped (exit status {proc.returncode}): "
                            f"{why[-400:].rstrip('.')}.{hint}")
        return np.concatenate([np.load(y_path) for _, y_path in runs])
