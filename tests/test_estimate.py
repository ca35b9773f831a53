"""The hardware estimate: checked against every published synthesis point, its rules on hand-made
firmware descriptions, and the same figures from a project, its record, the CLI and the advisor."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fastml_lab.estimate import C_SYNTHESIS, IMPLEMENTATION, SYNTHESIS_REPORT, estimate, estimate_description
from fastml_lab.estimate.hardware import Target
from fastml_lab.estimate.published import ASSUMPTIONS, compare_points, load_points, point_firmware
from fastml_lab.exceptions import ConfigError

#: The issue's targets, on the io_parallel C-synthesis points of each flavour that the constants were
#: fitted on (the held-out and io_stream points: tests/test_estimate_published.py).
MEDIAN_RESOURCE_ERROR = 0.25
MEDIAN_LATENCY_CYCLES = 2


# ------------------------------------------------------------------------ published points
@pytest.fixture(scope="module")
def comparison():
    return compare_points()


def test_every_published_point_has_a_source_and_a_prediction(comparison):
    points = load_points()
    assert len(points) >= 15 and all(p["source"] and p["tool"] and p["part"] for p in points)
    assert {row["id"] for row in comparison} == {p["id"] for p in points}
    assert {p["flavour"] for p in points} == {"vitis", "vivado"}
    assert any(p["kind"] == IMPLEMENTATION for p in points) and len(ASSUMPTIONS) <= 5


@pytest.mark.parametrize("flavour", ["vitis", "vivado"])
def test_median_errors_meet_the_targets_on_c_synthesis_points(comparison, flavour):
    rows = [r for r in comparison if r["flavour"] == flavour and r["kind"] == C_SYNTHESIS and r["split"] == "fit"
            and r["io_type"] == "io_parallel"]
    report = []
    for quantity in ("dsp", "lut", "ff", "latency"):
        errors = np.abs([r["error"] for r in rows if r["quantity"] == quantity])
        worst = max((r for r in rows if r["quantity"] == quantity), key=lambda r: abs(r["error"]))
        report.append(f"{quantity}: median {np.median(errors):.3g}, worst {worst['error']:+.3g} ({worst['id']})")
        limit = MEDIAN_LATENCY_CYCLES if quantity == "latency" else MEDIAN_RESOURCE_ERROR
        assert len(errors) >= 5 and np.median(errors) <= limit, "; ".join(report)
    print(f"{flavour}: " + "; ".join(report))


def test_the_axi_wrapper_reproduces_the_published_loops():
    # Vivado HLS 2019.2 on the xc7z020 at 5 ns: Loop 1 (16 words) 23 cycles, Loop 2 (5 words) 13,
    # the network 55, the whole wrapper 95 = its II (published report).
    from fastml_lab.estimate.model import FLAVOURS, device_of
    from fastml_lab.estimate.wrapper import axi_stream_cost

    cost = axi_stream_cost(16, 5, 16, 55, word="float32", flavour=FLAVOURS["vivado"],
                           device=device_of("xc7z020clg400-1"), clock_ns=5.0)
    assert cost.latency == cost.ii == 95
    assert "(23 cycles, depth 9)" in cost.detail and "(13 cycles, depth 10)" in cost.detail


# ------------------------------------------------------------------------ rules
@pytest.fixture(scope="module")
def jet():
    return point_firmware("jet_float")


def _on(jet, part="xcu250-figd2104-2L-e", flavour="vitis", clock=5.0, interface="parallel", board=None, **kw):
    return estimate_description(*jet, Target(board, part, clock, flavour, interface), **kw)


def test_vivado_shares_dsps_with_the_reuse_factor_and_vitis_does_not(jet):
    vivado1, vivado4 = _on(jet, flavour="vivado"), _on(jet, flavour="vivado", reuse_factor=4)
    vitis1, vitis4 = _on(jet), _on(jet, reuse_factor=4)
    assert vivado4.resources["dsp"] < vivado1.resources["dsp"] / 3
    assert vivado4.latency_cycles > vivado1.latency_cycles and vivado4.ii_cycles == 4
    assert vitis4.resources["dsp"] == vitis1.resources["dsp"] and vitis4.ii_cycles == 4


def test_the_resource_strategy_uses_real_multipliers_and_brams_for_deep_roms(jet):
    latency = _on(jet, flavour="vivado", reuse_factor=32)
    resource = _on(jet, flavour="vivado", reuse_factor=32, strategy="Resource")
    assert resource.strategy == "Resource" and resource.resources["bram_18k"] > latency.resources["bram_18k"]
    # every product, zero or not, one multiplier per R products: 16*64/32 + 64*32/32 + 32*32/32 + 32*5/32
    dense = [c for c in resource.layers if c.op == "dense"]
    assert [c.dsp for c in dense] == [32, 64, 32, 5]
    assert resource.ii_cycles == 32 and resource.latency_cycles > 32  # a new event every R cycles


def test_a_slower_part_or_a_faster_clock_takes_more_cycles(jet):
    fast = _on(jet, flavour="vivado")
    assert _on(jet, flavour="vivado", part="xczu3eg-sbva484-1-e").latency_cycles > fast.latency_cycles
    assert _on(jet, flavour="vivado", clock=2.5).latency_cycles > fast.latency_cycles
    assert _on(jet, flavour="vivado", clock=10.0).latency_cycles <= fast.latency_cycles


def test_pruning_and_narrow_weights_cost_less(jet):
    full = _on(jet)
    pruned = _on(point_firmware("jet_pruned75"))
    qat = _on(point_firmware("jet_qat6_pruned75"))
    assert pruned.resources["lut"] < full.resources["lut"] / 2 and qat.resources["dsp"] < pruned.resources["dsp"] / 10


def test_a_bare_part_has_no_verdict_and_a_board_does(jet):
    from fastml_lab.boards import get_board

    bare = _on(jet)
    assert bare.fits is None and "no verdict" in bare.verdict() and bare.implementation is None
    z2 = get_board("pynq-z2")
    board = _on(jet, part=z2.part, flavour="vivado", clock=10.0, interface="axi_stream", board=z2)
    assert board.fits is False and "does not fit the PYNQ-Z2" in board.verdict()
    assert board.wrapper is not None and board.ii_cycles == board.latency_cycles  # events do not overlap
    assert board.compared()[1] == IMPLEMENTATION and board.implementation["lut"] < board.resources["lut"]
    record = json.loads(json.dumps(board.to_dict()))
    assert record["layers"][-1]["op"] == "wrapper" and record["totals"]["kind"] == C_SYNTHESIS


@pytest.mark.parametrize("kwargs, message", [
    ({"part": "ep4ce22f17c6"}, "Unknown FPGA part"),
    ({"board": "pynq-z2", "part": "xc7z020clg400-1"}, "not both"),
    ({"board": "pynq-z9"}, "Unknown board"),
    ({"flavour": "quartus"}, "Unknown HLS flavour"),
    ({"strategy": "Fast"}, "Unknown strategy"),
    ({"reuse_factor": 0}, "reuse_factor must be"),
])
def test_bad_targets_are_refused_with_what_is_valid(jet, kwargs, message):
    from fastml_lab.emulator import Firmware

    firmware = type("F", (), {"description": jet[0], "arrays": jet[1]})()
    assert isinstance(firmware, object) and Firmware  # the estimate takes anything with a description
    with pytest.raises(ConfigError, match=message):
        estimate(firmware, **kwargs)


# ------------------------------------------------------------------------ projects and the CLI
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from fastml_lab.hls import export

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(5, activation="softmax", name="out")])
    return export(model, tmp_path_factory.mktemp("est") / "prj", backend="pynq-z2", precision="ap_fixed<10,4>")


def test_the_export_records_the_estimate_as_its_timing(project):
    result = estimate(project)
    assert project.timing == {**result.timing(), "source": "estimate"}
    assert result.board.name == "pynq-z2" and result.wrapper is not None and result.fits


def test_a_recorded_synthesis_report_replaces_the_totals(project, tmp_path):
    import shutil

    from fastml_lab.project import Project

    copy = Project.open(shutil.copytree(project.path, tmp_path / "copy"))
    copy.record_synthesis({"latency_cycles": 77, "ii_cycles": 78, "part": "xc7z020-clg400-1", "target_clock_ns": 10.0,
                           "resources": {"LUT": 4321, "FF": 3210, "DSP": 7, "BRAM_18K": 2}})
    result = estimate(copy)
    assert result.kind == SYNTHESIS_REPORT and (result.latency_cycles, result.ii_cycles) == (77, 78)
    assert result.resources == {"dsp": 7, "lut": 4321, "ff": 3210, "bram_18k": 2}
    assert estimate(copy, board="pynq-z2").kind == SYNTHESIS_REPORT  # naming its own board changes nothing
    assert estimate(copy, reuse_factor=2).kind == C_SYNTHESIS  # a what-if is the model's again
    assert estimate(copy, board="zcu102").kind == C_SYNTHESIS


def test_cli_json_and_table(project, capsys):
    from fastml_lab.cli import main

    assert main(["estimate", str(project.path), "--board", "pynq-z2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["totals"]["latency_cycles"] == project.timing["latency_cycles"]
    assert [row["name"] for row in record["layers"]][:2] == ["fc1", "fc1_relu"] and record["fits"] is True
    assert main(["estimate", str(project.path), "--part", "xcu250-figd2104-2L-e"]) == 0
    out = capsys.readouterr().out
    assert "Vitis HLS" in out and "no verdict" in out
    assert main(["estimate", str(project.path), "--reuse", "auto"]) == 0
    out = capsys.readouterr().out
    assert "fastest that fits: Latency, reuse factor 1" in out
    assert main(["estimate", str(project.path), "--precision", "ap_fixed<8,3>"]) == 2
    assert "brings its own precision" in capsys.readouterr().err


def test_the_advisor_lists_valid_configurations_and_the_fastest_that_fits(project):
    from fastml_lab.estimate import advise, valid_reuse_factors

    advice = advise(project)
    reuses = {e.reuse_factor for e in advice.considered}
    assert reuses == set(valid_reuse_factors(16, 8)) & set(valid_reuse_factors(8, 5))
    best = advice.best
    assert best.fits and best.latency_cycles == min(e.latency_cycles for e in advice.fitting)


def test_the_estimate_of_a_project_needs_numpy_alone(project):
    code = ("import sys, json; from fastml_lab.estimate import estimate; e = estimate(sys.argv[1]); "
            "assert not {'keras', 'tensorflow', 'hls4ml', 'conifer'} & set(sys.modules), 'heavy import'; "
            "print(json.dumps(e.to_dict()))")
    out = subprocess.run([sys.executable, "-c", code, str(project.path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["totals"]["latency_cycles"] == project.timing["latency_cycles"]


def test_a_bdt_project_goes_to_conifers_model(tmp_path):
    pytest.importorskip("conifer")
    xgb = pytest.importorskip("xgboost")
    from fastml_lab.bdt.estimate import estimate_bdt
    from fastml_lab.cli import main

    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 4)).astype("float32")
    xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, (X[:, 0] > 0).astype(int)).save_model(tmp_path / "b.json")
    assert main(["export", str(tmp_path / "b.json"), "--out", str(tmp_path / "bprj")]) == 0
    result = estimate(tmp_path / "bprj", board="pynq-z2")
    conifer = estimate_bdt(tmp_path / "bprj", board="pynq-z2")
    assert result.family == "bdt" and result.latency_cycles == conifer["latency_cycles"]
    assert result.resources["lut"] == conifer["LUT"] and result.fits == conifer["fits"]
