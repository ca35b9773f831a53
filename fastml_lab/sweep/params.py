"""What a sweep needs of a model family: its parameters (:class:`Param`) and its points' work (:class:`SweepSupport`).

A family takes part in sweeps when :data:`fastml_lab.sweep.space.SUPPORT` names its
:class:`SweepSupport`: the table of its sweep parameters (their defaults, checks and meaning), how
a point of it is labelled, trained and exported, and what its firmware's outputs are compared
with. The built-in ones are :mod:`.network` (neural networks) and :mod:`.trees` (BDTs); a family
without one is refused, naming it, when a space names it. The standard library only: the
libraries a point needs are imported when the point runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..exceptions import ConfigError


# ------------------------------------------------------------------------------ value checks
def whole(low, high=None):
    """A check: a whole number from ``low`` (to ``high``)."""
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
        return value if ok else None
    check.valid = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")
    return check


def number(low, high, low_open=False):
    """A check: a number from (or above, ``low_open``) ``low`` to ``high``."""
    def check(value):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and (value > low if low_open else value >= low) and value <= high)
        return float(value) if ok else None
    check.valid = f"a number {'above' if low_open else 'from'} {low:g} to {high:g}"
    return check


def choice(*options):
    """A check: one of ``options`` (text, any case)."""
    def check(value):
        text = str(value).lower() if isinstance(value, str) else None
        return text if text in options else None
    check.valid = "one of " + ", ".join(options)
    return check


@dataclass(frozen=True)
class Param:
    """One sweep parameter of a model family: its default, its check and what it means."""

    default: object
    check: object
    help: str
    numeric: bool = False  # may be a range in random and optuna searches
    nullable: bool = False  # null is a value (e.g. beta: null is uniform QAT)
    zero_is_null: bool = False  # 0 and null are the same point (e.g. prune)

    def validate(self, value, where: str):
        if value is None and self.nullable:
            return None
        out = self.check(value)
        if out is None:
            valid = self.check.valid + (" or null" if self.nullable else "")
            raise ConfigError(f"{where} must be {valid}; got {value!r}.")
        return None if self.zero_is_null and not out else out


class SweepSupport:
    """A family's part in sweeps (subclass it; :data:`fastml_lab.sweep.space.SUPPORT` lists it by family name).

    ``params``: ``{name: Param}``, every setting of a point of the family (defaults fill in what a
    space leaves out).
    """

    params: dict = {}
    #: The libraries a worker imports once before its first point of this family (see
    #: :func:`fastml_lab.sweep.point.warm_worker`).
    libraries: tuple = ()

    def __init__(self, family):
        self.family = family

    def label(self, params: dict) -> str:
        """A short description of a point's settings, e.g. ``nn 16-8 bits=6 reuse=1``."""
        raise NotImplementedError

    def train(self, point, ds):
        """``(model, info)``: the trained model of ``point`` on the jets ``ds`` and what training
        reported (``info["float_model"]``: a float model to evaluate too, if there is one)."""
        raise NotImplementedError

    def export_options(self, params: dict) -> dict:
        """The family's own options of :meth:`Family.export` for a point with ``params``."""
        return {}

    def mismatches(self, model, ds, emulated):
        """``(count, reference)``: events on which the emulated firmware (``emulated``: its outputs on
        ``ds.X_test``) disagrees with a model that computes what it computes, and that model's name;
        ``(None, None)`` when the family has none."""
        return None, None
