"""The jet data schema: feature names, class names and the checks every loader applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..exceptions import DataError

#: The 16 high-level features, in the order of OpenML ``hls4ml_lhc_jets_hlf`` and the hls4ml tutorial.
FEATURES: tuple[str, ...] = (
    "zlogz",
    "c1_b0_mmdt", "c1_b1_mmdt", "c1_b2_mmdt",
    "c2_b1_mmdt", "c2_b2_mmdt",
    "d2_b1_mmdt", "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt",
    "m2_b1_mmdt", "m2_b2_mmdt",
    "n2_b1_mmdt", "n2_b2_mmdt",
    "mass_mmdt", "multiplicity",
)

#: Jet classes; integer labels are positions in this tuple (LabelEncoder order: g=0 ... z=4).
CLASSES: tuple[str, ...] = ("g", "q", "t", "w", "z")

N_FEATURES = len(FEATURES)
N_CLASSES = len(CLASSES)


def describe_origin(origin) -> str:
    """Quote a file name (or pass a plain description through) for error messages."""
    return f"'{origin}'" if isinstance(origin, Path) else str(origin)


def check_columns(names, label: str, mismatch: str, exactly: bool = False, end: str = ".") -> None:
    """Check that the column (or attribute) ``names`` are the 16 FEATURES and ``label``, in any order,
    none missing and none more; else raise DataError ``"{mismatch} (missing [...], unexpected [...]);
    expected [exactly ]the 16 features [...] and '{label}'{end}"``."""
    names = [str(name) for name in names]
    missing = [name for name in (*FEATURES, label) if name not in names]
    extra = [name for name in names if name not in FEATURES and name != label]
    if missing or extra:
        raise DataError(
            f"{mismatch} (missing {missing}, unexpected {extra}); expected {'exactly ' if exactly else ''}"
            f"the {N_FEATURES} features {list(FEATURES)} and '{label}'{end}"
        )


def labels_from_values(values, origin) -> np.ndarray:
    """Map class values (``'g'``..``'z'`` or integers 0..4) to int64 labels, or raise DataError."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        labels = values.astype(np.int64)
        bad = (labels < 0) | (labels >= N_CLASSES)
    elif values.dtype.kind == "f":
        labels = np.full(values.shape, -1, dtype=np.int64)
        whole = np.isfinite(values) & (values == np.round(values))
        labels[whole] = values[whole].astype(np.int64)
        bad = (labels < 0) | (labels >= N_CLASSES)
    else:
        text = np.char.strip(values.astype(str))
        labels = np.full(values.shape, -1, dtype=np.int64)
        for index, name in enumerate(CLASSES):
            labels[text == name] = index
            labels[text == str(index)] = index
        bad = labels < 0
    if bad.any():
        unknown = sorted({str(v) for v in values[bad][:1000]})[:5]
        raise DataError(
            f"{describe_origin(origin)}: {int(bad.sum())} row(s) have unknown class labels "
            f"{unknown}; valid labels are {list(CLASSES)} or the integers 0..{N_CLASSES - 1}."
        )
    return labels


def check_features(X, origin) -> np.ndarray:
    """Return ``X`` as float32 (n, 16) after checking its shape and that every value is finite."""
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{describe_origin(origin)}: feature values are not numeric ({exc}); "
            f"every one of the {N_FEATURES} feature columns must hold numbers."
        ) from None
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise DataError(
            f"{describe_origin(origin)}: features have shape {X.shape}; expected (n_events, "
            f"{N_FEATURES}) with columns {list(FEATURES)}."
        )
    if X.shape[0] == 0:
        raise DataError(f"{describe_origin(origin)}: holds no events; expected at least one row.")
    finite = np.isfinite(X)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        raise DataError(
            f"{describe_origin(origin)}: {rows.size} feature value(s) are NaN or infinite "
            f"(first at row {rows[0]}, column '{FEATURES[cols[0]]}'); every value must be finite."
        )
    return X


def check_dataset(X, labels, origin) -> tuple[np.ndarray, np.ndarray]:
    """Check features and int labels together; return float32 ``X`` and int64 labels."""
    X = check_features(X, origin)
    labels = np.asarray(labels)
    if labels.shape != (X.shape[0],):
        raise DataError(
            f"{describe_origin(origin)}: {labels.shape} labels for {X.shape[0]} events; "
            f"expected one label per event."
        )
    return X, labels_from_values(labels, origin)


def one_hot(labels, n_classes: int = N_CLASSES) -> np.ndarray:
    """One-hot float32 ``(n, n_classes)`` rows for integer ``labels`` (default: the CLASSES order).

    Labels given already one-hot (2-D) are checked for ``n_classes`` columns and returned as float32.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != n_classes:
            raise DataError(f"one-hot labels have {labels.shape[1]} columns; expected {n_classes} (one per class)")
        return labels.astype(np.float32)
    if labels.ndim != 1:
        raise DataError(f"labels must be integers (one per event) or one-hot rows; got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer) and not np.all(np.mod(labels, 1) == 0):
        raise DataError("labels must be whole numbers (class indices) or one-hot rows")
    indices = labels.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= n_classes):
        raise DataError(f"integer labels must lie in [0, {n_classes}); got {indices.min()}..{indices.max()}")
    out = np.zeros((len(indices), n_classes), dtype=np.float32)
    out[np.arange(len(indices)), indices] = 1.0
    return out
