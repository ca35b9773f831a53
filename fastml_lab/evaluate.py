"""Accuracy, one-vs-rest ROC curves and AUC, and confusion matrices for jet classifiers.

Everything is computed from a score array ``(n_events, n_classes)`` and integer labels, so the
outputs of a Keras model, an hls4ml C simulation or the fixed-point emulator are evaluated the
same way. numpy only; a model is asked for ``predict(X)`` first.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from .exceptions import DataError, NotReadyError

__all__ = ["RocCurve", "Evaluation", "evaluate", "roc_curve", "auc", "confusion_matrix"]


# --------------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class RocCurve:
    """One class against the rest, as the field plots it.

    ``efficiency`` is the signal efficiency (true positive rate), ``mistag`` the background mistag
    rate (false positive rate); both start at 0 and end at 1, one point per distinct threshold.
    """

    efficiency: np.ndarray
    mistag: np.ndarray
    thresholds: np.ndarray

    def mistag_at(self, efficiency: float) -> float:
        """Lowest background mistag rate that reaches ``efficiency`` (interpolated between points)."""
        if not np.isfinite(self.efficiency).all():
            return math.nan
        reached, first = np.unique(self.efficiency, return_index=True)
        return float(np.interp(efficiency, reached, self.mistag[first]))

    def downsampled(self, max_points: int = 200) -> "RocCurve":
        """At most ``max_points`` points, keeping both ends (for JSON and plots)."""
        if len(self.efficiency) <= max_points:
            return self
        keep = np.unique(np.linspace(0, len(self.efficiency) - 1, max_points).round().astype(int))
        return RocCurve(self.efficiency[keep], self.mistag[keep], self.thresholds[keep])


def roc_curve(scores: np.ndarray, is_signal: np.ndarray) -> RocCurve:
    """ROC curve of one score column against a boolean signal mask; ties share one point."""
    scores = np.asarray(scores, dtype=np.float64)
    is_signal = np.asarray(is_signal, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_signal = scores[order], is_signal[order]
    last_of_each_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_pos = np.cumsum(sorted_signal)[last_of_each_value]
    false_pos = last_of_each_value + 1 - true_pos
    n_signal, n_background = is_signal.sum(), (~is_signal).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = np.r_[0, true_pos] / n_signal
        mistag = np.r_[0, false_pos] / n_background
    return RocCurve(efficiency, mistag, np.r_[np.inf, sorted_scores[last_of_each_value]])


def auc(curve: RocCurve) -> float:
    """Area under the ROC curve (trapezoids); NaN when a class has no signal or no background."""
    x, y = curve.mistag, curve.efficiency
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.nan
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    flat = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


# ------------------------------------------------------------------------------------ evaluation
@dataclass
class Evaluation:
    """Metrics of one classifier on one labelled sample."""

    class_names: tuple
    accuracy: float
    auc: dict
    roc: dict = field(repr=False)
    confusion: np.ndarray = field(repr=False)
    n_events: int = 0

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Rows divided by the number of true events of that class (rows of zeros stay zero)."""
        totals = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, totals, out=np.zeros(self.confusion.shape), where=totals > 0)

    @property
    def mean_auc(self) -> float:
        return float(np.nanmean(list(self.auc.values())))

    def to_dict(self, curves: bool = False, max_points: int = 200) -> dict:
        """JSON-friendly dict (NaN becomes None); ``curves=True`` adds downsampled ROC curves."""
        out = {
            "n_events": self.n_events,
            "class_names": list(self.class_names),
            "accuracy": _json_float(self.accuracy),
            "auc": {name: _json_float(value) for name, value in self.auc.items()},
            "confusion": {"counts": self.confusion.tolist(),
                          "normalized": np.round(self.confusion_normalized, 6).tolist()},
        }
        if curves:
            out["roc"] = {name: _curve_dict(curve.downsampled(max_points))
                          for name, curve in self.roc.items()}
        return out


def _json_float(value: float):
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _curve_dict(curve: RocCurve) -> dict:
    return {"efficiency": [_json_float(v) for v in curve.efficiency],
            "mistag": [_json_float(v) for v in curve.mistag]}


def evaluate(model_or_scores, data, class_names=None, batch_size: int = 4096) -> Evaluation:
    """Evaluate a model (anything with ``predict``) or a score array on labelled events.

    ``data`` is a JetDataset (its test part), an ``(X, labels)`` pair, or, with a score array,
    just the labels. Labels are integers or one-hot rows.
    """
    X, labels, names = _unpack(data, class_names)
    scores = _scores(model_or_scores, X, batch_size)
    labels = _labels(labels, len(scores))
    names = _class_names(names, scores.shape[1])
    return evaluate_scores(scores, labels, names)


def evaluate_scores(scores: np.ndarray, labels: np.ndarray, class_names) -> Evaluation:
    """The metrics themselves, from checked ``scores`` ``(n, k)`` and integer ``labels``."""
    n_classes = scores.shape[1]
    if labels.max() >= n_classes:
        raise DataError(f"labels go up to {labels.max()} but the scores have only {n_classes} columns")
    predicted = scores.argmax(axis=1)
    curves = {name: roc_curve(scores[:, c], labels == c) for c, name in enumerate(class_names)}
    return Evaluation(
        class_names=tuple(class_names),
        accuracy=float(np.mean(predicted == labels)),
        auc={name: auc(curve) for name, curve in curves.items()},
        roc=curves,
        confusion=confusion_matrix(labels, predicted, n_classes),
        n_events=int(len(labels)),
    )


def _unpack(data, class_names):
    """``(X or None, labels, class names or None)`` from the accepted forms of ``data``."""
    from .data.prepare import dataset_part

    if hasattr(data, "X_test") or (isinstance(data, (tuple, list)) and len(data) == 2 and np.ndim(data[0]) == 2):
        X, labels = dataset_part(data, "test")
        return X, labels, class_names or getattr(data, "class_names", None)
    return None, data, class_names


def _scores(model_or_scores, X, batch_size: int) -> np.ndarray:
    if hasattr(model_or_scores, "predict"):
        if X is None:
            raise DataError("a model needs inputs: pass a JetDataset or an (X, labels) pair")
        scores = _predict(model_or_scores, np.asarray(X, dtype=np.float32), batch_size)
    else:
        scores = model_or_scores
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise DataError(f"scores must be a 2-D array (events, classes) with at least 2 classes; "
                        f"got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise DataError("scores contain NaN or infinite values")
    return scores


def _predict(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        if not model.built:
            raise NotReadyError("the Keras model has no weights yet: build and train it first")
        return model.predict(X, batch_size=batch_size, verbose=0)
    return model.predict(X)


def _labels(labels, n_events: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or len(labels) != n_events:
        raise DataError(f"expected {n_events} labels (one per scored event); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise DataError("labels must be integers (class indices) or one-hot rows")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"labels must be >= 0; got {labels.min()}")
    return labels


def _class_names(names, n_classes: int) -> tuple:
    if names is None:
        names = _default_class_names(n_classes)
    names = tuple(str(n) for n in names)
    if len(names) != n_classes:
        raise DataError(f"{len(names)} class names {names} for scores with {n_classes} columns")
    return names


def _default_class_names(n_classes: int) -> tuple:
    try:
        from .data import CLASSES
    except ImportError:
        CLASSES = ()
    return tuple(CLASSES) if len(CLASSES) == n_classes else tuple(str(i) for i in range(n_classes))
