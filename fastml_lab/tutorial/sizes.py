"""Quick and full sizes, defined once: for the tutorials, the guided walk and ``fastml-lab demo``.

One table, :data:`SIZES`, holds the sizes of each of the three at each setting; :func:`settings`
reads it (the tutorials: one switch, ``FASTML_LAB_QUICK=1``; the walk: its "quick settings" box;
the demo: ``--quick``). Full tutorial sizes keep each tutorial under five minutes on two cores
(Binder); quick sizes are for CI and for a first look, and keep the lesson intact with smaller
numbers. The walk's quick sizes answer within a minute; the demo's quick run trains long enough
to come within a point of the full accuracy.
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
    """Sizes of one run (tutorial, walk or demo) at the quick or the full setting."""

    quick: bool
    n_events: int | None    # jets loaded (None: all of them)
    epochs: int             # float training
    patience: int | None    # early stopping (None: off)
    learning_rate: float
    batch_size: int
    qat_epochs: int         # quantization-aware training and pruning fine-tuning
    study_bits: tuple       # bit widths of the accuracy-vs-bits studies
    qat_study_bits: tuple   # the (slower) QAT points of those studies
    csim_events: int | None  # events through the compiled C simulation (None: all)
    profile_events: int     # events for profiling and overlay timing
    seed: int = 0
    # Boosted decision trees (the walk's Train step and tutorial 7; rows without them keep these)
    bdt_rounds: int = 100              # boosting rounds (trees per class; each one is C++ to compile)
    bdt_depth: int = 3                 # largest tree depth
    bdt_learning_rate: float = 0.3
    bdt_early_stopping: int | None = 10  # rounds without a better validation loss (None: off)
    bdt_widths: tuple = ()             # total bits of the BDT precision studies
    # The CNN on jet images (tutorial 11 and ``demo --model cnn``)
    image_events: int = 20_000         # jet images generated
    cnn_epochs: int = 8                # float CNN training

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        mode = f"quick ({QUICK_ENV}=1)" if self.quick else "full"
        jets = "all jets" if self.n_events is None else f"{self.n_events:,} jets"
        return (f"{mode}: {jets}, up to {self.epochs} epochs "
                f"({self.qat_epochs} for quantization-aware training)")


#: ``{purpose: {quick: Settings}}`` for ``"tutorial"``, ``"walk"`` and ``"demo"``.
SIZES = {
    "tutorial": {
        True: Settings(quick=True, n_events=20_000, epochs=8, patience=3, learning_rate=3e-3,
                       batch_size=512, qat_epochs=6, study_bits=(4, 6, 8, 12, 16),
                       qat_study_bits=(4, 8), csim_events=2_000, profile_events=2_000,
                       bdt_rounds=40, bdt_depth=3, bdt_learning_rate=0.3, bdt_early_stopping=5,
                       bdt_widths=(6, 8, 10, 12, 16), image_events=10_000, cnn_epochs=5),
        False: Settings(quick=False, n_events=100_000, epochs=25, patience=4, learning_rate=3e-3,
                        batch_size=1024, qat_epochs=10, study_bits=(4, 5, 6, 7, 8, 10, 12, 16),
                        qat_study_bits=(4, 6, 8), csim_events=20_000, profile_events=10_000,
                        bdt_rounds=60, bdt_depth=3, bdt_learning_rate=0.3, bdt_early_stopping=10,
                        bdt_widths=(6, 8, 10, 12, 14, 16, 18), image_events=40_000, cnn_epochs=15),
    },
    "walk": {  # the panels' defaults; a student changes them in the controls
        True: Settings(quick=True, n_events=20_000, epochs=3, patience=None, learning_rate=3e-3,
                       batch_size=512, qat_epochs=2, study_bits=(4, 6, 8, 12, 16),
                       qat_study_bits=(), csim_events=2_000, profile_events=4_096,
                       bdt_rounds=20, bdt_depth=3, bdt_learning_rate=0.3, bdt_early_stopping=5,
                       bdt_widths=(6, 8, 10, 12, 16)),
        False: Settings(quick=False, n_events=None, epochs=30, patience=5, learning_rate=1e-3,
                        batch_size=1024, qat_epochs=20, study_bits=(4, 6, 8, 10, 12, 14, 16),
                        qat_study_bits=(), csim_events=20_000, profile_events=100_000,
                        bdt_rounds=100, bdt_depth=3, bdt_learning_rate=0.3, bdt_early_stopping=10,
                        bdt_widths=(6, 8, 10, 12, 14, 16, 18)),
    },
    "demo": {  # quick: about 10 s of training on 2 cores, accuracy close to the full run; the BDT's
        # quick size keeps its C simulation's compile (g++ over every unrolled tree) short
        True: Settings(quick=True, n_events=60_000, epochs=20, patience=4, learning_rate=3e-3,
                       batch_size=1024, qat_epochs=5, study_bits=(), qat_study_bits=(),
                       csim_events=20_000, profile_events=4_096,
                       bdt_rounds=20, bdt_depth=3, bdt_learning_rate=0.3, bdt_early_stopping=5,
                       image_events=20_000, cnn_epochs=8),
        False: Settings(quick=False, n_events=None, epochs=50, patience=5, learning_rate=1e-3,
                        batch_size=1024, qat_epochs=10, study_bits=(), qat_study_bits=(),
                        csim_events=None, profile_events=4_096,
                        bdt_rounds=100, bdt_depth=4, bdt_learning_rate=0.3, bdt_early_stopping=10,
                        image_events=50_000, cnn_epochs=20),
    },
}


def settings(quick: bool | None = None, purpose: str = "tutorial") -> Settings:
    """The quick or full sizes of ``purpose`` (see :data:`SIZES`); ``quick=None`` reads ``FASTML_LAB_QUICK``."""
    if purpose not in SIZES:
        raise ConfigError(f"Unknown purpose {purpose!r} for sizes; known: {', '.join(SIZES)}.")
    if quick is None:
        quick = quick_mode()
    return SIZES[purpose][bool(quick)]
