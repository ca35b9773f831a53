"""A sweep's results: the table, its Pareto fronts, and the plot the field uses.

:func:`report` reads a sweep folder (finished or partial) and returns a :class:`SweepReport`:
``table`` (a pandas DataFrame, one row per point), the fronts marked in it, ``plot()`` (accuracy
against LUTs and against latency, NN and BDT in one picture, the fronts drawn, the board's LUT
budget and any latency budget as lines, and on each point the error bar of its family's estimate
from :mod:`fastml_lab.estimate.errors`, the one table of measured errors) and ``summary()``. The fronts are taken over the points
that finished ok, on the fixed-point accuracy (the firmware's, on the emulator):

* ``front_lut``: no other point is at least as accurate with at most as many LUTs (and better in one);
* ``front_latency``: the same with latency;
* ``front``: the same over accuracy, LUTs and latency together (what the optuna search optimises).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boards import get_board
from ..families import family_names, get_family
from .store import TABLE_PARQUET, SweepFolder, table_row

ACCURACY = "fixed_accuracy"
FRONTS = {"front_lut": ("lut",), "front_latency": ("latency_ns",), "front": ("lut", "latency_ns")}
PLOT_FILE = "front.png"


def pareto_mask(accuracy, costs) -> np.ndarray:
    """True for the points no other point dominates: higher-or-equal accuracy and lower-or-equal
    costs (``costs``: (n, k)), strictly better in at least one. NaN anywhere: never on the front."""
    accuracy = np.asarray(accuracy, dtype=float)
    costs = np.asarray(costs, dtype=float).reshape(len(accuracy), -1)
    valid = np.isfinite(accuracy) & np.isfinite(costs).all(axis=1)
    mask = valid.copy()
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        no_worse = (accuracy[others] >= accuracy[i]) & (costs[others] <= costs[i]).all(axis=1)
        better = (accuracy[others] > accuracy[i]) | (costs[others] < costs[i]).any(axis=1)
        if np.any(no_worse & better):
            mask[i] = False
    return mask


def mark_fronts(rows: list) -> list:
    """``rows`` (table rows) with ``front_lut``, ``front_latency`` and ``front`` set (True/False)."""
    acc = [_num(r.get(ACCURACY)) if r.get("status") == "ok" else math.nan for r in rows]
    for column, costs in FRONTS.items():
        values = [[_num(r.get(c)) for c in costs] for r in rows]
        mask = pareto_mask(acc, values) if rows else []
        for row, on in zip(rows, mask):
            row[column] = bool(on)
    return rows


def _num(value) -> float:
    try:
        return float(value) if value is not None and value != "" else math.nan
    except (TypeError, ValueError):
        return math.nan


@dataclass
class SweepReport:
    """The results of one sweep folder."""

    folder: Path
    rows: list
    meta: dict

    @property
    def table(self):
        """The rows as a pandas DataFrame (one row per point, fronts marked)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    @property
    def ok(self) -> list:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def errors(self) -> list:
        return [r for r in self.rows if r["status"] == "error"]

    def front(self, column: str = "front") -> list:
        """The rows on a front, most accurate first."""
        return sorted((r for r in self.rows if r.get(column)), key=lambda r: -_num(r.get(ACCURACY)))

    @property
    def board(self) -> str:
        return self.meta.get("board") or "pynq-z2"

    def summary(self) -> str:
        lines = [f"{len(self.rows)} points in {self.folder}: {len(self.ok)} ok, {len(self.errors)} errors"]
        front = self.front()
        if front:
            lines.append(f"Pareto front (fixed-point accuracy vs LUT and latency on the {self.board}):")
            for r in front:
                lines.append(f"  {r['label']:<40} acc {_num(r[ACCURACY]):.4f}  LUT {_int(r['lut'])}  "
                             f"DSP {_int(r['dsp'])}  latency {_num(r['latency_ns']):g} ns  "
                             f"{_verdict(r)}  [{r['id']}]")
        for r in self.errors[:5]:
            lines.append(f"  error {r['label']} [{r['id']}]: {str(r['error'])[:200]}")
        return "\n".join(lines)

    def plot(self, path=None):
        """Accuracy vs LUT and vs latency (see the module docstring); saved to ``path`` if given."""
        return plot_fronts(self.rows, self.board, latency_budget=(self.meta.get("budget") or {}).get("latency_ns"),
                           path=path)


def _verdict(row) -> str:
    """"fits" or "does not fit", with what was compared (``fit_detail``) where the record has it."""
    word = "fits" if row.get("fits") in (True, "True") else "does not fit"
    return f"{word}: {row['fit_detail']}" if row.get("fit_detail") else word


#: What the error bars of :func:`plot_fronts` are (its figure's caption).
ERROR_BAR_NOTE = ("Error bars: the measured median error of each estimate (fastml_lab.estimate.errors). NN: the cost "
                  "model on held-out published synthesis points. BDT: conifer's experimental estimate, LUT only, "
                  "against yosys' mapping of conifer's VHDL for the same trees; no bar where no error was measured.")


def _error_bars(points: list, family: str, cost: str) -> tuple | None:
    """``[[below...], [above...]]`` of the points' error bars for ``cost`` and that error, or None."""
    from ..estimate.errors import error_bounds, measured_error

    error = measured_error(family, cost)
    if error is None or error.median == 0:
        return None
    below, above = [], []
    for r in points:
        value = _num(r[cost])
        clock = _num(r.get("clock_mhz"))
        low, high = error_bounds(value, error, cycle_ns=1000.0 / clock if clock > 0 else math.nan)
        below.append(max(0.0, value - low))
        above.append(max(0.0, high - value))
    return [below, above], error


def _bar_label(family: str, error) -> str:
    size = f"×/÷ {1 + error.median:.2f}" if error.relative else f"± {error.median:g} cycles"
    what = "on held-out published points" if family == "nn" else "vs a VHDL mapping"
    return f"{family.upper()} error bar {size} (median error {what})"


def _no_bar_label(family: str, cost: str) -> str:
    from ..estimate.errors import measured_error

    error = measured_error(family, cost)
    why = "no measured error" if error is None else "median error 0 on held-out published points"
    return f"{family.upper()}: no bar ({why})"


def _int(value) -> str:
    v = _num(value)
    return f"{int(v):,}" if math.isfinite(v) else "-"


def plot_fronts(rows: list, board: str, latency_budget=None, path=None, fig=None):
    """The two panels of :meth:`SweepReport.plot` for ``rows`` (with fronts marked)."""
    from ..plots import _pyplot

    plt = _pyplot()
    if fig is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    else:
        fig.clear()
        axes = fig.subplots(1, 2)
    budget = get_board(board)
    ok = [r for r in rows if r.get("status") == "ok" and math.isfinite(_num(r.get(ACCURACY)))]
    for ax, cost, column, label in ((axes[0], "lut", "front_lut", "LUT of the IP (C-synthesis estimate)"),
                                    (axes[1], "latency_ns", "front_latency", "latency (ns, estimate)")):
        for family in map(get_family, family_names()):  # a record's "kind" is its family's name
            points = [r for r in ok if r.get("kind") == family.name and math.isfinite(_num(r.get(cost)))]
            if points:
                marker, colour = family.sweep_marker
                bars = _error_bars(points, family.name, cost)
                if bars is not None:
                    (spans, error) = bars
                    ax.errorbar([_num(r[cost]) for r in points], [_num(r[ACCURACY]) for r in points],
                                xerr=spans, fmt="none", ecolor=colour, alpha=0.5, capsize=2,
                                label=_bar_label(family.name, error))
                else:
                    ax.plot([], [], " ", label=_no_bar_label(family.name, cost))
                ax.scatter([_num(r[cost]) for r in points], [_num(r[ACCURACY]) for r in points],
                           marker=marker, color=colour, alpha=0.6, label=family.name.upper())
        front = sorted((r for r in ok if r.get(column)), key=lambda r: _num(r[cost]))
        if front:
            ax.step([_num(r[cost]) for r in front], [_num(r[ACCURACY]) for r in front], where="post",
                    color="black", linewidth=1.2, label="Pareto front")
            ax.scatter([_num(r[cost]) for r in front], [_num(r[ACCURACY]) for r in front], facecolors="none",
                       edgecolors="black", s=90, linewidths=1.2)
        limit = budget.resources.lut if cost == "lut" else latency_budget
        if limit:
            ax.axvline(limit, color="#ff7f0e", linestyle="--",
                       label=f"{budget.title} budget ({limit:,} LUT)" if cost == "lut" else f"budget {limit:g} ns")
        values = [_num(r[cost]) for r in ok if math.isfinite(_num(r.get(cost))) and _num(r.get(cost)) > 0]
        ax.margins(x=0.15)
        if values and max(values + [limit or 0]) / min(values) > 30:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("fixed-point accuracy (emulator)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0].set_title(f"Accuracy vs LUT on the {budget.title}")
    axes[1].set_title("Accuracy vs latency")
    fig.tight_layout()
    if path is not None:
        from ..plots import save_figure

        save_figure(fig, path)
    return fig


def report(folder, plot: bool = True) -> SweepReport:
    """Read the sweep folder ``folder``, mark the fronts, write the table (CSV and Parquet) and, with
    ``plot``, ``front.png``; return the :class:`SweepReport`."""
    sweep = SweepFolder.open_existing(folder)
    rows = mark_fronts(sweep.rows())
    result = SweepReport(folder=sweep.path, rows=rows, meta=sweep.meta)
    sweep.write_table()
    try:
        write_parquet(sweep, rows)
    except ImportError:
        pass
    if plot and rows:
        fig = result.plot(sweep.path / PLOT_FILE)
        _close(fig)
    return result


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_parquet(folder: SweepFolder, rows: list | None = None) -> Path:
    """The table as Parquet (pandas and pyarrow); ImportError without them."""
    import pandas as pd

    from .._io import atomic_destination

    rows = mark_fronts(folder.rows()) if rows is None else rows
    frame = pd.DataFrame(rows if rows else [table_row({"id": "", "status": ""})][:0])
    for column in frame.columns:  # mixed settings columns (NN text, BDT empty) as text for Parquet
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    path = folder.path / TABLE_PARQUET
    with atomic_destination(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path
