"""Exercise checks: each ``check_...`` takes the student's answer and returns a :class:`Verdict`
that shows itself as one friendly line (correct, not quite + a hint, or not answered yet).

An answer left as ``...`` (the placeholder in the notebooks) is "not answered yet", never an
error, so a notebook runs top to bottom before anyone has answered. Numpy only; checks that need
a model look at its weights through ``get_weights()`` and import nothing heavy themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CORRECT, WRONG, UNANSWERED = "correct", "not quite", "not answered yet"
_SYMBOLS = {CORRECT: "[correct]", WRONG: "[not quite]", UNANSWERED: "[not answered yet]"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check; true only when the answer is correct."""

    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == CORRECT

    def __repr__(self) -> str:
        return f"{_SYMBOLS[self.status]} {self.message}"


def correct(message: str) -> Verdict:
    return Verdict(CORRECT, message)


def wrong(message: str) -> Verdict:
    return Verdict(WRONG, message)


def unanswered(hint: str) -> Verdict:
    return Verdict(UNANSWERED, f"Replace the ... with your answer. {hint}")


def _is_placeholder(answer) -> bool:
    return answer is Ellipsis or answer is None


def _number(answer):
    """``answer`` as a float, or None if it is not a single number."""
    try:
        value = float(np.asarray(answer).item())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _close(answer, expected: float, rel: float = 1e-6, abs_: float = 0.0) -> bool:
    value = _number(answer)
    return value is not None and math.isclose(value, expected, rel_tol=rel, abs_tol=abs_)


def check_choice(answer, expected: str, valid, why: str, hint: str) -> Verdict:
    """A one-word answer out of ``valid`` (compared without case and spaces)."""
    if _is_placeholder(answer):
        return unanswered(hint)
    given = str(answer).strip().lower()
    valid = [str(v).lower() for v in valid]
    if given not in valid:
        return wrong(f"{answer!r} is not one of {', '.join(valid)}. {hint}")
    if given == expected.lower():
        return correct(why)
    return wrong(hint)


def check_number(answer, expected: float, why: str, hint: str, rel: float = 1e-6,
                 abs_: float = 0.0) -> Verdict:
    """A number within ``rel`` (relative) or ``abs_`` (absolute) of ``expected``."""
    if _is_placeholder(answer):
        return unanswered(hint)
    if _number(answer) is None:
        return wrong(f"Expected one number; got {answer!r}. {hint}")
    if _close(answer, expected, rel, abs_):
        return correct(why)
    return wrong(f"{_number(answer):.6g} is not it. {hint}")


# ---------------------------------------------------------------------- 01 getting started
CLASS_NAMES = ("g", "q", "t", "w", "z")


def check_heaviest_class(answer) -> Verdict:
    """Which jet class has the largest groomed mass?"""
    return check_choice(
        answer, "t", CLASS_NAMES,
        "Top quarks (173 GeV) are the heaviest: a boosted t -> bW -> bqq' decay makes a three-prong "
        "jet whose groomed mass peaks near 173 GeV, above the W (80.4) and Z (91.2) peaks.",
        "Compare the median mass_mmdt of each class, or recall the particle masses.")


def check_more_constituents(answer) -> Verdict:
    """Gluon or quark jets: which have more constituents?"""
    return check_choice(
        answer, "g", ("g", "q"),
        "Gluon jets: a gluon carries colour charge C_A = 3 against C_F = 4/3 for a quark, so it "
        "radiates about 9/4 as much and its jet has more, softer constituents.",
        "Compare the median multiplicity of the g and q jets.")


def check_accuracy(answer, scores, labels) -> Verdict:
    """Accuracy computed by hand from scores (n, classes) and integer labels."""
    expected = float(np.mean(np.argmax(np.asarray(scores), axis=1) == np.asarray(labels)))
    return check_number(
        answer, expected,
        f"Accuracy {expected:.4f}: the fraction of events whose highest score is the true class.",
        "Take the argmax of each row of scores and compare it with the labels; then average.",
        rel=1e-9, abs_=1e-6)


def check_mistag_at(answer, evaluation, class_name: str, efficiency: float) -> Verdict:
    """The background mistag rate of ``class_name`` at a signal efficiency, read off its ROC."""
    expected = evaluation.roc[class_name].mistag_at(efficiency)
    return check_number(
        answer, expected,
        f"At {efficiency:.0%} {class_name} efficiency, {expected:.2%} of the other jets are "
        f"tagged as {class_name} by mistake ({1 / max(expected, 1e-12):.0f} rejected per mistag).",
        f"Use evaluation.roc[{class_name!r}].mistag_at({efficiency}), or read the curve.",
        rel=0.02, abs_=1e-4)


# ---------------------------------------------------------------------- 04 HLS
def check_accumulator_width(answer, n_in: int, precision: str = "ap_fixed<16,6>") -> Verdict:
    """Width of the exact accumulator of a dense layer with ``n_in`` inputs, all types ``precision``."""
    from ..fixed import FixedType
    from ..hls.plan import exact_accumulator

    t = FixedType.parse(precision)
    expected = exact_accumulator(t, t, t, n_in)
    product = 2 * t.width
    return check_number(
        answer, expected.width,
        f"{expected.to_hls()}: each product needs {product} bits, the sum of {n_in} products "
        f"up to {(n_in - 1).bit_length()} more, and adding the bias one more.",
        f"A {t.width}x{t.width}-bit product has {product} bits; each doubling of the number of "
        "terms in a sum can add one bit; so can the bias.")


def check_multipliers(answer, n_in: int, n_out: int, reuse_factor: int) -> Verdict:
    """Multipliers a dense layer needs when each one is reused ``reuse_factor`` times."""
    expected = math.ceil(n_in * n_out / reuse_factor)
    return check_number(
        answer, expected,
        f"{n_in} x {n_out} = {n_in * n_out} products, each multiplier used {reuse_factor} times: "
        f"{expected} multipliers, and a new event every {reuse_factor} cycles.",
        "Count the products (inputs x outputs) and divide by the reuse factor (round up).")


def check_resource_ratio(answer, used: int, available: int, resource: str = "DSP") -> Verdict:
    """How many times a design's ``used`` count of a resource exceeds (or fills) ``available``."""
    expected = used / available
    verdict = "does not fit" if expected > 1 else "fits"
    return check_number(
        answer, expected,
        f"{used:,} / {available:,} = {expected:.2f}: the design {verdict} ({resource}).",
        f"Divide the {resource} the report uses by what the target device has.", rel=0.01)


def check_worst_layer(answer, counts: dict) -> Verdict:
    """The layer with the most overflows in ``counts`` (as ``predict_counting_overflows`` gives)."""
    worst = max(counts, key=lambda name: counts[name])
    return check_choice(
        answer, worst, list(counts),
        f"{worst!r}: {counts[worst]:,} values fell outside its result type's range.",
        "Look for the largest count in the overflow dictionary.")


# ---------------------------------------------------------------------- 05 overlays
def check_stream_bound(answer, n_words: int, clock_mhz: float) -> Verdict:
    """Events per second when each event needs ``n_words`` stream words, one per clock cycle."""
    expected = clock_mhz * 1e6 / n_words
    return check_number(
        answer, expected,
        f"{clock_mhz:g} MHz / {n_words} words per event = {expected:,.0f} events/s: the stream, "
        "not the network, limits a fast IP.",
        "One 32-bit word moves per clock cycle; how many cycles does one event take?", rel=0.01)


def check_batch_rate(answer, overhead_us: float, per_event_us: float, batch: int) -> Verdict:
    """Events per second when each call costs ``overhead_us`` plus ``per_event_us`` per event."""
    expected = batch / ((overhead_us + batch * per_event_us) * 1e-6)
    return check_number(
        answer, expected,
        f"{batch} events take {overhead_us:g} + {batch} x {per_event_us:g} us = "
        f"{overhead_us + batch * per_event_us:,.0f} us: {expected:,.0f} events/s. Batches "
        "amortise the fixed cost of a call.",
        "Time of one call = fixed overhead + batch x time per event; rate = batch / time.",
        rel=0.02)
