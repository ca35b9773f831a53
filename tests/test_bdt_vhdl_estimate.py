"""The structure estimate of conifer's VHDL BDTs (:mod:`fastml_lab.bdt.vhdl_estimate`).

A two-tree ensemble small enough to count by hand checks every feature the estimate prices; an
exported project checks that the padding follows conifer's (its tables in ``Arrays<k>.vhd``) and
that the project's estimate carries the new kind, with the exact pipeline latency.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastml_lab.bdt import vhdl_estimate as ve
from fastml_lab.bdt.vhdl_estimate import VHDL_STRUCTURE_ESTIMATE, padded_tree, vhdl_bdt_features
from fastml_lab.exceptions import UnsupportedError


def _tiny(init_predict: int = 4, norm: int = 16):
    """ap_fixed<8,4> (stored integers), xgboost's ``<``, padded to depth 2:

    tree A (a stump):  x0 < 10 ? 3 : -2
    tree B (depth 2):  x0 < 10 ? (x1 < -4 ? 1 : 0) : (x0 < 20 ? 5 : -1)
    """
    t8 = {"width": 8, "integer": 4, "signed": True, "rounding": "TRN", "overflow": "WRAP"}
    description = {"layers": [{"name": "bdt", "op": "bdt", "reduction": "vhdl", "data_type": t8,
                               "result_type": t8, "max_depth": 2, "splitting_convention": "<"}]}
    leaf = -2
    feature = [[[0, leaf, leaf, leaf, leaf, leaf, leaf], [0, 1, 0, leaf, leaf, leaf, leaf]]]
    left = [[[1, -1, -1, -1, -1, -1, -1], [1, 3, 5, -1, -1, -1, -1]]]
    right = [[[2, -1, -1, -1, -1, -1, -1], [2, 4, 6, -1, -1, -1, -1]]]
    threshold = [[[10, 0, 0, 0, 0, 0, 0], [10, -4, 20, 0, 0, 0, 0]]]
    value = [[[0, 3, -2, 3, 3, -2, -2], [0, 0, 0, 1, 0, 5, -1]]]
    arrays = {f"bdt/{k}": np.array(v) for k, v in (
        ("feature", feature), ("children_left", left), ("children_right", right), ("threshold", threshold),
        ("value", value), ("init_predict", [init_predict]), ("norm", [norm]))}
    return description, arrays


def test_padded_tree_follows_conifers_padding():
    # a stump padded to depth 2: conifer appends 3, 4 under leaf 1 and 5, 6 under leaf 2
    assert padded_tree([1, -1, -1], [2, -1, -1], 2) == (
        [1, 3, 5, -1, -1, -1, -1], [2, 4, 6, -1, -1, -1, -1], [0, 1, 2, 1, 1, 2, 2], [3, 4, 5, 6])
    # leaf 2 is shallow: its padding (5, 6) comes after the deep leaves 3, 4
    _, _, origin, leaves = padded_tree([1, 3, -1, -1, -1], [2, 4, -1, -1, -1], 2)
    assert leaves == [3, 4, 5, 6] and [origin[n] for n in leaves] == [3, 4, 2, 2]
    # a leaf two levels short is padded twice: first 5, 6 (and 7..10 under 3, 4), then 11..14 under 5, 6
    left, right, origin, leaves = padded_tree([1, -1, 3, -1, -1], [2, -1, 4, -1, -1], 3)
    assert (left[1], right[1], left[5], right[6]) == (5, 6, 11, 14)
    assert leaves == list(range(7, 15)) and [origin[n] for n in leaves] == [3, 3, 4, 4, 1, 1, 1, 1]


def test_features_of_a_tiny_ensemble_counted_by_hand():
    f = vhdl_bdt_features(*_tiny())
    assert (f["W"], f["depth"], f["n_scores"], f["n_rounds"], f["n_trees"]) == (8, 2, 1, 2, 2)
    assert (f["internal_nodes"], f["leaves"], f["padded_nodes"]) == (4, 6, 4)
    # x0 < 10 is one comparator for both roots: three distinct comparisons
    assert f["comparisons"] == 3
    # 8 bits are two 6-bit chunks: LUTs only, no carry chain. x0 < 10 reads 7 bits (10 = 0b1010:
    # one trailing zero): 2 LUTs; x1 < -4 and x0 < 20 read 6 bits: one LUT each
    assert f["compare_logic_luts"] == f["compare_luts"] == 4
    assert f["compare_carry_luts"] == f["compare_carry4"] == 0
    # pipelines: the roots' comparison read at stage 1 (2 registers), the others at stage 2 (3: one SRL)
    assert f["compare_ff"] == 2 and f["srl"] == 2
    # activations: the root's two children (shared by both trees), B's four leaves and the four of
    # A's padding (its "true" comparison is a register that starts false: nothing folds); LUTs: the
    # right child's inverter and 8 ANDs
    assert f["activations"] == f["activation_ff"] == 2 + 4 + 4
    assert f["activation_luts"] == 1 + 8
    # scores in the multiplexers' order: A (3, 3, -2, -2): bits 0, 1 and the sign's six;
    # B (1, 0, 5, -1): bits 0, 2 and 1 = 3..7; every bit reads 4 leaves (1 LUT) but A's bit 0 (2)
    assert f["score_ff"] == 3 + 3
    assert f["mux_luts"] == 3 + 3 and f["mux_inputs"] == (1 + 3 + 3) + (3 + 3 + 3)
    # adder tree over (A, B, init_predict = 4): A + B, then + 4 (the pad's 0 + 4 folds to a constant)
    assert f["adders"] == 2 and f["adder_ff"] == 8 + 8
    # A + B: 4 distinct pairs of bits; its carry chain runs to one bit above B's sign extension
    # (bits 0..4: 2 CARRY4); (A + B) + 4: 8 bits, 2 CARRY4
    assert f["adder_luts"] == 4 + 8 and f["adder_carry4"] == 2 + 2 and f["carry4"] == 4
    # the normalisation 1.0 (stored 16 = 2**4): a register of the shifted product, no multiplier
    assert f["output_ff"] == 8 and f["dsp"] == 0
    # valid: the adder tree's 2 stages, the trees' delay line, the normalisation's; the padding's "true", 2 stages
    assert f["control_ff"] == 2 + 1 + 1 + 2


def test_wide_comparisons_share_chunks_on_a_carry_chain():
    """16 bits: three chunks (bits 15..10, 9..4, 3..0) joined by a carry chain; two bounds of one
    feature with the same upper 12 bits share those two chunks' LUTs."""
    description, arrays = _tiny()
    t16 = {**description["layers"][0]["data_type"], "width": 16}
    description["layers"][0].update(data_type=t16, result_type=t16, max_depth=1)
    stump = {"feature": [0, -2, -2], "children_left": [1, -1, -1], "children_right": [2, -1, -1]}
    for key, row in stump.items():
        arrays[f"bdt/{key}"] = np.array([[row, row]])
    arrays["bdt/threshold"] = np.array([[[0x0123, 0, 0], [0x0127, 0, 0]]])
    arrays["bdt/value"] = np.array([[[0, 5, -3], [0, 2, 7]]])
    f = vhdl_bdt_features(description, arrays)
    assert f["comparisons"] == 2 and f["compare_carry4"] == 2
    assert f["compare_carry_luts"] == f["compare_luts"] == 2 + 2 + 2 * 2 and f["compare_logic_luts"] == 0


def test_what_nothing_reads_is_not_counted():
    description, arrays = _tiny(init_predict=0, norm=1)
    arrays["bdt/value"] = arrays["bdt/value"].copy()
    arrays["bdt/value"][0, 1] = 0  # tree B always scores 0: its activations and comparisons go
    f = vhdl_bdt_features(description, arrays)
    assert f["constant_trees"] == 1 and f["comparisons"] == 1 and f["activations"] == 2 + 4
    # (A + 0) + (0 + 0): no adder; A's three distinct bits pass two more registers (the
    # normalisation's stored integer is 1: none after them): three in a row, one SRL per bit
    assert f["adders"] == 0 and f["adder_luts"] == 0 and f["adder_ff"] == 0 and f["output_ff"] == 0
    assert f["score_ff"] == 0 and f["srl"] == 3
    # with a normalisation (a shift), a fourth register: still one SRL per bit
    arrays["bdt/norm"] = np.array([16])
    f = vhdl_bdt_features(description, arrays)
    assert f["score_ff"] == f["adder_ff"] == f["output_ff"] == 0 and f["srl"] == 3
    # a normalisation other than a power of two is a multiplier
    assert vhdl_bdt_features(*_tiny(norm=15))["dsp"] == 1


def test_resources_price_the_features():
    found = ve.vhdl_bdt_resources(*_tiny())
    f = found["features"]
    assert f["register_ff"] == sum(f[k] for k in ve.REGISTERS)
    lut = f["srl"] + f["activation_luts"] + f["adder_luts"] + f["control_luts"] + sum(
        ve.LUT_COEF[k] * f[k] for k in ("compare_logic_luts", "compare_carry_luts", "mux_luts"))
    assert found["LUT"] == round(lut)
    assert found["FF"] == round(ve.FF_COEF["register_ff"] * f["register_ff"])
    assert found["CARRY4"] == round(ve.CARRY4_COEF["carry4"] * f["carry4"])
    assert found["DSP"] == found["BRAM_18K"] == 0
    # every coefficient prices something physical: positive, near one LUT (FF, CARRY4) per one counted
    for coef in (*ve.LUT_COEF.values(), *ve.FF_COEF.values(), *ve.CARRY4_COEF.values()):
        assert 0.7 <= coef <= 1.5
    # other coefficients, as the fit script tries them
    again = ve.vhdl_bdt_resources(*_tiny(), coefficients={"LUT": {"mux_luts": 0.0}, "FF": {"register_ff": 2.0}})
    assert again["LUT"] == round(lut - ve.LUT_COEF["mux_luts"] * f["mux_luts"])
    assert again["FF"] == 2 * f["register_ff"]


def test_only_a_vhdl_ensemble_is_priced():
    description, arrays = _tiny()
    description["layers"][0]["reduction"] = "balanced"
    with pytest.raises(UnsupportedError, match="reduction 'vhdl'"):
        vhdl_bdt_features(description, arrays)


# ------------------------------------------------------------------ an exported project
@pytest.fixture(scope="module")
def vhdl_project(tmp_path_factory):
    pytest.importorskip("xgboost")
    pytest.importorskip("conifer")
    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.bdt.vhdl import export_vhdl

    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 4))
    y = np.digitize(X[:, 0] + X[:, 1] * X[:, 2], [-0.5, 0.5])
    model = train_bdt((X, y), library="xgboost", rounds=6, depth=3, early_stopping=None, validation_split=0.0)
    return export_vhdl(model, tmp_path_factory.mktemp("vbdt") / "prj", precision="ap_fixed<12,4>")


def test_padding_matches_the_vhdl_tables(vhdl_project):
    """Per tree, :func:`padded_tree` of the emulator's tables gives conifer's padded children, its
    ``iLeaf`` order and the scores at those leaves (its tables read back from Arrays<k>.vhd)."""
    from fastml_lab.bdt.vhdl import _class_tables, vhdl_constants

    hls_dir = vhdl_project.hls_dir
    constants = vhdl_constants(hls_dir)
    firmware = vhdl_project.firmware()
    left, right = firmware.arrays["bdt/children_left"], firmware.arrays["bdt/children_right"]
    value = firmware.arrays["bdt/value"]
    depth = int(firmware.description["layers"][0]["max_depth"])
    assert depth == constants["maxDepth"]
    checked = 0
    for k in range(constants["nClasses"]):
        tables = _class_tables(hls_dir, k, constants)
        for t in range(constants["nTrees"]):
            kids_left, kids_right, origin, leaves = padded_tree(left[k, t], right[k, t], depth)
            assert kids_left == tables["children_left"][t].tolist()
            assert kids_right == tables["children_right"][t].tolist()
            assert leaves == tables["iLeaf"][t].tolist()
            assert [int(value[k, t, origin[n]]) for n in leaves] == [int(tables["value_int"][t][n]) for n in leaves]
            checked += 1
    assert checked == constants["nClasses"] * constants["nTrees"] > 0


def test_a_vhdl_projects_estimate_is_the_structure_estimate(vhdl_project, capsys):
    from fastml_lab import cli
    from fastml_lab.estimate import estimate

    result = estimate(vhdl_project)
    assert result.kind == VHDL_STRUCTURE_ESTIMATE == "conifer VHDL structure estimate"
    assert result.latency_cycles == vhdl_project.timing["latency_cycles"] and result.ii_cycles == 1
    assert result.latency_kind == "RTL pipeline"
    found = ve.vhdl_bdt_resources(vhdl_project.firmware().description, vhdl_project.firmware().arrays)
    assert result.resources == {"dsp": 0, "lut": found["LUT"], "ff": found["FF"], "bram_18k": 0}
    assert result.resources["lut"] > 0 and result.resources["ff"] > 0
    assert "CARRY4" in result.layers[0].detail
    assert cli.main(["estimate", str(vhdl_project.path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == shown["totals"]["kind"] == VHDL_STRUCTURE_ESTIMATE
    assert shown["totals"]["latency_kind"] == "RTL pipeline"
    assert shown["totals"]["lut"] == found["LUT"] and shown["totals"]["ff"] == found["FF"]


def test_an_hls_bdt_project_keeps_conifers_model(tmp_path):
    pytest.importorskip("xgboost")
    pytest.importorskip("conifer")
    from fastml_lab.bdt.export import export_bdt
    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.estimate import estimate

    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 4))
    model = train_bdt((X, (X[:, 0] > 0).astype(int)), library="xgboost", rounds=3, depth=2, early_stopping=None,
                      validation_split=0.0)
    result = estimate(export_bdt(model, tmp_path / "hls"))
    assert result.kind != VHDL_STRUCTURE_ESTIMATE and result.own_model == "conifer's xilinxhls model"
