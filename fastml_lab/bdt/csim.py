"""C simulation of a BDT project: conifer's HLS C++ compiled with g++, run on a batch.

The entry point does what conifer's own ``bridge.cpp`` does for one event (cast each double to
``input_t``, call ``bdt.decision_function``, return the scores as doubles), in a loop over the
batch, with ctypes instead of pybind11. The library is cached in ``PRJ/csim`` under a hash of the
sources, so a second run does not recompile.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..exceptions import FastMLError, ToolchainNotFoundError
from ..project import open_project

log = logging.getLogger("fastml_lab")

#: -O1 compiles the unrolled trees in about half the time of -O3; the arithmetic is the same.
CXXFLAGS = ("-O1", "-fPIC", "-std=c++14", "-fno-gnu-unique")
COMPILE_TIMEOUT_S = 900
_BATCH_SOURCE = """\
// Batch entry point for the C simulation, as conifer's bridge.cpp for each event.
#include "BDT.cpp"
extern "C" void fastml_predict(const double *x, double *y, long n, long n_in, long n_out) {
    for (long i = 0; i < n; i++) {
        input_arr_t xt;
        for (int j = 0; j < n_features; j++) xt[j] = (input_t) x[i * n_in + j];
        score_t yt[BDT::fn_classes(n_classes)];
        bdt.decision_function(xt, yt);
        for (int j = 0; j < BDT::fn_classes(n_classes); j++) y[i * n_out + j] = (double) yt[j];
    }
}
"""
_LOADED: dict = {}


class CompileError(FastMLError, RuntimeError):
    """g++ is there but the BDT's C++ did not compile."""


def _cache_key(hls_dir: Path) -> str:
    h = hashlib.sha256(str(hls_dir.resolve()).encode())
    h.update(" ".join(CXXFLAGS).encode() + _BATCH_SOURCE.encode())
    for name in ("BDT.h", "BDT.cpp", "parameters.h"):
        h.update((hls_dir / "firmware" / name).read_bytes())
    return h.hexdigest()[:16]


def compile_csim(project) -> Path:
    """Compile the project's C simulation (or reuse the cached build); return the library path."""
    project = open_project(project)
    hls_dir = project.hls_dir.resolve()
    out_dir = project.path.resolve() / "csim"
    lib = out_dir / f"libbdt-{_cache_key(hls_dir)}.so"
    if lib.exists():
        return lib
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise ToolchainNotFoundError("The C simulation needs g++ on PATH (Debian: apt-get install g++).")
    out_dir.mkdir(exist_ok=True)
    source = out_dir / "fastml_bdt_batch.cpp"
    source.write_text(_BATCH_SOURCE)
    fw = hls_dir / "firmware"
    tmp = lib.with_suffix(".so.tmp")
    cmd = [cxx, *CXXFLAGS, "-shared", f"-I{fw}", f"-I{fw / 'ap_types'}", str(source), "-o", str(tmp)]
    log.info("Compiling the BDT's C simulation with g++...")
    try:
        proc = subprocess.run(cmd, cwd=hls_dir, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CompileError(f"The C simulation did not compile: g++ did not finish within {COMPILE_TIMEOUT_S} s "
                           f"(in {hls_dir}).") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise CompileError(f"The C simulation did not compile: g++ failed (exit status {proc.returncode}) "
                           f"in {hls_dir}:\n{proc.stderr[-3000:]}")
    os.replace(tmp, lib)
    return lib


def run_csim(project, X) -> np.ndarray:
    """Scores of the compiled C simulation for inputs ``X`` (n, n_features), as float64."""
    project = open_project(project)
    firmware = project.firmware()
    X = firmware.validate_input(X)
    lib_path = compile_csim(project)
    lib = _LOADED.get(lib_path)
    if lib is None:
        lib = ctypes.CDLL(str(lib_path))
        lib.fastml_predict.restype = None
        lib.fastml_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long,
                                       ctypes.c_long, ctypes.c_long]
        _LOADED[lib_path] = lib
    x = np.ascontiguousarray(X, dtype=np.float64)
    y = np.zeros((x.shape[0], firmware.n_outputs), dtype=np.float64)
    lib.fastml_predict(x.ctypes.data, y.ctypes.data, x.shape[0], firmware.n_inputs, firmware.n_outputs)
    return y
