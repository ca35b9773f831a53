"""The published synthesis points split into fit and held-out: the held-out set exists, no constant
of the cost model is set from it, and the model's error on it is reported apart from the fit error.
Also the Resource-strategy and io_stream rules those points check."""

from __future__ import annotations

import builtins
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.estimate import model
from fastml_lab.estimate.hardware import Target, estimate_description
from fastml_lab.estimate.published import (POINTS_FILE, SPLITS, compare_points, load_points, point_firmware,
                                           predict_point, split_errors)

QUANTITIES = ("latency", "dsp", "lut", "ff")


@pytest.fixture(scope="module")
def comparison():
    return compare_points()


def test_every_point_is_fit_or_held_out_and_the_held_out_set_covers_resource_and_io_stream():
    points = load_points()
    assert {p["split"] for p in points} == set(SPLITS)
    held_out = load_points(split="held-out")
    assert {p["id"] for p in held_out} == {p["id"] for p in points if p["split"] == "held-out"}
    assert not {p["id"] for p in held_out} & {p["id"] for p in load_points(split="fit")}
    # The points this work added (Resource strategy, io_stream, hls4ml's activation tests): at least a
    # third of them held out, chosen as whole models (sigmoid, leaky ReLU) and the one Resource point.
    new = [p for p in points if p["strategy"] == "Resource" or p["io_type"] == "io_stream"
           or p["model"].startswith("dense_1x64_")]
    assert len(new) >= 6 and 3 * sum(p["split"] == "held-out" for p in new) >= len(new)
    assert any(p["strategy"] == "Resource" for p in held_out) and any(p["io_type"] == "io_stream" for p in held_out)
    for name in ("dense_1x64_sigmoid", "dense_1x64_leaky_relu"):
        assert {p["split"] for p in points if p["model"] == name} == {"held-out"}
    assert all(p["source"] and p["tool"] and p["part"] for p in points)
    with pytest.raises(ValueError, match="unknown split"):
        load_points(split="test")


def test_no_constant_of_the_cost_model_is_read_from_the_published_points(tmp_path, monkeypatch):
    # The constants live in the code: no module of the package but published.py itself imports the
    # points or opens their file (there is no fitting code to feed them to) ...
    package = Path(model.__file__).parents[1]
    pattern = re.compile(r"(from\s+\S*published\s+import|import\s+\S*published\b|POINTS_FILE"
                         r"|open\([^)]*published_points)")
    readers = [path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if pattern.search(path.read_text(encoding="utf-8"))]
    assert readers == ["estimate/published.py"]
    # ... and a fit point's prediction is the same whether or not the held-out points exist.
    fit_only = tmp_path / "fit.csv"
    lines = POINTS_FILE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    fit_only.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ",held-out," not in ln]) + "\n")
    assert "split" in header and len(load_points(fit_only)) == len(load_points(split="fit"))
    full = {p["id"]: p for p in load_points()}
    # A prediction never opens the points file, so the held-out rows in it cannot reach one.
    _refuse_to_open(monkeypatch, POINTS_FILE.name)
    for point in load_points(fit_only)[::5]:
        assert predict_point(point) == predict_point(full[point["id"]])


def _refuse_to_open(monkeypatch, name: str) -> None:
    """From now on in this test, opening a file called ``name`` (open, io.open, Path.open/read_text) fails."""
    def guarded(opener):
        def open_(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and Path(os.fsdecode(file)).name == name:
                raise AssertionError(f"{file} was opened while predicting a point")
            return opener(file, *args, **kwargs)
        return open_

    monkeypatch.setattr(builtins, "open", guarded(builtins.open))
    monkeypatch.setattr(io, "open", guarded(io.open))


def test_held_out_errors_are_reported_apart_from_the_fit_errors(comparison):
    report = split_errors(comparison)
    assert set(report) == set(SPLITS)
    for split in SPLITS:
        assert set(QUANTITIES) <= set(report[split])
        for quantity, row in report[split].items():
            rows = [r for r in comparison if r["split"] == split and r["quantity"] == quantity]
            assert row["n"] == len(rows) and row["median"] == pytest.approx(np.median([abs(r["error"]) for r in rows]))
            assert abs(row["worst"]) == max(abs(r["error"]) for r in rows)
            assert row["worst_id"] in {r["id"] for r in rows}
    assert report["held-out"]["dsp"]["n"] == len(load_points(split="held-out"))
    print("\n" + "\n".join(f"{split:8s} {q:8s} n={r['n']:2d} median {r['median']:.3g} worst {r['worst']:+.3g} "
                           f"({r['worst_id']})" for split in SPLITS for q, r in report[split].items()))


# ------------------------------------------------------------------------ the rules the points check
def _estimate(model_name, part="xcvu13p-flga2577-2-e", flavour="vivado", io_type="io_parallel", **kw):
    description, arrays = point_firmware(model_name)
    description["io_type"] = io_type
    return estimate_description(description, arrays, Target(None, part, 5.0, flavour, "parallel"), **kw)


def test_the_resource_kernel_puts_products_on_dsps_by_the_flavours_rule():
    # The QAT model: fc1 multiplies 16-bit inputs by 6-bit weights (DSPs, as a constant weight of 6
    # bits would be on Vivado HLS); layers 2-4 multiply 6-bit activations (LUTs).
    est = _estimate("jet_qat6_pruned75", part="xc7z020clg400-1", reuse_factor=64, strategy="Resource")
    dense = [c for c in est.layers if c.op == "dense"]
    assert [c.dsp for c in dense] == [16, 0, 0, 0]
    assert ["rf_gt_nin_rem0", "rf_leq_nin", "rf_gt_nin_rem0", "rf_gt_nin_rem0"] == [
        c.detail.split("(")[1].split(")")[0] for c in dense]
    # Zero weights stay in the ROM: the pruned model has as many multipliers as the dense one.
    full = _estimate("jet_float", part="xc7z020clg400-1", reuse_factor=64, strategy="Resource")
    assert [c.detail.split(":")[1].split("(")[0] for c in dense] == [
        c.detail.split(":")[1].split("(")[0] for c in full.layers if c.op == "dense"]


def test_io_stream_adds_a_fifo_per_layer_and_a_cycle_per_process():
    parallel = _estimate("dense_1x64_relu")
    stream = _estimate("dense_1x64_relu", io_type="io_stream")
    assert parallel.latency_cycles == 0 and stream.latency_cycles == 2  # two DATAFLOW processes
    fifo = model.STREAMS["vivado"].lut_per_bit * 64 * 16
    assert stream.resources["lut"] == parallel.resources["lut"] + round(fifo) and stream.io_type == "io_stream"
    assert stream.ii_cycles == 1  # Vivado HLS overlaps the processes
    vitis = _estimate("dense_1x64_elu", flavour="vitis", io_type="io_stream")
    assert vitis.ii_cycles == vitis.latency_cycles == 4  # Vitis HLS does not
