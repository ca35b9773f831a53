"""One definition of a mismatch between two runs of the same firmware. Numpy only (runs on the board).

The C simulation, the emulator, the board and the software overlay must agree value for value, so a
mismatch is one output **value** that differs (not one event): an event whose five scores all differ
counts five. Every comparison in the toolkit (the Export step, the demo, ``Board.verify``) counts
them with :func:`count_mismatches`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exceptions import DataError


@dataclass(frozen=True)
class Mismatches:
    """How two output arrays of the same shape differ."""

    mismatches: int      # output values that differ
    values: int          # output values compared
    events: int          # rows compared
    events_differing: int
    max_abs_diff: float

    @property
    def identical(self) -> bool:
        return self.mismatches == 0

    def describe(self) -> str:
        return f"{self.mismatches:,} mismatches on {self.values:,} output values ({self.events:,} events)"


def count_mismatches(a, b, names=("first", "second")) -> Mismatches:
    """Compare outputs ``a`` and ``b`` (events, outputs) value for value; DataError if shapes differ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DataError(f"Cannot compare outputs of shapes {a.shape} ({names[0]}) and {b.shape} ({names[1]}): "
                        "they must come from the same events.")
    if a.ndim == 1:
        a, b = a.reshape(-1, 1), b.reshape(-1, 1)
    differ = a != b
    diff = np.abs(a - b)
    return Mismatches(mismatches=int(differ.sum()), values=int(a.size), events=int(a.shape[0]),
                      events_differing=int(differ.any(axis=1).sum()) if a.size else 0,
                      max_abs_diff=float(np.nanmax(diff)) if a.size else 0.0)
