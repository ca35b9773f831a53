"""The overlay verbs in subprocesses: package, overlays, run (with and without a board), and the
contract that `run` computes exactly what `csim` computes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ("tensorflow", "keras", "hls4ml", "sklearn", "pandas")


def cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "fastml_lab.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def events(overlay_project, tmp_path):
    X = np.random.default_rng(3).normal(0.0, 2.0, size=(300, 16)).astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path


def test_package_then_list_then_run(overlay_project, events, tmp_path):
    out = tmp_path / "store" / "jet_tiny"
    done = cli("package", overlay_project, "--name", "jet_tiny", "--out", out, "--version", "0.3")
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.json").is_file()

    listing = cli("overlays", "--path", out.parent)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("jet_tiny"))
    assert "0.3" in row and "pynq-z2" in row and "software only" in row

    y_path = tmp_path / "Y.npy"
    run = cli("run", "jet_tiny", "--path", out.parent, "--input", events, "--output", y_path,
              "--profile")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["backend"] == "software" and report["modelled"]["label"] == "modelled"
    from fastml_lab.overlay import load

    with load(out, backend="software") as ol:
        np.testing.assert_array_equal(np.load(y_path), ol.predict(np.load(events)))


def test_package_defaults_to_bitstreams_of_the_current_folder(overlay_project, tmp_path):
    done = cli("package", overlay_project, "--name", "here", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bitstreams" / "here" / "manifest.json").is_file()
    again = cli("package", overlay_project, "--name", "here", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    listing = cli("overlays", cwd=tmp_path)
    assert any(line.startswith("here ") for line in listing.stdout.splitlines())


def test_run_does_not_import_tensorflow_or_hls4ml(make_overlay_package, events, tmp_path):
    pkg = make_overlay_package("tiny")
    code = (
        "import sys; from fastml_lab.cli import main;"
        f"rc = main(['run', {str(pkg)!r}, '--input', {str(events)!r}, '--output', "
        f"{str(tmp_path / 'Y.npy')!r}]);"
        f"print(rc, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "0 []", out.stderr


def test_run_on_the_board_without_one_fails_clearly(make_overlay_package, events, tmp_path):
    pkg = make_overlay_package("tiny")
    run = cli("run", pkg, "--input", events, "--output", tmp_path / "Y.npy", "--backend", "board")
    assert run.returncode == 2
    assert "Cannot run 'tiny' on the board" in run.stderr and "no bitstream" in run.stderr
    assert not (tmp_path / "Y.npy").exists()


def test_run_reports_bad_input(make_overlay_package, tmp_path):
    pkg = make_overlay_package("tiny")
    bad = tmp_path / "bad.npy"
    X = np.zeros((4, 16))
    X[2, 5] = np.nan
    np.save(bad, X)
    run = cli("run", pkg, "--input", bad, "--output", tmp_path / "Y.npy")
    assert run.returncode == 2 and "bad.npy[2, 5] is nan" in run.stderr  # names the file and the value
    missing = cli("run", pkg, "--input", tmp_path / "nope.npy", "--output", tmp_path / "Y.npy")
    assert missing.returncode == 2 and "Cannot read" in missing.stderr
    unknown = cli("run", "no_such_overlay", "--input", bad, "--output", tmp_path / "Y.npy")
    assert unknown.returncode == 2 and "No overlay package named 'no_such_overlay'" in unknown.stderr


def test_run_on_one_row_of_features_announces_one_event(make_overlay_package, tmp_path):
    pkg = make_overlay_package("tiny")
    row = np.random.default_rng(4).normal(size=16)
    np.save(tmp_path / "row.npy", row)
    run = cli("run", pkg, "--input", tmp_path / "row.npy", "--output", tmp_path / "Y.npy")
    assert run.returncode == 0, run.stderr
    assert "on 1 event (" in run.stderr and "16 events" not in run.stderr
    from fastml_lab.overlay import load

    with load(pkg, backend="software") as ol:
        np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), ol.predict(row.reshape(1, 16)))


def test_run_with_scale_applies_the_stored_scaler(make_overlay_package, tmp_path):
    from fastml_lab.overlay import load

    pkg = make_overlay_package("tiny")
    raw = np.random.default_rng(5).normal(3.0, 4.0, size=(50, 16))
    np.save(tmp_path / "raw.npy", raw)
    run = cli("run", pkg, "--input", tmp_path / "raw.npy", "--output", tmp_path / "Y.npy", "--scale")
    assert run.returncode == 0, run.stderr
    with load(pkg, backend="software") as ol:
        np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), ol.predict(raw, scale=True))


@pytest.mark.slow
@pytest.mark.needs_gxx
def test_run_equals_csim_on_every_value(make_overlay_package, overlay_project, tmp_path):
    """The contract: the same X.npy through `csim` and through `run` gives identical outputs."""
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    pkg = make_overlay_package("tiny")
    rng = np.random.default_rng(11)
    X = np.concatenate([
        rng.normal(0.0, 2.0, size=(2000, 16)),
        rng.normal(0.0, 40.0, size=(200, 16)),  # overflowing inputs wrap like the hardware
        np.round(rng.normal(0.0, 4.0, size=(200, 16)) * 1024) / 1024,  # exact ap_fixed<16,6> grid
    ]).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    csim = cli("csim", overlay_project, "--input", tmp_path / "X.npy", "--output", tmp_path / "C.npy")
    assert csim.returncode == 0, csim.stderr
    run = cli("run", pkg, "--input", tmp_path / "X.npy", "--output", tmp_path / "R.npy")
    assert run.returncode == 0, run.stderr
    C, R = np.load(tmp_path / "C.npy"), np.load(tmp_path / "R.npy")
    assert C.shape == R.shape == (len(X), 5)
    differ = np.argwhere(C != R)
    assert differ.size == 0, f"{len(differ)} values differ, first at {differ[:5].tolist()}"
