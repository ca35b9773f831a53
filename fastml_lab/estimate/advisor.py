"""The fit advisor: for a model and a board, every reuse factor and strategy that fits, and the fastest.

Candidates are the reuse factors hls4ml accepts for every dense layer of the model (the export
uses one reuse factor for all), with the Latency and the Resource strategy. Each is estimated
(:func:`fastml_lab.estimate.estimate_description`) and kept when it fits the board's budget with
the AXI DMA design's margin (:data:`~fastml_lab.estimate.hardware.DMA_MARGIN`). numpy only once the
model is described.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..exceptions import ConfigError
from ..families.sources import family_of
from .hardware import RESOURCE_KEYS, _read_source, estimate_description, resolve_target
from .model import STRATEGIES, valid_reuse_factors, weighted_layers

__all__ = ["Advice", "advise", "common_reuse_factors"]


def common_reuse_factors(description: dict) -> list:
    """Reuse factors valid for every layer with a weight matrix (a dense layer) of a firmware description."""
    weighted = weighted_layers(description)
    if not weighted:
        return [1]
    sets = [set(valid_reuse_factors(int(s["n_in"]), int(s["n_out"]))) for s in weighted]
    return sorted(set.intersection(*sets))


@dataclass
class Advice:
    """The configurations that fit, fastest first, and every one considered."""

    board: str
    considered: list = field(default_factory=list)

    @property
    def fitting(self) -> list:
        return [e for e in self.considered if e.fits]

    @property
    def best(self):
        """The fitting configuration with the smallest latency (then II, then LUTs); None if none fits."""
        fitting = self.fitting
        return min(fitting, key=lambda e: (e.latency_cycles, e.ii_cycles, e.resources["lut"])) if fitting else None

    def rows(self) -> list:
        return [{"strategy": e.strategy, "reuse_factor": e.reuse_factor, "latency_cycles": e.latency_cycles,
                 "latency_ns": round(e.latency_ns, 3), "ii_cycles": e.ii_cycles,
                 "events_per_s": round(e.events_per_s, 1), **{k: e.resources[k] for k in RESOURCE_KEYS},
                 "fits": e.fits} for e in self.considered]

    def to_dict(self) -> dict:
        best = self.best
        return {"board": self.board, "configurations": self.rows(),
                "best": None if best is None else {"strategy": best.strategy, "reuse_factor": best.reuse_factor,
                                                   "latency_cycles": best.latency_cycles,
                                                   "ii_cycles": best.ii_cycles}}

    def table(self) -> str:
        lines = [f"Configurations on the {self.board} (estimate; fits = within the budget with the AXI DMA margin)",
                 f"{'strategy':<9}{'reuse':>6}{'latency':>9}{'ns':>9}{'II':>6}{'events/s':>12}{'DSP':>7}"
                 f"{'LUT':>9}{'FF':>9}{'BRAM18':>7}  fits"]
        for r in self.rows():
            lines.append(f"{r['strategy']:<9}{r['reuse_factor']:>6}{r['latency_cycles']:>9}{r['latency_ns']:>9.0f}"
                         f"{r['ii_cycles']:>6}{r['events_per_s']:>12,.0f}{r['dsp']:>7,}{r['lut']:>9,}{r['ff']:>9,}"
                         f"{r['bram_18k']:>7}  {'yes' if r['fits'] else 'no'}")
        best = self.best
        lines.append("nothing fits" if best is None else
                     f"fastest that fits: {best.strategy}, reuse factor {best.reuse_factor}: {best.latency_cycles} "
                     f"cycles ({best.latency_ns:,.0f} ns), II {best.ii_cycles} ({best.events_per_s:,.0f} events/s)")
        return "\n".join(lines)


def advise(source, board=None, *, flavour=None, precision=None, strategies=STRATEGIES, max_reuse: int = 4096) -> Advice:
    """Estimate ``source`` at every common valid reuse factor (up to ``max_reuse``) and strategy."""
    family = family_of(source)
    if not family.priced_by_ops:
        raise ConfigError(f"The fit advisor explores reuse factors and strategies of the firmware the op registry "
                          f"prices; a {family.title} has neither (its estimate is `fastml-lab estimate PRJ`).")
    found = _read_source(source, precision, family)
    target = resolve_target(board, None, None, flavour, default_board=found.get("board"),
                            default_part=found.get("part"), default_clock_ns=found.get("clock_ns"),
                            default_interface=found["description"].get("interface", "parallel"))
    if target.board is None:
        raise ConfigError(f"{target.part} is a bare part with no budget: the advisor needs a board "
                          "(--board NAME).")
    advice = Advice(board=target.board.title)
    for strategy in strategies:
        for reuse in common_reuse_factors(found["description"]):
            if reuse > max_reuse:
                break
            advice.considered.append(estimate_description(found["description"], found["arrays"], target,
                                                          source_name=found["name"], reuse_factor=reuse,
                                                          strategy=strategy))
    return advice
