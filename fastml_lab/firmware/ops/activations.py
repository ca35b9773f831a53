"""hls4ml's element-wise activations: ReLU, linear, leaky and thresholded ReLU, sigmoid and tanh tables."""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ..registry import FLOAT, INT, TYPE, Field, Op, register_op


@register_op
class ReLU(Op):
    ops = ("relu",)
    functions = ("relu",)

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.elementwise(cls.decoded(spec, "result_type"))

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.cast_is_identity = self.result_type.holds(self.data_type, nonnegative_only=True)

    def compute(self, x):
        # A clip with both bounds is several times faster than np.maximum(x, 0.0). Layer outputs
        # never hold -0.0 (casts normalise it), so the result has no -0.0 either.
        return np.clip(x, 0.0, np.inf)

    def cast(self, values):
        return values if self.cast_is_identity else self.result_type.quantize(values)


@register_op
class Linear(Op):
    ops = ("linear",)
    functions = ("linear",)

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.wiring()

    def compute(self, x):
        return x


@register_op
class LeakyReLU(Op):
    """``x > 0 ? x : alpha * x`` with ``alpha`` cast to the parameter type."""

    ops = ("leaky_relu", "thresholded_relu")
    functions = ("leaky_relu", "thresholded_relu")
    fields = {"param": Field(FLOAT), "param_type": Field(TYPE)}

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.elementwise(cls.decoded(spec, "result_type"))

    @classmethod
    def read(cls, call, ctx):
        param_t = ctx.fixed(call.targs[1])
        return {"data_type": ctx.fixed(call.targs[0]), "result_type": ctx.fixed(call.targs[2]),
                "param": float(param_t.quantize(float(call.args[1]))), "param_type": param_t}

    def compute(self, x):
        if self.op == "thresholded_relu":
            return np.where(x > self.param, x, 0.0)
        return np.where(x > 0, x, self.param * x)


@register_op
class TableActivation(Op):
    """hls4ml's sigmoid and tanh: a table over [-8, 8) resp. [-4, 4), indexed by truncation."""

    ops = ("sigmoid", "tanh")
    functions = ("sigmoid", "tanh")
    fields = {"table_size": Field(INT), "table_type": Field(TYPE)}
    arrays = {"table": "table_type"}
    #: hls4ml's ELU is a table too: the emulator does not run it, the cost model prices it (a
    #: published synthesis point has one).
    also_priced = ("elu",)

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.table_lookup(cls.decoded(spec, "result_type"), cls.decoded(spec, "table_size"),
                                 cls.decoded(spec, "table_type"))

    @classmethod
    def read(cls, call, ctx):
        from ..tables import activation_table

        spec = super().read(call, ctx)
        size = int(ctx.config(call)["table_size"])
        if size & (size - 1):
            raise UnsupportedError(f"Layer {call.name!r}: table_size {size} is not a power of two; use e.g. 1024.")
        ttype = ctx.config_type(call, "table_t")
        ctx.arrays[f"{call.name}/table"] = ttype.to_raw(activation_table(call.func, size)).astype(np.int64)
        spec.update(table_size=size, table_type=ttype)
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.span = 16 if self.op == "sigmoid" else 8

    def compute(self, x):
        # data * table_size / span, converted to int (truncation toward zero), then offset.
        index = np.trunc(x * self.table_size / self.span) + (self.span // 2) * self.table_size // self.span
        index = np.clip(index, 0, self.table_size - 1).astype(np.int64)
        return self.table[index]
