"""The measured errors the plots' error bars read (fastml_lab.estimate.errors), checked against the
measurement they quote, and the error bars and fit detail of a sweep's report (fast; no TensorFlow)."""

from __future__ import annotations

import pytest

from fastml_lab.estimate.errors import MEASURED_ERRORS, error_bounds, measured_error
from fastml_lab.estimate.published import split_errors


def test_the_networks_errors_are_the_held_out_medians_of_the_published_points():
    held_out = split_errors()["held-out"]
    for (family, quantity), error in MEASURED_ERRORS.items():
        if family != "nn":
            continue
        assert error.n == held_out[quantity]["n"], quantity
        assert error.median == pytest.approx(held_out[quantity]["median"], abs=0.005), quantity


def test_error_bounds_are_a_factor_either_way_or_cycles():
    lut = measured_error("nn", "lut")
    low, high = error_bounds(1000.0, lut)
    assert low == pytest.approx(1000 / 1.48) and high == pytest.approx(1480)
    assert error_bounds(50.0, measured_error("bdt", "ff")) == (50.0, 50.0)  # none measured: no bar
    assert measured_error("nn", "latency_ns") is measured_error("nn", "latency")
    cycles = measured_error("nn", "latency")
    assert error_bounds(100.0, type(cycles)(**{**cycles.__dict__, "median": 2.0}), cycle_ns=10.0) == (80.0, 120.0)


def test_the_front_plot_draws_the_bars_and_says_what_they_are(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from fastml_lab.sweep.results import _verdict, mark_fronts, plot_fronts

    rows = [{"id": "a", "kind": "nn", "status": "ok", "fixed_accuracy": 0.70, "lut": 20_000, "latency_ns": 500,
             "clock_mhz": 100, "fits": True, "fit_detail": "LUT 11,400/53,200 (21%) [after implementation]"},
            {"id": "b", "kind": "bdt", "status": "ok", "fixed_accuracy": 0.71, "lut": 5_000, "latency_ns": 300,
             "clock_mhz": 100, "fits": True}]
    fig = plot_fronts(mark_fronts(rows), "pynq-z2", path=tmp_path / "front.png")
    lut_legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("NN error bar ×/÷ 1.48") for t in lut_legend)
    assert any(t.startswith("BDT error bar ×/÷ 1.67") for t in lut_legend)
    latency_legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "BDT: no bar (no measured error)" in latency_legend
    assert _verdict(rows[0]) == "fits: LUT 11,400/53,200 (21%) [after implementation]"
    assert _verdict(rows[1]) == "fits"
    assert (tmp_path / "front.png").is_file()


def test_the_fit_detail_says_what_the_verdict_compared():
    from fastml_lab.boards import get_board
    from fastml_lab.estimate.hardware import Estimate

    est = Estimate(source="x", part="xc7z020clg400-1", clock_mhz=100.0, flavour="vivado", strategy="latency",
                   reuse_factor=1, board=get_board("pynq-z2"), own_model="conifer's xilinxhls model",
                   resources={"dsp": 0, "lut": 26_600, "ff": 1_000, "bram_18k": 0})
    detail = est.fit_detail()
    assert detail.startswith("DSP 0/220 (0%), LUT 26,600/53,200 (50%)")
    assert detail.endswith("[C-synthesis estimate]")
    assert Estimate(source="x", part="xcu250", clock_mhz=200.0, flavour="vitis", strategy="latency",
                    reuse_factor=1, resources={}).fit_detail() is None
