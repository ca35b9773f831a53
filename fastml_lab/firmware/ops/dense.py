"""hls4ml's dense layer (``nnet::dense``, Latency and Resource strategies)."""

from __future__ import annotations

import math

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import MAX_EXACT_WIDTH, FixedType
from ..registry import INT, STR, TYPE, Field, Op, register_op, require_width

#: Elements of a per-product temporary (rows x n_in x n_out) before the chunk is split further.
MAX_PRODUCT_ELEMENTS = 1 << 22


@register_op
class Dense(Op):
    """``acc = bias; acc += (accum_t)(x_i * w_i)`` for each input, then the cast to ``res_t``.

    The emulator picks the cheapest exact way: one float64 matrix product when no product is
    rounded and the order of the additions cannot matter, products rounded one by one when the
    accumulator is coarser than the products, the Latency kernel's own order when a saturating
    accumulator may overflow.
    """

    ops = ("dense",)
    functions = ("dense",)
    fields = {
        "n_in": Field(INT), "n_out": Field(INT),
        "weight_type": Field(TYPE), "bias_type": Field(TYPE), "accum_type": Field(TYPE),
        "strategy": Field(STR, "latency"), "reuse_factor": Field(INT, 1), "kernel": Field(STR, None),
    }
    arrays = {"weight": "weight_type", "bias": "bias_type"}
    weight_matrix = "weight"

    @classmethod
    def output_widths(cls, spec, arrays, widths):
        return np.full(cls.decoded(spec, "n_out"), cls.decoded(spec, "result_type").width)

    @classmethod
    def price(cls, spec, arrays, cost):
        """Constant multipliers and adder trees (Latency strategy), or shared multipliers (Resource)."""
        types = {key: cls.decoded(spec, key) for key in ("weight_type", "accum_type", "result_type")}
        return cost.dense(cls.weights(spec, arrays), strategy=cls.decoded(spec, "strategy"),
                          reuse=cls.decoded(spec, "reuse_factor"), **types)

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        config = ctx.config(call)
        wtype, btype = ctx.config_type(call, "weight_t"), ctx.config_type(call, "bias_t")
        n_in, n_out = int(config["n_in"]), int(config["n_out"])
        strategy = config["strategy"].replace("nnet::", "")
        if strategy not in ("latency", "resource"):
            raise UnsupportedError(
                f"Layer {call.name!r} uses the '{strategy}' dense strategy; the emulator supports "
                "'latency' and 'resource'."
            )
        weights = ctx.weights(call.args[2], wtype)
        # The Resource kernel reads a transposed (n_out, n_in) weight array.
        weights = weights.reshape(n_out, n_in).T if strategy == "resource" else weights.reshape(n_in, n_out)
        ctx.arrays[f"{call.name}/weight"] = np.ascontiguousarray(weights)
        ctx.arrays[f"{call.name}/bias"] = ctx.weights(call.args[3], btype)
        spec.update(n_in=n_in, n_out=n_out, weight_type=wtype, bias_type=btype,
                    accum_type=ctx.config_type(call, "accum_t"), strategy=strategy,
                    reuse_factor=int(config["reuse_factor"]), kernel=config.get("kernel"))
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.bias_acc = self.accum_type.quantize(self.bias)
        self.path = "matmul"
        self.accum_is_identity = False
        self._scaled = None
        self._bias_rows = np.empty((0, self.weight.shape[1]))

    def check_exact(self, x_type: FixedType) -> None:
        for slot, t in (("weight", self.weight_type), ("bias", self.bias_type),
                        ("accum", self.accum_type), ("result", self.result_type)):
            require_width(self.name, slot, t)
        product_bits = x_type.width + self.weight_type.width
        if product_bits > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"Layer {self.name!r}: a {x_type} x {self.weight_type} product has {product_bits} "
                f"bits, more than the {MAX_EXACT_WIDTH} that can be emulated exactly."
            )
        acc = self.accum_type
        w, b = self.weight, self.bias
        product_frac = x_type.fractional + self.weight_type.fractional
        rounds_products = product_frac > acc.fractional
        x_max = max(abs(x_type.min), abs(x_type.max))
        # Largest magnitude of the running sum, in any order (bias + all |x_i w_ij|).
        bound = float(np.max(np.abs(b) + x_max * np.abs(w).sum(axis=0))) if w.size else 0.0
        may_overflow = bound > acc.max or -bound < acc.min
        finest = max(product_frac, acc.fractional, self.bias_type.fractional)
        exact_sum_bits = math.ceil(math.log2(bound + 1.0)) + finest + 1
        if exact_sum_bits > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"Layer {self.name!r}: the dot product needs {exact_sum_bits} bits to be summed "
                f"exactly ({x_type} inputs, {self.weight_type} weights, {w.shape[0]} terms), "
                f"more than {MAX_EXACT_WIDTH}. Narrow the input or weight types."
            )
        order_matters = may_overflow and acc.overflow != "WRAP"
        if order_matters and self.strategy != "latency":
            raise UnsupportedError(
                f"Layer {self.name!r}: its accumulator {acc} saturates, so the result depends on the "
                "order of the additions, and the emulator follows only the Latency strategy's order. "
                "Use a wrapping or wider accumulator, or the Latency strategy."
            )
        # With no rounding and no overflow possible, the cast to accum_t changes nothing.
        bias_on_grid = self.bias_type.fractional <= acc.fractional
        self.accum_is_identity = not (may_overflow or rounds_products or not bias_on_grid)
        if order_matters:
            self.path = "sequential"
        elif rounds_products:
            self.path = "per_product"
        else:
            self.path = "matmul"
        self._scaled = None
        if self.path == "matmul" and self.accum_is_identity:
            # Weights and bias times 2**fractional of the result: the product then lands on the
            # result's integer grid. Exact: a power-of-two scaling of exact values.
            scale = 2.0 ** self.result_type.fractional
            self._scaled = (w * scale, self.bias_acc * scale)
        self._bias_rows = np.empty((0, w.shape[1]))

    def compute(self, x):
        if self.path == "matmul":
            # Exact: every product and partial sum fits float64; a wrapping accumulator's modular
            # sum equals the wrap of the exact sum.
            acc = x @ self.weight
            acc += self.bias_acc
            return acc if self.accum_is_identity else self.accum_type.quantize(acc)
        if self.path == "per_product":
            return self._per_product(x)
        return self._sequential(x)

    def _per_product(self, x):
        n_in, n_out = self.weight.shape
        step = max(1, MAX_PRODUCT_ELEMENTS // max(1, n_in * n_out))
        acc = np.empty((x.shape[0], n_out))
        for s in range(0, x.shape[0], step):
            products = self.accum_type.quantize(x[s:s + step, :, None] * self.weight[None])
            acc[s:s + step] = products.sum(axis=1) + self.bias_acc
        return self.accum_type.quantize(acc)

    def _sequential(self, x):
        # hls4ml's Latency kernel: acc = bias; for each input i: acc += (accum_t)(x_i * w_i).
        acc = np.broadcast_to(self.bias_acc, (x.shape[0], self.weight.shape[1])).copy()
        for i in range(self.weight.shape[0]):
            term = self.accum_type.quantize(x[:, i:i + 1] * self.weight[i][None, :])
            acc = self.accum_type.quantize(acc + term)
        return acc

    # ------------------------------------------------------------------ one pass
    def __call__(self, x):
        return self._cast_in_place(self._on_result_grid(x), relu=False)

    def fused_with(self, following):
        """The dense result cast and a following ReLU in one pass over the sums.

        Exact when the ReLU's own cast changes nothing and it reads this layer's result type:
        ``max(0, cast(v))`` is computed on the cast's integers (a clip at 0 after the overflow).
        """
        if following.op != "relu" or not following.cast_is_identity or following.data_type != self.result_type:
            return None
        return lambda x: self._cast_in_place(self._on_result_grid(x), relu=True)

    def _on_result_grid(self, x):
        """The sums before the cast, times ``2**fractional`` of the result type (a new array)."""
        if self._scaled is not None:
            w, b = self._scaled
            acc = x @ w
            # The bias repeated for every row: a plain element-wise add is faster than a broadcast.
            if self._bias_rows.shape[0] < acc.shape[0]:
                self._bias_rows = np.ascontiguousarray(np.broadcast_to(b, acc.shape))
            acc += self._bias_rows[:acc.shape[0]]
            return acc
        acc = self.compute(x)
        acc *= 2.0 ** self.result_type.fractional
        return acc

    def _cast_in_place(self, acc, relu: bool):
        """``res_t(acc)`` (then ``max(0, .)`` if ``relu``) for sums on the result's grid, in ``acc``.

        The sums are finite (:meth:`check_exact` bounds them) and none is -0.0 (the bias
        addition turns a -0.0 sum into +0.0); of the rounding modes only truncation toward zero
        makes a -0.0 (of values in (-1, 0)), which ``+= 0.0`` turns back into +0.0, as the C++ prints.
        """
        t = self.result_type
        if relu and t.overflow in ("SAT", "SAT_SYM"):
            # Saturation and ReLU commute with rounding: one clip to [0, max] does both.
            raw = t.round_scaled(acc)
            np.clip(raw, 0.0, float(t.raw_max), out=raw)
        else:
            raw = t.raw_from_scaled(acc)
            if relu:
                np.clip(raw, 0.0, float(t.raw_max), out=raw)
        raw *= t.lsb
        if t.rounding == "TRN_ZERO":
            raw += 0.0
        return raw
