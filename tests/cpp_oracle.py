"""Compile small C++ programs against the Xilinx ap_types headers that ship inside hls4ml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ap_types_dir() -> Path:
    hls4ml = pytest.importorskip("hls4ml")
    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


def compile_and_run(source: str, workdir: Path, stdin: str = "") -> str:
    if shutil.which("g++") is None:
        pytest.fail("g++ is required for the C++ reference checks (apt-get install g++)")
    src = workdir / "oracle.cpp"
    exe = workdir / "oracle"
    src.write_text(source)
    subprocess.run(["g++", "-O0", "-std=c++14", f"-I{ap_types_dir()}", str(src), "-o", str(exe)],
                   check=True, capture_output=True, timeout=600)
    return subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True,
                          timeout=120).stdout
