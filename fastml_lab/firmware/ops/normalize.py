"""hls4ml's batch normalisation (``nnet::normalize``): ``x * scale + bias`` per feature."""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import MAX_EXACT_WIDTH
from ..registry import TYPE, Field, Op, register_op


@register_op
class Normalize(Op):
    ops = ("normalize",)
    functions = ("normalize",)
    fields = {"scale_type": Field(TYPE), "bias_type": Field(TYPE)}
    arrays = {"scale": "scale_type", "bias": "bias_type"}

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.scale_and_shift(cls.decoded(spec, "result_type"), cls.decoded(spec, "scale_type"))

    @classmethod
    def read(cls, call, ctx):
        spec = super().read(call, ctx)
        config = ctx.config(call)
        stype, btype = ctx.config_type(call, "scale_t"), ctx.config_type(call, "bias_t")
        n_scale = int(config["n_in"]) if int(config["n_filt"]) in (-1, 4294967295) else int(config["n_filt"])
        ctx.arrays[f"{call.name}/scale"] = ctx.weights(call.args[2], stype)[:n_scale]
        ctx.arrays[f"{call.name}/bias"] = ctx.weights(call.args[3], btype)[:n_scale]
        spec.update(scale_type=stype, bias_type=btype)
        return spec

    def check_exact(self, x_type):
        super().check_exact(x_type)
        if x_type.width + self.scale_type.width + 1 > MAX_EXACT_WIDTH:
            raise UnsupportedError(f"Layer {self.name!r}: the batch-norm product is too wide to emulate exactly.")

    def compute(self, x):
        reps = x.shape[1] // self.scale.size
        return x * np.tile(self.scale, reps) + np.tile(self.bias, reps)
