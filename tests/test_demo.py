"""The demo: its step machinery (fast, with stand-in steps) and ``fastml-lab demo --quick`` end to end."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastml_lab.demo import STEPS, DemoSettings, run_demo
from fastml_lab.exceptions import DataError

CLI = Path(sys.executable).with_name("fastml-lab")
TINY = DemoSettings(n_events=100, epochs=1, patience=1, learning_rate=1e-3)


def step_first(run):
    """Do the first thing."""
    run.report["first"] = {"value": 1.5}
    run.add_summary("first value", "1.5")


def step_broken(run):
    """Fail on purpose."""
    raise DataError("bad input file")


def test_import_does_not_load_tensorflow():
    code = "import sys, fastml_lab.demo; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_steps_have_unique_names_and_a_progress_line():
    names = [name for name, _ in STEPS]
    assert names[:7] == ["setup", "data", "train", "evaluate", "plots", "quantize", "hls"]
    assert len(set(names)) == len(names)
    assert all(step.__doc__ and step.__doc__.strip() for _, step in STEPS)


def test_quick_settings_are_smaller_than_full():
    quick, full = DemoSettings.for_mode(True), DemoSettings.for_mode(False)
    assert quick.n_events and full.n_events is None and quick.epochs < full.epochs


def test_run_demo_times_steps_writes_the_report_and_prints_a_summary(tmp_path, capsys):
    lines = []
    report = run_demo(out=tmp_path, data="synthetic", steps=[("first", step_first)], settings=TINY,
                      log=lines.append)
    assert lines == ["[1/1] Do the first thing"]
    assert report["first"] == {"value": 1.5}
    assert set(report["timings_s"]) == {"first", "total"}
    assert report["settings"]["data"] == "synthetic" and report["settings"]["epochs"] == 1
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    out = capsys.readouterr().out
    assert "first value  1.5" in out and "time" in out and str(tmp_path) in out


def test_a_failing_step_leaves_the_report_of_the_steps_before(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(DataError, match="bad input file"):
        run_demo(out=tmp_path, steps=[("first", step_first), ("broken", step_broken)], settings=TINY,
                 log=logging.getLogger("demo-test"))
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["first"] == {"value": 1.5} and set(saved["timings_s"]) == {"first", "broken"}
    assert "[2/2] Fail on purpose" in caplog.text


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    if not hasattr(pytest.importorskip("fastml_lab.data"), "load_jets"):
        pytest.skip("fastml_lab.data.load_jets is not available yet")
    out = tmp_path / "demo"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", "FASTML_LAB_OFFLINE": "1"}
    start = time.perf_counter()
    result = subprocess.run([str(CLI), "demo", "--quick", "--data", "synthetic", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert seconds < 180

    report = json.loads((out / "report.json").read_text())
    assert report["data"]["source"].startswith("synthetic") and report["data"]["notice"]
    assert report["data"]["n_train"] + report["data"]["n_test"] == report["settings"]["n_events"]
    assert report["data"]["n_features"] == 16
    assert 0.65 <= report["float"]["accuracy"] <= 0.90
    assert set(report["float"]["auc"]) == {"g", "q", "t", "w", "z"}
    assert all(0.5 < auc <= 1.0 for auc in report["float"]["auc"].values())
    counts = report["float"]["confusion"]["counts"]
    assert sum(map(sum, counts)) == report["data"]["n_test"]
    assert {"setup", "data", "train", "evaluate", "plots", "total"} <= set(report["timings_s"])
    assert set(report["versions"]) >= {"tensorflow", "keras", "fastml_lab"}
    for name in ("model.keras", "roc.png", "training.png", "confusion.png"):
        assert (out / name).stat().st_size > 1000, name
    assert "float accuracy" in result.stdout and f"{report['float']['accuracy']:.4f}" in result.stdout

    # Quantization-aware, pruned, exported with the types of its quantizers: it keeps the accuracy
    # (within 1.5 points), fits the PYNQ-Z2 by the estimate, and Keras, emulator and C simulation agree.
    quantized = report["quantize"]
    assert quantized["mode"] == "uniform" and quantized["prune"] == report["settings"]["prune"] == 0.75
    assert all(bits["weights"] <= 8 for bits in quantized["bits"].values())
    assert all(value >= 0.75 for value in quantized["sparsity"].values())
    assert quantized["accuracy"] >= report["float"]["accuracy"] - 0.015
    assert quantized["fit"]["kind"] == "estimate" and quantized["fit"]["fits"]
    assert quantized["fit"]["dsp"] <= 220 and quantized["fit"]["lut"] <= 53_200
    assert not quantized["float_fit"]["fits"]
    hls = report["hls"]
    assert hls["model"] == "quantized" and hls["precision"] == "from the quantizers"
    assert hls["mismatches_keras_vs_emulator"] == 0 and hls["mismatches_emulator_vs_csim"] == 0
    assert hls["fixed_accuracy"] == pytest.approx(quantized["accuracy"], abs=1e-9)
    assert report["overlay"]["identical_to_emulator"]
    assert (out / "qat_model.keras").stat().st_size > 1000
    assert "QAT accuracy" in result.stdout and "fits the PYNQ-Z2" in result.stdout


@pytest.mark.parametrize("data, offline", [("synthetic", False), ("auto", True)])
def test_the_data_notice_is_said_once(data, offline, tmp_path, capsys, caplog, monkeypatch):
    """The loader logs (and for a fallback warns) the notice; the demo's summary states it: once in all."""
    import logging
    import warnings

    from fastml_lab.demo import step_data

    if offline:
        monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
        monkeypatch.setenv("FASTML_LAB_CACHE", str(tmp_path / "empty_cache"))
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_demo(out=tmp_path / "out", data=data, steps=[("data", step_data)], settings=TINY, log=print)
    notice = report["data"]["notice"]
    said = capsys.readouterr()
    told = said.out + said.err + caplog.text + "".join(str(w.message) for w in caught)
    assert notice.startswith("Using synthetic jets") and ("because" in notice) is offline
    assert told.count(notice) == 1
