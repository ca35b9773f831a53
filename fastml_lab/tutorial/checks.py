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

from ..boards import DEFAULT_PRECISION

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
def check_accumulator_width(answer, n_in: int, precision: str = DEFAULT_PRECISION) -> Verdict:
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


# ---------------------------------------------------------------------- 02 quantization
def check_fixed_range(precision: str, lsb, largest) -> Verdict:
    """The smallest step and the largest value of a fixed-point type."""
    from ..fixed import FixedType

    t = FixedType.parse(precision)
    hint = (f"{t.to_hls()} has {t.width} bits of which {t.integer} are integer bits (sign "
            "included): the step is 2**-(fractional bits), the largest value 2**(integer bits - 1) "
            "minus one step.")
    if _is_placeholder(lsb) or _is_placeholder(largest):
        return unanswered(hint)
    if _close(lsb, t.lsb) and _close(largest, t.max):
        return correct(f"{t.to_hls()}: steps of {t.lsb:g} from {t.min:g} to {t.max:g}, "
                       f"{2 ** t.width} values in all.")
    wrong_parts = [name for name, value, expected in (("the step", lsb, t.lsb), ("the largest value", largest, t.max))
                   if not _close(value, expected)]
    verb = "are" if len(wrong_parts) > 1 else "is"
    return wrong(f"{' and '.join(wrong_parts).capitalize()} {verb} not right yet. {hint}")


def check_quantized(precision: str, value: float, answer) -> Verdict:
    """What ``value`` becomes when stored in ``precision`` (its rounding and overflow modes)."""
    from ..fixed import FixedType

    t = FixedType.parse(precision)
    expected = float(t.quantize(np.array([value]))[0])
    wrapped = not (t.min <= value <= t.max)
    story = (f"{value:g} is outside [{t.min:g}, {t.max:g}], so after rounding to a multiple of "
             f"{t.lsb:g} it wraps around by {2.0 ** t.integer:g} (overflow mode {t.overflow})"
             if wrapped else f"{value:g} rounds ({t.rounding}) to a multiple of {t.lsb:g}")
    return check_number(answer, expected, f"{story}: {expected:g}.",
                        f"Round {value:g} to a multiple of {t.lsb:g} ({t.rounding}; TRN rounds down), then "
                        f"check the range [{t.min:g}, {t.max:g}]; WRAP keeps the low bits, like an "
                        "integer overflow.",
                        rel=0, abs_=1e-12)


def check_smallest_width(answer, study, tolerance: float = 0.01) -> Verdict:
    """The smallest width of a bit-width study whose accuracy is within ``tolerance`` of float."""
    rows = study.bit_rows()
    good = [r["bits"] for r in rows if r["accuracy"] >= study.float_accuracy - tolerance]
    if not good:
        return Verdict(WRONG, "No width in this study comes within "
                       f"{tolerance:.0%} of the float accuracy; extend the study to wider types.")
    expected = min(good)
    return check_number(
        answer, expected,
        f"{expected} bits is the narrowest width within {tolerance * 100:g} points of the float "
        f"accuracy ({study.float_accuracy:.4f}).",
        f"Look for the first row of study.table() whose accuracy is at least float - {tolerance:g}.")


def check_better_method(answer, ptq_study, qat_study, bits: int) -> Verdict:
    """Which of post-training ('ptq') or quantization-aware ('qat') training is better at ``bits``."""
    accuracy = {name: next(r["accuracy"] for r in study.bit_rows() if r["bits"] == bits)
                for name, study in (("ptq", ptq_study), ("qat", qat_study))}
    best = max(accuracy, key=accuracy.get)
    return check_choice(
        answer, best, ("ptq", "qat"),
        f"{best.upper()}: at {bits} bits PTQ reaches {accuracy['ptq']:.4f}, QAT {accuracy['qat']:.4f}."
        + (" Training with the rounding in the loop lets the weights adapt to it." if best == "qat" else ""),
        f"Compare the {bits}-bit rows of the two studies' tables.")


# ---------------------------------------------------------------------- 03 compression
def dense_kernels(model) -> dict:
    """``{layer name: kernel array}`` for the model's Dense (or QDense) layers."""
    kernels = {}
    for layer in model.layers:
        if type(layer).__name__ in ("Dense", "QDense"):
            kernels[layer.name] = np.asarray(layer.get_weights()[0])
    return kernels


def check_nonzero_weights(answer, model) -> Verdict:
    """The number of non-zero kernel weights of a model's dense layers (multiplications left)."""
    kernels = dense_kernels(model)
    expected = int(sum(np.count_nonzero(k) for k in kernels.values()))
    total = int(sum(k.size for k in kernels.values()))
    return check_number(
        answer, expected,
        f"{expected:,} of {total:,} weights are non-zero: {expected:,} multiplications per jet, "
        f"{1 - expected / total:.0%} saved.",
        "Count the non-zero entries of each Dense layer's kernel (np.count_nonzero) and add them up.")


def check_largest_layer(answer, model) -> Verdict:
    """The dense layer with the most weights (multiplications before pruning)."""
    sizes = {name: int(k.size) for name, k in dense_kernels(model).items()}
    largest = max(sizes, key=sizes.get)
    return check_choice(
        answer, largest, list(sizes),
        f"{largest!r}: {sizes[largest]:,} weights, inputs x outputs.",
        "Each Dense layer has (inputs x outputs) weights; which product is largest?")


def check_reduction(answer, before: float, after: float, what: str = "EBOPs") -> Verdict:
    """By what factor ``after`` is smaller than ``before``."""
    expected = before / after
    return check_number(
        answer, expected,
        f"{before:,.0f} / {after:,.0f}: {expected:.1f} times fewer {what}.",
        f"Divide the {what} before by the {what} after.", rel=0.02)


# ---------------------------------------------------------------------- 06 the guided walk
def _walk_state(walk, attribute: str, step: str):
    value = getattr(walk.state, attribute, None)
    if value is None:
        return None, Verdict(UNANSWERED, f"The walk has no {attribute} yet: run its {step} step first.")
    return value, None


def check_walk_accuracy(answer, walk) -> Verdict:
    """The float test accuracy the walk's Train step reached."""
    evaluation, missing = _walk_state(walk, "evaluation", "Train")
    if missing is not None:
        return missing
    return check_number(
        answer, evaluation.accuracy,
        f"{evaluation.accuracy:.4f} on {evaluation.n_events:,} test jets.",
        "Read the 'test accuracy' row of the Train panel, or walk.state.evaluation.accuracy.",
        rel=0, abs_=5e-4)


def check_walk_backend(answer, walk) -> Verdict:
    """Where the walk's Deploy step ran the overlay: 'board' or 'software'."""
    package, missing = _walk_state(walk, "package", "Deploy")
    if missing is not None:
        return missing
    from ..overlay import load

    with load(package) as ol:
        expected = ol.backend
    why = ("the board: pynq sees a device and the package has a verified bitstream." if expected == "board"
           else "software: no board here, or a package without a bitstream; the emulator computes "
                "what the FPGA would.")
    return check_choice(answer, expected, ("board", "software"), f"{expected!r}: {why}",
                        "The Deploy panel's 'ran on' row says it.")


def check_walk_fits(answer, walk) -> Verdict:
    """Whether the walk's current quantized model fits the PYNQ-Z2 (True/False), by the estimate."""
    model, missing = _walk_state(walk, "quantized", "Quantize")
    if missing is not None:
        return missing
    if _is_placeholder(answer):
        return unanswered("Answer True or False, from the Quantize panel's 'fits the PYNQ-Z2' row.")
    from ..quantize import fit_estimate

    estimate = fit_estimate(model)
    why = (f"estimate: {estimate.dsp:,} of {estimate.budget.dsp} DSP and {estimate.lut:,} of "
           f"{estimate.budget.lut:,} LUT, so it {'fits' if estimate.fits else 'does not fit'}.")
    if not isinstance(answer, (bool, np.bool_)):
        return wrong(f"Answer True or False; got {answer!r}.")
    return correct(why) if bool(answer) == estimate.fits else wrong(f"Not this time: {why}")


# ---------------------------------------------------------------------- 07 boosted decision trees
def tree_path(tree: dict, x, splitting_convention: str = "<") -> list:
    """The nodes an event ``x`` visits in one tree of conifer's ensemble (``feature`` -2 at the
    leaves), root first, leaf last."""
    x = np.asarray(x, dtype=np.float64).ravel()
    less = (lambda a, b: a <= b) if splitting_convention == "<=" else (lambda a, b: a < b)
    node, path = 0, [0]
    while tree["feature"][node] >= 0:
        go_left = less(x[tree["feature"][node]], tree["threshold"][node])
        node = tree["children_left"][node] if go_left else tree["children_right"][node]
        path.append(node)
    return path


def check_tree_leaf(answer, tree: dict, x, splitting_convention: str = "<") -> Verdict:
    """The leaf value one tree gives the event ``x``: the comparisons on its path, then a lookup."""
    path = tree_path(tree, x, splitting_convention)
    leaf = path[-1]
    expected = float(tree["value"][leaf])
    return check_number(
        answer, expected,
        f"{len(path) - 1} comparisons (nodes {' -> '.join(map(str, path))}) lead to leaf {leaf}, whose "
        f"value is {expected:.6g}.",
        f"Start at node 0: go to children_left when x[feature] {splitting_convention} threshold, else to "
        "children_right, until a node whose feature is -2 (a leaf); its value is the answer.",
        rel=1e-6, abs_=1e-9)


def check_adder_levels(answer, n_trees: int) -> Verdict:
    """Levels of a balanced adder tree that sums ``n_trees`` tree scores (two at a time)."""
    expected = math.ceil(math.log2(n_trees)) if n_trees > 1 else 0
    return check_number(
        answer, expected,
        f"Each level halves the number of values: {n_trees} scores need {expected} levels of "
        f"adders (2**{expected} = {2 ** expected} >= {n_trees}), not {n_trees - 1} additions in a row.",
        "Pair the scores and add each pair: how many times must you halve the count to reach one?")


def check_fewer(answer, nn: dict, bdt: dict, what: str) -> Verdict:
    """Which design, 'nn' or 'bdt', needs less of ``what`` (a key of both dicts, e.g. LUT or latency_ns)."""
    if nn[what] == bdt[what]:
        return Verdict(WRONG, f"Both need {nn[what]:,} {what}: neither needs less.")
    fewer = "nn" if nn[what] < bdt[what] else "bdt"
    return check_choice(
        answer, fewer, ("nn", "bdt"),
        f"{fewer.upper()}: {nn[what]:,} {what} for the network against {bdt[what]:,} for the trees.",
        f"Compare the {what} row of the two columns.")


# ---------------------------------------------------------------------- 09 from network to gates
def signed_digits(constant: int) -> list:
    """The canonical signed-digit form of an integer: ``[(shift, +1 or -1), ...]``, lowest shift
    first, with no two neighbouring digits non-zero (the fewest non-zero digits of any signed-digit
    form). ``x * constant`` is then ``sum(sign * (x << shift))``: one adder fewer than digits."""
    n, digits, shift = int(constant), [], 0
    sign = -1 if n < 0 else 1
    n = abs(n)
    while n:
        if n & 1:
            digit = 2 - (n & 3)  # +1 when n ends in ...01, -1 when it ends in ...11
            digits.append((shift, sign * digit))
            n -= digit
        n >>= 1
        shift += 1
    return digits


def check_signed_digit_adders(answer, constant: int) -> Verdict:
    """Adders (or subtractors) that multiply by the constant ``constant`` with shifts, adds and subtracts."""
    digits = signed_digits(constant)
    expected = max(0, len(digits) - 1)
    terms = " ".join(f"{'+' if s > 0 else '-'} (x << {k})" for k, s in reversed(digits)).lstrip("+ ")
    ones = bin(abs(int(constant))).count("1")
    return check_number(
        answer, expected,
        f"x * {constant} = {terms}: {len(digits)} shifted copies of x, so {expected} adder(s)/subtractor(s), "
        f"where the plain binary form ({bin(abs(int(constant)))}) would need {ones - 1}. Shifts are wires: free.",
        "Write the constant as a sum and difference of powers of two with as few terms as you can "
        "(a run of ones, 0111, is 1000 - 0001); n terms need n - 1 adders.")


def check_pipeline_latency(answer, project) -> Verdict:
    """Clock cycles between an event entering a pipelined RTL design and its result leaving it."""
    expected = int(project.timing["latency_cycles"])
    return check_number(
        answer, expected,
        f"{expected} pipeline stage(s), each ending in a register: event e0 enters at one rising edge and "
        f"y0 leaves {expected} edges later, while the next events follow one per cycle (II 1).",
        "Count the pipeline stages describe_rtl lists: each stage holds an event for one clock cycle.")
