"""Does a model fit its board? Multiplications, non-zero weights, EBOPs, and the hardware estimate.

The budget is a board's resources from the board table (:mod:`fastml_lab.boards`): the PYNQ-Z2 by
default, the ``board`` named, or the board an exported project was made for.

The DSP, LUT, FF and BRAM figures, the latency and the II are those of the one hardware estimate,
:func:`fastml_lab.estimate.estimate` (per layer, the Latency/Resource strategies, the board's
AXI-stream wrapper; checked against published synthesis points). :func:`fit_estimate` adds what
this module counts from the weights themselves:

* A multiplication exists for every non-zero weight whose input has at least one bit. Its operand
  widths are the input's type width and the weight's *significant* width: the bits between the
  weight's highest and lowest set bit, plus a sign bit (a constant ``0.75`` costs 3 bits whatever
  its type; zero costs nothing). So the counts read the same from a Keras model, a project or
  a Firmware.
* **EBOPs** (effective bit operations, as in HGQ): the sum over multiplications of weight width
  times input width. HGQ's rule of thumb: EBOPs ~ LUT + 55 DSP after place and route.

``fits``, ``dsp`` and ``lut`` are the figures the estimate's verdict compares with the budget:
after implementation (with the AXI DMA design's margin) for the PYNQ-Z2's flow, the C-synthesis
estimate elsewhere (``kind`` says which). :func:`estimate` also takes already-read operands alone
(dense layers, numpy): the cost model then prices each as a one-layer firmware description.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boards import DEFAULT_BOARD, DEFAULT_PRECISION, board_for_part, get_board
from ..estimate.model import C_SYNTHESIS, FLAVOURS, device_of, layer_costs, significant_bits
from ..exceptions import ConfigError
from ..fixed import FixedType
from ..options import check_reuse_factor
from ..project import PROJECT_FILE
from .operands import Operands, operands_of

__all__ = ["Budget", "PYNQ_Z2", "FitEstimate", "fit_estimate", "estimate", "significant_bits"]


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


#: The default board's budget (the PYNQ-Z2's), from the board table.
PYNQ_Z2 = Budget.of(DEFAULT_BOARD)
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
    #: The hardware estimate (:class:`fastml_lab.estimate.Estimate`) the figures come from, if any.
    hardware: object = None

    @property
    def fits(self) -> bool:
        """The hardware estimate's verdict (every resource, with the board design's margin); without
        one, the DSP and LUT figures against the budget."""
        if self.hardware is not None and self.hardware.fits is not None:
            return bool(self.hardware.fits)
        return self.dsp <= self.budget.dsp and self.lut <= self.budget.lut

    @property
    def kind(self) -> str:
        """What ``dsp`` and ``lut`` are: "after implementation" or "C-synthesis estimate"."""
        from ..estimate import C_SYNTHESIS

        return self.hardware.compared()[1] if self.hardware is not None else C_SYNTHESIS

    @property
    def ff(self):
        return None if self.hardware is None else self.hardware.compared()[0]["ff"]

    @property
    def bram_18k(self):
        return None if self.hardware is None else self.hardware.compared()[0]["bram_18k"]

    @property
    def latency_cycles(self):
        return None if self.hardware is None else self.hardware.latency_cycles

    @property
    def ii_cycles(self):
        return None if self.hardware is None else self.hardware.ii_cycles

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
            "figures_kind": self.kind, "ff": self.ff, "bram_18k": self.bram_18k,
            "latency_cycles": self.latency_cycles, "ii_cycles": self.ii_cycles,
            "hardware": None if self.hardware is None else self.hardware.to_dict(),
        }

    def summary(self) -> str:
        """A short table: per layer, then the totals against the budget."""
        head = (f"Resource estimate (before synthesis; {self.kind}) for {self.budget.board} "
                f"({self.budget.part}), reuse factor {self.reuse_factor}, from {self.source}")
        rows = [("layer", "mults", "zero w", "EBOPs", "DSP", "LUT")]
        rows += [(r["name"], f"{r['multiplications']:,}", f"{r['zero_weights']:,}", f"{r['ebops']:,}",
                  f"{r['dsp']:,}", f"{r['lut']:,}") for r in self.layers]
        rows.append(("total", f"{self.n_multiplications:,}", f"{self.weights - self.nonzero_weights:,}",
                     f"{self.ebops:,}", f"{self.dsp:,}", f"{self.lut:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [head] + ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                                    enumerate(zip(row, widths))) for row in rows]
        if self.hardware is not None:
            lines.append(f"(layer rows: {C_SYNTHESIS}; total: {self.kind}, the figures compared with the budget)")
        lines.append(f"DSP {self.dsp:,} / {self.budget.dsp:,} ({self.dsp / self.budget.dsp:.0%}), "
                     f"LUT {self.lut:,} / {self.budget.lut:,} ({self.lut / self.budget.lut:.0%}): "
                     f"{'fits' if self.fits else 'does not fit'} (estimate)")
        if self.hardware is not None:
            hw = self.hardware
            lines.append(f"latency {hw.latency_cycles} cycles ({hw.latency_ns:,.0f} ns), II {hw.ii_cycles} cycles "
                         f"({hw.events_per_s:,.0f} events/s) at {hw.clock_mhz:g} MHz; {hw.verdict()}")
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
    from ..estimate import estimate as hardware_estimate
    from ..train import load_model

    source = model
    if isinstance(model, (str, Path)) and not (Path(model) / PROJECT_FILE).is_file():
        source = load_model(model)  # read once for both the counts and the hardware estimate
    target = board_for_part(budget.part)
    hardware = hardware_estimate(source, board=target.name if target else None,
                                 part=None if target else budget.part, reuse_factor=reuse_factor,
                                 precision=None if _is_project_or_firmware(source) or _quantized(source) else precision)
    return estimate(operands_of(source, precision), reuse_factor, budget, hardware=hardware)


def _is_project_or_firmware(source) -> bool:
    return hasattr(source, "meta") or (hasattr(source, "description") and hasattr(source, "arrays")) or (
        isinstance(source, (str, Path)) and (Path(source) / PROJECT_FILE).is_file())


def _quantized(source) -> bool:
    return hasattr(source, "layers") and any(type(layer).__module__.startswith("hgq.") for layer in source.layers)


def _project_board(model):
    """The board an exported project (object or folder) was made for, or None for anything else."""
    from ..project import Project

    if isinstance(model, (str, Path)) and (Path(model) / PROJECT_FILE).is_file():
        model = Project.open(model)
    return model.budget_board if isinstance(model, Project) else None


def estimate(operands: Operands, reuse_factor: int | None = None, budget: Budget = PYNQ_Z2,
             hardware=None) -> FitEstimate:
    """The counts from already-read operands (numpy only); DSP and LUT from ``hardware`` (an
    :class:`~fastml_lab.estimate.Estimate` of the same model) or, for a layer it lacks, from the cost
    model pricing the layer alone (:func:`_one_layer_firmware`) on the budget's board or part, Latency strategy."""
    reuse = reuse_factor if reuse_factor is not None else (operands.reuse_factor or 1)
    check_reuse_factor(reuse)
    result = FitEstimate(source=operands.source, reuse_factor=reuse, budget=budget, hardware=hardware)
    from_hardware = {c.name: c for c in hardware.layers} if hardware is not None else {}
    costs = {**from_hardware, **_price_alone([layer for layer in operands.layers
                                              if layer.name not in from_hardware], reuse, budget)}
    by_width: Counter = Counter()
    for layer in operands.layers:
        row = _layer_counts(layer.name, layer.weights, layer.input_bits, by_width)
        cost = costs[layer.name]
        row.update(dsp=cost.dsp, lut=cost.lut, latency_cycles=cost.latency)
        if layer.name in from_hardware:
            row.update(ff=cost.ff)
        result.layers.append(row)
        result.weights += int(layer.weights.size)
        result.nonzero_weights += int(np.count_nonzero(layer.weights))
        result.ebops += row["ebops"]
    if hardware is not None:
        figures, _ = hardware.compared()
        result.dsp, result.lut = int(figures["dsp"]), int(figures["lut"])
    else:
        result.dsp = sum(r["dsp"] for r in result.layers)
        result.lut = sum(r["lut"] for r in result.layers)
    result.multiplications = {f"{w}x{a}": n for (w, a), n in sorted(by_width.items())}
    return result


def _price_alone(layers: list, reuse: int, budget: Budget) -> dict:
    """``{name: LayerCost}`` of dense layers known only by their operands, each priced by the cost
    model (:func:`~fastml_lab.estimate.model.layer_costs`) as the firmware of :func:`_one_layer_firmware`,
    on the budget's board (or bare part) as the hardware estimate resolves it."""
    if not layers:
        return {}
    from ..estimate.hardware import resolve_target

    board = board_for_part(budget.part)
    target = resolve_target(board, None if board else budget.part)
    pricing = {"flavour": FLAVOURS[target.flavour], "device": device_of(target.part), "clock_ns": target.clock_ns}
    return {layer.name: layer_costs(*_one_layer_firmware(layer, reuse), **pricing)[-1] for layer in layers}


def _one_layer_firmware(layer, reuse: int) -> tuple:
    """``(description, arrays)`` of one dense layer known only by its operands: a quantizer gives each
    input its width, the weights sit in a type that holds them exactly, the accumulator cannot
    overflow and the result has the default precision (Latency strategy)."""
    n_in, n_out = layer.weights.shape
    w_bits = int(significant_bits(layer.weights).max(initial=1))
    a_bits = int(np.max(layer.input_bits, initial=1))
    weight_type, result = _exact_type(layer.weights), FixedType.parse(DEFAULT_PRECISION)
    accum = FixedType(w_bits + a_bits + int(np.ceil(np.log2(max(2, n_in)))), 1)
    input_widths = sorted({int(b) for b in layer.input_bits if b > 0})
    quantizer = {"name": f"{layer.name}_inputs", "op": "quantize", "data_type": result.to_dict(),
                 "result_type": result.to_dict(), "element_types": [FixedType(w, w).to_dict() for w in input_widths]}
    dense = {"name": layer.name, "op": "dense", "data_type": result.to_dict(), "result_type": result.to_dict(),
             "n_in": n_in, "n_out": n_out, "weight_type": weight_type.to_dict(), "bias_type": result.to_dict(),
             "accum_type": accum.to_dict(), "strategy": "latency", "reuse_factor": reuse}
    index = [input_widths.index(int(b)) if b > 0 else -1 for b in layer.input_bits]
    arrays = {f"{layer.name}_inputs/type_index": np.array(index, dtype=np.int64),
              f"{layer.name}/weight": weight_type.to_raw(layer.weights).astype(np.int64),
              f"{layer.name}/bias": np.zeros(n_out, dtype=np.int64)}
    description = {"n_inputs": n_in, "n_outputs": n_out, "input_type": result.to_dict(),
                   "output_type": result.to_dict(), "layers": [quantizer, dense]}
    return description, arrays


def _exact_type(values: np.ndarray) -> FixedType:
    """A signed fixed-point type from the highest to the lowest set bit of ``values``: it holds each exactly."""
    nonzero = np.abs(values[values != 0])
    if not nonzero.size:
        return FixedType(1, 1)
    _, top = np.frexp(nonzero)  # value < 2**top
    lowest = top - significant_bits(nonzero) + 1  # the exponent of each value's lowest set bit
    integer = int(top.max()) + 1  # and a sign bit
    return FixedType(integer - int(lowest.min()), integer)


def _layer_counts(name: str, weights: np.ndarray, input_bits: np.ndarray, by_width: Counter) -> dict:
    w_bits = significant_bits(weights)
    a_bits = np.broadcast_to(np.asarray(input_bits, dtype=np.int64)[:, None], w_bits.shape)
    exists = (w_bits > 0) & (a_bits > 0)
    products = np.where(exists, w_bits * a_bits, 0)
    by_width.update(zip(w_bits[exists].tolist(), a_bits[exists].tolist()))
    return {"name": name, "n_in": int(weights.shape[0]), "n_out": int(weights.shape[1]),
            "multiplications": int(exists.sum()), "zero_weights": int((weights == 0).sum()),
            "ebops": int(products.sum())}
