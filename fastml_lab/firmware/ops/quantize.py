"""HGQ2's per-element quantizers, which hls4ml writes as generated functions in ``nnet_code_gen.h``."""

from __future__ import annotations

import re

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import FixedType
from ..registry import TYPES, Field, Op, register_op, require_width

_MASK_FN_RE = re.compile(r"void\s+(?P<name>\w+)\s*\(\s*input_t\s*\*\s*inp\s*,\s*output_t\s*\*\s*out\s*\)\s*\{(?P<body>.*?)\n\}", re.S)
_MASK_LINE_RE = re.compile(r"out\[(?P<out>\d+)\]\s*=\s*(?:(?P<type>ap_u?fixed<[^>]*>)\(inp\[(?P<inp>\d+)\]\)|0)\s*;")
GENERATED_HEADER = "nnet_utils/nnet_code_gen.h"


@register_op
class Quantize(Op):
    """Element ``i`` cast to its own type (type index -1: zero bits, the value 0), then to the result."""

    ops = ("quantize",)
    fields = {"element_types": Field(TYPES)}
    arrays = {"type_index": None}
    also_reads = f"HGQ2's per-element quantizers generated in {GENERATED_HEADER}"

    @classmethod
    def output_widths(cls, spec, arrays, widths):
        """Each element's own width; 0 for an element quantized to zero bits (type index -1)."""
        element = np.array([t.width for t in cls.decoded(spec, "element_types")] + [0])
        return element[np.asarray(arrays[f"{spec['name']}/type_index"])]

    @classmethod
    def price(cls, spec, arrays, cost):
        return cost.wiring()

    @classmethod
    def claims(cls, call, ctx):
        return call.func in cls.generated_functions(ctx)

    @classmethod
    def generated_functions(cls, ctx) -> dict:
        """``{function: [type text or None per element]}`` from the generated header (memoised).

        Each line is ``out[i] = ap_fixed<...>(inp[i]);`` or, for an element quantized to zero
        bits, ``out[i] = 0;``.
        """
        if "quantize" not in ctx.cache:
            ctx.cache["quantize"] = _parse_functions(ctx.text(GENERATED_HEADER) or "",
                                                      str(ctx.firmware_dir / GENERATED_HEADER))
        return ctx.cache["quantize"]

    @classmethod
    def read(cls, call, ctx):
        elements = cls.generated_functions(ctx)[call.func]
        kinds = sorted({t for t in elements if t is not None})
        index = {t: k for k, t in enumerate(kinds)}
        ctx.arrays[f"{call.name}/type_index"] = np.array([index[t] if t else -1 for t in elements], dtype=np.int64)
        return {"data_type": ctx.fixed(call.targs[0]), "result_type": ctx.fixed(call.targs[1]),
                "element_types": [FixedType.parse(t.replace(" ", "")) for t in kinds]}

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.groups = [(t, np.flatnonzero(self.type_index == k)) for k, t in enumerate(self.element_types)]

    def check_exact(self, x_type):
        super().check_exact(x_type)
        for t, _ in self.groups:
            require_width(self.name, "element", t)

    def compute(self, x):
        y = np.zeros_like(x)
        for t, cols in self.groups:
            y[:, cols] = t.quantize(x[:, cols])
        return y

    def counting(self, x):
        overflows = sum(int(t.overflows(x[:, cols]).sum()) for t, cols in self.groups)
        return self(x), overflows


def _parse_functions(text: str, source: str) -> dict:
    functions = {}
    for m in _MASK_FN_RE.finditer(text):
        elements = {}
        for line in m["body"].splitlines():
            line = line.strip()
            if not line.startswith("out["):
                continue
            parsed = _MASK_LINE_RE.fullmatch(line)
            if not parsed or (parsed["inp"] is not None and parsed["inp"] != parsed["out"]):
                raise UnsupportedError(f"Cannot read the quantizer line {line!r} in {source}.")
            elements[int(parsed["out"])] = parsed["type"]
        if sorted(elements) != list(range(len(elements))):
            raise UnsupportedError(f"The quantizer {m['name']!r} in {source} does not set every element once.")
        functions[m["name"]] = [elements[i] for i in range(len(elements))]
    return functions
