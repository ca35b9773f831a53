"""Figures for the step panels: drawn on pyplot-free Figures (safe in a worker thread), saved as PNG.

The training, ROC and confusion plots come from :mod:`fastml_lab.plots`; the views only the walk
shows (data overview, budget bars, throughput) are drawn here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .._deps import require

#: Events drawn into the feature histograms (enough for smooth shapes, quick to draw).
HISTOGRAM_EVENTS = 20_000


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    """``(figure, axes array)`` on a Figure that pyplot does not track."""
    Figure = require("matplotlib.figure", "draw plots").Figure
    fig = Figure(figsize=(width, height), dpi=90)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_png(fig, path: Path) -> bytes:
    """Write ``fig`` as a PNG (atomically), release it, and return the bytes."""
    from ..plots import save_figure

    save_figure(fig, path, dpi=90)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)  # figures made by pyplot elsewhere are released too
    return Path(path).read_bytes()


# ------------------------------------------------------------------------------------------ data
def plot_class_balance(dataset):
    """Jets per class in the training and the test part."""
    fig, axes = new_figure(5.0, 3.0)
    _class_balance(axes[0, 0], dataset, list(dataset.class_names))
    fig.tight_layout()
    return fig


def plot_feature_distributions(dataset, ncols: int = 4):
    """The per-class distribution of every (standardized) training feature, one panel each."""
    names = list(dataset.class_names)
    features = list(dataset.feature_names)
    nrows = int(np.ceil(len(features) / ncols))
    fig, axes = new_figure(12.0, 2.1 * nrows + 0.4, nrows, ncols)
    X = dataset.X_train[:HISTOGRAM_EVENTS]
    labels = dataset.labels_train[:HISTOGRAM_EVENTS]
    for index, ax in enumerate(axes.ravel()):
        if index < len(features):
            _feature_histogram(ax, X[:, index], labels, names, features[index])
        else:
            ax.axis("off")
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle("Feature distributions per class (standardized training jets, unit area per class)")
    fig.tight_layout()
    return fig


def plot_class_images(dataset):
    """The average training image of each class (one panel per class, one colour scale, log)."""
    from matplotlib.colors import LogNorm

    names = list(dataset.class_names)
    X = dataset.X_train[:HISTOGRAM_EVENTS]
    labels = dataset.labels_train[:HISTOGRAM_EVENTS]
    means = [X[labels == c].mean(axis=0).sum(axis=-1) if np.any(labels == c) else np.zeros(X.shape[1:3])
             for c in range(len(names))]
    positive = [m[m > 0] for m in means if np.any(m > 0)]
    low = max(min(float(p.min()) for p in positive), 1e-4) if positive else 1e-4
    high = max(max(float(p.max()) for p in positive), low * 10) if positive else 1.0
    fig, axes = new_figure(2.3 * len(names) + 0.8, 2.8, 1, len(names))
    for ax, name, mean in zip(axes[0], names, means):
        shown = ax.imshow(np.clip(mean, low, None), norm=LogNorm(vmin=low, vmax=high), cmap="viridis",
                          origin="lower")
        ax.set_title(f"{name} ({int(np.sum(labels == names.index(name))):,} jets)", fontsize="small")
        ax.set_xlabel("phi", fontsize="x-small")
        ax.set_ylabel("eta", fontsize="x-small")
        ax.tick_params(labelsize="xx-small")
    fig.colorbar(shown, ax=list(axes[0]), shrink=0.8, label="mean scaled pT per pixel")
    fig.suptitle("Average jet image per class (scaled training images, log colour scale)")
    return fig


def _class_balance(ax, dataset, names):
    positions = np.arange(len(names))
    train = np.bincount(dataset.labels_train, minlength=len(names))
    test = np.bincount(dataset.labels_test, minlength=len(names))
    ax.bar(positions - 0.2, train, width=0.4, label="train")
    ax.bar(positions + 0.2, test, width=0.4, label="test")
    ax.set_xticks(positions, names)
    ax.set_title("Jets per class")
    ax.legend(fontsize="x-small")


def _feature_histogram(ax, values, labels, names, feature):
    low, high = np.percentile(values, [0.5, 99.5])
    if not high > low:
        low, high = low - 1, high + 1
    for c, name in enumerate(names):
        ax.hist(values[labels == c], bins=40, range=(low, high), histtype="step", density=True, label=name)
    ax.set_title(feature, fontsize="small")
    ax.tick_params(labelsize="x-small")
    ax.set_yticks([])


# -------------------------------------------------------------------------------------- training
def plot_history(history):
    """Loss and accuracy curves (two panels), from a TrainingHistory or its dict."""
    from ..plots import plot_training

    fig, axes = new_figure(10.0, 3.6, 1, 2)
    return plot_training(history, ax=list(axes[0]))


def plot_roc_curves(evaluation, compare=None, labels=("float", "fixed point"), title=None):
    from ..plots import plot_roc

    fig, axes = new_figure(6.0, 4.5)
    return plot_roc(evaluation, compare=compare, labels=labels, ax=axes[0, 0], title=title)


def plot_confusion_matrix(evaluation):
    from ..plots import plot_confusion

    fig, axes = new_figure(5.0, 4.5)
    return plot_confusion(evaluation, ax=axes[0, 0])


# ----------------------------------------------------------------------------------- fit, speed
def plot_budget(used: dict, budget: dict, title: str, board: str):
    """Horizontal bars: each resource as a percentage of ``board``'s budget (100% marked)."""
    names = [name for name in budget if used.get(name) is not None]
    fig, axes = new_figure(6.0, 0.6 + 0.5 * max(1, len(names)))
    ax = axes[0, 0]
    shares = [100.0 * float(used[name]) / float(budget[name]) for name in names]
    colours = ["#2e7d32" if share <= 100 else "#c62828" for share in shares]
    ax.barh(names, shares, color=colours)
    for y, (name, share) in enumerate(zip(names, shares)):
        ax.text(share, y, f" {used[name]:,.0f} / {budget[name]:,.0f}", va="center", fontsize="small")
    ax.axvline(100, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(120, max(shares, default=0) * 1.3))
    ax.set_xlabel(f"% of the {board} budget")
    ax.set_title(title, fontsize="small")
    fig.tight_layout()
    return fig


def plot_throughput(bars: dict):
    """Events per second on a log axis, one bar per ``label: value``."""
    fig, axes = new_figure(6.0, 0.8 + 0.5 * len(bars))
    ax = axes[0, 0]
    labels, values = list(bars), [float(v) for v in bars.values()]
    ax.barh(labels, values, color=["#1565c0", "#ef6c00", "#6a1b9a"][:len(values)])
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize="small")
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 3, max(values) * 30)
    ax.set_xlabel("events per second")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------- boosted decision trees
def plot_bdt_history(history):
    """Log loss per boosting round, training solid and validation dashed; the kept round marked."""
    fig, axes = new_figure(6.5, 3.6)
    ax = axes[0, 0]
    rounds = np.arange(1, len(history.loss) + 1)
    ax.plot(rounds, history.loss, "-", label="training")
    if history.val_loss:
        ax.plot(rounds[:len(history.val_loss)], history.val_loss, "--", label="validation")
    if history.best_round:
        ax.axvline(history.best_round, color="grey", linestyle=":", linewidth=1,
                   label=f"kept: {history.best_round} rounds")
    ax.set_xlabel("Boosting round (trees added)")
    ax.set_ylabel("Log loss")
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig

