"""The board's own interpreter: the board-safe part of fastml_lab under Python 3.10 with the PYNQ v3.1
image's numpy (1.21.5), in the environment ``make board-env`` builds (``.venv-board``; another with
``FASTML_LAB_BOARD_PYTHON``). Imports with numpy alone, the shipped packages through the software
overlay, the emulator of a project, both board drivers on the stand-ins, and the shipped packages behind
``fastml-lab serve`` queried over HTTP; every output is compared bit for bit with the same run here
(Python 3.11, numpy 2). The checks themselves are tests/board_checks.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKS = HERE / "board_checks.py"
BOARD_NUMPY = "1.21.5"


def board_python():
    """The board environment's interpreter, or None."""
    path = os.environ.get("FASTML_LAB_BOARD_PYTHON") or str(ROOT / ".venv-board" / "bin" / "python")
    return path if Path(path).is_file() else None


BOARD_PYTHON = board_python()
pytestmark = pytest.mark.skipif(
    BOARD_PYTHON is None,
    reason="no board environment (.venv-board): `make board-env` builds it from Python 3.10, numpy "
           f"{BOARD_NUMPY} and pynq 3.1; FASTML_LAB_BOARD_PYTHON names another")


def run_checks(python, *args, timeout=120) -> dict:
    result = subprocess.run([python, str(CHECKS), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONNOUSERSITE": "1"})
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed in {python}:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Events for every check: normal values, values beyond the fixed-point range, exact zeros."""
    rng = np.random.default_rng(31)
    X = rng.normal(0.0, 3.0, size=(500, 16))
    X[:20] *= 1000.0
    X[20:30] = 0.0
    path = tmp_path_factory.mktemp("board_events") / "X.npy"
    np.save(path, X)
    return path


def _both(name, tmp_path_factory, *args):
    """Run one check here and on the board's interpreter: (here's result, board's, their folders)."""
    here_dir, board_dir = tmp_path_factory.mktemp(f"{name}_here"), tmp_path_factory.mktemp(f"{name}_board")
    return (run_checks(sys.executable, name, here_dir, *args), run_checks(BOARD_PYTHON, name, board_dir, *args),
            here_dir, board_dir)


def _assert_bit_identical(here_dir, board_dir, pattern):
    files = sorted(p.name for p in here_dir.glob(pattern))
    assert files, f"no {pattern} written"
    assert sorted(p.name for p in board_dir.glob(pattern)) == files
    for name in files:
        here, board = np.load(here_dir / name), np.load(board_dir / name)
        assert here.dtype == board.dtype and here.shape == board.shape, name
        # Bit for bit: the same bytes, so NaNs and signed zeros count too.
        assert here.tobytes() == board.tobytes(), f"{name}: the board's interpreter differs"


def test_the_board_environment_is_the_image_s():
    info = run_checks(BOARD_PYTHON, "imports")
    assert info["python"].startswith("3.10."), info["python"]
    assert info["numpy"] == BOARD_NUMPY


def test_board_safe_modules_import_with_numpy_alone():
    info = run_checks(BOARD_PYTHON, "imports")
    assert info["failed"] == {}
    assert info["third_party"] == [], "the board-safe part imported packages other than numpy"
    assert info["pynq_imported"] is False, "pynq is imported only when a board driver is created"


def test_shipped_packages_run_bit_identically(events, tmp_path_factory):
    here, board, here_dir, board_dir = _both("shipped", tmp_path_factory, events)
    assert board["packages"] == here["packages"] and len(here["packages"]) >= 3
    _assert_bit_identical(here_dir, board_dir, "shipped_*.npy")


def test_the_emulator_of_a_project_runs_bit_identically(events, tmp_path_factory, overlay_project):
    here, board, here_dir, board_dir = _both("emulator", tmp_path_factory, events, overlay_project)
    assert board["digest"] == here["digest"]
    _assert_bit_identical(here_dir, board_dir, "emulator.npy")


def test_board_drivers_on_the_stand_ins_run_bit_identically(events, tmp_path_factory):
    here, board, here_dir, board_dir = _both("drivers", tmp_path_factory, events)
    assert board["packages"] == here["packages"]
    drivers = {name: run["driver"] for name, run in board["packages"].items()}
    assert sorted(set(drivers.values())) == ["BoardOverlay", "RegisterBoardOverlay"], drivers
    for name, run in board["packages"].items():
        assert run["equals_software_overlay"], f"{name}: the board driver differs from the software overlay"
    _assert_bit_identical(here_dir, board_dir, "driver_*.npy")


def test_the_server_answers_bit_identically_in_the_board_environment(events, tmp_path_factory):
    here, board, here_dir, board_dir = _both("serve", tmp_path_factory, events)
    assert board["models"] == here["models"] and len(here["models"]) >= 3
    for name, run in board["models"].items():
        assert run["metadata_status"] == 200
        assert run["binary_equals_json"] and run["binary_equals_predict"] and run["concurrent_equals_predict"], name
    assert board["refused"] == {"unknown model": [404, True], "malformed JSON": [400, True], "NaN": [400, True],
                                "wrong method": [405, True]}
    assert board["live_after"] == 200
    _assert_bit_identical(here_dir, board_dir, "serve_*.npy")
