"""Plots of training and evaluation: ROC curves in the field's style, confusion matrix, training curves;
the latency ladder (time per event and until one answer, against the trigger's budget).

matplotlib is imported inside each function. Every function draws on ``ax`` when given (on a new
pyplot figure otherwise) and returns the Figure; :func:`save_figure` writes it as a PNG atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._deps import require
from .exceptions import ConfigError, NotReadyError

__all__ = ["plot_roc", "plot_confusion", "plot_training", "plot_latency_ladder", "save_figure"]

_MIN_MISTAG = 1e-4


def _pyplot():
    return require("matplotlib.pyplot", "draw plots")


def _figure_and_axes(ax, ncols: int = 1, figsize=(6.0, 4.5)):
    """``(fig, [axes...])``: the given axes, or a new figure with ``ncols`` panels."""
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        if len(axes) != ncols:
            raise ConfigError(f"this plot needs {ncols} axes; got {len(axes)}")
        return axes[0].figure, axes
    fig, axes = _pyplot().subplots(1, ncols, figsize=figsize, squeeze=False)
    return fig, list(axes[0])


# ------------------------------------------------------------------------------------------- ROC
def plot_roc(evaluation, compare=None, labels=("float", "fixed point"), ax=None, title=None):
    """Background mistag rate (log) against signal efficiency, one curve per class with its AUC.

    ``compare`` (another Evaluation, e.g. of the fixed-point model) is drawn dashed in the same
    colours; ``labels`` name the two sets, and each legend entry lists both AUCs.
    """
    fig, (ax,) = _figure_and_axes(ax)
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for index, name in enumerate(evaluation.class_names):
        color = colors[index % len(colors)]
        _draw_curve(ax, evaluation.roc[name], color, "-", _roc_label(name, evaluation, compare))
        if compare is not None:
            _draw_curve(ax, compare.roc[name], color, "--", None)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_ylim(_MIN_MISTAG, 1)
    ax.set_xlabel("Signal efficiency")
    ax.set_ylabel("Background mistag rate")
    ax.grid(True, which="major", alpha=0.4)
    ax.legend(loc="lower right", fontsize="small")
    if compare is not None:
        _add_style_legend(ax, labels)
    if title:
        ax.set_title(title)
    return fig


def _roc_label(name, evaluation, compare) -> str:
    areas = [evaluation.auc[name]] + ([compare.auc[name]] if compare is not None else [])
    return f"{name}, AUC = " + " / ".join(f"{area * 100:.1f}%" for area in areas)


def _draw_curve(ax, curve, color, linestyle, label):
    curve = curve.downsampled(2000)
    visible = curve.mistag > 0  # a log axis cannot show zero mistag
    ax.plot(curve.efficiency[visible], curve.mistag[visible], color=color, linestyle=linestyle,
            label=label)


def _add_style_legend(ax, labels):
    """A second legend saying which line style is which set of curves."""
    Line2D = require("matplotlib.lines", "draw plots").Line2D
    class_legend = ax.get_legend()
    handles = [Line2D([], [], color="gray", linestyle=style) for style in ("-", "--")]
    ax.legend(handles, list(labels), loc="upper left", fontsize="small")
    ax.add_artist(class_legend)


# -------------------------------------------------------------------------------------- confusion
def plot_confusion(evaluation, normalize: bool = True, ax=None, title=None):
    """Heat map of the confusion matrix (rows: true class), each cell labelled with its value."""
    fig, (ax,) = _figure_and_axes(ax, figsize=(5.0, 4.5))
    values = evaluation.confusion_normalized if normalize else evaluation.confusion
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    _annotate_cells(ax, values, normalize)
    ticks = np.arange(len(evaluation.class_names))
    ax.set_xticks(ticks, evaluation.class_names)
    ax.set_yticks(ticks, evaluation.class_names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title or ("Confusion matrix (row-normalized)" if normalize else "Confusion matrix"))
    return fig


def _annotate_cells(ax, values, normalize: bool):
    threshold = values.max() / 2 if values.size else 0
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(col, row, text, ha="center", va="center", fontsize="small",
                color="white" if value > threshold else "black")


# --------------------------------------------------------------------------------------- training
def plot_training(history, ax=None, title=None):
    """Loss and accuracy per epoch, training solid and validation dashed (two panels)."""
    history = _history_dict(history)
    if not history.get("loss"):
        raise NotReadyError("the training history is empty: train a model first")
    ticker = require("matplotlib.ticker", "draw plots")
    fig, (loss_ax, acc_ax) = _figure_and_axes(ax, ncols=2, figsize=(10.0, 4.0))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for panel, key, label in ((loss_ax, "loss", "Loss"), (acc_ax, "acc", "Accuracy")):
        panel.plot(epochs, history[key], "-o", markersize=3, label="training")
        if history.get(f"val_{key}"):
            panel.plot(epochs, history[f"val_{key}"], "--o", markersize=3, label="validation")
        panel.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        panel.set_xlabel("Epoch")
        panel.set_ylabel(label)
        panel.grid(True, alpha=0.4)
        panel.legend()
    if title:
        fig.suptitle(title)
    return fig


def _history_dict(history) -> dict:
    return history.to_dict() if hasattr(history, "to_dict") else dict(history)


# ------------------------------------------------------------------------------------------- latency
_KIND_COLOURS = {"measurement": "tab:blue", "published measurement": "tab:green",
                 "published synthesis report": "tab:olive"}


def plot_latency_ladder(rows, ax=None, title=None):
    """Two panels of horizontal bars (log time): per event at full throughput, against one bunch
    crossing (25 ns at 40 MHz); and until one answer, against the Level-1 latency budgets. ``rows``:
    :func:`fastml_lab.estimate.headline.latency_ladder`; colours say what each figure is."""
    from .estimate.published_run import BUNCH_CROSSING_NS, L1_LATENCY_BUDGETS_NS

    rows = list(rows)
    if not rows:
        raise ConfigError("plot_latency_ladder needs at least one row")
    fig, (ax_rate, ax_latency) = _figure_and_axes(ax, ncols=2, figsize=(13.0, 0.45 * len(rows) + 2.0))
    names = [row["where"] for row in rows]
    y = np.arange(len(rows))[::-1]
    colours = [_KIND_COLOURS.get(row["kind"], "tab:orange") for row in rows]  # orange: estimates
    for axis, key, label in ((ax_rate, "ns_per_event", "time per event at full throughput [ns]"),
                             (ax_latency, "latency_ns", "time until one event's answer [ns]")):
        axis.barh(y, [max(row[key], 1e-3) for row in rows], color=colours)
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_yticks(y)
        axis.set_yticklabels(names if axis is ax_rate else [""] * len(rows))
    ax_rate.axvline(BUNCH_CROSSING_NS, color="black", linestyle="--")
    ax_rate.text(BUNCH_CROSSING_NS, len(rows) - 0.4, " 25 ns: a new event\n every bunch crossing", fontsize=8, va="top")
    low, high = min(L1_LATENCY_BUDGETS_NS.values()), max(L1_LATENCY_BUDGETS_NS.values())
    ax_latency.axvspan(low, high, color="grey", alpha=0.25)
    ax_latency.text(high, len(rows) - 0.4, f" Level-1 latency budgets,\n {low / 1e3:g}-{high / 1e3:g} us (whole decision)",
                    fontsize=8, va="top")
    handles = [_pyplot().Rectangle((0, 0), 1, 1, color=colour) for colour in (*_KIND_COLOURS.values(), "tab:orange")]
    ax_latency.legend(handles, [*_KIND_COLOURS, "estimate"], loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------------------- save
def save_figure(fig, path: str | os.PathLike, dpi: int = 120, close: bool = False) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename); return the path."""
    from ._io import atomic_destination

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"save_figure writes PNG files; the name must end in '.png', got {str(path)!r}")
    fig.tight_layout()
    with atomic_destination(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    if close:
        _pyplot().close(fig)
    return path
