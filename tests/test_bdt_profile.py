"""BDT profiling: the float run follows the model, the counts are the fixed-point conversions' own, a
wrapping score type is caught before synthesis, and the suggested precision follows its stated rules."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xgboost")

from fastml_lab.bdt.profile import (MAX_FRACTIONAL, float_tree_scores, observe,  # noqa: E402
                                    profile_bdt)
from fastml_lab.bdt.study import float_scores  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.exceptions import DataError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402

from conftest import make_blobs  # noqa: E402

WRAPPING = "input=ap_fixed<16,6> score=ap_fixed<6,3>"


@pytest.fixture(scope="module")
def trained():
    X, labels = make_blobs(n_events=3000, n_features=8, n_classes=3, seed=2, spread=1.5)
    model = train_bdt((X, labels), rounds=40, depth=3, learning_rate=0.5, early_stopping=None)
    return model, X, labels


def test_the_float_run_is_the_models(trained):
    model, X, _ = trained
    ensemble = model.ensemble()
    assert float_tree_scores(ensemble, X).shape == (len(X), 3, 40)
    assert np.abs(float_scores(ensemble, X) - model.decision_function(X)).max() < 1e-4


def test_counts_are_the_conversions_own(trained):
    model, X, _ = trained
    prof = profile_bdt(model, X, precision=WRAPPING)
    rows = {r["quantity"]: r for r in prof.table()}
    assert list(rows) == ["inputs", "thresholds", "leaf values", "init, norm", "partial sums", "scores"]
    score_t = FixedType.parse("ap_fixed<6,3>")
    scores = float_scores(model.ensemble(), X).ravel()
    assert rows["scores"]["values"] == scores.size == len(X) * 3
    assert rows["scores"]["overflows"] == int(np.sum((scores < -4) | (scores >= 4)))  # TRN: [-4, 4)
    leaves = observe(model.ensemble(), X).values["leaf values"]
    assert rows["leaf values"]["vanished"] == int(np.sum((leaves != 0) & (score_t.quantize(leaves) == 0)))
    assert rows["inputs"]["type"] == "ap_fixed<16,6>" and rows["scores"]["type"] == "ap_fixed<6,3>"
    assert rows["thresholds"]["merged"] == 0 and rows["leaf values"]["merged"] is None


def test_a_wrapping_score_type_is_caught_and_flips_signs_in_the_firmware(trained, tmp_path):
    pytest.importorskip("conifer")
    pytest.importorskip("hls4ml")
    from fastml_lab.bdt.export import export_bdt

    model, X, _ = trained
    prof = profile_bdt(model, X, precision=WRAPPING)
    assert prof.score_overflows > len(X) // 10
    assert "OVERFLOW" in prof.summary()
    reference = model.decision_function(X)
    wrapped = export_bdt(model, tmp_path / "wrap", precision=WRAPPING).firmware().predict(X)
    flipped = np.sign(wrapped) != np.sign(reference)
    outside = (reference < -4) | (reference >= 4)
    assert flipped[outside].mean() > 0.3  # the overflowing scores are the ones that flip

    suggested = profile_bdt(model, X, precision=prof.suggested_precision)
    assert suggested.total_overflows == 0
    fixed = export_bdt(model, tmp_path / "fixed", precision=prof.suggested_precision).firmware().predict(X)
    assert np.mean(np.sign(fixed) != np.sign(reference)) < 0.01
    assert np.mean(fixed.argmax(1) == reference.argmax(1)) > 0.99
    assert profile_bdt(tmp_path / "fixed", X).precision["score"].to_hls() == prof.suggested_precision["score"]


def test_suggested_types_are_the_fewest_bits_by_the_rules(trained):
    model, X, _ = trained
    prof = profile_bdt(model, X, precision="ap_fixed<16,6>")
    obs = observe(model.ensemble(), X)
    types = {part: FixedType.parse(text) for part, text in prof.suggested_precision.items()}
    thr, inp, score = types["threshold"], types["input"], types["score"]
    # thresholds: no merges at the suggested fractional bits, some with one fewer (when above zero)
    assert profile_bdt(model, X, precision={"threshold": thr.to_hls()}).quantities[1].merged == 0
    if 0 < thr.fractional <= MAX_FRACTIONAL:
        coarser = FixedType(thr.width - 1, thr.integer)
        assert profile_bdt(model, X, precision={"threshold": coarser.to_hls()}).quantities[1].merged > 0
    assert inp.fractional == thr.fractional
    # integer bits: every value held, and one integer bit fewer does not hold them all
    for part, t, quantities in (("input", inp, ["inputs"]), ("threshold", thr, ["thresholds"]),
                                ("score", score, ["leaf values", "init, norm", "partial sums", "scores"])):
        values = np.concatenate([obs.values[q] for q in quantities])
        assert not t.overflows(values).any(), part
        assert FixedType(t.width - 1, t.integer - 1).overflows(values).any(), part
    assert score.fractional >= 10  # the given ap_fixed<16,6>'s; 40 rounds need only 6 + 4


def test_sample_and_errors(trained):
    model, X, _ = trained
    assert profile_bdt(model, X, sample=100).events == 100
    with pytest.raises(DataError):
        profile_bdt(model, X[:, :5])
    with pytest.raises(DataError, match="sample"):
        profile_bdt(model, X, sample=0)


# ------------------------------------------------------------------------------------------ CLI
def _cli(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "FASTML_LAB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([str(Path(sys.executable).with_name("fastml-lab")), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=180)


def test_cli_profiles_a_saved_bdt_as_the_api_does(tmp_path):
    import json

    from fastml_lab.bdt.train import load_bdt
    from fastml_lab.data import load_jets

    ds = load_jets("synthetic", n_events=3000, progress=False)
    train_bdt(ds, rounds=15, depth=3).save(tmp_path / "bdt.json")
    data = ("--data", "synthetic", "--events", "3000", "--sample", "500")
    proc = _cli("profile", tmp_path / "bdt.json", "--precision", WRAPPING, *data, "--out", tmp_path / "prof")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "prof"
    assert sorted(p.name for p in out.iterdir()) == ["profile.json", "profile.png", "suggested_precision.json"]
    expected = profile_bdt(load_bdt(tmp_path / "bdt.json"), ds, precision=WRAPPING, sample=500)
    written = json.loads((out / "profile.json").read_text())
    assert written["rows"] == json.loads(json.dumps(expected.table()))
    assert json.loads((out / "suggested_precision.json").read_text()) == expected.suggested_precision
    assert "BDT profile of bdt on 500 events" in proc.stdout and "suggested precision: input=" in proc.stdout

    refused = _cli("profile", tmp_path / "bdt.json", "--plan", tmp_path / "plan.json", *data, "--out", tmp_path / "x")
    assert refused.returncode != 0 and "--precision" in refused.stderr and not (tmp_path / "x").exists()
