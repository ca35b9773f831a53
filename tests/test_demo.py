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

from fastml_lab.demo import (STEPS, DemoSettings, comparison, comparison_table, run_demo, step_setup_bdt,
                             steps_for)
from fastml_lab.exceptions import ConfigError, DataError

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


def test_models_choose_the_steps():
    both = [name for name, _ in steps_for("both")]
    assert both == [name for name, _ in STEPS] and both[-3:] == ["bdt_train", "bdt_hls", "compare"]
    assert [name for name, _ in steps_for("nn")] == both[:9] + ["compare"] and both[7:9] == ["overlay", "rtl"]
    bdt = steps_for("bdt")
    assert [name for name, _ in bdt] == ["setup", "data", "bdt_train", "bdt_hls", "compare"]
    assert bdt[0][1] is step_setup_bdt  # the trees alone import no TensorFlow
    assert [name for name, _ in steps_for("cnn")] == ["setup", "cnn_data", "cnn_train", "cnn_hls"]
    with pytest.raises(ConfigError, match="nn, bdt, cnn, both"):
        run_demo(model="trees")


def test_quick_settings_are_smaller_than_full():
    quick, full = DemoSettings.for_mode(True), DemoSettings.for_mode(False)
    assert quick.n_events and full.n_events is None and quick.epochs < full.epochs
    assert quick.bdt_rounds < full.bdt_rounds and quick.bdt_depth <= full.bdt_depth


def test_the_side_by_side_rows_come_from_the_report():
    report = {"float": {"accuracy": 0.75}, "quantize": {"fit": {"lut": 9000, "dsp": 30}},
              "hls": {"fixed_accuracy": 0.74, "mismatches_emulator_vs_csim": 0,
                      "timing": {"latency_cycles": 12, "ii_cycles": 1, "clock_mhz": 100.0, "source": "estimate"}},
              "bdt": {"accuracy": 0.73, "fixed_accuracy": 0.72, "mismatches_emulator_vs_csim": 0,
                      "estimate": {"LUT": 3000, "FF": 1000, "DSP": 0},
                      "timing": {"latency_cycles": 5, "ii_cycles": 1, "clock_mhz": 200.0, "source": "estimate"}}}
    rows = comparison(report)
    assert rows["nn"]["latency_ns"] == 120.0 and rows["nn"]["FF"] is None and rows["nn"]["LUT"] == 9000
    assert rows["bdt"]["latency_ns"] == 25.0 and rows["bdt"]["DSP"] == 0 and rows["bdt"]["FF"] == 1000
    table = comparison_table(rows)
    assert "NN (QAT)" in table and "BDT" in table and "25 ns" in table and "9,000" in table
    assert set(comparison({"bdt": report["bdt"]})) == {"bdt"}


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


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One ``fastml-lab demo --quick`` (both models) shared by the end-to-end tests."""
    if not hasattr(pytest.importorskip("fastml_lab.data"), "load_jets"):
        pytest.skip("fastml_lab.data.load_jets is not available yet")
    out = tmp_path_factory.mktemp("demo") / "demo"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", "FASTML_LAB_OFFLINE": "1"}
    start = time.perf_counter()
    result = subprocess.run([str(CLI), "demo", "--quick", "--data", "synthetic", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=420)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out, json.loads((out / "report.json").read_text()), seconds


@pytest.mark.slow
def test_quick_demo_end_to_end(quick_demo):
    result, out, report, seconds = quick_demo
    nn_steps = ("setup", "data", "train", "evaluate", "plots", "quantize", "hls", "overlay")
    assert sum(report["timings_s"][name] for name in nn_steps) < 180
    assert report["timings_s"]["bdt_train"] + report["timings_s"]["bdt_hls"] < 120
    assert seconds < 300

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
    # The headline: the design on FPGAs (estimated, with the board's verdict) beside CPU batches (measured).
    headline = hls["headline"]
    fpga, cpu = headline["fpga"], headline["cpu"]
    assert [row["where"] for row in cpu] == ["CPU: Keras predict_on_batch", "CPU: the emulator (numpy)",
                                             "CPU: the firmware's C++, g++ -O3"]
    assert all(row["kind"] == "measurement" and row["what"].startswith("a batch of 10,000 events") for row in cpu)
    assert all(row["ns_per_event"] == pytest.approx(row["latency_ns"] / 10_000, abs=0.1) for row in cpu)
    assert all(row["kind"] != "measurement" and "reuse" in row["what"] for row in fpga)
    assert fpga[0]["fits"] is True and "fits the PYNQ-Z2" in fpga[0]["verdict"]
    assert fpga[1]["fits"] is None and "no verdict" in fpga[1]["verdict"]
    assert all(10 <= row["latency_ns"] <= 10_000 and row["events_per_s"] > 0 for row in fpga)
    assert fpga[1]["latency_ns"] < fpga[0]["latency_ns"]  # 200 MHz and a faster part beat the Z2
    assert max(row["latency_ns"] for row in fpga) < min(row["latency_ns"] for row in cpu)  # before a batch ends
    assert "FPGA and CPU" in result.stdout and "measurement: a batch of 10,000 events" in result.stdout
    assert (out / "qat_model.keras").stat().st_size > 1000
    assert "QAT accuracy" in result.stdout and "fits the PYNQ-Z2" in result.stdout


@pytest.mark.slow
def test_quick_demo_trains_exports_and_checks_the_bdt(quick_demo):
    result, out, report, _ = quick_demo
    bdt = report["bdt"]
    assert bdt["model"]["library"] == "xgboost" and (out / "bdt.json").is_file()
    assert bdt["accuracy"] >= report["float"]["accuracy"] - 0.05  # the trees learn the jets too
    assert bdt["profile"]["total_overflows"] == 0 or bdt["precision"] != bdt["profile"]["precision"]
    assert {k: bdt["precision"][k] for k in ("input", "threshold", "score")} == bdt["profile"]["suggested_precision"]
    assert bdt["fixed_accuracy"] >= bdt["accuracy"] - 0.01
    assert bdt["mismatches_emulator_vs_csim"] == 0
    assert bdt["csim_events"] == min(report["settings"]["csim_events"], report["data"]["n_test"])
    estimate = bdt["estimate"]
    assert estimate["kind"] == "estimate" and estimate["DSP"] == 0 and estimate["LUT"] > 0 and estimate["FF"] > 0
    assert bdt["timing"] == {"latency_cycles": estimate["latency_cycles"], "ii_cycles": estimate["ii_cycles"],
                             "clock_mhz": estimate["clock_mhz"], "source": "estimate"}
    assert "BDT fixed-point accuracy" in result.stdout


@pytest.mark.slow
def test_quick_demo_puts_the_models_side_by_side(quick_demo):
    result, _, report, _ = quick_demo
    rows = report["comparison"]
    assert set(rows) == {"nn", "bdt"}
    assert rows["nn"]["fixed_accuracy"] == report["hls"]["fixed_accuracy"]
    assert rows["bdt"]["fixed_accuracy"] == report["bdt"]["fixed_accuracy"]
    assert rows["nn"]["mismatches"] == rows["bdt"]["mismatches"] == 0
    assert rows["bdt"]["LUT"] == report["bdt"]["estimate"]["LUT"] and rows["nn"]["DSP"] == report["quantize"]["fit"]["dsp"]
    assert rows["bdt"]["latency_ns"] == report["bdt"]["estimate"]["latency_ns"]
    assert "side by side" in result.stdout and "latency (estimate)" in result.stdout


@pytest.mark.slow
def test_quick_demo_sets_da4ml_rtl_beside_the_hls_export(quick_demo):
    """The quantized network's Verilog: da4ml's estimate beside the HLS export's, in the report and
    the summary; --quick leaves Verilator and yosys out (minutes on this network) and says so."""
    result, out, report, _ = quick_demo
    rtl = report["rtl"]
    assert report["timings_s"]["rtl"] < 30  # the export and the estimate only
    assert (out / "rtl_project" / "project.json").is_file() and rtl["stages"] == rtl["timing"]["latency_cycles"]
    assert rtl["check"] is None and rtl["mapping"] is None
    assert any(note.startswith("--quick: Verilator's check and yosys' mapping") for note in rtl["notes"])
    side = rtl["side_by_side"]
    assert list(side) == ["hls4ml HLS (estimate)", "da4ml RTL (estimate)"]
    hls, ours = side["hls4ml HLS (estimate)"], side["da4ml RTL (estimate)"]
    assert hls["kind"] == "C-synthesis estimate" and ours["kind"] == "da4ml estimate"
    assert hls["latency_cycles"] == report["hls"]["timing"]["latency_cycles"]
    assert hls["accuracy"] == report["hls"]["fixed_accuracy"]
    assert ours["DSP"] == 0 and ours["LUT"] > 0 and ours["latency_cycles"] == rtl["stages"]
    assert abs(ours["accuracy"] - hls["accuracy"]) < 0.01 and rtl["same_class_as_hls"] > 0.99
    assert "hls4ml HLS (estimate) vs da4ml RTL (estimate)" in result.stdout and "RTL note" in result.stdout


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


@pytest.mark.slow
@pytest.mark.needs_gxx
def test_quick_cnn_demo_exports_both_io_styles(tmp_path):
    """``demo --quick --model cnn``: the CNN on jet images, io_stream and io_parallel, each checked and estimated."""
    out = tmp_path / "cnn"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", "FASTML_LAB_OFFLINE": "1"}
    start = time.perf_counter()
    result = subprocess.run([str(CLI), "demo", "--quick", "--model", "cnn", "--data", "synthetic", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["image_shape"] == [16, 16, 1]
    assert report["cnn"]["accuracy"] > 0.4
    for io in ("stream", "parallel"):
        row = report["cnn"]["exports"][io]
        assert row["io_type"] == f"io_{io}" and row["mismatches_emulator_vs_csim"] == 0 and row["csim_events"] > 0
        assert row["estimate"]["latency_cycles"] > 0 and row["fits"] in (True, False)
        assert f"io_{io} estimate" in result.stdout
    assert seconds < 120, f"the quick CNN demo took {seconds:.0f} s"
