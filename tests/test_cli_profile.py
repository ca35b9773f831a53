"""`fastml-lab profile | study` as a user runs them: files written, numbers equal to the Python API's,
one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

from test_cli_hls import one_line_error, run  # noqa: E402

from fastml_lab.data import load_jets  # noqa: E402
from fastml_lab.hls import PrecisionPlan  # noqa: E402
from fastml_lab.quantize import profile  # noqa: E402
from fastml_lab.train import build_model, save_model  # noqa: E402

pytestmark = pytest.mark.needs_tf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA = ("--data", "synthetic", "--events", "3000")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_profile")
    save_model(build_model("16-8", seed=5), root / "m.keras")
    PrecisionPlan.uniform("ap_fixed<8,2>").save(root / "narrow.json")
    return root


@pytest.fixture(scope="module")
def profiled(root):
    proc = run("profile", root / "m.keras", "--plan", root / "narrow.json", *DATA, "--sample", "400",
               "--out", root / "prof")
    assert proc.returncode == 0, proc.stderr
    return proc, root / "prof"


def test_profile_writes_plots_numbers_and_a_suggested_plan(profiled):
    proc, out = profiled
    assert sorted(p.name for p in out.iterdir()) == [
        "profile.json", "profile.png", "profile_activations.png", "profile_weights.png", "suggested_plan.json"]
    for name in ("profile.png", "profile_activations.png", "profile_weights.png"):
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)
    data = json.loads((out / "profile.json").read_text())
    assert data["events"] == 400 and data["plan"]["default"] == "ap_fixed<8,2>"
    assert data["total_overflows"] > 0
    assert PrecisionPlan.load(out / "suggested_plan.json").to_dict() == data["suggested_plan"]
    assert "Profile of jet_mlp on 400 events" in proc.stdout and f"{data['total_overflows']} overflow" in proc.stdout


def test_profile_numbers_are_the_python_api_numbers(profiled, root):
    _, out = profiled
    X = load_jets("synthetic", n_events=3000, progress=False).X_train
    expected = profile(keras.models.load_model(root / "m.keras"), X, plan=root / "narrow.json", sample=400)
    assert json.loads((out / "profile.json").read_text()) == json.loads(json.dumps(expected.to_dict()))


def test_profile_refuses_an_existing_folder_and_a_missing_plan(profiled, root):
    _, out = profiled
    before = (out / "profile.json").read_bytes()
    line = one_line_error(run("profile", root / "m.keras", *DATA, "--out", out), "profile", tf_noise=True)
    assert "already exists" in line
    assert (out / "profile.json").read_bytes() == before
    line = one_line_error(run("profile", root / "m.keras", "--plan", root / "nope.json", *DATA,
                              "--out", root / "other"), "profile", tf_noise=True)
    assert "nope.json" in line and not (root / "other").exists()


def test_study_writes_json_and_plot(root):
    proc = run("study", root / "m.keras", *DATA, "--bits", "6,16", "--out", root / "study")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "study" / "study.json").read_text())
    assert [r["bits"] for r in data["rows"]] == [6, 16] and data["mode"] == "ptq"
    assert all(r["evaluated_with"] == "emulator" and 0 <= r["accuracy"] <= 1 for r in data["rows"])
    assert np.isclose(data["float_accuracy"], data["rows"][1]["float_accuracy"])
    assert (root / "study" / "study.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "PTQ bit-width study on 600 events" in proc.stdout


def test_study_refuses_bad_widths(root):
    proc = run("study", root / "m.keras", *DATA, "--bits", "4,x", "--out", root / "bad")
    assert proc.returncode == 2 and "expected widths separated by commas" in proc.stderr
    line = one_line_error(run("study", root / "m.keras", *DATA, "--bits", "1,8", "--out", root / "bad"),
                          "study", tf_noise=True)
    assert "from 2 to 32" in line and not (root / "bad").exists()
