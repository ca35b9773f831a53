"""Crash safety: ``kill -9`` at moments spread over a run of export, package and quantize.

After every kill the destination is either absent (it did not exist before) or complete and
readable (the old one, or the new one), nothing but hidden leftovers lies beside it, and the next
run succeeds and clears those leftovers. The kill moments are fractions of a measured full run, so
they fall in the import, the work and the final renames alike. ``bench/bench_crash.py`` runs many
more kills (and the demo and the studies); this is the CI slice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

pytestmark = [pytest.mark.needs_tf]

CLI = Path(sys.executable).with_name("fastml-lab")
#: Where in a run the kills land, as fractions of one full run's wall time.
FRACTIONS = (0.3, 0.6, 0.85, 0.97)


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", FASTML_LAB_OFFLINE="1")


def full_run(argv, timeout=600) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(CLI), *map(str, argv)], capture_output=True, text=True, env=_env(),
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - start


def killed_run(argv, after_s: float) -> int:
    """Start the verb, SIGKILL it after ``after_s`` seconds (if still running); its exit status."""
    proc = subprocess.Popen([str(CLI), *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())
    try:
        proc.wait(timeout=after_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    return proc.returncode


def visible(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def campaign(argv, target: Path, check_complete, runs_in: Path, fractions=FRACTIONS) -> dict:
    """Kill ``argv`` at each of ``fractions`` of a full run; check ``target`` after each kill."""
    seconds = full_run(argv)
    check_complete(target)
    before = visible(runs_in)
    counts = {"kills": 0, "finished_first": 0}
    for fraction in fractions:
        status = killed_run(argv, fraction * seconds)
        counts["kills" if status == -signal.SIGKILL else "finished_first"] += 1
        # The destination existed before (a replacement run): it is complete, old or new.
        from fastml_lab._io import recover_replaced

        recover_replaced(target)
        check_complete(target)
        assert visible(runs_in) == before, "a killed run left a visible file or folder"
    full_run(argv)
    check_complete(target)
    assert [p.name for p in runs_in.iterdir() if p.name.startswith(f".{target.stem}")] == [], \
        "the next run did not clear what the killed runs left"
    return counts


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(5, name="fc2"), keras.layers.Activation("softmax", name="out")])
    model.compile("adam", "categorical_crossentropy")
    model.save(root / "m.keras")
    return root / "m.keras"


def _project_complete(path: Path):
    from fastml_lab.project import Project

    project = Project.open(path)
    fw = project.firmware()
    assert fw.n_inputs == 16 and np.isfinite(fw.predict(np.zeros((2, 16)))).all()
    assert (project.hls_dir / "firmware" / "myproject.cpp").is_file()


def test_export_killed_at_any_moment_leaves_a_complete_project_or_the_old_one(model_file, tmp_path):
    target = tmp_path / "prj"
    argv = ["export", model_file, "--out", target, "--backend", "pynq-z2", "--force"]
    counts = campaign(argv, target, _project_complete, tmp_path)
    assert counts["kills"] >= 2, counts  # most moments fall inside the run


def test_package_killed_at_any_moment_leaves_a_verified_package(model_file, tmp_path):
    from fastml_lab.overlay import OverlayPackage
    from fastml_lab.overlay.software import load_firmware

    prj = tmp_path / "src" / "prj"
    full_run(["export", model_file, "--out", prj, "--backend", "pynq-z2"])
    out = tmp_path / "pkgs" / "crashpkg"
    out.parent.mkdir()

    def complete(path):
        package = OverlayPackage(path)  # reads and checks the manifest
        firmware = load_firmware(package)  # checks the emulator files against it
        assert firmware.predict(np.zeros((1, 16))).shape == (1, 5)

    campaign(["package", prj, "--name", "crashpkg", "--out", out, "--overwrite"], out, complete, out.parent)


def test_a_killed_quantize_never_leaves_a_half_written_model(model_file, tmp_path):
    from fastml_lab.train import load_model

    out = tmp_path / "q" / "qmodel.keras"
    out.parent.mkdir()

    def complete(path):
        assert load_model(path).count_params() > 0

    argv = ["quantize", model_file, "--data", "synthetic", "--events", "2000", "--epochs", "1",
            "--bits", "6,8", "--out", out]
    # Training dominates a quantize run; the moments that matter are the last ones (the save).
    campaign(argv, out, complete, out.parent, fractions=FRACTIONS[-2:])
