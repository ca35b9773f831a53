"""hls4ml's convolutions (``nnet::conv_1d_cl``, ``nnet::conv_2d_cl``) and io_stream's zero padding.

Both I/O styles compute, for each output pixel, the dense product of its window (kernel rows x
kernel columns x channels, row-major, as Keras orders the kernel) with the ``(window, n_filt)``
weight matrix: ``acc = bias; acc += (accum_t)(x_i * w_i)``, then the cast to ``res_t``
(``conv_2d_latency_cl`` on an im2col buffer in io_parallel; ``compute_output_buffer_2d`` on the
line buffer's window in io_stream). io_parallel pads inside the convolution, with zeros;
io_stream pads in a layer of its own (``zeropad2d_cl``) and convolves without padding. The output
order is row-major (out row, out column, filter) in both.
"""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ..registry import INT, STR, TYPE, Field, Op, register_op
from .dense import Dense

#: Values (rows x window) of one gathered block of windows, before it is split further.
MAX_WINDOW_ELEMENTS = 1 << 22

#: The geometry of a sliding-window layer, as the config structs name it (1-D layers have no
#: height: it reads as 1, with no stride or padding).
GEOMETRY = ("in_height", "in_width", "n_chan", "filt_height", "filt_width", "stride_height", "stride_width",
            "pad_top", "pad_bottom", "pad_left", "pad_right", "out_height", "out_width")
#: io_stream zero padding's geometry (no window: a 1x1 one at stride 1).
PAD_GEOMETRY = ("in_height", "in_width", "n_chan", "pad_top", "pad_bottom", "pad_left", "pad_right", "out_height",
                "out_width")
_ONE_D = {"in_height": 1, "filt_height": 1, "stride_height": 1, "pad_top": 0, "pad_bottom": 0, "out_height": 1}


class ByDimension:
    """An op with a 1-D and a 2-D flavour, ``ops = (name_1d, name_2d)``, told apart by hls4ml's function name."""

    ops: tuple = ()
    #: The fields whose product is the number of values the layer passes on (each of ``res_t``).
    out_shape: tuple = ("out_height", "out_width", "n_chan")

    @classmethod
    def op_name(cls, call) -> str:
        return cls.ops[0] if "1d" in call.func else cls.ops[1]

    @classmethod
    def output_widths(cls, spec, arrays, widths):
        n = 1
        for key in cls.out_shape:
            n *= cls.decoded(spec, key)
        return np.full(n, cls.decoded(spec, "result_type").width)


def read_geometry(config: dict, keys=GEOMETRY, aliases=None) -> dict:
    """The sliding-window geometry of a config struct; a 1-D layer's height entries are 1 (or 0)."""
    aliases = aliases or {}
    found = {}
    for key in keys:
        source = aliases.get(key, key)
        if source in config:
            found[key] = int(config[source])
        elif key in _ONE_D:
            found[key] = _ONE_D[key]
        else:
            raise KeyError(key)
    return found


def window_index(g: dict, n_chan: int, pad_index: int) -> np.ndarray:
    """``(out pixels, window)`` indices into a flat (row, column, channel) input: for each output
    pixel in row-major order, its window's values (kernel row, kernel column, channel); positions in
    the padding get ``pad_index``."""
    rows = np.arange(g["out_height"])[:, None] * g["stride_height"] - g["pad_top"] + np.arange(g["filt_height"])
    cols = np.arange(g["out_width"])[:, None] * g["stride_width"] - g["pad_left"] + np.arange(g["filt_width"])
    r = rows[:, None, :, None, None]
    c = cols[None, :, None, :, None]
    ch = np.arange(n_chan)[None, None, None, None, :]
    flat = (r * g["in_width"] + c) * n_chan + ch
    inside = (r >= 0) & (r < g["in_height"]) & (c >= 0) & (c < g["in_width"])
    index = np.where(inside, flat, pad_index)
    return index.reshape(g["out_height"] * g["out_width"], -1).astype(np.int64)


def geometry_fields() -> dict:
    return {key: Field(INT) for key in GEOMETRY}


@register_op
class Conv(ByDimension, Op):
    """A 1-D or 2-D convolution: a dense layer applied to each output pixel's window."""

    ops = ("conv1d", "conv2d")
    functions = ("conv_1d_cl", "conv_2d_cl", "pointwise_conv_1d_cl", "pointwise_conv_2d_cl")
    fields = {
        **geometry_fields(), "n_filt": Field(INT),
        "n_in": Field(INT), "n_out": Field(INT),
        "weight_type": Field(TYPE), "bias_type": Field(TYPE), "accum_type": Field(TYPE),
        "strategy": Field(STR, "latency"), "reuse_factor": Field(INT, 1), "io": Field(STR, "parallel"),
    }
    arrays = {"weight": "weight_type", "bias": "bias_type"}
    weight_matrix = "weight"
    out_shape = ("out_height", "out_width", "n_filt")

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        config = ctx.config(call)
        mult = ctx.configs.get(config.get("type:mult_config", ""), {})
        if mult.get("product") not in (None, "mult"):
            raise UnsupportedError(
                f"Layer {call.name!r} uses the '{mult['product']}' product (binary/ternary weights), which the "
                "emulator does not implement; use weights of at least 3 bits.")
        geometry = read_geometry(config)
        if int(config.get("dilation", 1)) != 1 or int(config.get("dilation_height", 1)) != 1 \
                or int(config.get("dilation_width", 1)) != 1:
            raise UnsupportedError(f"Layer {call.name!r} is a dilated convolution, which the emulator does not "
                                   "implement; use dilation_rate 1.")
        strategy = config["strategy"].replace("nnet::", "")
        if strategy not in ("latency", "resource"):
            raise UnsupportedError(f"Layer {call.name!r} uses the '{strategy}' strategy; the emulator supports "
                                   "'latency' and 'resource'.")
        n_filt = int(config["n_filt"])
        n_in = geometry["filt_height"] * geometry["filt_width"] * geometry["n_chan"]
        wtype, btype = ctx.config_type(call, "weight_t"), ctx.config_type(call, "bias_t")
        weights = ctx.weights(call.args[2], wtype)
        # The Resource kernels read a transposed (n_filt, window) weight array.
        weights = weights.reshape(n_filt, n_in).T if strategy == "resource" else weights.reshape(n_in, n_filt)
        ctx.arrays[f"{call.name}/weight"] = np.ascontiguousarray(weights)
        ctx.arrays[f"{call.name}/bias"] = ctx.weights(call.args[3], btype)
        spec.update(geometry, n_filt=n_filt, n_in=n_in, n_out=n_filt, weight_type=wtype, bias_type=btype,
                    accum_type=ctx.config_type(call, "accum_t"), strategy=strategy,
                    reuse_factor=int(config["reuse_factor"]),
                    io="stream" if ctx.is_stream(call.targs[0]) else "parallel")
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        geometry = {key: getattr(self, key) for key in GEOMETRY}
        self.n_pixels = self.out_height * self.out_width
        self.n_inputs = self.in_height * self.in_width * self.n_chan
        self.index = window_index(geometry, self.n_chan, self.n_inputs)
        self.padded = bool((self.index == self.n_inputs).any())
        inner = {key: spec[key] for key in ("name", "data_type", "result_type", "weight_type", "bias_type",
                                            "accum_type", "n_in", "n_out")}
        inner.update(op="dense", strategy=self.strategy, reuse_factor=self.reuse_factor)
        self.kernel = Dense(inner, arrays)

    def check_exact(self, x_type):
        self.kernel.check_exact(x_type)

    def windows(self, x: np.ndarray) -> np.ndarray:
        """``(rows * out pixels, window)``: each output pixel's window, padding as zeros."""
        if self.padded:
            x = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
        return x[:, self.index].reshape(-1, self.n_in)

    def _blocks(self, x, per_window):
        """``per_window`` over the windows of ``x``, block by block, as ``(rows, out pixels * n_filt)``."""
        step = max(1, MAX_WINDOW_ELEMENTS // max(1, self.index.size))
        out = np.empty((x.shape[0], self.n_pixels * self.n_filt))
        for s in range(0, x.shape[0], step):
            part = x[s:s + step]
            out[s:s + part.shape[0]] = per_window(self.windows(part)).reshape(part.shape[0], -1)
        return out

    def compute(self, x):
        return self._blocks(x, self.kernel.compute)

    def __call__(self, x):
        if self.kernel._scaled is not None:
            return self._by_filters(x, relu=False)
        return self._blocks(x, self.kernel)

    def fused_with(self, following):
        fused = self.kernel.fused_with(following)
        if fused is None:
            return None
        if self.kernel._scaled is not None:
            return lambda x: self._by_filters(x, relu=True)
        return lambda x: self._blocks(x, fused)

    def _by_filters(self, x, relu: bool):
        """The kernel's one-matrix-product path (exact sums on the result's grid, see
        :class:`~fastml_lab.firmware.ops.dense.Dense`) with the rows last: whole rows of values are
        gathered into the windows and the filters multiply ``(window, pixels x rows)`` at once."""
        w, b = self.kernel._scaled
        rows = x.shape[0]
        xt = np.empty((self.n_inputs + 1, rows))
        xt[:-1] = x.T
        xt[-1] = 0.0
        sums = w.T @ xt[self.index.T].reshape(self.n_in, -1)
        sums += b[:, None]
        out = np.ascontiguousarray(sums.reshape(self.n_filt, self.n_pixels, rows).transpose(2, 1, 0))
        return self.kernel._cast_in_place(out.reshape(rows, -1), relu=relu)

    # ------------------------------------------------------------------ pricing
    @classmethod
    def price(cls, spec, arrays, cost):
        geometry = {key: cls.decoded(spec, key) for key in GEOMETRY}
        types = {key: cls.decoded(spec, key) for key in ("weight_type", "accum_type", "result_type")}
        return cost.conv(cls.weights(spec, arrays), geometry, strategy=cls.decoded(spec, "strategy"),
                         reuse=cls.decoded(spec, "reuse_factor"), io=cls.decoded(spec, "io"), **types)


@register_op
class ZeroPad(ByDimension, Op):
    """io_stream's zero padding before a convolution: the image framed with zeros, cast to ``res_t``."""

    ops = ("zeropad1d", "zeropad2d")
    functions = ("zeropad1d_cl", "zeropad2d_cl")
    fields = {key: Field(INT) for key in PAD_GEOMETRY}

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        spec.update(read_geometry(ctx.config(call), PAD_GEOMETRY))
        return spec

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.n_inputs = self.in_height * self.in_width * self.n_chan
        geometry = {key: getattr(self, key) for key in PAD_GEOMETRY}
        geometry.update(filt_height=1, filt_width=1, stride_height=1, stride_width=1)
        self.index = window_index(geometry, self.n_chan, self.n_inputs).reshape(-1)

    def compute(self, x):
        x = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
        return x[:, self.index]

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.stream_padding(cls.decoded(spec, "result_type"),
                                   cls.decoded(spec, "out_height") * cls.decoded(spec, "out_width"),
                                   cls.decoded(spec, "n_chan"))
