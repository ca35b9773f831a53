"""The one check of an events array, shared by the emulator, the scaler and the overlays.

Every component that takes events calls :func:`check_events` with its options, so the same bad
array gets the same answer and the same message everywhere. Numpy only: this module runs on the board.
"""

from __future__ import annotations

import numpy as np

from .exceptions import DataError

#: Array kinds accepted as numbers: signed and unsigned integers, floats (not bool, complex, object).
NUMERIC_KINDS = "iuf"


def check_events(X, n_features: int | None, *, min_rows: int = 1, allow_single_row: bool = True,
                 name: str = "X", shape=None) -> np.ndarray:
    """``X`` as a C-contiguous float64 ``(n_events, n_features)`` array, or a DataError.

    ``n_features=None`` accepts any positive number of columns. ``allow_single_row`` reads a 1-D
    array of exactly ``n_features`` values as one event. ``min_rows`` is the fewest events accepted.
    ``shape`` is an event's shape when it is not flat (an image ``(H, W, C)``, a sequence
    ``(L, C)``): events of that shape, ``(n_events, *shape)``, are flattened in row-major order
    (the order hls4ml's firmware reads them), and a single event of that shape is one event.
    Values must be finite real numbers; the message names the first bad one.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        row = f"{n_features} values" if n_features is not None else "the same number of values"
        raise DataError(f"Cannot read {name} as an array of numbers ({exc}); every event must be a "
                        f"row of {row}.") from None
    if arr.dtype.kind not in NUMERIC_KINDS:
        hint = f" If the values are numbers, convert with np.asarray({name}, dtype=float)." \
            if arr.dtype.kind in "bO" else ""
        raise DataError(f"{name} must hold real numbers (integer or float); got dtype {arr.dtype}.{hint}")
    expected = f"(n_events, {n_features})" if n_features is not None else "(n_events, n_features)"
    shape = tuple(int(d) for d in shape) if shape is not None and len(shape) > 1 else None
    if shape is not None:
        expected = f"(n_events, {', '.join(map(str, shape))}) or {expected}"
        if arr.shape[1:] == shape:
            arr = arr.reshape(arr.shape[0], -1)
        elif arr.shape == shape and allow_single_row:
            arr = arr.reshape(1, -1)
        elif arr.ndim > 2:
            raise DataError(f"{name} has shape {arr.shape}; expected {expected}: one event per row, each of "
                            f"shape {shape}.")
    if arr.ndim == 1 and allow_single_row and n_features is not None and arr.size == n_features:
        arr = arr.reshape(1, n_features)
    if arr.ndim != 2 or (n_features is not None and arr.shape[1] != n_features) or arr.shape[1] == 0:
        hint = ""
        if arr.ndim == 1 and n_features is not None and arr.size % n_features == 0 and arr.size:
            hint = f" If the values are events in order, use {name}.reshape(-1, {n_features})."
        elif arr.ndim == 1 and n_features is not None and allow_single_row:
            hint = f" A single event is a 1-D array of exactly {n_features} values."
        elif arr.ndim == 1 and n_features is None:
            hint = f" Use {name}.reshape(-1, 1) for one feature or {name}.reshape(1, -1) for one event."
        raise DataError(f"{name} has shape {arr.shape}; expected {expected}: one row per event, "
                        f"one column per feature.{hint}")
    if arr.shape[0] < min_rows:
        raise DataError(f"{name} has {arr.shape[0]} events (shape {arr.shape}); at least {min_rows} "
                        f"{'is' if min_rows == 1 else 'are'} needed.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = ~finite
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{name}[{row}, {col}] is {arr[row, col]}: every value must be a finite number "
                        f"({int(bad.sum())} NaN or infinite value(s) in {int(bad.any(axis=1).sum())} "
                        "event(s)). Drop or impute them first.")
    return arr


def load_events(path, n_features: int | None, shape=None) -> np.ndarray:
    """The events in the ``.npy`` file ``path``, checked as :func:`check_events` does (``shape``: an
    event's shape); messages name the file."""
    from pathlib import Path

    from ._io import load_npy

    path = Path(path)
    return check_events(load_npy(path), n_features, name=path.name, shape=shape)


def describe_count(X: np.ndarray) -> str:
    """'1 event' or 'N events' for a checked array."""
    n = int(X.shape[0])
    return f"{n:,} event" + ("" if n == 1 else "s")
