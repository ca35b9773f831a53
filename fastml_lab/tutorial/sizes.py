"""The tutorials' sizes: one switch, ``FASTML_LAB_QUICK=1``, shrinks data, epochs and studies.

Full sizes keep each tutorial under five minutes on two cores (Binder); quick sizes are for CI
and for a first look, and keep the lesson intact with smaller numbers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from ..exceptions import ConfigError

QUICK_ENV = "FASTML_LAB_QUICK"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def quick_mode() -> bool:
    """True when ``FASTML_LAB_QUICK`` is 1/true/yes/on; ConfigError for a value that is neither."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{QUICK_ENV}={os.environ[QUICK_ENV]!r} is not understood; use 1 (quick "
                      "sizes) or 0 (full sizes), or leave it unset.")


@dataclass(frozen=True)
class Settings:
    """Sizes every tutorial reads, so the quick switch lives in one place."""

    quick: bool
    n_events: int           # jets loaded (a reproducible subset of the real data, or generated)
    epochs: int             # float training
    patience: int           # early stopping
    learning_rate: float
    batch_size: int
    qat_epochs: int         # quantization-aware training and pruning fine-tuning
    study_bits: tuple       # bit widths of the accuracy-vs-bits studies
    qat_study_bits: tuple   # the (slower) QAT points of those studies
    csim_events: int        # events through the compiled C simulation
    profile_events: int     # events for profiling and overlay timing
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        mode = f"quick ({QUICK_ENV}=1)" if self.quick else "full"
        return (f"{mode}: {self.n_events:,} jets, up to {self.epochs} epochs "
                f"({self.qat_epochs} for quantization-aware training)")


def settings(quick: bool | None = None) -> Settings:
    """The quick or full sizes; ``quick=None`` reads ``FASTML_LAB_QUICK``."""
    if quick is None:
        quick = quick_mode()
    if quick:
        return Settings(quick=True, n_events=20_000, epochs=8, patience=3, learning_rate=3e-3,
                        batch_size=512, qat_epochs=6, study_bits=(4, 6, 8, 12, 16),
                        qat_study_bits=(4, 8), csim_events=2_000, profile_events=2_000)
    return Settings(quick=False, n_events=100_000, epochs=25, patience=4, learning_rate=3e-3,
                    batch_size=1024, qat_epochs=10, study_bits=(4, 5, 6, 7, 8, 10, 12, 16),
                    qat_study_bits=(4, 6, 8), csim_events=20_000, profile_events=10_000)
