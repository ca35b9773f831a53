"""Numerical profiling of a BDT: its numbers on a data sample against the fixed-point types of its parts.

A BDT's firmware holds numbers of three types (the parts of
:func:`~fastml_lab.bdt.export.parse_precision`): the inputs (``input_t``), the split thresholds
(``threshold_t``) and everything summed into a score (``score_t``): the leaf values, ``init_predict``
and ``norm``, the partial sums of the adder tree that adds the trees of a class (conifer's
``reduce``, see :mod:`fastml_lab.firmware.ops.bdt`) and the scores. :func:`profile_bdt` runs the
float ensemble on the sample and counts, for each quantity, the values that *overflow* (beyond the
type's range: wrapped or saturated, by the type's own mode) and the non-zero values that *vanish*
(round to zero), with :class:`~fastml_lab.fixed.FixedType` itself, as
:func:`fastml_lab.quantize.profile` does for a neural network. For the thresholds it also counts,
per feature, distinct thresholds that become equal (*merged*: two splits turn into one) and
neighbours whose order the conversion swaps (*reordered*: only a wrap does that).

A score type that wraps (``ap_fixed<6,3>`` for scores reaching beyond +-4, say) flips the sign of
the scores it overflows: the scores row shows it before synthesis. Partial sums that overflow a
wrapping type are harmless when the score itself fits (the wrap is modular); under saturation
every one of them changes the score.

:attr:`BDTProfile.suggested_precision` follows these rules (one type string per part, rounding and
overflow modes kept):

* integer bits: the fewest (the sign included) with which the part's type holds every value seen
  on the sample: the inputs, all thresholds, and for the score the leaf values, ``init_predict``,
  ``norm``, the partial sums and the scores;
* the threshold's fractional bits: the fewest that keep every feature's distinct thresholds
  distinct (and so in order) after the conversion, at most :data:`MAX_FRACTIONAL`;
* the input's fractional bits: the threshold's. With truncation and the ``<`` convention an input
  converted to that grid (or a finer one) compares with every threshold as the float input does;
* the score's fractional bits: the given score type's, or more where that is too coarse for the
  sum: at least ``ceil(log2(n_rounds + 1)) + 4``, so that truncating the ``n_rounds`` leaves and
  ``init_predict`` of a score (less than one step each) moves it by less than :data:`SCORE_ERROR`
  (1/16; the logistic's slope is at most 1/4, so a probability by less than 1/64).

Numpy only (conifer's JSON of a project and xgboost files are read through
:func:`~fastml_lab.bdt.ensemble.to_ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from ..fixed import FixedType
from ..quantize.profile import DEFAULT_SAMPLE, Distribution, measure
from .ensemble import n_scores, to_ensemble

__all__ = ["BDTProfile", "Observations", "observe", "profile_bdt", "MAX_FRACTIONAL", "SCORE_ERROR", "DEFAULT_SAMPLE"]

#: Fractional bits the threshold rule goes up to.
MAX_FRACTIONAL = 24
#: The most that truncating the leaves of one score may move it, for the suggested score type.
SCORE_ERROR = 2.0 ** -4
#: The profiled parts, in order (the weight part, a one-hot 0/1, is not profiled).
PARTS = ("input", "threshold", "score")
#: ``(quantity, part)`` of the rows, in order.
QUANTITIES = (("inputs", "input"), ("thresholds", "threshold"), ("leaf values", "score"),
              ("init, norm", "score"), ("partial sums", "score"), ("scores", "score"))


# ------------------------------------------------------------------------------------------ float run
def _padded(ensemble: dict):
    """The trees as flat ``(n_trees * n_nodes,)`` tables, trees ordered ``[class][round]``."""
    rounds = ensemble["trees"]
    n_out, n_rounds = n_scores(ensemble), len(rounds)
    n_nodes = max(len(tree["feature"]) for trees in rounds for tree in trees)
    shape = (n_out, n_rounds, n_nodes)
    feature = np.full(shape, -2, dtype=np.int64)
    left, right = np.full(shape, -1, dtype=np.int64), np.full(shape, -1, dtype=np.int64)
    threshold, value = np.zeros(shape), np.zeros(shape)
    for r, trees in enumerate(rounds):
        for c, tree in enumerate(trees):
            n = len(tree["feature"])
            feature[c, r, :n] = tree["feature"]
            left[c, r, :n], right[c, r, :n] = tree["children_left"], tree["children_right"]
            threshold[c, r, :n] = tree["threshold"]
            value[c, r, :n] = tree["value"]
    return feature, left, right, threshold, value


def float_tree_scores(ensemble: dict, X: np.ndarray) -> np.ndarray:
    """Every tree's leaf value for every event, in float: ``(n, n_scores, n_rounds)``."""
    feature, left, right, threshold, value = _padded(ensemble)
    n_out, n_rounds, n_nodes = feature.shape
    n_trees = n_out * n_rounds
    feature = feature.reshape(n_trees, n_nodes)
    leaf = feature < 0
    own = np.broadcast_to(np.arange(n_nodes), feature.shape)
    offset = (np.arange(n_trees) * n_nodes)[:, None]
    feat = np.where(leaf, 0, feature).ravel()
    go_left = (np.where(leaf, own, left.reshape(feature.shape)) + offset).ravel()
    go_right = (np.where(leaf, own, right.reshape(feature.shape)) + offset).ravel()
    thr, val = threshold.ravel(), value.ravel()
    less = np.less if ensemble["splitting_convention"] == "<" else np.less_equal
    depth = int(ensemble["max_depth"])
    out = np.empty((len(X), n_out, n_rounds))
    for start in range(0, len(X), 4096):
        x = X[start:start + 4096]
        node = np.broadcast_to(offset.ravel(), (len(x), n_trees)).copy()
        for _ in range(depth):
            node = np.where(less(np.take_along_axis(x, feat[node], axis=1), thr[node]),
                            go_left[node], go_right[node])
        out[start:start + len(x)] = val[node].reshape(len(x), n_out, n_rounds)
    return out


def adder_tree_sums(scores: np.ndarray) -> tuple:
    """``(every partial sum of conifer's balanced adder tree over the last axis, the total)``, in float."""
    from ..firmware.ops.bdt import _left_count

    parts = []

    def reduce(lo, count):
        if count == 1:
            return scores[..., lo]
        if count == 2:
            total = scores[..., lo] + scores[..., lo + 1]
        else:
            left = _left_count(count)
            total = reduce(lo, left) + reduce(lo + left, count - left)
        parts.append(total)
        return total

    total = reduce(0, scores.shape[-1])
    partial = np.concatenate([p.ravel() for p in parts[:-1]]) if len(parts) > 1 else np.zeros(0)
    return partial, total


@dataclass
class Observations:
    """The float numbers of a BDT on a sample, by quantity (independent of any precision)."""

    values: dict                 # quantity -> float64 array
    thresholds_by_feature: dict  # feature -> sorted distinct float thresholds
    events: int
    n_features: int
    n_scores: int
    n_rounds: int


def observe(ensemble: dict, X: np.ndarray) -> Observations:
    """Run the float ensemble on ``X`` and collect every quantity of :data:`QUANTITIES`."""
    X = np.asarray(X, dtype=np.float64)
    trees = [tree for trees in ensemble["trees"] for tree in trees]
    split_features = np.concatenate([np.asarray(t["feature"]) for t in trees])
    splits = split_features >= 0
    thresholds = np.concatenate([np.asarray(t["threshold"], dtype=np.float64) for t in trees])[splits]
    leaves = np.concatenate([np.asarray(t["value"], dtype=np.float64) for t in trees])[~splits]
    init = np.asarray(ensemble["init_predict"], dtype=np.float64).ravel()
    norm = float(ensemble["norm"])
    partial, total = adder_tree_sums(float_tree_scores(ensemble, X))
    before_norm = init + total  # what the firmware casts to score_t, then multiplies by norm
    scores = before_norm.ravel() if norm == 1 else np.concatenate([before_norm.ravel(), (before_norm * norm).ravel()])
    by_feature = {int(f): np.unique(thresholds[split_features[splits] == f]) for f in np.unique(split_features[splits])}
    return Observations(
        values={"inputs": X.ravel(), "thresholds": thresholds, "leaf values": leaves,
                "init, norm": np.concatenate([init, [norm]]), "partial sums": partial, "scores": scores},
        thresholds_by_feature=by_feature, events=len(X), n_features=int(ensemble["n_features"]),
        n_scores=n_scores(ensemble), n_rounds=len(ensemble["trees"]))


# ------------------------------------------------------------------------------------------ result
@dataclass(frozen=True)
class Quantity:
    """One quantity against its part's type: :class:`~fastml_lab.quantize.profile.Distribution`'s
    counts, plus ``merged`` and ``reordered`` for the thresholds."""

    name: str
    part: str
    distribution: Distribution
    merged: int | None = None
    reordered: int | None = None

    def row(self) -> dict:
        d = self.distribution
        low, high = d.band
        return {"quantity": self.name, "part": self.part, "type": d.type.to_hls(), "values": d.values,
                "zeros": d.zeros, "overflows": d.overflows, "vanished": d.vanished, "merged": self.merged,
                "reordered": self.reordered, "max_abs": d.max_abs,
                "log2_min": d.log2["min"] if d.log2 else None, "log2_max": d.log2["max"] if d.log2 else None,
                "type_log2": [low, high]}


@dataclass
class BDTProfile:
    """A BDT's numbers on a sample against a precision; see :func:`profile_bdt`."""

    precision: dict          # part -> FixedType
    quantities: list         # Quantity, in the order of QUANTITIES
    events: int
    suggested: dict          # part -> FixedType
    notes: list = field(default_factory=list)
    model_name: str = ""

    @property
    def suggested_precision(self) -> dict:
        """``{part: type string}`` by the rules of the module docstring (input, threshold, score)."""
        return {part: t.to_hls() for part, t in self.suggested.items()}

    def suggested_text(self) -> str:
        """The suggestion as export and ``--precision`` take it: ``"input=... threshold=... score=..."``."""
        return " ".join(f"{part}={text}" for part, text in self.suggested_precision.items())

    def table(self) -> list:
        """One dict per quantity: ``quantity``, ``part``, ``type``, ``values``, ``zeros``, ``overflows``,
        ``vanished``, ``merged`` and ``reordered`` (thresholds; else None), ``max_abs``, the observed
        ``log2_min``/``log2_max`` of the non-zero magnitudes and the type's ``type_log2`` band."""
        return [q.row() for q in self.quantities]

    @property
    def overflows(self) -> dict:
        """``{quantity: values beyond the type's range}``."""
        return {q.name: q.distribution.overflows for q in self.quantities}

    @property
    def vanished(self) -> dict:
        """``{quantity: non-zero values that round to zero}``."""
        return {q.name: q.distribution.vanished for q in self.quantities}

    @property
    def total_overflows(self) -> int:
        return sum(self.overflows.values())

    @property
    def score_overflows(self) -> int:
        """Scores beyond the score type's range: wrapped (sign flips) or saturated."""
        return self.overflows["scores"]

    def to_dict(self) -> dict:
        return {"model": self.model_name, "events": self.events,
                "precision": {part: t.to_hls() for part, t in self.precision.items()},
                "rows": self.table(), "total_overflows": self.total_overflows,
                "suggested_precision": self.suggested_precision, "notes": list(self.notes)}

    def summary(self) -> str:
        """A text table: one row per quantity with its type, counts and observed log2 range."""
        head = (f"{'quantity':<13} {'type':<28} {'values':>9} {'overflow':>8} {'vanish':>7} {'merged':>6}  "
                "log2|x| seen  type holds")
        lines = [f"BDT profile of {self.model_name or 'the model'} on {self.events} events", head]
        for r in self.table():
            seen = f"{r['log2_min']:6.1f}..{r['log2_max']:5.1f}" if r["log2_min"] is not None else "  all zero  "
            merged = "-" if r["merged"] is None else str(r["merged"] + r["reordered"])
            low, high = r["type_log2"]
            flag = "  <- OVERFLOW" if r["overflows"] and r["quantity"] != "partial sums" else ""
            lines.append(f"{r['quantity']:<13} {r['type']:<28} {r['values']:>9} {r['overflows']:>8} "
                         f"{r['vanished']:>7} {merged:>6}  {seen}  {low:4d}..{high:d}{flag}")
        lines.append(f"total: {self.total_overflows} overflow(s); merged: thresholds of one feature that "
                     "the conversion makes equal (or swaps)")
        lines += [f"note: {note}" for note in self.notes]
        lines.append(f"suggested precision: {self.suggested_text()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"BDTProfile({self.model_name!r}, {self.events} events, {self.total_overflows} overflows, "
                f"suggested {self.suggested_text()!r})")

    def plot(self, title: str | None = None):
        """Box plots of log2 |x| of each quantity against its type's range (grey); red: overflows."""
        from ..plots import _figure_and_axes
        from ..quantize.profile import _draw_panel

        fig, (ax,) = _figure_and_axes(None, figsize=(8.0, 1.2 + 0.45 * len(self.quantities)))
        _draw_panel(ax, [q.distribution for q in self.quantities])
        ax.set_title(title or f"BDT numerical profile on {self.events} events (grey: range of the type)")
        fig.tight_layout()
        return fig


# ------------------------------------------------------------------------------------------ rules
def threshold_changes(by_feature: dict, ftype: FixedType) -> tuple:
    """``(merged, reordered)``: per feature, distinct thresholds that ``ftype`` makes equal, and
    neighbours whose order it swaps, summed over the features."""
    merged = reordered = 0
    for values in by_feature.values():
        q = ftype.quantize(values)  # values are sorted and distinct
        merged += int(np.sum(np.diff(q) == 0))
        reordered += int(np.sum(np.diff(q) < 0))
    return merged, reordered


def integer_bits_for(values: np.ndarray, fractional: int, like: FixedType) -> int:
    """The fewest integer bits (sign included) with which ``like``'s kind of type, at ``fractional``
    bits, holds every one of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    top = float(np.abs(values).max()) if values.size else 0.0
    integer = (int(np.floor(np.log2(top))) + 1 if top > 0 else 0) + (1 if like.signed else 0) - 1
    integer = max(integer, 1 - fractional)  # at least one bit in all
    while FixedType(integer + fractional, integer, like.signed, like.rounding, "WRAP").overflows(values).any():
        integer += 1
    return integer


def threshold_fractional_bits(by_feature: dict, like: FixedType) -> tuple:
    """``(fractional bits, resolved)``: the fewest fractional bits (0 to :data:`MAX_FRACTIONAL`)
    that keep every feature's distinct thresholds distinct; ``resolved`` is False when even
    :data:`MAX_FRACTIONAL` bits merge some."""
    if not by_feature:
        return 0, True
    top = max(float(np.abs(v).max()) for v in by_feature.values())
    integer = int(np.floor(np.log2(top))) + 3 if top > 0 else 2  # room enough: no overflow here
    for fractional in range(0, MAX_FRACTIONAL + 1):
        t = FixedType(integer + fractional, integer, like.signed, like.rounding, "SAT")
        if threshold_changes(by_feature, t) == (0, 0):
            return fractional, True
    return MAX_FRACTIONAL, False


def suggest(obs: Observations, precision: dict) -> tuple:
    """``({part: FixedType}, notes)`` by the rules of the module docstring."""
    notes = []
    thr, inp, score = precision["threshold"], precision["input"], precision["score"]
    f_thr, resolved = threshold_fractional_bits(obs.thresholds_by_feature, thr)
    if not resolved:
        notes.append(f"some thresholds of one feature are closer than 2**-{MAX_FRACTIONAL}: even "
                     f"{MAX_FRACTIONAL} fractional bits merge them")
    i_thr = integer_bits_for(obs.values["thresholds"], f_thr, thr)
    i_in = integer_bits_for(obs.values["inputs"], f_thr, inp)
    score_values = np.concatenate([obs.values[q] for q, part in QUANTITIES if part == "score"])
    needed = int(np.ceil(np.log2(obs.n_rounds + 1))) - int(np.log2(SCORE_ERROR))
    f_score = max(score.fractional, needed)
    i_score = integer_bits_for(score_values, f_score, score)
    suggested = {
        "input": FixedType(i_in + f_thr, i_in, inp.signed, inp.rounding, inp.overflow),
        "threshold": FixedType(i_thr + f_thr, i_thr, thr.signed, thr.rounding, thr.overflow),
        "score": FixedType(i_score + f_score, i_score, score.signed, score.rounding, score.overflow),
    }
    return suggested, notes


# ------------------------------------------------------------------------------------------ entry
def _resolve(model):
    """``(ensemble, the project's precision or None, name)`` of a project, model, ensemble or file."""
    from ..project import PROJECT_FILE, Project, open_project

    if isinstance(model, (str, Path)) and (Path(model) / PROJECT_FILE).is_file():
        model = open_project(model)
    if isinstance(model, Project):
        from .ensemble import FAMILY, project_ensemble

        if model.family != FAMILY:
            raise DataError(f"{model.path} holds a {model.family} project, not a BDT; profile it with "
                            "fastml_lab.quantize.profile.")
        return project_ensemble(model), model.meta.get("precision"), model.name
    name = Path(model).stem if isinstance(model, (str, Path)) else type(model).__name__
    return to_ensemble(model), None, name


def as_sample(X, n_features: int, sample: int | None = DEFAULT_SAMPLE) -> np.ndarray:
    """The first ``sample`` events of ``X`` (an array or a dataset's training part), checked."""
    from ..data.prepare import dataset_part
    from ..inputs import check_events

    if hasattr(X, "X_train"):
        X = dataset_part(X, "train")[0]
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise DataError(f"sample must be a positive number of events or None (all); got {sample!r}.")
    return check_events(np.asarray(X)[:sample], n_features)


def profile_bdt(model, X, precision=None, sample: int | None = DEFAULT_SAMPLE) -> BDTProfile:
    """Profile a BDT on the first ``sample`` events of ``X`` at ``precision``.

    ``model``: a trained :class:`~fastml_lab.bdt.train.BDTModel`, an ensemble dict, a model file,
    or an exported BDT project (object or folder), whose own precision is the default. ``X``: an
    array ``(events, features)`` or a JetDataset (its training part). ``precision``: as
    :func:`~fastml_lab.bdt.export.parse_precision` takes it (one type, parts, or text); default the
    project's, else ``ap_fixed<16,6>``.
    """
    from .export import parse_precision

    ensemble, own, name = _resolve(model)
    types = parse_precision(precision if precision is not None else own)
    X = as_sample(X, int(ensemble["n_features"]), sample)
    obs = observe(ensemble, X)
    return profile_observed(obs, types, name)


def profile_observed(obs: Observations, types: dict, name: str = "") -> BDTProfile:
    """The profile of already observed numbers at ``types`` (``{part: FixedType}``): cheap, so a
    precision study measures many precisions on one float run."""
    quantities = []
    for quantity, part in QUANTITIES:
        dist = measure(quantity, "result", obs.values[quantity], types[part])
        extra = threshold_changes(obs.thresholds_by_feature, types[part]) if quantity == "thresholds" else (None, None)
        quantities.append(Quantity(quantity, part, dist, *extra))
    suggested, notes = suggest(obs, types)
    return BDTProfile(precision={p: types[p] for p in PARTS}, quantities=quantities, events=obs.events,
                      suggested=suggested, notes=notes, model_name=name)
