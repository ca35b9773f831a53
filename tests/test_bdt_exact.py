"""The BDT emulator against the compiled C simulation of conifer's HLS code: every value equal.

Five projects cover the matrix (binary and multi-class; xgboost and scikit-learn; depths 1 to 6; up to
300 trees; narrow and wide types; wrapping and saturating scores; rounding modes; a norm other than 1).
Each is compiled once (module fixture) and run on thousands of inputs: random events, every
threshold itself (its literal and its cast value), one input step and half a step either side of
it, grid midpoints, the type's ends and values far beyond its range.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("conifer")
pytest.importorskip("xgboost")
pytest.importorskip("hls4ml")

from fastml_lab.hls.csim import run_csim  # noqa: E402
from fastml_lab.bdt.export import export_bdt  # noqa: E402
from fastml_lab.firmware.ops.bdt import _left_count, adder_tree_order  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.emulator import Firmware  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.needs_gxx]

N_FEATURES = 5

CASES = {
    # library, classes, depth, rounds, learning rate, precision, ensemble edits
    "xgb-binary-d6-wide-wrap": ("xgboost", 2, 6, 12, 0.3, "ap_fixed<18,8>", None),
    "xgb-4class-d3-narrow-sat": ("xgboost", 4, 3, 40, 0.5,
                                 {"input": "ap_fixed<8,3>", "threshold": "ap_fixed<8,3>",
                                  "score": "ap_fixed<8,3,AP_RND,AP_SAT>"}, None),
    "sk-binary-d1-300-narrow-wrap": ("sklearn", 2, 1, 300, 0.5,
                                     {"input": "ap_fixed<10,3>", "score": "ap_fixed<6,3>"}, None),
    "sk-3class-d5-satsym-norm": ("sklearn", 3, 5, 12, 0.4,
                                 {"input": "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
                                  "threshold": "ap_fixed<12,4,AP_RND,AP_WRAP>",
                                  "score": "ap_fixed<10,3,AP_TRN_ZERO,AP_SAT_SYM>"},
                                 {"norm": 0.625, "init_predict": [0.3, -1.1, 2.7]}),
    "xgb-binary-d2-100-sat": ("xgboost", 2, 2, 100, 0.6,
                              {"input": "ap_fixed<12,4,AP_RND,AP_SAT>", "score": "ap_fixed<10,4,AP_TRN,AP_SAT>"},
                              None),
}


def _data(n_classes: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.5, size=(3000, N_FEATURES))
    signal = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.3 * rng.normal(size=len(X))
    labels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, labels


def _model(library, n_classes, depth, rounds, lr, edits):
    X, labels = _data(n_classes)
    model = train_bdt((X, labels), library=library, rounds=rounds, depth=depth, learning_rate=lr,
                      early_stopping=None, validation_split=0.0)
    if edits is None:
        return model
    ensemble = dict(model.ensemble(), **edits)
    return ensemble


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    library, n_classes, depth, rounds, lr, precision, edits = CASES[request.param]
    model = _model(library, n_classes, depth, rounds, lr, edits)
    project = export_bdt(model, tmp_path_factory.mktemp("bdt") / request.param, precision=precision)
    firmware = project.firmware()
    X = probe_inputs(project, firmware)
    return request.param, project, firmware, X, run_csim(project, X)


def probe_inputs(project, firmware, seed: int = 0) -> np.ndarray:
    """Random events plus, feature by feature, the values where a cast or a comparison can go wrong."""
    layer = firmware._layers[0]
    in_t, lsb = firmware.input_type, firmware.input_type.lsb
    rng = np.random.default_rng(seed)
    literal = json.loads((project.hls_dir / "myproject.json").read_text())
    values = {f: set() for f in range(N_FEATURES)}
    for trees in literal["trees"]:
        for tree in trees:
            for f, t in zip(tree["feature"], tree["threshold"]):
                if f >= 0:
                    values[f].add(float(t))
    split = layer.feature >= 0
    for f, t in zip(layer.feature[split], layer.threshold[split]):
        values[int(f)].update(float(t) + d for d in (0.0, lsb, -lsb, lsb / 2, -lsb / 2))
    edges = [in_t.min, in_t.max, in_t.min - lsb, in_t.max + lsb, in_t.max + lsb / 2, 2 * in_t.max,
             -2 * in_t.max, 1e3, -1e3, 0.0, -0.0]
    midpoints = (rng.integers(in_t.raw_min, in_t.raw_max, size=200) + 0.5) * lsb
    rows = [rng.normal(scale=2.0, size=(4000, N_FEATURES))]
    for f in range(N_FEATURES):
        probe = np.array(sorted(values[f]) + edges + list(midpoints))
        base = rng.normal(scale=1.5, size=(len(probe), N_FEATURES))
        base[:, f] = probe
        rows.append(base)
    grid = (rng.integers(in_t.raw_min, in_t.raw_max, size=(2000, N_FEATURES)) + 0.5) * lsb
    rows.append(grid)
    return np.concatenate(rows)


def test_emulator_equals_the_c_simulation_on_every_value(case):
    name, _, firmware, X, csim = case
    emulated = firmware.predict(X)
    assert emulated.shape == csim.shape == (len(X), firmware.n_outputs)
    mismatches = int((emulated != csim).sum())
    assert mismatches == 0, f"{name}: {mismatches} of {csim.size} values differ from the C simulation"


def test_inputs_reach_the_cases_that_matter(case):
    """The probes are not vacuous: inputs sit on thresholds, beyond range, and narrow scores overflow."""
    name, project, firmware, X, csim = case
    layer = firmware._layers[0]
    xq = firmware.input_type.quantize(X)
    thresholds = layer.threshold[layer.feature >= 0]
    reachable = thresholds[firmware.input_type.quantize(thresholds) == thresholds]  # on the input grid
    assert reachable.size > 0.2 * thresholds.size, name
    assert np.isin(reachable, xq).all(), f"{name}: a threshold on the input grid was never met by an input"
    assert (np.abs(X) > firmware.input_type.max).any()
    score_t = layer.score_type
    if "sat" in name:  # the sums leave the saturating score type's range
        exact = layer.init_predict + layer.tree_scores(xq).sum(axis=-1)
        assert (np.abs(exact) > score_t.max).any(), f"{name}: no sum reaches the score type's ends"


def test_saturating_sums_follow_the_adder_tree_not_a_running_sum(case):
    """With a saturating score type the order of the additions matters; the C simulation uses conifer's
    balanced adder tree, which the emulator follows and a running sum (conifer's cpp backend) does not;
    the emulator's "sequential" reduction is that running sum."""
    name, _, firmware, X, csim = case
    layer = firmware._layers[0]
    if layer.score_type.overflow == "WRAP":
        pytest.skip("wrapping sums do not depend on the order")
    xq = firmware.input_type.quantize(X)
    scores = layer.tree_scores(xq)
    t = layer.score_type
    running = np.broadcast_to(layer.init_predict, scores.shape[:-1])
    for i in range(scores.shape[-1]):  # conifer's C++ backend: std::accumulate from init_predict
        running = t.quantize(running + scores[..., i])
    sequential = t.quantize(running * layer.norm[0])
    spec, arrays = layer.describe()
    as_cpp_backend = Firmware(dict(firmware.description, layers=[dict(spec, reduction="sequential")]), arrays)
    assert np.array_equal(as_cpp_backend.predict(X), sequential)
    differ = int((sequential != csim).sum())
    if name.startswith("xgb-4class") or name.startswith("xgb-binary-d2"):
        assert differ > 0, f"{name}: the probes never tell the two orders apart"
    assert np.array_equal(firmware.predict(X), csim)


def test_narrow_wrapping_scores_flip_sign_silently(case):
    name, _, firmware, X, csim = case
    if "narrow-wrap" not in name:
        pytest.skip("only the narrow wrapping case")
    layer = firmware._layers[0]
    xq = firmware.input_type.quantize(X)
    exact = layer.init_predict + layer.tree_scores(xq).sum(axis=-1)  # the sum without any cast
    flipped = np.mean(np.sign(exact) != np.sign(csim))
    assert flipped > 0.05, f"{name}: expected the ap_fixed<6,3> score to wrap; {flipped:.1%} flipped"


def test_adder_tree_order_is_conifers_reduce():
    assert adder_tree_order(1) == 0
    assert adder_tree_order(2) == [0, 1]
    assert adder_tree_order(3) == [[0, 1], 2]
    assert adder_tree_order(5) == [[[0, 1], [2, 3]], 4]
    assert adder_tree_order(6) == [[[0, 1], [2, 3]], [4, 5]]
    # pow2(floorlog2(n - 1)), as BDT_unrolled.h computes it
    for n in range(3, 300):
        assert _left_count(n) == 2 ** int(np.floor(np.log2(n - 1)))


def test_probe_casts_are_the_fixed_point_casts():
    t = FixedType.parse("ap_fixed<8,3>")
    assert t.quantize(np.array([t.max + t.lsb]))[0] == t.min  # TRN/WRAP: one step past the top wraps


def test_probes_tell_the_split_conventions_apart(case):
    """Comparing with the other convention (< for <=, or the reverse) must show up as mismatches."""
    name, _, firmware, X, csim = case
    layer = firmware._layers[0]
    kept = layer._less
    layer._less = np.less_equal if layer.splitting_convention == "<" else np.less
    try:
        wrong = int((firmware.predict(X) != csim).sum())
    finally:
        layer._less = kept
    assert wrong > 0, f"{name}: no input sits on a threshold"


def test_our_c_simulation_is_conifers_own_bridge(tmp_path):
    """The batch entry point computes what conifer's compiled pybind11 bridge computes, value for value
    (conifer finds the ap_types headers through the variable our code sets, never the user)."""
    import os

    from fastml_lab.bdt.export import conifer_environment, conifer_model

    model = _model("xgboost", 3, 3, 6, 0.5, None)
    project = export_bdt(model, tmp_path / "prj",
                         precision={"input": "ap_fixed<9,3>", "score": "ap_fixed<9,3,AP_RND,AP_SAT>"})
    X = probe_inputs(project, project.firmware())[::4]
    conifer = conifer_model(project, tmp_path / "conifer-build")
    before = os.environ.get("XILINX_AP_INCLUDE")
    with conifer_environment():
        assert os.environ["XILINX_AP_INCLUDE"].endswith(os.path.join("vivado", "ap_types"))
        conifer.compile()
    assert os.environ.get("XILINX_AP_INCLUDE") == before
    theirs = np.asarray(conifer.decision_function(X)).reshape(len(X), -1)
    ours = run_csim(project, X)
    assert int((theirs != ours).sum()) == 0
    assert np.array_equal(project.firmware().predict(X), ours)


def test_trees_split_into_units_compute_what_conifers_single_unit_computes(tmp_path):
    """The C simulation compiles conifer's trees in units of a few trees each (its text verbatim, each
    tree's call moved with it): the library equals conifer's BDT.cpp compiled whole, value for value."""
    import shutil

    from fastml_lab.bdt.csim import TOP_UNIT, UNITS_DIR, bdt_recipe
    from fastml_lab.project import Project

    model = _model("xgboost", 3, 4, 7, 0.5, None)
    split = export_bdt(model, tmp_path / "split", precision={"input": "ap_fixed<9,3>",
                                                            "score": "ap_fixed<10,4,AP_RND,AP_SAT>"})
    whole = tmp_path / "whole"
    shutil.copytree(split.path, whole)
    shutil.rmtree(whole / "conifer" / UNITS_DIR)
    Project.write_new(whole, dict(split.meta, csim=bdt_recipe()))  # conifer's BDT.cpp as one unit
    split.meta["csim"] = bdt_recipe(split.hls_dir, trees_per_unit=4)  # 21 trees: 6 units of at most 4
    split.save()
    units = sorted((split.hls_dir / UNITS_DIR).glob("trees_*.cpp"))
    assert len(units) == 6 and (split.hls_dir / UNITS_DIR / TOP_UNIT).is_file()
    params = (split.hls_dir / "firmware" / "parameters.h").read_text()
    for unit in units:  # each unit's trees are conifer's text, verbatim
        for tree in unit.read_text().split("static const BDT::Tree<")[1:]:
            assert "static const BDT::Tree<" + tree[: tree.index("};") + 2] in params
    X = probe_inputs(split, split.firmware())[::3]
    ours, theirs = run_csim(split, X), run_csim(whole, X)
    assert int((ours != theirs).sum()) == 0
    assert np.array_equal(split.firmware().predict(X), ours)


def test_a_conifer_file_of_another_form_compiles_as_one_unit(tmp_path):
    from fastml_lab.bdt.csim import UNITS_DIR, bdt_recipe, write_units

    fw = tmp_path / "firmware"
    fw.mkdir()
    (fw / "parameters.h").write_text("static const BDT::BDT<1, 2> bdt = {{ /* trees inside */ }};\n")
    (fw / "BDT.cpp").write_text('#include "parameters.h"\n')
    assert write_units(tmp_path) is None and not (tmp_path / UNITS_DIR).exists()
    recipe = bdt_recipe(tmp_path)
    assert recipe["sources"] == [] and '#include "BDT.cpp"' in recipe["batch_source"]
