"""Pricing through the op registry: each layer's price comes from its op class, an op without one is
refused by name, and the fit estimate's figures for bare operands come from the same cost model.
Numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from fastml_lab.estimate.model import FLAVOURS, Pricing, device_of, layer_costs, weighted_layers
from fastml_lab.exceptions import UnsupportedError
from fastml_lab.firmware import Op, op_classes, registry
from fastml_lab.fixed import FixedType

T16 = FixedType(16, 6).to_dict()
TARGET = {"flavour": FLAVOURS["vivado"], "device": device_of("xc7z020clg400-1"), "clock_ns": 10.0}


def _description(*layers, n_inputs=3):
    return {"n_inputs": n_inputs, "n_outputs": n_inputs, "input_type": T16, "output_type": T16,
            "layers": [{"name": name, "op": op, "data_type": T16, "result_type": T16, **fields}
                       for name, op, fields in layers]}


def test_an_unknown_op_is_refused_naming_the_layer_and_the_op():
    description = _description(("act", "relu", {}), ("c1", "conv3d", {}))
    with pytest.raises(UnsupportedError, match=r"Layer 'c1' has op 'conv3d', which the cost model cannot price"):
        layer_costs(description, {}, **TARGET)


def test_a_registered_op_without_a_price_is_refused_naming_the_layer_and_the_op(monkeypatch):
    monkeypatch.setattr(registry, "_BY_OP", dict(registry._BY_OP))
    monkeypatch.setattr(registry, "_CLASSES", list(registry._CLASSES))

    @registry.register_op
    class Square(Op):
        ops = ("square",)

        def compute(self, x):
            return x * x

    with pytest.raises(UnsupportedError, match=r"Layer 'sq' has op 'square'.*Square has no price"):
        layer_costs(_description(("sq", "square", {})), {}, **TARGET)


def test_a_bdt_layer_is_sent_to_conifers_model():
    with pytest.raises(UnsupportedError, match=r"Layer 'trees' has op 'bdt'.*conifer's model"):
        layer_costs(_description(("trees", "bdt", {})), {}, **TARGET)


def test_every_registered_op_has_a_price_hook_and_only_dense_and_conv_a_weight_matrix():
    unpriced = {cls.__name__ for cls in op_classes() if cls.price.__func__ is Op.price.__func__}
    assert unpriced == set()
    assert {cls.__name__ for cls in op_classes() if cls.weight_matrix} == {"Dense", "Conv"}


def test_each_layer_is_priced_by_its_op_class_with_the_widths_along_the_chain():
    u4 = FixedType(4, 4).to_dict()
    description = _description(
        ("q", "quantize", {"element_types": [u4]}),
        ("fc", "dense", {"n_in": 3, "n_out": 2, "weight_type": T16, "bias_type": T16, "accum_type": T16}),
        ("act", "sigmoid", {"table_size": 1024, "table_type": T16}),
        ("e", "elu", {"table_size": 1024, "table_type": T16}),  # not emulated; priced as a table
    )
    arrays = {"q/type_index": np.array([0, -1, 0]), "fc/weight": np.array([[3, 0], [5, 7], [0, 1]]) * 2 ** 10,
              "fc/bias": np.zeros(2, dtype=np.int64)}
    q, fc, act, elu = layer_costs(description, arrays, **TARGET)
    assert (q.op, q.detail, q.lut) == ("quantize", "wiring", 0)
    assert fc.op == "dense" and fc.detail.startswith("2 of 6 products")  # input 1 has 0 bits: 5 and 7 drop out
    assert act.detail == elu.detail == "2 lookups in a 1024-entry table" and elu.op == "elu"
    assert [spec["name"] for spec in weighted_layers(description)] == ["fc"]
    pricing = Pricing(**TARGET, name="e", op="elu", widths=np.array([16, 16]))
    assert elu == pricing.table_lookup(FixedType(16, 6), 1024, FixedType(16, 6))


def test_bare_operands_are_priced_by_the_cost_model_on_the_budgets_board():
    from fastml_lab.quantize.fit import Budget, estimate
    from fastml_lab.quantize.operands import DenseOperands, Operands

    weights = np.array([[0.75, -4.0], [1023 / 1024, 0.0]])
    fit = estimate(Operands([DenseOperands("fc", weights, np.array([12, 8]))], "hand-made"), 2,
                   Budget.of("pynq-z2"))
    description = _description(("fc", "dense", {
        "n_in": 2, "n_out": 2, "weight_type": FixedType(14, 4).to_dict(), "bias_type": T16,
        "accum_type": FixedType(24, 1).to_dict(), "reuse_factor": 2}), n_inputs=2)
    description["input_type"] = FixedType(12, 12).to_dict()
    description["layers"].insert(0, {"name": "q", "op": "quantize", "data_type": T16, "result_type": T16,
                                     "element_types": [FixedType(8, 8).to_dict(), FixedType(12, 12).to_dict()]})
    arrays = {"q/type_index": np.array([1, 0]), "fc/weight": FixedType(14, 4).to_raw(weights).astype(np.int64),
              "fc/bias": np.zeros(2, dtype=np.int64)}
    *_, cost = layer_costs(description, arrays, **TARGET)
    assert (fit.dsp, fit.lut, fit.layers[0]["latency_cycles"]) == (cost.dsp, cost.lut, cost.latency)
