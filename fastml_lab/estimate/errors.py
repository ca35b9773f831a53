"""How far off each estimate has been measured to be: the one table the plots' error bars read.

Each entry is a measured error of one estimate (a family's cost model) for one quantity, with what
it was measured against and where the measurement is recorded:

* ``nn``: the project's network cost model (:mod:`.model`) against the published synthesis points
  it was **not** fitted on (the ``held-out`` split of ``published_points.csv``): the median absolute
  error that :func:`fastml_lab.estimate.published.split_errors` reports (relative for resources,
  cycles for latency). ``tests/test_estimate_errors.py`` checks the numbers here against it, so
  they cannot drift from the measurement;
* ``bdt``: conifer's ``performance_estimates`` (xilinxhls), which conifer itself calls
  experimental. No HLS synthesis of a BDT has been compared with it; the one measurement is its LUT
  figure against the yosys technology mapping of conifer's **VHDL** backend for the same trees
  (12 random designs, ``bench/bench_rtl_estimate.py``, README "RTL"): median +67%. That is a
  different implementation of the same trees, so the bar is an indication of scale, not this
  estimate's error against its own synthesis. Its FF and latency have no measured error;
* ``bdt-vhdl``: the project's estimate of conifer's VHDL (:mod:`fastml_lab.bdt.vhdl_estimate`)
  against yosys' mapping on 20 designs it was not fitted on: median absolute 3.4% LUT, 0.8% FF.

An error bar of relative error ``r`` spans ``value / (1 + r)`` to ``value * (1 + r)`` (a factor
``1 + r`` either way: symmetric on a log axis); one of ``c`` cycles spans ``c`` cycles either way.
numpy free.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MeasuredError", "MEASURED_ERRORS", "measured_error", "error_bounds", "describe_errors"]


@dataclass(frozen=True)
class MeasuredError:
    """The median absolute error of one estimate for one quantity (see the module docstring)."""

    family: str
    quantity: str       #: "lut", "ff", "dsp", "bram_18k" (relative) or "latency" (cycles)
    median: float       #: relative (0.48 = 48%) for resources, cycles for latency
    n: int              #: how many designs or points it was measured on
    against: str        #: what the estimate was compared with
    source: str         #: where the measurement is recorded
    note: str = ""      #: what else to know (e.g. the median is of the signed error)

    @property
    def relative(self) -> bool:
        return self.quantity != "latency"

    def text(self) -> str:
        size = f"{self.median:.0%}" if self.relative else f"{self.median:g} cycles"
        note = f"; {self.note}" if self.note else ""
        return f"{size} median on {self.n} {self.against}{note} ({self.source})"


_NN_AGAINST = "held-out published synthesis points"
_NN_SOURCE = "fastml_lab/estimate/published_points.csv, published.split_errors()"
_CONIFER_AGAINST = "random BDTs: yosys mapping of conifer's VHDL for the same trees (no HLS synthesis)"
_CONIFER_SOURCE = "bench/bench_rtl_estimate.py, README 'RTL'"
_VHDL_AGAINST = "random BDTs not used in its fit: yosys mapping of the same VHDL"

#: ``{(family, quantity): MeasuredError}``; a pair that is absent has no measured error.
MEASURED_ERRORS = {(e.family, e.quantity): e for e in (
    MeasuredError("nn", "dsp", 0.085, 9, _NN_AGAINST, _NN_SOURCE),
    MeasuredError("nn", "lut", 0.48, 9, _NN_AGAINST, _NN_SOURCE),
    MeasuredError("nn", "ff", 0.54, 9, _NN_AGAINST, _NN_SOURCE),
    MeasuredError("nn", "bram_18k", 0.0, 9, _NN_AGAINST, _NN_SOURCE),
    MeasuredError("nn", "latency", 0.0, 8, _NN_AGAINST, _NN_SOURCE),
    MeasuredError("bdt", "lut", 0.67, 12, _CONIFER_AGAINST, _CONIFER_SOURCE,
                  note="the median of the signed error, +67%: an over-estimate"),
    MeasuredError("bdt-vhdl", "lut", 0.034, 20, _VHDL_AGAINST, _CONIFER_SOURCE),
    MeasuredError("bdt-vhdl", "ff", 0.008, 20, _VHDL_AGAINST, _CONIFER_SOURCE),
)}


def measured_error(family: str, quantity: str) -> MeasuredError | None:
    """The measured error of ``family``'s estimate of ``quantity`` (``"latency_ns"`` and
    ``"latency_cycles"`` read ``"latency"``), or None where none was measured."""
    if quantity.startswith("latency"):
        quantity = "latency"
    return MEASURED_ERRORS.get((family, quantity))


def error_bounds(value: float, error: MeasuredError | None, cycle_ns: float = 1.0) -> tuple:
    """``(low, high)`` of an error bar around ``value``: a factor ``1 + median`` either way for a
    relative error, ``median`` cycles of ``cycle_ns`` either way for latency; ``(value, value)``
    where no error was measured."""
    if error is None:
        return value, value
    if error.relative:
        return value / (1.0 + error.median), value * (1.0 + error.median)
    return value - error.median * cycle_ns, value + error.median * cycle_ns


def describe_errors(family: str, quantities=("lut", "ff", "dsp", "latency")) -> list:
    """One line per quantity: the measured error of ``family``'s estimate, or that none was measured."""
    lines = []
    for quantity in quantities:
        error = measured_error(family, quantity)
        lines.append(f"{quantity:8s} " + (error.text() if error else "no measured error"))
    return lines
