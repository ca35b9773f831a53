"""Feature standardization that imports with numpy alone, so the same scaling runs on the board.

:class:`Scaler` matches scikit-learn's ``StandardScaler`` (population variance, statistics in
float64, constant features left unscaled) and round-trips through JSON with ``to_dict`` /
``from_dict``.
"""

from __future__ import annotations

import numpy as np

from .exceptions import DataError, NotReadyError


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
        """Learn per-feature mean and standard deviation from ``X`` (n_samples, n_features)."""
        X = _as_matrix(X, "fit")
        n = X.shape[0]
        mean = X.mean(axis=0, dtype=np.float64)
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
        """Standardize ``X``; float input keeps its dtype, integer input becomes float64."""
        self._check_fitted("transform")
        X = self._checked_input(X, "transform")
        # Statistics are cast to the input dtype first, as scikit-learn does, so float32 results agree bitwise.
        out = X.copy()
        out -= self.mean_.astype(X.dtype)
        out /= self.scale_.astype(X.dtype)
        return out

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """Undo :meth:`transform`: ``X * scale_ + mean_``."""
        self._check_fitted("inverse_transform")
        X = self._checked_input(X, "inverse_transform")
        out = X.copy()
        out *= self.scale_.astype(X.dtype)
        out += self.mean_.astype(X.dtype)
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

    def _checked_input(self, X, what: str) -> np.ndarray:
        X = _as_matrix(X, what)
        if X.shape[1] != self.mean_.size:
            raise DataError(
                f"Scaler.{what}: X has {X.shape[1]} features but the Scaler was fitted on "
                f"{self.mean_.size}; pass an array of shape (n_samples, {self.mean_.size})."
            )
        return X


def _as_matrix(X, what: str) -> np.ndarray:
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"Scaler.{what}: X is not a numeric array ({exc}).") from None
    if X.dtype.kind not in "fiub":
        raise DataError(f"Scaler.{what}: X must be numeric; got dtype {X.dtype}.")
    if X.ndim != 2:
        hint = " Use X.reshape(1, -1) for a single sample." if X.ndim == 1 else ""
        raise DataError(f"Scaler.{what}: X must be 2-D (n_samples, n_features); got shape {X.shape}.{hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"Scaler.{what}: X has shape {X.shape}; it needs at least one sample and one feature.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(
            f"Scaler.{what}: X holds {int((~finite).sum())} NaN or infinite value(s) "
            f"(first at row {row}, column {col}); every value must be finite."
        )
    return X


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
