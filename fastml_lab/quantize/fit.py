"""Does a model fit its board? Multiplications, non-zero weights, EBOPs and a first DSP/LUT estimate.

The budget is a board's resources from the board table (:mod:`fastml_lab.boards`): the PYNQ-Z2 by
default, the ``board`` named, or the board an exported project was made for.

This is an **estimate** made before any synthesis, from the dense layers alone. The model:

* A multiplication exists for every non-zero weight whose input has at least one bit. Its operand
  widths are the input's type width and the weight's *significant* width: the bits between the
  weight's highest and lowest set bit, plus a sign bit (a constant ``0.75`` costs 3 bits whatever
  its type; zero costs nothing). So the estimate reads the same from a Keras model, a project or
  a Firmware.
* **EBOPs** (effective bit operations, as in HGQ): the sum over multiplications of weight width
  times input width.
* A multiplication whose operands are both at least :data:`DSP_MIN_BITS` wide goes to DSP48E1
  slices (25 x 18 bits each, more for wider products); narrower ones are built from LUTs at
  :data:`LUT_PER_BIT_PRODUCT` LUT per bit product (HGQ's measurement: EBOPs ~ LUT + 55 DSP).
  With 9 bits, the float jet MLP at ``ap_fixed<16,6>`` comes to about 1,460 DSP, near the 1,502
  published for the hls4ml tutorial's model; its LUTs come out about 3 times the published
  101,839, since multiplying by a constant costs less than a LUT per bit product. For narrow
  quantized models, which the estimate is for, the published 6-bit, 75%-pruned model (42,160 LUT,
  34 DSP) is of the size this estimate gives such a model.
* With a reuse factor R, each layer's DSPs are shared R times (divided by R, rounded up). LUT
  multipliers are not divided: sharing them adds multiplexers, and the estimate stays on the safe side.
* Not counted: adders, registers, the activation and softmax tables, control logic, the AXI/DMA
  infrastructure. Synthesis (``fastml-lab synth``) gives the real figures.

The arithmetic is numpy only (:func:`estimate`); :func:`fit_estimate` reads the model first.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..boards import DEFAULT_BOARD, DEFAULT_PRECISION, get_board
from ..exceptions import ConfigError
from .operands import Operands, operands_of

__all__ = ["Budget", "PYNQ_Z2", "DSP_MIN_BITS", "LUT_PER_BIT_PRODUCT", "FitEstimate", "fit_estimate",
           "estimate", "significant_bits"]


@dataclass(frozen=True)
class Budget:
    """The resources of one FPGA board that the estimate compares with."""

    board: str
    part: str
    dsp: int
    lut: int

    @classmethod
    def of(cls, board) -> "Budget":
        """The budget of a board of the table (a :class:`~fastml_lab.boards.Board` or its name)."""
        board = get_board(board) if isinstance(board, str) else board
        return cls(board=board.title, part=board.part, dsp=board.resources.dsp, lut=board.resources.lut)


#: The PYNQ-Z2's Zynq xc7z020: 220 DSP48E1 slices, 53,200 LUTs (from the board table).
PYNQ_Z2 = Budget.of("pynq-z2")
#: Both operands at least this wide: the product goes to DSP48E1 slices.
DSP_MIN_BITS = 9
#: The DSP48E1 multiplier's operand widths.
DSP_WIDTHS = (25, 18)
#: LUTs per bit product of a multiplication built in the fabric.
LUT_PER_BIT_PRODUCT = 1.0
KIND = "estimate"


@dataclass
class FitEstimate:
    """Resource estimate of one model against a board's budget (see the module docstring)."""

    source: str
    reuse_factor: int
    layers: list = field(default_factory=list)
    multiplications: dict = field(default_factory=dict)
    nonzero_weights: int = 0
    weights: int = 0
    ebops: int = 0
    dsp: int = 0
    lut: int = 0
    budget: Budget = PYNQ_Z2

    @property
    def fits(self) -> bool:
        """Both the DSP and the LUT estimate are within the budget."""
        return self.dsp <= self.budget.dsp and self.lut <= self.budget.lut

    @property
    def n_multiplications(self) -> int:
        return sum(self.multiplications.values())

    def to_dict(self) -> dict:
        return {
            "kind": KIND, "source": self.source, "reuse_factor": self.reuse_factor,
            "budget": {"board": self.budget.board, "part": self.budget.part,
                       "dsp": self.budget.dsp, "lut": self.budget.lut},
            "dsp": self.dsp, "lut": self.lut, "fits": self.fits, "ebops": self.ebops,
            "multiplications": self.n_multiplications, "multiplications_by_width": dict(self.multiplications),
            "nonzero_weights": self.nonzero_weights, "weights": self.weights, "layers": self.layers,
            "model": {"dsp_min_bits": DSP_MIN_BITS, "lut_per_bit_product": LUT_PER_BIT_PRODUCT,
                      "counted": "dense-layer multiplications only"},
        }

    def summary(self) -> str:
        """A short table: per layer, then the totals against the budget."""
        head = (f"Resource estimate (before synthesis; multiplications only) for {self.budget.board} "
                f"({self.budget.part}), reuse factor {self.reuse_factor}, from {self.source}")
        rows = [("layer", "mults", "zero w", "EBOPs", "DSP", "LUT")]
        rows += [(r["name"], f"{r['multiplications']:,}", f"{r['zero_weights']:,}", f"{r['ebops']:,}",
                  f"{r['dsp']:,}", f"{r['lut']:,}") for r in self.layers]
        rows.append(("total", f"{self.n_multiplications:,}", f"{self.weights - self.nonzero_weights:,}",
                     f"{self.ebops:,}", f"{self.dsp:,}", f"{self.lut:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [head] + ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                                    enumerate(zip(row, widths))) for row in rows]
        lines.append(f"DSP {self.dsp:,} / {self.budget.dsp:,} ({self.dsp / self.budget.dsp:.0%}), "
                     f"LUT {self.lut:,} / {self.budget.lut:,} ({self.lut / self.budget.lut:.0%}): "
                     f"{'fits' if self.fits else 'does not fit'} (estimate)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"FitEstimate(dsp={self.dsp}, lut={self.lut}, ebops={self.ebops}, fits={self.fits}, "
                f"estimate for {self.budget.board})")


def fit_estimate(model, reuse_factor: int | None = None, budget: Budget | None = None,
                 precision: str = DEFAULT_PRECISION, board: str | None = None) -> FitEstimate:
    """Estimate the resources of a Keras model, a ``.keras`` file, an exported project or a Firmware.

    The budget is ``budget`` if given, else that of ``board`` (a name of the board table), else
    the board of an exported project (or the board with its part), else the PYNQ-Z2.
    ``reuse_factor`` defaults to the project's, else 1. ``precision`` is the type assumed for a
    float Keras model (weights rounded to it, inputs that wide); quantized models bring their own.
    """
    if budget is not None and board is not None:
        raise ConfigError("Give either a budget or a board, not both.")
    if budget is None:
        budget = Budget.of(board if board is not None else (_project_board(model) or DEFAULT_BOARD))
    return estimate(operands_of(model, precision), reuse_factor, budget)


def _project_board(model):
    """The board an exported project (object or folder) was made for, or None for anything else."""
    from pathlib import Path

    from ..project import PROJECT_FILE, Project

    if isinstance(model, (str, Path)) and (Path(model) / PROJECT_FILE).is_file():
        model = Project.open(model)
    return model.budget_board if isinstance(model, Project) else None


def estimate(operands: Operands, reuse_factor: int | None = None, budget: Budget = PYNQ_Z2) -> FitEstimate:
    """The estimate from already-read operands (numpy only)."""
    reuse = reuse_factor if reuse_factor is not None else (operands.reuse_factor or 1)
    if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
        raise ConfigError(f"reuse_factor must be an integer >= 1; got {reuse!r}.")
    result = FitEstimate(source=operands.source, reuse_factor=reuse, budget=budget)
    by_width: Counter = Counter()
    for layer in operands.layers:
        row = _layer_cost(layer.name, layer.weights, layer.input_bits, reuse, by_width)
        result.layers.append(row)
        result.weights += int(layer.weights.size)
        result.nonzero_weights += int(np.count_nonzero(layer.weights))
        result.ebops += row["ebops"]
        result.dsp += row["dsp"]
        result.lut += row["lut"]
    result.multiplications = {f"{w}x{a}": n for (w, a), n in sorted(by_width.items())}
    return result


def _layer_cost(name: str, weights: np.ndarray, input_bits: np.ndarray, reuse: int, by_width: Counter) -> dict:
    w_bits = significant_bits(weights)
    a_bits = np.broadcast_to(np.asarray(input_bits, dtype=np.int64)[:, None], w_bits.shape)
    exists = (w_bits > 0) & (a_bits > 0)
    products = np.where(exists, w_bits * a_bits, 0)
    on_dsp = exists & (w_bits >= DSP_MIN_BITS) & (a_bits >= DSP_MIN_BITS)
    wide, narrow = np.maximum(w_bits, a_bits)[on_dsp], np.minimum(w_bits, a_bits)[on_dsp]
    slices = int((np.ceil(wide / DSP_WIDTHS[0]) * np.ceil(narrow / DSP_WIDTHS[1])).sum())
    by_width.update(zip(w_bits[exists].tolist(), a_bits[exists].tolist()))
    return {"name": name, "n_in": int(weights.shape[0]), "n_out": int(weights.shape[1]),
            "multiplications": int(exists.sum()), "zero_weights": int((weights == 0).sum()),
            "ebops": int(products.sum()), "dsp_multiplications": int(on_dsp.sum()),
            "dsp": math.ceil(slices / reuse),
            "lut": int(math.ceil(products[exists & ~on_dsp].sum() * LUT_PER_BIT_PRODUCT))}


def significant_bits(values) -> np.ndarray:
    """Per value: the bits from its highest to its lowest set bit, plus a sign bit; 0 for zero.

    ``0.75`` (binary 0.11) -> 3, ``-4`` -> 2, ``0.1015625`` (binary 0.0001101) -> 5.
    """
    values = np.abs(np.asarray(values, dtype=np.float64))
    mantissa, _ = np.frexp(values)  # values = mantissa * 2**e, mantissa in [0.5, 1)
    code = (mantissa * 2.0 ** 53).astype(np.int64)  # the 53-bit integer significand
    lowest = code & -code
    trailing = np.log2(np.where(code > 0, lowest, 1)).astype(np.int64)
    return np.where(code > 0, 53 - trailing + 1, 0)
