"""Feature standardization that imports with numpy alone, so the same scaling runs on the board.

:class:`Scaler` matches scikit-learn's ``StandardScaler`` (population variance, statistics in
float64, constant features left unscaled) and round-trips through JSON with ``to_dict`` /
``from_dict``.
"""

from __future__ import annotations

import numpy as np

from .exceptions import DataError, NotReadyError
from .inputs import check_events


class Scaler:
    """Standardize features: ``(X - mean_) / scale_``, with statistics learned by :meth:`fit`."""

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.var_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_samples_seen_: int = 0

    @property
    def n_features_in_(self) -> int:
        self._check_fitted("n_features_in_")
        return self.mean_.shape[0]

    def fit(self, X) -> Scaler:
        """Learn per-feature mean and standard deviation from ``X`` (n_events, n_features)."""
        X = check_events(X, None, allow_single_row=False)
        n = X.shape[0]
        mean = X.mean(axis=0)
        var = np.square(X - mean).mean(axis=0)
        # A variance within float64 rounding error of zero means a constant feature: leave it unscaled.
        eps = np.finfo(np.float64).eps
        constant = var <= n * eps * var + np.square(n * eps * mean)
        self.mean_ = mean
        self.var_ = var
        self.scale_ = np.where(constant, 1.0, np.sqrt(var))
        self.n_samples_seen_ = n
        return self

    def transform(self, X) -> np.ndarray:
        """Standardize ``X``; float input keeps its dtype, integer input becomes float64.

        ``X`` passes the same check as the emulator's and the overlay's inputs
        (:func:`~fastml_lab.inputs.check_events`): a 1-D array of ``n_features_in_`` values is one event.
        """
        self._check_fitted("transform")
        return self.transform_checked(self._checked_input(X), _float_dtype(X))

    def transform_checked(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """:meth:`transform` for an array ``check_events`` already returned (float64, fitted width)."""
        # Statistics are cast to the input dtype first, as scikit-learn does, so float32 results agree bitwise.
        out = X.astype(dtype)
        out -= self.mean_.astype(dtype)
        out /= self.scale_.astype(dtype)
        return out

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """Undo :meth:`transform`: ``X * scale_ + mean_`` (same input check and dtypes)."""
        self._check_fitted("inverse_transform")
        dtype = _float_dtype(X)
        out = self._checked_input(X).astype(dtype)
        out *= self.scale_.astype(dtype)
        out += self.mean_.astype(dtype)
        return out

    def to_dict(self) -> dict:
        """JSON-friendly state: ``{"mean": [...], "scale": [...], "var": [...], "n_samples_seen": n}``."""
        self._check_fitted("to_dict")
        return {
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "var": self.var_.tolist(),
            "n_samples_seen": int(self.n_samples_seen_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        """Rebuild a fitted Scaler from :meth:`to_dict` output (``var`` and ``n_samples_seen`` optional)."""
        if not isinstance(d, dict) or "mean" not in d or "scale" not in d:
            raise DataError(
                f"Scaler.from_dict needs a dict with 'mean' and 'scale' lists; got {_short(d)}."
            )
        mean = _as_vector(d["mean"], "mean")
        scale = _as_vector(d["scale"], "scale")
        if mean.shape != scale.shape:
            raise DataError(
                f"Scaler.from_dict: 'mean' has {mean.size} values but 'scale' has {scale.size}; "
                f"they must have one value per feature each."
            )
        if (scale <= 0).any():
            raise DataError(
                f"Scaler.from_dict: 'scale' must be positive; found {scale[scale <= 0][:3].tolist()}."
            )
        scaler = cls()
        scaler.mean_ = mean
        scaler.scale_ = scale
        scaler.var_ = _as_vector(d["var"], "var") if "var" in d else np.square(scale)
        scaler.n_samples_seen_ = int(d.get("n_samples_seen", 0))
        return scaler

    def __repr__(self) -> str:
        state = f"n_features={self.mean_.size}" if self.mean_ is not None else "not fitted"
        return f"Scaler({state})"

    def _check_fitted(self, what: str) -> None:
        if self.mean_ is None:
            raise NotReadyError(f"Scaler.{what} needs a fitted Scaler; call fit(X_train) first.")

    def _checked_input(self, X) -> np.ndarray:
        return check_events(X, self.mean_.size)


def _float_dtype(X) -> np.dtype:
    """The dtype results keep: the input's own float dtype, else float64."""
    dtype = getattr(X, "dtype", None)
    return dtype if isinstance(dtype, np.dtype) and dtype.kind == "f" else np.dtype(np.float64)


def _as_vector(values, key: str) -> np.ndarray:
    try:
        vector = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"Scaler.from_dict: '{key}' must be a list of numbers; got {_short(values)}.") from None
    if vector.ndim != 1 or vector.size == 0 or not np.isfinite(vector).all():
        raise DataError(
            f"Scaler.from_dict: '{key}' must be a non-empty list of finite numbers; got {_short(values)}."
        )
    return vector


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
