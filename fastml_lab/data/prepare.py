"""Turn raw jets into a training-ready :class:`JetDataset`, as the hls4ml tutorial does.

Steps: ``train_test_split(test_size, random_state=42)``, a :class:`~fastml_lab.scaler.Scaler`
fitted on the training part only and applied to both parts, and one-hot labels in CLASSES order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .._deps import require
from ..exceptions import ConfigError, DataError
from ..scaler import Scaler
from .schema import CLASSES, FEATURES, one_hot

SPLIT_RANDOM_STATE = 42
PARTS = ("train", "test")


@dataclass(repr=False)
class JetDataset:
    """Standardized train/test jets with one-hot and integer labels, and where they came from."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    labels_train: np.ndarray
    labels_test: np.ndarray
    scaler: Scaler
    source: str
    notice: str
    feature_names: tuple[str, ...] = field(default=FEATURES)
    class_names: tuple[str, ...] = field(default=CLASSES)

    def digest(self) -> str:
        """16 hex digits identifying the events (training and test parts, inputs and labels)."""
        import hashlib

        h = hashlib.sha256()
        for array in (self.X_train, self.X_test, self.labels_train, self.labels_test):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Sizes, class balance and source, as plain JSON-serializable values."""
        return {
            "source": self.source,
            "notice": self.notice,
            "n_train": int(len(self.labels_train)),
            "n_test": int(len(self.labels_test)),
            "n_features": len(self.feature_names),
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "class_counts_train": _counts(self.labels_train, self.class_names),
            "class_counts_test": _counts(self.labels_test, self.class_names),
        }

    def __repr__(self) -> str:
        return (f"JetDataset(source={self.source!r}, n_train={len(self.labels_train)}, "
                f"n_test={len(self.labels_test)})")


def dataset_part(data, part: str) -> tuple:
    """``(X, labels)`` of the ``"train"`` or ``"test"`` part of a JetDataset (or a look-alike).

    Labels are the integer ones when the dataset has them, else its one-hot rows. An ``(X, labels)``
    pair is the same events for either part and is returned as it is. Training, evaluation,
    profiling and the studies all take their part of a dataset here.
    """
    if part not in PARTS:
        raise ConfigError(f"A dataset part is 'train' or 'test'; got {part!r}.")
    if hasattr(data, f"X_{part}"):
        labels = getattr(data, f"labels_{part}", None)
        return getattr(data, f"X_{part}"), labels if labels is not None else getattr(data, f"y_{part}", None)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise DataError(f"Expected a JetDataset (with X_{part} and its labels) or an (X, labels) pair; "
                    f"got {type(data).__name__}.")


def prepare_jets(X: np.ndarray, labels: np.ndarray, *, source: str, notice: str,
                 test_size: float = 0.2) -> JetDataset:
    """Split, standardize (scaler fitted on the training part only) and one-hot encode."""
    model_selection = require("sklearn.model_selection", "split jets into train and test sets")
    X_train, X_test, labels_train, labels_test = model_selection.train_test_split(
        X, labels, test_size=test_size, random_state=SPLIT_RANDOM_STATE
    )
    scaler = Scaler().fit(X_train)
    return JetDataset(
        X_train=scaler.transform(X_train).astype(np.float32, copy=False),
        X_test=scaler.transform(X_test).astype(np.float32, copy=False),
        y_train=one_hot(labels_train),
        y_test=one_hot(labels_test),
        labels_train=labels_train,
        labels_test=labels_test,
        scaler=scaler,
        source=source,
        notice=notice,
    )


def _counts(labels: np.ndarray, class_names) -> dict:
    counts = Counter(labels.tolist())
    return {name: int(counts.get(i, 0)) for i, name in enumerate(class_names)}
