"""One pipeline stage of da4ml's RTL: its list of adder-level operations, run as the Verilog does.

da4ml turns a quantized network into a program of small fixed-point operations (shift-and-add,
ReLU, re-quantization, constants, multiplexers, products), cuts it into pipeline stages and writes
each stage as one Verilog module (``PRJ/rtl/src/<top>_stage<k>.v``); it saves the same program in
``PRJ/rtl/model/pipeline.json``, which the RTL export reads into the firmware description: one
``dais_stage`` layer per stage, each holding its operations as rows of integers. Running them in
order over a batch gives what the Verilated RTL gives, value for value (``fastml-lab check``).

Values are float64 multiples of each operation's step; every operation's width is checked to be
at most 53 bits, so each one is exact. Operations are grouped into levels (an operation's operands
come from earlier levels) and each level's operations of one kind run as one numpy expression.

Numpy only: this module runs on the board.
"""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ...fixed import MAX_EXACT_WIDTH, FixedType
from ..registry import FLOAT, INT, Field, Op, register_op

#: Columns of the ``code`` array: one row per operation.
CODE_COLUMNS = ("opcode", "id0", "id1", "data", "k", "i", "f", "step_exp")
#: da4ml's opcodes this emulator runs (``da4ml.types.Op``): input copy, add, subtract, ReLU of
#: (minus) x, quantize (minus) x, add a constant, a constant, the MSB multiplexer, a product.
SUPPORTED_OPCODES = {-1: "input", 0: "add", 1: "subtract", 2: "relu", -2: "relu of minus",
                     3: "quantize", -3: "quantize minus", 4: "add constant", 5: "constant",
                     6: "msb mux", -6: "msb mux of minus", 7: "multiply"}
#: Events per pass: the stage's buffer holds one value per operation and event.
PASS_ROWS = 512


def container_type(kifs) -> FixedType:
    """The one type that holds every value of ``kifs`` (rows of keep-negative, integer, fractional
    bits, as da4ml counts them): what the Verilog wrapper pads each value to."""
    kifs = np.asarray(kifs, dtype=np.int64).reshape(-1, 3)
    k, i, f = (int(v) for v in kifs.max(axis=0)) if len(kifs) else (0, 0, 0)
    width = max(1, k + i + f)
    return FixedType(width, width - f, signed=bool(k), rounding="TRN", overflow="WRAP")


def _wrap(v, k, i, f):
    """da4ml's quantize with truncation and wrap-around to ``k`` sign, ``i`` integer, ``f`` fractional bits."""
    eps = np.exp2(-f)
    bits = np.exp2(k + i + f)
    bias = np.where(k > 0, bits / 2, 0.0)
    return eps * (np.mod(np.floor(v / eps) + bias, bits) - bias)


@register_op
class DaisStage(Op):
    ops = ("dais_stage",)
    fields = {"lut_cost": Field(FLOAT), "register_bits": Field(INT)}
    arrays = {"code": None, "inp_shifts": None, "out_idxs": None, "out_shifts": None, "out_negs": None}

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        code = np.asarray(self.code, dtype=np.int64).reshape(-1, len(CODE_COLUMNS))
        unknown = sorted(set(np.unique(code[:, 0]).tolist()) - set(SUPPORTED_OPCODES))
        if unknown:
            raise UnsupportedError(
                f"Stage {self.name!r} uses da4ml opcode(s) {unknown}, which this emulator does not run "
                f"(it runs {', '.join(sorted(set(SUPPORTED_OPCODES.values())))}).")
        self._code = code
        self._plan = self._levels(code)

    # ------------------------------------------------------------------ the program
    @staticmethod
    def _levels(code: np.ndarray) -> list:
        """``[(opcode, rows, columns...)]`` in an order where every operand is computed first."""
        n = len(code)
        opcode, id0, id1, data = code[:, 0], code[:, 1], code[:, 2], code[:, 3]
        level = np.zeros(n, dtype=np.int64)
        for row in range(n):
            op = opcode[row]
            if op in (-1, 5):
                continue
            deps = [id0[row]]
            if op in (0, 1, 7, 6, -6):
                deps.append(id1[row])
            if op in (6, -6):
                deps.append(data[row] & 0xFFFFFFFF)
            level[row] = 1 + max(level[d] for d in deps)
        plan = []
        for lev in np.unique(level):
            at = level == lev
            for op in np.unique(opcode[at]):
                plan.append((int(op), np.flatnonzero(at & (opcode == op))))
        return plan

    def check_exact(self, x_type):
        code = self._code
        widths = code[:, 4] + code[:, 5] + code[:, 6]
        if len(widths) and widths.max() > MAX_EXACT_WIDTH:
            row = int(widths.argmax())
            raise UnsupportedError(f"Stage {self.name!r}: operation {row} is {int(widths[row])} bits wide; exact "
                                   f"emulation holds at most {MAX_EXACT_WIDTH} bits.")

    # ------------------------------------------------------------------ running
    def __call__(self, x):
        return self.compute(x)

    def cast(self, values):
        return values

    def compute(self, x):
        x = np.asarray(x, dtype=np.float64)
        out = np.empty((x.shape[0], len(self.out_idxs)), dtype=np.float64)
        for start in range(0, x.shape[0], PASS_ROWS):
            out[start:start + PASS_ROWS] = self._pass(x[start:start + PASS_ROWS])
        return out

    def _pass(self, x: np.ndarray) -> np.ndarray:
        code = self._code
        buf = np.zeros((len(code), x.shape[0]), dtype=np.float64)
        inputs = (x * np.exp2(np.asarray(self.inp_shifts, dtype=np.float64))).T
        for op, rows in self._plan:
            c = code[rows]
            a, b, data = c[:, 1], c[:, 2], c[:, 3]
            k, i, f = (c[:, col, None].astype(np.float64) for col in (4, 5, 6))
            if op == -1:
                buf[rows] = _wrap(inputs[a], k, i, f)
            elif op in (0, 1):
                shifted = buf[b] * np.exp2(data.astype(np.float64))[:, None]
                buf[rows] = buf[a] + shifted if op == 0 else buf[a] - shifted
            elif op in (2, -2):
                v = np.maximum(buf[a] if op == 2 else -buf[a], 0.0)
                v = np.floor(v * np.exp2(f)) * np.exp2(-f)
                buf[rows] = np.mod(v, np.exp2(i))
            elif op in (3, -3):
                buf[rows] = _wrap(buf[a] if op == 3 else -buf[a], k, i, f)
            elif op == 4:
                buf[rows] = buf[a] + (data.astype(np.float64) * np.exp2(c[:, 7].astype(np.float64)))[:, None]
            elif op == 5:
                buf[rows] = (data.astype(np.float64) * np.exp2(c[:, 7].astype(np.float64)))[:, None]
            elif op in (6, -6):
                cond_id = data & 0xFFFFFFFF
                shift = ((data >> 32) & 0xFFFFFFFF).astype(np.int64)
                shift = np.where(shift >= 1 << 31, shift - (1 << 32), shift).astype(np.float64)
                other = (buf[b] if op == 6 else -buf[b]) * np.exp2(shift)[:, None]
                cond = buf[cond_id]
                ck, ci = code[cond_id, 4][:, None], code[cond_id, 5][:, None].astype(np.float64)
                take_first = np.where(ck > 0, cond < 0, cond >= np.exp2(ci - 1))
                buf[rows] = np.where(take_first, buf[a], other)
            elif op == 7:
                buf[rows] = buf[a] * buf[b]
        idx = np.asarray(self.out_idxs, dtype=np.int64)
        scale = np.exp2(np.asarray(self.out_shifts, dtype=np.float64))
        sign = np.where(np.asarray(self.out_negs) != 0, -1.0, 1.0)
        live = idx >= 0
        values = np.zeros((len(idx), x.shape[0]))
        values[live] = buf[idx[live]] * (scale * sign)[live, None]
        return values.T

    # ------------------------------------------------------------------ pricing
    @classmethod
    def output_widths(cls, spec, arrays, widths):
        code = np.asarray(arrays[f"{spec['name']}/code"], dtype=np.int64).reshape(-1, len(CODE_COLUMNS))
        idx = np.asarray(arrays[f"{spec['name']}/out_idxs"], dtype=np.int64)
        return np.where(idx >= 0, code[idx, 4] + code[idx, 5] + code[idx, 6], 0)

    @classmethod
    def price(cls, spec, arrays, cost):
        """da4ml's own estimate of the stage: LUTs from its adders' cost, the stage's registers as
        flip-flops, no DSPs (constant products are shift-and-add), one clock cycle."""
        return cost.given(lut=round(float(spec["lut_cost"])), ff=int(spec["register_bits"]), latency=1,
                          detail="da4ml's estimate")
