"""hls4ml's softmax (``nnet::softmax``): the 'stable' (max-subtracted) and 'latency' kinds."""

from __future__ import annotations

import math

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import FixedType
from ..registry import FLOAT, INT, STR, TYPE, Field, Op, register_op, require_width


@register_op
class Softmax(Op):
    """exp looked up in one table (indexed by the top bits of the input), summed, 1/sum in another."""

    ops = ("softmax",)
    functions = ("softmax",)
    fields = {
        "implementation": Field(STR), "exp_table_size": Field(INT), "inv_table_size": Field(INT),
        "exp_table_type": Field(TYPE), "inv_table_type": Field(TYPE), "inv_inp_type": Field(TYPE),
        "accum_type": Field(TYPE), "index_type": Field(TYPE), "exp_scale": Field(FLOAT, 1.0),
    }
    arrays = {"exp_table": "exp_table_type", "inv_table": "inv_table_type"}

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.softmax(*(cls.decoded(spec, key) for key in
                              ("exp_table_size", "exp_table_type", "inv_table_size", "inv_table_type")))

    @classmethod
    def read(cls, call, ctx):
        from ..tables import softmax_exp_table, softmax_inv_table

        spec = super().read(call, ctx)
        config = ctx.config(call)
        impl = config["implementation"].split("::")[-1]
        if impl not in ("stable", "latency"):
            raise UnsupportedError(
                f"Softmax layer {call.name!r} uses the '{impl}' implementation; the emulator supports "
                "'stable' and 'latency'."
            )
        if int(config.get("n_outer", 1)) != 1 or int(config.get("n_inner", 1)) != 1:
            raise UnsupportedError(f"Softmax layer {call.name!r} over a non-last axis is not supported.")
        exp_size, inv_size = int(config["exp_table_size"]), int(config["inv_table_size"])
        exp_t, inv_t = ctx.config_type(call, "exp_table_t"), ctx.config_type(call, "inv_table_t")
        inv_inp_t = ctx.config_type(call, "inv_inp_t")
        index_t = ctx.config_type(call, "inp_norm_t") if impl == "stable" else spec["data_type"]
        exp_scale = float(config.get("exp_scale", "1.0").rstrip("f"))
        ctx.arrays[f"{call.name}/exp_table"] = exp_t.to_raw(
            softmax_exp_table(index_t, exp_size, exp_scale, negate=impl == "stable")).astype(np.int64)
        ctx.arrays[f"{call.name}/inv_table"] = inv_t.to_raw(softmax_inv_table(inv_inp_t, inv_size)).astype(np.int64)
        spec.update(implementation=impl, exp_table_size=exp_size, inv_table_size=inv_size,
                    exp_table_type=exp_t, inv_table_type=inv_t, inv_inp_type=inv_inp_t,
                    accum_type=ctx.config_type(call, "accum_t"), index_type=index_t, exp_scale=exp_scale)
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.stable = self.implementation == "stable"
        # The firmware casts each looked-up exp to accum_t; casting the table once is the same.
        self.exp_accum = self.accum_type.quantize(self.exp_table)
        self.exp_bits = int(math.ceil(math.log2(self.exp_table_size)))
        self.inv_bits = int(math.ceil(math.log2(self.inv_table_size)))
        largest = float(np.abs(self.exp_accum).max()) if self.exp_accum.size else 0.0
        limit = min(self.accum_type.max, -self.accum_type.min)
        #: Largest number of terms whose partial sums accum_t holds without a cast changing them.
        self.exact_terms = math.inf if largest == 0 else int(limit // largest)

    def check_exact(self, x_type):
        super().check_exact(x_type)
        for t in (self.accum_type, self.inv_inp_type, self.index_type):
            require_width(self.name, "softmax internal", t)
        if self.index_type.width < self.exp_bits or self.inv_inp_type.width < self.inv_bits:
            raise UnsupportedError(f"Softmax layer {self.name!r}: a table index has more bits than its input type.")

    @staticmethod
    def _table_index(t: FixedType, values: np.ndarray, n_bits: int) -> np.ndarray:
        """The top ``n_bits`` of ``values`` cast to ``t``, as the firmware indexes its tables."""
        raw = t.to_raw(values).astype(np.int64)
        raw &= (1 << t.width) - 1  # two's-complement bit pattern
        raw >>= t.width - n_bits
        return raw

    def _tree_sum(self, cols: list) -> np.ndarray:
        # nnet::reduce: split at the largest power of two below n, add the halves in accum_t.
        n = len(cols)
        if n == 1:
            return cols[0]
        if n == 2:
            return self.accum_type.quantize(cols[0] + cols[1])
        left = 1 << int(math.floor(math.log2(n - 1)))
        return self.accum_type.quantize(self._tree_sum(cols[:left]) + self._tree_sum(cols[left:]))

    @staticmethod
    def _columns(x: np.ndarray, ufunc) -> np.ndarray:
        """``ufunc.reduce(x, axis=1)`` column by column: several times faster for a few columns."""
        out = x[:, 0].copy()
        for i in range(1, x.shape[1]):
            ufunc(out, x[:, i], out=out)
        return out

    def compute(self, x):
        d = self._columns(x, np.maximum)[:, None] - x if self.stable else x
        exp_res = self.exp_accum[self._table_index(self.index_type, d, self.exp_bits)]
        if exp_res.shape[1] <= self.exact_terms:
            # Every partial sum fits accum_t exactly, so the casts change nothing and float64
            # adds them exactly in any order.
            total = self._columns(exp_res, np.add)
        else:
            total = self._tree_sum([exp_res[:, i] for i in range(exp_res.shape[1])])
        inv = self.inv_table[self._table_index(self.inv_inp_type, total, self.inv_bits)]
        return exp_res * inv[:, None]
