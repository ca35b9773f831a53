"""BDTs through conifer's VHDL backend: the GHDL simulation equals the emulator, value for value.

Four projects cover the VHDL's arithmetic (binary and multi-class; xgboost's ``<`` and
scikit-learn's ``<=``; a wide type; a narrow one without room for 1, so its sums wrap around and
the normalisation 1.0 wraps to -1; a rounding and saturating one, whose normalisation saturates just
below 1; an integer type whose normalisation is the integer 1, so the VHDL skips its multiplier and
a pipeline stage). Each is
exported and compiled once (module fixture) and run on random events, every threshold and a step
either side of it, the type's ends and values far beyond its range. The latency recorded in the
project is checked against the valid signals of the simulation's waveform.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("conifer")

from fastml_lab import cli  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.bdt.vhdl import (  # noqa: E402
    RTL_PIPELINE, export_vhdl, pipeline_latency, reduce_stages, vhdl_constants)
from fastml_lab.emulator import Firmware  # noqa: E402
from fastml_lab.exceptions import ConfigError, CsimError, ToolchainNotFoundError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402
from fastml_lab.hls.check import check_project  # noqa: E402
from fastml_lab.hls.csim import run_csim  # noqa: E402
from fastml_lab import _system  # noqa: E402
from fastml_lab.rtl import ghdl  # noqa: E402

needs_ghdl = pytest.mark.skipif(shutil.which("ghdl") is None,
                                reason="ghdl is not on PATH (Debian/Ubuntu: apt-get install ghdl)")
N_FEATURES = 4

CASES = {
    # library, classes, rounds, depth, precision
    "xgb-binary-wide": ("xgboost", 2, 9, 3, "ap_fixed<16,6>"),
    "xgb-3class-wrap-norm-minus-one": ("xgboost", 3, 12, 2, "ap_fixed<8,1>"),
    "sk-binary-rnd-sat-norm-below-one": ("sklearn", 2, 6, 3, "ap_fixed<12,1,AP_RND,AP_SAT>"),
    "sk-3class-int-norm-skipped": ("sklearn", 3, 4, 2, "ap_int<7>"),
}


def _data(n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.5, size=(1200, N_FEATURES))
    signal = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2
    return X, np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))


def _model(library, n_classes, rounds, depth):
    return train_bdt(_data(n_classes), library=library, rounds=rounds, depth=depth, early_stopping=None,
                     validation_split=0.0)


def probe_inputs(firmware, seed: int = 0) -> np.ndarray:
    """Random events, then, feature by feature, every threshold and one step and half a step either
    side of it, the type's ends and values far beyond them."""
    layer = firmware._layers[0]
    t, rng = firmware.input_type, np.random.default_rng(seed)
    rows = [rng.normal(scale=2.0, size=(1500, N_FEATURES)), rng.normal(scale=60.0, size=(200, N_FEATURES))]
    split = layer.feature >= 0
    for f in range(N_FEATURES):
        thresholds = layer.threshold[split & (layer.feature == f)]
        probe = np.concatenate([thresholds + d for d in (0.0, t.lsb, -t.lsb, t.lsb / 2, -t.lsb / 2)]
                               + [[t.min, t.max, t.min - t.lsb, t.max + t.lsb, 2 * t.max, -2 * t.max, 1e4, -1e4]])
        base = rng.normal(scale=1.5, size=(len(probe), N_FEATURES))
        base[:, f] = probe
        rows.append(base)
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def tiny_model():
    return _model("xgboost", 2, 2, 2)


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    library, n_classes, rounds, depth, precision = CASES[request.param]
    project = export_vhdl(_model(library, n_classes, rounds, depth),
                          tmp_path_factory.mktemp("vhdl") / request.param, precision=precision)
    return request.param, project


# ------------------------------------------------------------------ without GHDL
def test_the_record(case):
    name, project = case
    meta = project.meta
    t = CASES[name][-1]
    assert (meta["family"], meta["backend"], meta["hls_dir"]) == ("bdt", "vhdl", "vhdl")
    assert (meta["board"], meta["part"], meta["clock_period_ns"]) == ("pynq-z2", "xc7z020clg400-1", 10.0)
    assert meta["precision"] == {part: FixedType.parse(t).to_hls() for part in ("input", "threshold", "score")}
    assert project.firmware().input_type == FixedType.parse(t)
    assert meta["csim"]["simulator"] == "ghdl" and project.simulator == "ghdl"
    assert meta["csim"]["sources"][-1] == "firmware/BDTTestbench.vhd"
    assert meta["rtl"]["top"] == "BDTTop" and meta["rtl"]["language"] == "vhdl"
    assert all((project.hls_dir / src).is_file() for src in meta["csim"]["sources"])
    assert meta["timing"]["source"] == RTL_PIPELINE and meta["timing"]["ii_cycles"] == 1
    firmware = Firmware.load(project.path)
    assert firmware.digest() == meta["firmware_digest"]
    assert firmware.description["layers"][0]["reduction"] == "vhdl"
    assert firmware.n_outputs == (1 if CASES[name][1] == 2 else CASES[name][1]) == meta["n_outputs"]
    conifer_json = json.loads((project.hls_dir / "myproject.json").read_text())
    assert conifer_json["config"]["output_dir"] == str(project.hls_dir.resolve())
    assert conifer_json["max_depth"] == vhdl_constants(project.hls_dir)["maxDepth"] <= CASES[name][3]


def test_latency_formula_from_the_vhdl(case):
    name, project = case
    c = vhdl_constants(project.hls_dir)
    norm = int(Firmware.load(project.path).arrays["bdt/norm"][0])
    expected = c["maxDepth"] + 3 + int(np.ceil(np.log2(c["nTrees"] + 1))) + (norm != 1)
    assert project.timing["latency_cycles"] == pipeline_latency(project.hls_dir) == expected
    assert (norm == 1) == (name == "sk-3class-int-norm-skipped")  # the one case whose multiplier is left out


def test_reduce_stages_are_the_adder_tree_depth():
    assert [reduce_stages(n) for n in range(1, 10)] == [0, 1, 2, 2, 3, 3, 3, 3, 4]


@pytest.mark.parametrize("precision, named", [
    ("input=ap_fixed<16,6> score=ap_fixed<18,8>", ("input ap_fixed<16,6>", "threshold ap_fixed<16,6>",
                                                   "score ap_fixed<18,8>")),
    ({"input": "ap_fixed<12,4>", "threshold": "ap_fixed<12,4>", "score": "ap_fixed<12,4,AP_RND,AP_SAT>"},
     ("input ap_fixed<12,4>", "score ap_fixed<12,4,AP_RND,AP_SAT>")),
    ("ap_ufixed<10,4>", ("signed",)),
    ("ap_fixed<40,10>", ("at most 32 bits",)),
])
def test_types_the_vhdl_cannot_hold_are_refused(tiny_model, tmp_path, precision, named):
    with pytest.raises(ConfigError) as caught:
        export_vhdl(tiny_model, tmp_path / "prj", precision=precision)
    for words in named:
        assert words in str(caught.value)
    assert not (tmp_path / "prj").exists()


def test_a_missing_ghdl_says_how_to_install_it(case, monkeypatch):
    monkeypatch.setattr(ghdl.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainNotFoundError, match="apt-get install ghdl"):
        ghdl.run(case[1], np.zeros((2, N_FEATURES)))


# ------------------------------------------------------------------ GHDL against the emulator
@needs_ghdl
def test_ghdl_equals_the_emulator_on_every_value(case):
    name, project = case
    firmware = project.firmware()
    X = probe_inputs(firmware)
    result = check_project(project, X)
    assert result.simulation == "the RTL simulation with GHDL"
    assert result.simulated.shape == (len(X), firmware.n_outputs)
    assert result.mismatches == 0, f"{name}: {result.comparison.describe()}"
    # the probes reach what matters: inputs beyond the type, and (narrow types) sums that wrap
    _, counts = firmware.predict_counting_overflows(X)
    assert counts["input"] > 0
    norm = firmware.arrays["bdt/norm"][0]
    if "wrap" in name:  # ap_fixed<8,1> cannot hold the normalisation 1.0: it wraps to -1
        assert counts["bdt"] > 0, f"{name}: no score wrapped around"
        assert norm == -(1 << 7)
    if "below-one" in name:  # ap_fixed<12,1,AP_RND,AP_SAT>: 1.0 saturates to 1 - 2**-11
        assert norm == (1 << 11) - 1


@needs_ghdl
def test_the_recorded_latency_is_what_the_simulation_shows(case):
    _, project = case
    assert ghdl.measure_latency(project) == project.timing["latency_cycles"]


@needs_ghdl
def test_compiled_once_and_large_batches_run_in_parts_in_order(case, monkeypatch):
    _, project = case
    work = ghdl.compile(project)
    stamp = work.stat().st_mtime_ns
    assert ghdl.compile(project) == work and work.stat().st_mtime_ns == stamp
    assert [p.name for p in (project.path / "csim").iterdir()] == [work.name]
    X = np.random.default_rng(3).normal(scale=2.0, size=(700, N_FEATURES))
    whole = run_csim(project, X)
    monkeypatch.setattr(ghdl, "MIN_EVENTS_PER_PART", 100)
    monkeypatch.setattr(_system, "usable_cores", lambda: 3)  # what parts() reads
    started, popen = [], ghdl.subprocess.Popen

    def counted(cmd, *args, **kwargs):
        started.append(cmd)
        return popen(cmd, *args, **kwargs)

    monkeypatch.setattr(ghdl.subprocess, "Popen", counted)
    assert np.array_equal(run_csim(project, X), whole)
    assert sum("-r" in cmd for cmd in started) == 3  # 700 events, 100 a part at least, 3 cores
    assert np.array_equal(whole, project.firmware().predict(X))


@needs_ghdl
def test_a_simulation_past_its_time_is_a_csim_error_naming_the_project(case, monkeypatch):
    _, project = case
    ghdl.compile(project)
    monkeypatch.setattr(ghdl, "RUN_TIMEOUT_S", 0)
    with pytest.raises(CsimError, match=str(project.path)):
        ghdl.run(project, np.zeros((50, N_FEATURES)))


@needs_ghdl
def test_a_one_round_ensemble_analyses(tmp_path):
    """conifer writes a one-round ensemble's tables as ((...)), which VHDL does not read as an array."""
    project = export_vhdl(_model("xgboost", 3, 1, 2), tmp_path / "one", precision="ap_fixed<12,4>")
    X = np.random.default_rng(4).normal(size=(40, N_FEATURES))
    assert check_project(project, X).mismatches == 0
    assert ghdl.measure_latency(project) == project.timing["latency_cycles"]


# ------------------------------------------------------------------ the command line
@needs_ghdl
def test_cli_export_check_estimate_package_run(tmp_path, capsys):
    model = _model("xgboost", 3, 8, 3)
    saved = model.save(tmp_path / "bdt.json")
    X = np.random.default_rng(5).normal(scale=3.0, size=(3000, N_FEATURES))
    X[:50] *= 30
    np.save(tmp_path / "X.npy", X)
    prj = tmp_path / "prj"
    assert cli.main(["export", str(saved), "--backend", "vhdl", "--out", str(prj), "--precision", "ap_fixed<14,6>",
                     "--board", "zcu102", "--clock-ns", "4"]) == 0
    meta = json.loads((prj / "project.json").read_text())
    assert (meta["board"], meta["part"], meta["clock_period_ns"]) == ("zcu102", "xczu9eg-ffvb1156-2-e", 4.0)
    assert meta["timing"]["clock_mhz"] == 250.0
    assert "RTL pipeline" in capsys.readouterr().out
    # refused before anything is written: unequal types, an RTL option, a board and a part together
    assert cli.main(["export", str(saved), "--backend", "vhdl", "--out", str(tmp_path / "bad"),
                     "--precision", "input=ap_fixed<14,6> score=ap_fixed<16,6>"]) == 2
    assert "threshold ap_fixed<14,6>" in capsys.readouterr().err
    assert cli.main(["export", str(saved), "--backend", "vhdl", "--out", str(tmp_path / "bad"),
                     "--board", "pynq-z2", "--part", "xc7a35t"]) == 2
    assert not (tmp_path / "bad").exists()

    assert cli.main(["check", str(prj), "--input", str(tmp_path / "X.npy"), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["mismatches"] == 0 and checked["values"] == 9000
    assert checked["simulation"] == "the RTL simulation with GHDL"

    assert cli.main(["estimate", str(prj), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["totals"]["latency_cycles"] == meta["timing"]["latency_cycles"]
    assert est["totals"]["ii_cycles"] == 1 and est["target"]["wrapper"] is False
    assert est["target"]["board"] == "zcu102" and est["target"]["clock_mhz"] == 250.0

    assert cli.main(["package", str(prj), "--name", "vbdt", "--out", str(tmp_path / "pkg")]) == 0
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "pkg"), "--input", str(tmp_path / "X.npy"), "--output",
                     str(tmp_path / "y.npy"), "--backend", "software"]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), Firmware.load(prj).predict(X))
