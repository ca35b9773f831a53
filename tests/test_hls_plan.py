"""Precision plans: construction, lookup, JSON round trip, data-driven ranges, exact accumulators."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError
from fastml_lab.fixed import MAX_EXACT_WIDTH, FixedType
from fastml_lab.hls.plan import EXACT, PrecisionPlan, as_plan, exact_accumulator


# ------------------------------------------------------------------------------------ construction
def test_uniform_plan_uses_one_type_everywhere():
    plan = PrecisionPlan.uniform("ap_fixed<12,4,AP_RND,AP_SAT>")
    t = FixedType(12, 4, True, "RND", "SAT")
    assert plan.default == t and plan.input is None and plan.input_type() == t
    assert plan.accum == EXACT and plan.layers == {}
    for slot in ("weight", "bias", "result", "table"):
        assert plan.type_for("any_layer", slot) == t
    assert plan.type_for("any_layer", "accum") == EXACT
    assert PrecisionPlan.uniform("ap_fixed<8,3>", accum="ap_fixed<20,8>").type_for("x", "accum") == FixedType(20, 8)


def test_per_layer_overrides_and_fallbacks():
    plan = PrecisionPlan(default="ap_fixed<16,6>", input="ap_fixed<10,4>", accum="ap_fixed<24,10>",
                         layers={"fc1": {"weight": "ap_fixed<8,2>", "accum": EXACT},
                                 "fc2": {"result": FixedType(9, 3, True, "RND", "SAT")}})
    assert plan.input_type() == FixedType(10, 4)
    assert plan.type_for("fc1", "weight") == FixedType(8, 2)
    assert plan.type_for("fc1", "bias") == FixedType(16, 6)          # not overridden -> default
    assert plan.type_for("fc1", "accum") == EXACT                    # override beats plan-wide accum
    assert plan.type_for("fc2", "accum") == FixedType(24, 10)        # plan-wide accum
    assert plan.type_for("fc2", "result") == FixedType(9, 3, True, "RND", "SAT")
    assert plan.type_for("fc3", "result") == FixedType(16, 6)
    assert isinstance(plan.layers["fc1"]["weight"], FixedType)       # strings are parsed


def test_type_for_unknown_slot_lists_valid_slots():
    with pytest.raises(ConfigError) as err:
        PrecisionPlan.uniform().type_for("fc1", "kernel")
    assert "'kernel'" in str(err.value)
    for slot in ("weight", "bias", "accum", "result", "table"):
        assert slot in str(err.value)


def test_unknown_slot_or_malformed_entry_is_refused():
    with pytest.raises(ConfigError, match=r"fc1.*\['weights'\].*valid slots"):
        PrecisionPlan(layers={"fc1": {"weights": "ap_fixed<8,2>"}})
    with pytest.raises(ConfigError, match="fc1"):
        PrecisionPlan(layers={"fc1": "ap_fixed<8,2>"})
    with pytest.raises(ConfigError, match="ap_fixd"):
        PrecisionPlan(default="ap_fixd<8,2>")


def test_exact_is_only_valid_for_the_accumulator():
    with pytest.raises(ConfigError, match="exact"):
        PrecisionPlan(layers={"fc1": {"weight": "exact"}})


def test_unknown_plan_key_is_refused():
    with pytest.raises(ConfigError) as err:
        PrecisionPlan.from_dict({"default": "ap_fixed<16,6>", "defualt": "ap_fixed<8,3>"})
    assert "defualt" in str(err.value) and "default, input, accum, layers" in str(err.value)


# ------------------------------------------------------------------------------------ serialisation
def _rich_plan():
    return PrecisionPlan(default="ap_fixed<14,5,AP_RND_CONV,AP_SAT_SYM>", input="ap_ufixed<10,3>",
                         accum="ap_fixed<30,12,AP_RND,AP_WRAP>",
                         layers={"fc1": {"weight": "ap_fixed<6,1>", "bias": "ap_fixed<8,3,AP_RND,AP_SAT>",
                                         "accum": EXACT},
                                 "sm": {"table": "ap_fixed<18,8,AP_RND,AP_SAT>"}})


def test_dict_round_trip_is_lossless():
    plan = _rich_plan()
    d = plan.to_dict()
    assert d == {"default": "ap_fixed<14,5,AP_RND_CONV,AP_SAT_SYM>", "input": "ap_ufixed<10,3>",
                 "accum": "ap_fixed<30,12,AP_RND,AP_WRAP>",
                 "layers": {"fc1": {"weight": "ap_fixed<6,1>", "bias": "ap_fixed<8,3,AP_RND,AP_SAT>",
                                    "accum": "exact"},
                            "sm": {"table": "ap_fixed<18,8,AP_RND,AP_SAT>"}}}
    again = PrecisionPlan.from_dict(json.loads(json.dumps(d)))
    assert again == plan and again.to_dict() == d
    assert again.input_type() == FixedType(10, 3, False)


def test_save_and_load_round_trip_through_json(tmp_path):
    plan = _rich_plan()
    path = tmp_path / "sub" / "plan.json"
    plan.save(path)
    assert json.loads(path.read_text()) == plan.to_dict()
    assert PrecisionPlan.load(path) == plan
    assert as_plan(path) == plan and as_plan(str(path)) == plan
    assert as_plan(plan.to_dict()) == plan and as_plan(plan) is plan
    assert as_plan(None, "ap_fixed<8,3>") == PrecisionPlan.uniform("ap_fixed<8,3>")
    assert as_plan() == PrecisionPlan.uniform("ap_fixed<16,6>")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.json.*does not exist"):
        PrecisionPlan.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"default": "ap_fixed<16,6>"')
    with pytest.raises(ConfigError, match="bad.json.*not valid JSON"):
        PrecisionPlan.load(bad)
    arr = tmp_path / "list.json"
    arr.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="list.json.*JSON object"):
        PrecisionPlan.load(arr)
    with pytest.raises(ConfigError, match="not both"):
        as_plan({"default": "ap_fixed<8,3>"}, "ap_fixed<8,3>")
    with pytest.raises(ConfigError, match="int"):
        as_plan(42)


# ------------------------------------------------------------------------------------ exact accumulators
def _worst_sum(x: FixedType, w: FixedType, b, n: int) -> float:
    prods = [a * c for a in (x.min, x.max) for c in (w.min, w.max)]
    biggest = max(abs(p) for p in prods)
    return n * biggest + (max(abs(b.min), abs(b.max)) if b is not None else 0.0)


def test_exact_accumulator_known_cases():
    q = FixedType(16, 6)
    # 20 fractional bits (10 + 10); products < 2^10, 16 of them plus a bias: integer 12 + ceil(log2 17) = 17
    # (hls4ml's own inference gives the same: 6+6+log2(16) = 16, +1 for the bias)
    assert exact_accumulator(q, q, q, 16) == FixedType(37, 17)
    # <12,4> x <12,4> over 6 terms, bias <12,4>: 16 fractional, 8 + 3 integer
    q12 = FixedType(12, 4)
    assert exact_accumulator(q12, q12, q12, 6) == FixedType(27, 11)
    # the bias decides the fraction and, when huge, the integer part
    assert exact_accumulator(FixedType(8, 3), FixedType(6, 1), FixedType(24, 20), 4) == FixedType(31, 21)
    assert exact_accumulator(FixedType(8, 3), FixedType(6, 1), FixedType(20, 2), 4) == FixedType(25, 7)
    assert exact_accumulator(FixedType(8, 3), FixedType(6, 1), None, 4) == FixedType(17, 7)


@pytest.mark.parametrize("x, w, b, n", [
    ("ap_fixed<16,6>", "ap_fixed<16,6>", "ap_fixed<16,6>", 16),
    ("ap_fixed<8,3>", "ap_fixed<6,1>", None, 1),
    ("ap_fixed<4,2>", "ap_fixed<4,1>", "ap_fixed<4,4>", 64),
    ("ap_fixed<10,-2>", "ap_fixed<10,0>", None, 3),
])
def test_exact_accumulator_holds_the_worst_case_without_rounding(x, w, b, n):
    x, w = FixedType.parse(x), FixedType.parse(w)
    b = FixedType.parse(b) if b else None
    acc = exact_accumulator(x, w, b, n)
    assert acc.fractional >= x.fractional + w.fractional
    if b is not None:
        assert acc.fractional >= b.fractional
    worst = _worst_sum(x, w, b, n)
    assert acc.min <= -worst and worst <= acc.max, (acc, worst)
    assert acc.width <= MAX_EXACT_WIDTH


@pytest.mark.parametrize("x, w, b, n", [
    ("ap_ufixed<8,3>", "ap_ufixed<8,3>", None, 3),
    ("ap_ufixed<8,3>", "ap_fixed<8,2>", "ap_fixed<10,6>", 7),
])
def test_exact_accumulator_with_unsigned_operands_holds_the_worst_case(x, w, b, n):
    x, w = FixedType.parse(x), FixedType.parse(w)
    b = FixedType.parse(b) if b else None
    acc = exact_accumulator(x, w, b, n)
    worst = _worst_sum(x, w, b, n)
    assert acc.min <= -worst and worst <= acc.max, (acc, worst)


def test_exact_accumulator_beyond_53_bits_is_refused():
    wide = FixedType(30, 10)
    with pytest.raises(ConfigError) as err:
        exact_accumulator(wide, wide, None, 8)
    assert "53" in str(err.value) and "accum" in str(err.value)
    # 53 bits exactly is still accepted: 40 fractional + 8 + ceil(log2 32) = 53; one more term is 54
    t = FixedType(24, 4)
    assert exact_accumulator(t, t, None, 31) == FixedType(53, 13)
    with pytest.raises(ConfigError, match="54 bits"):
        exact_accumulator(t, t, None, 32)


# ------------------------------------------------------------------------------------ from_data
keras = pytest.importorskip("keras")


def _ranged_model():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, name="fc1"),
        keras.layers.Activation("relu", name="relu1"),
        keras.layers.Dense(3, name="fc2"),
    ])
    w, b = model.get_layer("fc1").get_weights()
    model.get_layer("fc1").set_weights([w * 3.0, b + 0.5])   # fc1 outputs reach ~ +-20
    return model


def _outputs(model, X):
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers])
    return dict(zip([layer.name for layer in model.layers], probe.predict(X, verbose=0)))


def _assert_tight(t: FixedType, max_abs: float, margin: int, name: str):
    assert t.min <= -max_abs and max_abs <= t.max, f"{name}: {max_abs} does not fit {t}"
    if t.integer > 1:
        # without the margin, one fewer integer bit would not cover the range
        bare = t.integer - margin
        assert max_abs <= 2.0 ** (bare - 1), f"{name}: {t} is wider than needed for {max_abs}"
        assert max_abs >= 2.0 ** (bare - 2), f"{name}: {t} is wider than needed for {max_abs}"


@pytest.mark.parametrize("margin", [0, 1, 2])
def test_from_data_covers_observed_ranges_tightly(margin):
    model = _ranged_model()
    X = (np.random.default_rng(0).normal(size=(2000, 6)) * 1.7).astype("float32")
    plan = PrecisionPlan.from_data(model, X, width=16, margin_bits=margin, weight_width=10)
    outs = _outputs(model, X)
    assert set(plan.layers) == {"fc1", "relu1", "fc2"}
    assert np.abs(outs["fc1"]).max() > 8   # the test really exercises several integer bits
    _assert_tight(plan.input_type(), float(np.abs(X).max()), margin, "input")
    for name, out in outs.items():
        t = plan.type_for(name, "result")
        assert t.width == 16
        _assert_tight(t, float(np.abs(out).max()), margin, name)
    for name in ("fc1", "fc2"):
        w, b = model.get_layer(name).get_weights()
        for slot, values in (("weight", w), ("bias", b)):
            t = plan.type_for(name, slot)
            assert t.width == 10
            _assert_tight(t, float(np.abs(values).max()), 0, f"{name} {slot}")


def test_from_data_refuses_non_finite_data():
    X = np.ones((10, 6), dtype="float32")
    X[3, 2] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        PrecisionPlan.from_data(_ranged_model(), X)


def test_from_data_plan_for_fused_relu_reproduces_the_model(tmp_path):
    pytest.importorskip("hls4ml")
    from fastml_lab.hls import export

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(3, name="fc2")])
    w, b = model.get_layer("fc1").get_weights()
    model.get_layer("fc1").set_weights([w, b - 3.0])  # mostly negative pre-activations
    X = np.random.default_rng(0).normal(size=(500, 6)).astype("float32")
    plan = PrecisionPlan.from_data(model, X, width=16)
    y = export(model, tmp_path / "p", plan=plan).firmware().predict(X)
    assert np.abs(y - model.predict(X, verbose=0)).max() < 0.01
