"""hls4ml's pooling layers: max and average pooling 1-D/2-D, and global pooling, in both I/O styles.

What each computes (``nnet_pooling.h`` for io_parallel, ``nnet_pooling_stream.h`` for io_stream):

* **io_parallel, max**: the largest input of the window in the input type (padding reads the
  type's pattern with only the top bit set: the most negative value of a signed type), then cast
  to ``accum_t`` and to ``res_t``.
* **io_parallel, average**: ``y = 0; y += x_i`` in ``accum_t`` (each partial sum cast), then
  ``y /= n`` (an integer division of the stored integer, truncated toward zero: the quotient keeps
  ``accum_t``'s fractional bits), then the cast to ``res_t``. ``n`` is the window's size, or
  without ``count_pad`` the values of the window that lie inside the image.
* **io_stream**: each input is cast to ``accum_t`` first; max takes the largest; average sums
  with hls4ml's balanced ``reduce`` (each addition cast to ``accum_t``) and divides by the
  window's size as above. Windows never cover padding (the stream kernels refuse it).
* **global pooling**: as above over the whole image, per channel; io_stream sums in order.
"""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import FixedType
from ..registry import INT, STR, TYPE, Field, Op, register_op, require_width
from .conv import GEOMETRY, ByDimension, geometry_fields, read_geometry, window_index

#: hls4ml's names for a pooling layer's geometry (1-D layers: ``n_in`` values of ``n_filt`` channels).
_ALIASES_2D = {"n_chan": "n_filt", "filt_height": "pool_height", "filt_width": "pool_width"}
_ALIASES_1D = {"n_chan": "n_filt", "filt_width": "pool_width", "in_width": "n_in", "out_width": "n_out"}


def _pool_op(config: dict, name: str) -> str:
    op = config.get("pool_op", "").replace("nnet::", "")
    if op not in ("Max", "Average"):
        raise UnsupportedError(f"Layer {name!r} uses the pooling operation {op!r}; the emulator supports Max "
                               "and Average.")
    return op.lower()


def tree_sum(values: np.ndarray, accum: FixedType) -> np.ndarray:
    """hls4ml's ``reduce`` with ``Op_add`` over the last axis: halves split at the largest power of
    two below ``n``, each addition cast to ``accum``."""
    n = values.shape[-1]
    if n == 1:
        return values[..., 0]
    if n == 2:
        return accum.quantize(values[..., 0] + values[..., 1])
    left = 1 << ((n - 1).bit_length() - 1)
    return accum.quantize(tree_sum(values[..., :left], accum) + tree_sum(values[..., left:], accum))


def divide(values: np.ndarray, accum: FixedType, n) -> np.ndarray:
    """``accum_t`` divided by an integer: the stored integer divided, truncated toward zero."""
    raw = accum.to_raw(values).astype(np.float64)
    return np.trunc(raw / n) * accum.lsb


def pad_value(t: FixedType) -> float:
    """hls4ml's ``pad_val`` for max pooling: the pattern with only the top bit set."""
    raw = -(1 << (t.width - 1)) if t.signed else 1 << (t.width - 1)
    return float(t.from_raw(np.array([raw]))[0])


@register_op
class Pooling(ByDimension, Op):
    """Max or average pooling over windows (1-D or 2-D)."""

    ops = ("pooling1d", "pooling2d")
    functions = ("pooling1d_cl", "pooling2d_cl")
    fields = {**geometry_fields(), "pool_op": Field(STR), "count_pad": Field(INT, 0),
              "accum_type": Field(TYPE), "io": Field(STR, "parallel")}

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        config = ctx.config(call)
        aliases = _ALIASES_1D if "1d" in call.func else _ALIASES_2D
        spec.update(read_geometry(config, GEOMETRY, aliases), pool_op=_pool_op(config, call.name),
                    count_pad=int(config.get("count_pad", "false") == "true"),
                    accum_type=ctx.config_type(call, "accum_t"),
                    io="stream" if ctx.is_stream(call.targs[0]) else "parallel")
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        geometry = {key: getattr(self, key) for key in GEOMETRY}
        self.n_inputs = self.in_height * self.in_width * self.n_chan
        # Windows over pixels (one channel): (out pixels, window) indices, padding -> n_pixels.
        n_pixels = self.in_height * self.in_width
        self.index = window_index(geometry, 1, n_pixels)
        self.padded = bool((self.index == n_pixels).any())
        inside = (self.index != n_pixels).sum(axis=1)
        self.window_size = self.filt_height * self.filt_width
        self.divisor = (np.full(inside.shape, self.window_size) if self.count_pad else inside).astype(np.float64)

    def check_exact(self, x_type):
        super().check_exact(x_type)
        require_width(self.name, "accum", self.accum_type)
        if self.io == "stream" and self.padded:
            raise UnsupportedError(f"Layer {self.name!r}: hls4ml's io_stream pooling takes no padding.")

    def _windows(self, x):
        """``(rows, out pixels, window, channels)``."""
        n_pixels = self.in_height * self.in_width
        x = x.reshape(x.shape[0], n_pixels, self.n_chan)
        if self.padded:
            fill = pad_value(self.data_type) if self.pool_op == "max" else 0.0
            x = np.concatenate([x, np.full((x.shape[0], 1, self.n_chan), fill)], axis=1)
        return x[:, self.index, :]

    def compute(self, x):
        w = self._windows(x)
        acc = self.accum_type
        if self.io == "stream":
            w = acc.quantize(w)
            if self.pool_op == "max":
                y = w.max(axis=2)
            else:
                y = divide(tree_sum(np.moveaxis(w, 2, -1), acc), acc, self.window_size)
        elif self.pool_op == "max":
            y = acc.quantize(w.max(axis=2))
        else:
            y = np.zeros(w.shape[:2] + w.shape[3:])
            for k in range(w.shape[2]):
                y = acc.quantize(y + w[:, :, k, :])
            y = divide(y, acc, self.divisor[None, :, None])
        return y.reshape(x.shape[0], -1)

    @classmethod
    def price(cls, spec, arrays, cost):
        geometry = {key: cls.decoded(spec, key) for key in GEOMETRY}
        return cost.pooling(geometry, pool_op=cls.decoded(spec, "pool_op"), io=cls.decoded(spec, "io"),
                            accum_type=cls.decoded(spec, "accum_type"), result_type=cls.decoded(spec, "result_type"))


@register_op
class GlobalPooling(ByDimension, Op):
    """Max or average over the whole image or sequence, per channel."""

    ops = ("global_pooling1d", "global_pooling2d")
    functions = ("global_pooling1d_cl", "global_pooling2d_cl")
    out_shape = ("n_chan",)
    fields = {"n_pixels": Field(INT), "n_chan": Field(INT), "pool_op": Field(STR), "accum_type": Field(TYPE),
              "io": Field(STR, "parallel")}

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        config = ctx.config(call)
        n_pixels = int(config["n_in"]) if "1d" in call.func else int(config["in_height"]) * int(config["in_width"])
        spec.update(n_pixels=n_pixels, n_chan=int(config["n_filt"]), pool_op=_pool_op(config, call.name),
                    accum_type=ctx.config_type(call, "accum_t"),
                    io="stream" if ctx.is_stream(call.targs[0]) else "parallel")
        return spec

    def check_exact(self, x_type):
        super().check_exact(x_type)
        require_width(self.name, "accum", self.accum_type)

    def compute(self, x):
        x = x.reshape(x.shape[0], self.n_pixels, self.n_chan)
        acc = self.accum_type
        if self.io == "stream":
            x = acc.quantize(x)
            if self.pool_op == "max":
                return np.maximum(x.max(axis=1), acc.min)
        elif self.pool_op == "max":
            return acc.quantize(x.max(axis=1))
        y = np.zeros((x.shape[0], self.n_chan))
        for k in range(self.n_pixels):
            y = acc.quantize(y + x[:, k, :])
        return divide(y, acc, self.n_pixels)

    @classmethod
    def price(cls, spec, arrays, cost):
        n = cls.decoded(spec, "n_pixels")
        geometry = {"in_height": 1, "in_width": n, "n_chan": cls.decoded(spec, "n_chan"), "filt_height": 1,
                    "filt_width": n, "stride_height": 1, "stride_width": n, "pad_top": 0, "pad_bottom": 0,
                    "pad_left": 0, "pad_right": 0, "out_height": 1, "out_width": 1}
        return cost.pooling(geometry, pool_op=cls.decoded(spec, "pool_op"), io=cls.decoded(spec, "io"),
                            accum_type=cls.decoded(spec, "accum_type"), result_type=cls.decoded(spec, "result_type"))
