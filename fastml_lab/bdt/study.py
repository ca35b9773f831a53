"""Precision study of a BDT: test accuracy against the total bits of its fixed-point types, on the emulator.

For every width ``W`` the BDT is exported (conifer's C++ to a temporary folder, its firmware
description read back from the written ``parameters.h``, as :func:`~fastml_lab.bdt.export.export_bdt`
does) with ``W``-bit types for the inputs, the thresholds and the scores, and the firmware runs on
the emulator: the accuracy is what the C simulation of that export gives (one point is checked
against it in the tests). No compile; seconds for a small model.

The integer bits are, as for a neural network's PTQ study (:func:`fastml_lab.quantize.bit_width_study`),
``"auto"``: each part its own, the fewest that hold the part's values seen on the training events
(:func:`fastml_lab.bdt.profile.profile_bdt`'s rule), or one number for all parts. The rows are the
NN study's (``bits``, ``sparsity`` 0, ``accuracy``, ``float_accuracy``, ``evaluated_with``,
``overflows``, ``seconds``), so :class:`~fastml_lab.quantize.study.Study` tabulates and plots them,
with ``overflows`` ``{"input": inputs beyond input_t, "scores": scores whose exact sum of the
firmware's leaf values leaves score_t's range (wrapped or saturated)}``,
plus ``total_bits``, ``precision`` (part -> type), the profile's counts at that precision
(``profile_overflows``, ``merged_thresholds``) and ``score_sign_flips`` (scores whose sign differs
from the float model's).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError
from ..fixed import FixedType
from ..quantize.study import DEFAULT_BITS, PLAN_SAMPLE, Study
from .ensemble import FAMILY
from .profile import QUANTITIES, integer_bits_for, observe, profile_observed

__all__ = ["DEFAULT_BITS", "BDTStudy", "precision_study", "precision_at"]

#: Fractional bits at which the "auto" integer bits are found (any number of them gives the same
#: integer bits, save for values within a step of a power of two).
_PROBE_FRACTIONAL = 16
#: The widest score type the emulator runs exactly (``score * norm`` in float64).
MAX_WIDTH = 26


class BDTStudy(list):
    """The rows of :func:`precision_study` (a list of dicts, by width) with the float reference,
    a text table and a plot (the NN study's, :class:`~fastml_lab.quantize.study.Study`)."""

    def __init__(self, rows=(), float_accuracy: float = float("nan"), events: int = 0,
                 integer_bits="auto", seconds: float = 0.0):
        super().__init__(rows)
        self.float_accuracy, self.events = float_accuracy, events
        self.integer_bits, self.seconds = integer_bits, seconds

    def study(self) -> Study:
        """The rows as the NN's :class:`~fastml_lab.quantize.study.Study` (PTQ mode)."""
        return Study(mode="ptq", float_accuracy=self.float_accuracy, events=self.events,
                     integer_bits=self.integer_bits, rows=list(self), seconds=self.seconds)

    def table(self) -> str:
        lines = self.study().table().splitlines()
        lines[0] = lines[0].replace("PTQ bit-width study", "BDT precision study")
        width = max(len(line) for line in lines[1:])
        lines[1] = f"{lines[1]:<{width}}  precision"
        for i, row in enumerate(sorted(self, key=lambda r: r["bits"]), start=2):
            text = " ".join(f"{part}={t}" for part, t in row["precision"].items() if part != "weight")
            lines[i] = f"{lines[i]:<{width}}  {text}"
        return "\n".join(lines)

    def plot(self, title: str | None = None):
        return self.study().plot(title or f"BDT precision study ({self.events} events, emulator)")

    def to_dict(self) -> dict:
        return {**self.study().to_dict(), "family": FAMILY}

    def __repr__(self) -> str:
        return f"BDTStudy({len(self)} rows, float accuracy {self.float_accuracy:.4f})"


def precision_at(obs, bits: int, integer_bits="auto", like=None) -> dict:
    """The study's precision at ``bits`` total bits: ``{input, threshold, score}`` type strings.

    ``obs``: :func:`~fastml_lab.bdt.profile.observe`'s numbers; ``like``: ``{part: FixedType}``
    whose rounding and overflow modes the types take (default: truncation, wrap-around, as conifer).
    """
    like = like or {}
    precision = {}
    for part in ("input", "threshold", "score"):
        mode = like.get(part) or FixedType(16, 6)
        if integer_bits == "auto":
            values = np.concatenate([obs.values[q] for q, p in QUANTITIES if p == part])
            integer = integer_bits_for(values, _PROBE_FRACTIONAL, mode)
        else:
            integer = int(integer_bits)
        precision[part] = FixedType(bits, integer, mode.signed, mode.rounding, mode.overflow).to_hls()
    return precision


def predicted_classes(scores: np.ndarray) -> np.ndarray:
    """Classes from raw scores: ``score > 0`` for one column (two classes), else the argmax."""
    scores = np.asarray(scores)
    return (scores[:, 0] > 0).astype(np.int64) if scores.shape[1] == 1 else scores.argmax(axis=1)


def float_scores(ensemble: dict, X: np.ndarray) -> np.ndarray:
    """The float ensemble's raw scores ``(n, n_scores)``, summed as the firmware sums them."""
    from .profile import adder_tree_sums, float_tree_scores

    _, total = adder_tree_sums(float_tree_scores(ensemble, np.asarray(X, dtype=np.float64)))
    return (np.asarray(ensemble["init_predict"], dtype=np.float64) + total) * float(ensemble["norm"])


def precision_study(model, dataset, widths=DEFAULT_BITS, integer_bits="auto", modes=None,
                    sample: int | None = PLAN_SAMPLE, progress: bool = False, on_progress=None) -> BDTStudy:
    """Accuracy of a BDT at each total width in ``widths``, on the emulator.

    ``model``: a trained :class:`~fastml_lab.bdt.train.BDTModel`, an ensemble dict, a model file or
    an exported BDT project. ``dataset``: a JetDataset (integer bits from ``sample`` training
    events, accuracy on the test part) or an ``(X, labels)`` pair (both from it). ``integer_bits``:
    ``"auto"`` (per part, from the data) or one integer for all parts. ``modes``: a precision
    (as :func:`~fastml_lab.bdt.export.parse_precision` takes it) whose rounding and overflow modes
    every width takes; default truncation and wrap-around. ``on_progress(done, total, row)`` is
    called after each width. Returns a :class:`BDTStudy`: a list of row dicts (see the module).
    """
    from ..quantize.study import _arrays, _bar
    from .export import export_bdt, parse_precision
    from .profile import _resolve, as_sample

    widths = _check(widths, integer_bits)
    ensemble, _, _ = _resolve(model)
    n_features = int(ensemble["n_features"])
    X_fit, X_eval, labels = _arrays(dataset, needs_training=False)
    X_eval = as_sample(X_eval, n_features, None)
    start = time.perf_counter()
    obs = observe(ensemble, as_sample(X_fit, n_features, sample))
    reference = float_scores(ensemble, X_eval)
    float_accuracy = float(np.mean(predicted_classes(reference) == labels))
    like = parse_precision(modes) if modes is not None else None
    study = BDTStudy(float_accuracy=float_accuracy, events=len(labels), integer_bits=integer_bits)
    logger = logging.getLogger("fastml_lab")  # one "Exported ..." line per temporary export is noise here
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    bar = _bar(len(widths), "BDT precision study", progress)
    try:
        with tempfile.TemporaryDirectory(prefix="fastml_lab_bdt_study_") as tmp:
            for bits in widths:
                t0 = time.perf_counter()
                precision = precision_at(obs, bits, integer_bits, like)
                project = export_bdt(ensemble, Path(tmp) / f"w{bits}", precision=precision)
                firmware = project.firmware()
                scores, counts = firmware.predict_counting_overflows(X_eval)
                overflows = {"input": counts["input"], "scores": _score_overflows(firmware, X_eval)}
                prof = profile_observed(obs, parse_precision(precision))
                row = {"bits": bits, "total_bits": bits, "sparsity": 0.0,
                       "precision": project.meta["precision"],
                       "accuracy": float(np.mean(predicted_classes(scores) == labels)),
                       "float_accuracy": float_accuracy, "evaluated_with": "emulator",
                       "overflows": overflows, "profile_overflows": prof.overflows,
                       "merged_thresholds": prof.quantities[1].merged,
                       "score_sign_flips": int(np.sum(np.sign(scores) != np.sign(reference))),
                       "seconds": round(time.perf_counter() - t0, 3)}
                study.append(row)
                bar.set_postfix(bits=bits, acc=f"{row['accuracy']:.4f}", refresh=False)
                bar.update(1)
                if on_progress is not None:
                    on_progress(len(study), len(widths), row)
    finally:
        bar.close()
        logger.setLevel(level)
    study.seconds = round(time.perf_counter() - start, 3)
    return study


def _score_overflows(firmware, X: np.ndarray) -> int:
    """Scores whose exact sum of the firmware's (quantized) leaf values and ``init_predict`` leaves
    the score type's range: the scores the firmware wraps (or saturates)."""
    from ..firmware import build_layer

    ensemble = build_layer(firmware.description["layers"][0], firmware.arrays)
    count = 0
    for start in range(0, len(X), 4096):
        x = firmware.cast_input(X[start:start + 4096])
        exact = ensemble.init_predict + ensemble.tree_scores(x).sum(axis=-1)  # exact: values on one grid
        count += int(ensemble.score_type.overflows(exact).sum())
    return count


def _check(widths, integer_bits) -> tuple:
    try:
        widths = tuple(int(w) for w in widths)
    except (TypeError, ValueError):
        raise ConfigError(f"widths must be a sequence of integer widths such as (4, 6, 8); got {widths!r}.") from None
    if not widths or any(w < 2 or w > MAX_WIDTH for w in widths) or len(set(widths)) != len(widths):
        raise ConfigError(f"widths must be distinct widths from 2 to {MAX_WIDTH}; got {widths!r}.")
    if integer_bits != "auto" and (isinstance(integer_bits, bool) or not isinstance(integer_bits, int)):
        raise ConfigError(f"integer_bits must be 'auto' or an integer; got {integer_bits!r}.")
    return widths
