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


#: The orders of magnitude a prediction may name.
MAGNITUDES = ("1", "10", "100", "1000", "10000")


def order_of_magnitude(ratio: float, choices=MAGNITUDES) -> str:
    """The power of ten in ``choices`` nearest to ``ratio`` (on a log scale; below 1 counts as 1)."""
    exponent = round(math.log10(max(ratio, 1.0)))
    return choices[min(len(choices) - 1, max(0, exponent))]


def check_order(answer, values: dict, why: str, hint: str, smallest_first: bool = True) -> Verdict:
    """A predicted ranking: ``answer`` lists every key of ``values`` from the smallest value up
    (``smallest_first=False``: from the largest down); ``values`` are what the cell measured."""
    if _is_placeholder(answer):
        return unanswered(hint)
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return wrong(f"Expected a list of {', '.join(map(repr, values))}; got {answer!r}. {hint}")
    given = [str(a).strip() for a in answer]
    if sorted(given) != sorted(values):
        return wrong(f"List each of {', '.join(map(repr, values))} once; got {given}. {hint}")
    expected = sorted(values, key=values.get, reverse=not smallest_first)
    if given == expected:
        return correct(why)
    first_wrong = next(i for i, (g, e) in enumerate(zip(given, expected)) if g != e)
    return wrong(f"Measured order: {' < '.join(expected) if smallest_first else ' > '.join(expected)}; "
                 f"yours differs from place {first_wrong + 1} ({given[first_wrong]!r}). {hint}")


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


def _class_pair(answer, names) -> tuple | None:
    """Two class names from ``("w", "z")``, ``["w", "z"]`` or ``"w/z"`` (any order), else None."""
    if isinstance(answer, str):
        parts = [p for p in answer.replace("/", " ").replace(",", " ").replace("-", " ").split() if p]
        if len(parts) == 1 and len(parts[0]) == 2:
            parts = list(parts[0])
    elif hasattr(answer, "__iter__"):
        parts = [str(a).strip() for a in answer]
    else:
        return None
    parts = [p.lower() for p in parts]
    if len(parts) != 2 or parts[0] == parts[1] or not set(parts) <= set(names):
        return None
    return tuple(sorted(parts))


def check_confused_pair(answer, evaluation) -> Verdict:
    """A prediction: the pair of classes the tagger mixes up most (both directions of the
    row-normalized confusion matrix added)."""
    names = [str(n) for n in evaluation.class_names]
    hint = ("Think of which classes look alike in the 16 features: the same number of prongs, and "
            "mass peaks closer together than the groomed-mass resolution (about 10 GeV).")
    if _is_placeholder(answer):
        return unanswered(f"Your prediction: two class names, e.g. (\"q\", \"t\"). {hint}")
    given = _class_pair(answer, names)
    if given is None:
        return wrong(f"Expected two different names out of {', '.join(names)}, e.g. (\"q\", \"t\"); "
                     f"got {answer!r}.")
    matrix = np.asarray(evaluation.confusion_normalized, dtype=float)
    mixed = matrix + matrix.T
    np.fill_diagonal(mixed, -1.0)
    i, j = np.unravel_index(int(np.argmax(mixed)), mixed.shape)
    expected = tuple(sorted((names[i], names[j])))
    a, b = expected
    ia, ib = names.index(a), names.index(b)
    measured = (f"{matrix[ia, ib]:.0%} of true {a} jets are called {b}, and {matrix[ib, ia]:.0%} of "
                f"true {b} jets {a}")
    stories = {("w", "z"): "W and Z jets both have two prongs, and their mass peaks (80.4 and 91.2 GeV) "
                           "are about one mass resolution apart.",
               ("g", "q"): "Quark and gluon jets both have one prong and no mass peak; only the amount of "
                           "radiation (multiplicity, energy sharing) tells them apart."}
    story = stories.get(expected, "")
    if given == expected:
        return correct(f"{a}/{b}: {measured}. {story}".strip())
    gi, gj = names.index(given[0]), names.index(given[1])
    return wrong(f"The network mixes {a}/{b} most: {measured} (your pair {given[0]}/{given[1]}: "
                 f"{matrix[gi, gj]:.0%} and {matrix[gj, gi]:.0%}). {story} {hint}".replace("  ", " "))


def check_confusion_entry(answer, evaluation, true_class: str, predicted_class: str) -> Verdict:
    """The fraction of true ``true_class`` jets tagged as ``predicted_class`` (row-normalized matrix)."""
    names = [str(n) for n in evaluation.class_names]
    expected = float(np.asarray(evaluation.confusion_normalized)[names.index(true_class),
                                                                  names.index(predicted_class)])
    return check_number(
        answer, expected,
        f"{expected:.2f}: of every 100 true {true_class} jets about {100 * expected:.0f} are tagged "
        f"{predicted_class}. Each row of the matrix is one true class and sums to 1.",
        f"Rows are the true class, columns the predicted one: read row {true_class!r}, column "
        f"{predicted_class!r} (or evaluation.confusion_normalized[{names.index(true_class)}, "
        f"{names.index(predicted_class)}]).",
        rel=0, abs_=0.006)


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


#: The four paths tutorial 4 asks the student to rank, and the ladder rows that measure them.
LATENCY_PATHS = {"fabric": "fabric", "arm_c": "arm_c", "dma_one": "dma_one", "keras_batch": "cpu_model"}


def check_latency_order(answer, ladder) -> Verdict:
    """The ranking of :data:`LATENCY_PATHS` by time per event, fastest first, against the ladder's
    rows (:func:`fastml_lab.estimate.headline.latency_ladder`)."""
    by_key = {row.get("key"): row["ns_per_event"] for row in ladder}
    values = {name: by_key[key] for name, key in LATENCY_PATHS.items() if key in by_key}
    measured = ", ".join(f"{name} {values[name]:,.0f} ns" for name in sorted(values, key=values.get))
    batch_beats_fabric = values.get("keras_batch", float("inf")) < values.get("fabric", 0.0)
    return check_order(
        answer, values,
        f"Right: {measured} per event. "
        + ("Batched on this machine's cores, Keras even beats the small board's fabric per event: throughput is "
           "not what a trigger buys with an FPGA. " if batch_beats_fabric else
           "The fabric's pipeline keeps a microsecond per event even at reuse 64. ")
        + "The Arm core does every multiplication in turn, and one call through Python and the DMA pays a "
          "millisecond of software before the fabric's microsecond.",
        "Think of what each path pays per event: circuits that work in parallel (but share each multiplier "
        "64 times on the small chip), a CPU sharing one call among 10,000 events, one small core multiplying "
        "4,000 times, a software round trip per event.")


def check_batch_speedup(answer, profile: dict) -> Verdict:
    """The order of magnitude of (events/s in one batch) / (events/s one call per event), measured."""
    ratio = profile["events_per_s"] * profile["latency_us"] * 1e-6
    return check_choice(
        answer, order_of_magnitude(ratio, MAGNITUDES), MAGNITUDES,
        f"Measured: one batch gives {ratio:,.0f} times the events per second of single calls. Every call pays "
        f"a fixed cost (Python, input checks, packing and, on a board, the DMA set-up: about "
        f"{profile['latency_us']:,.0f} us here); a batch pays it once for {profile['events']:,} events.",
        "Compare the fixed cost of one call (Python, checks, buffers) with the work of one event "
        "(a few thousand multiply-adds, or a microsecond of fabric).")


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


def _accuracy_at(study, bits: int) -> float:
    return next(r["accuracy"] for r in study.bit_rows() if r["bits"] == bits)


def check_method_prediction(answer, ptq_study, qat_study, bits: int) -> Verdict:
    """A prediction made before the QAT study ran: 'ptq' or 'qat' keeps more accuracy at ``bits``."""
    hint = (f"At {bits} bits a weight has only {2 ** bits} levels, so rounding moves most weights by a "
            "large fraction of their size. PTQ rounds weights that were trained without rounding; QAT "
            "rounds them in every forward pass of training, so the other weights learn to make up for it.")
    if _is_placeholder(answer):
        return unanswered(f"Your prediction: \"ptq\" or \"qat\". {hint}")
    accuracy = {"ptq": _accuracy_at(ptq_study, bits), "qat": _accuracy_at(qat_study, bits)}
    best = max(accuracy, key=accuracy.get)
    measured = f"at {bits} bits PTQ reached {accuracy['ptq']:.4f}, QAT {accuracy['qat']:.4f}"
    if best == "qat":
        why = (f"QAT: {measured}. With the rounding in the forward pass the weights settle where "
               "rounding hurts least; PTQ has no such chance.")
    else:
        why = (f"PTQ: {measured}. Unusual: QAT usually wins at few bits; with these few epochs its "
               "fine-tuning may not have settled. Try more epochs.")
    return check_choice(answer, best, ("ptq", "qat"), why, f"Measured: {measured}. {hint}")


def check_accuracy_gain(answer, ptq_study, qat_study, bits: int) -> Verdict:
    """QAT accuracy minus PTQ accuracy at ``bits`` (positive when QAT is better)."""
    expected = _accuracy_at(qat_study, bits) - _accuracy_at(ptq_study, bits)
    return check_number(
        answer, expected,
        f"{expected:+.4f}: {abs(expected) * 100:.1f} points of accuracy "
        f"{'gained' if expected >= 0 else 'lost'} by training with the rounding in the loop.",
        f"Take the {bits}-bit accuracy of the QAT table and subtract the {bits}-bit accuracy of the "
        "PTQ table.", rel=0, abs_=5e-4)


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


#: Predicted factors for :func:`check_pruning_prediction`: the answer and the fraction it stands for.
SHRINK_FACTORS = {"same": 1.0, "half": 0.5, "quarter": 0.25, "tenth": 0.1}


def check_pruning_prediction(answer, before: float, after: float, sparsity: float = 0.75,
                             what: str = "DSP") -> Verdict:
    """A prediction: after pruning ``sparsity`` of the weights, ``what`` becomes about the 'same', a
    'half', a 'quarter' or a 'tenth' of ``before`` (graded against the nearest, on a log scale)."""
    hint = (f"At reuse factor 1 every product with a non-zero weight is its own multiplier, and the "
            "weights are constants in the firmware, so a product by an exact zero disappears. What "
            f"fraction of the products survives {sparsity:.0%} pruning?")
    if _is_placeholder(answer):
        return unanswered(f"Your prediction: one of {', '.join(map(repr, SHRINK_FACTORS))}. {hint}")
    ratio = after / before if before else float("nan")
    expected = min(SHRINK_FACTORS, key=lambda k: abs(math.log(max(ratio, 1e-9) / SHRINK_FACTORS[k])))
    measured = f"{before:,.0f} -> {after:,.0f} {what} ({ratio:.0%} of before, estimate)"
    return check_choice(
        answer, expected, SHRINK_FACTORS,
        f"About a {expected}: {measured}. The multipliers follow the non-zero weights, "
        f"{1 - sparsity:.0%} of them.", f"Measured: {measured}. {hint}")


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
                "the outputs the firmware's C simulation gives (tutorial 4 compares them), not a timing.")
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


def check_walk_fit_prediction(answer, walk) -> Verdict:
    """A prediction made before the walk ran: does its first quantized model fit the PYNQ-Z2?"""
    hint = ("Estimate it: how many multiplications are left after pruning, each its own circuit at reuse "
            "factor 1, against the PYNQ-Z2's 220 DSP slices and 53,200 LUTs? Narrow products can be "
            "built from LUTs, but the cost model puts many of them in DSP slices, and those are few.")
    if _is_placeholder(answer):
        return unanswered(f"Your prediction: True or False. {hint}")
    if not isinstance(answer, (bool, np.bool_)):
        return wrong(f"Answer True or False; got {answer!r}.")
    model, missing = _walk_state(walk, "quantized", "Quantize")
    if missing is not None:
        return missing
    from ..quantize import fit_estimate

    estimate = fit_estimate(model)
    why = (f"estimate: {estimate.nonzero_weights:,} non-zero weights need {estimate.dsp:,} of "
           f"{estimate.budget.dsp} DSP ({estimate.dsp / estimate.budget.dsp:.0%}) and {estimate.lut:,} of "
           f"{estimate.budget.lut:,} LUT ({estimate.lut / estimate.budget.lut:.0%}), so it "
           f"{'fits' if estimate.fits else 'does not fit'}.")
    return correct(why) if bool(answer) == estimate.fits else wrong(f"Not this time: {why} {hint}")


def check_walk_tightest(answer, walk) -> Verdict:
    """Which resource, 'DSP' or 'LUT', the walk's quantized model uses the largest share of (estimate)."""
    model, missing = _walk_state(walk, "quantized", "Quantize")
    if missing is not None:
        return missing
    if _is_placeholder(answer):  # the estimate (an export) runs only for an answer
        return unanswered("Answer \"DSP\" or \"LUT\": divide each figure of the Quantize panel's 'resource "
                          "estimate' row by the board's (220 DSP, 53,200 LUT) and compare the shares.")
    from ..quantize import fit_estimate

    estimate = fit_estimate(model)
    shares = {"DSP": estimate.dsp / estimate.budget.dsp, "LUT": estimate.lut / estimate.budget.lut}
    tightest = max(shares, key=shares.get)
    told = f"DSP {shares['DSP']:.0%} and LUT {shares['LUT']:.0%} of the {estimate.budget.board}'s"
    return check_choice(
        answer, tightest, ("DSP", "LUT"),
        f"{tightest}: {told} (estimate). The tightest resource decides whether a design fits; pruning, "
        "fewer bits or a larger reuse factor relieve it.",
        f"Divide each figure of the Quantize panel's 'resource estimate' row by the board's (220 DSP, "
        f"53,200 LUT) and compare the shares: {told}.")


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
    measured = f"{nn[what]:,} {what} for the network against {bdt[what]:,} for the trees"
    return check_choice(
        answer, fewer, ("nn", "bdt"),
        f"{fewer.upper()}: {measured}.",
        f"Measured: {measured}. A network pays for every weight a multiplier and its share of an "
        "adder tree (LUTs where the product is narrow or no DSP is left); a BDT pays a comparator per "
        "split and a constant per leaf. Count what each multiplies or compares.")


#: The answers of :func:`check_bdt_growth`: (latency grows about 4x, LUTs grow about 4x).
BDT_GROWTH_CHOICES = {"a": (True, True), "b": (False, True), "c": (False, False), "d": (True, False)}


def check_bdt_growth(answer, growth: dict) -> Verdict:
    """A prediction of what four times the trees cost: ``growth`` is ``{"rounds 8": {"cycles", "LUT"},
    "rounds 32": {...}}`` as measured; the answer is a key of :data:`BDT_GROWTH_CHOICES`."""
    few, many = growth["rounds 8"], growth["rounds 32"]
    cycles_ratio = many["cycles"] / max(few["cycles"], 1)
    lut_ratio = many["LUT"] / max(few["LUT"], 1)
    measured = (cycles_ratio >= 2.0, lut_ratio >= 2.0)
    expected = next(key for key, value in BDT_GROWTH_CHOICES.items() if value == measured)
    result = (f"8 -> 32 rounds: {few['cycles']} -> {many['cycles']} cycles (x{cycles_ratio:.2g}), "
              f"{few['LUT']:,} -> {many['LUT']:,} LUTs (x{lut_ratio:.2g})")
    why = ("the trees run side by side, so more of them only add levels to the adder tree "
           "(ceil(log2(32)) - ceil(log2(8)) = 2), while every tree brings its own comparators and leaves")
    return check_choice(answer, expected, BDT_GROWTH_CHOICES,
                        f"{result}: {why}.",
                        f"Measured {result}. Think of where an event waits: all trees compare at once, "
                        "then the sums go up a balanced adder tree. And of what is built: one comparator "
                        "per split, one constant per leaf, in every tree.")


# ---------------------------------------------------------------------- 08 design-space exploration
def check_fastest_kind(answer, rows: list) -> Verdict:
    """A prediction of which kind of point, ``"nn"`` or ``"bdt"``, has the lowest estimated latency
    among a sweep's finished points (``rows``: the report's rows, with ``kind`` and ``latency_ns``)."""
    best = {}
    for row in rows:
        try:
            latency = float(row.get("latency_ns"))
        except (TypeError, ValueError):
            continue
        if row.get("status") == "ok" and math.isfinite(latency):
            kind = str(row.get("kind"))
            if kind not in best or latency < best[kind][0]:
                best[kind] = (latency, row.get("label"))
    if not best:
        return unanswered("The sweep has no finished point yet: run it, then this cell again.")
    expected = min(best, key=lambda k: best[k][0])
    measured = "; ".join(f"fastest {k.upper()}: {v[0]:,.0f} ns ({v[1]})" for k, v in sorted(best.items()))
    return check_choice(
        answer, expected, ("nn", "bdt"),
        f"{measured}. Both stream the features in and the scores out one word per cycle; after that, a "
        "BDT waits its depth plus log2(rounds) cycles, a network a multiply-and-add chain per layer.",
        f"Measured: {measured}. Count the cycles an event waits: the wrapper's words in and out (both "
        "pay them), then the comparisons and the adder tree of the trees, or each layer's products, "
        "adder tree and activation for the network.")


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


# ---------------------------------------------------------------------- 10 acceleration as a service
def check_service_overhead(answer, direct: dict, served: dict) -> Verdict:
    """The order of magnitude of a served request's median time over a direct ``predict``'s."""
    ratio = served["p50_ms"] / max(direct["p50_ms"], 1e-9)
    return check_choice(
        answer, order_of_magnitude(ratio, MAGNITUDES[:4]), MAGNITUDES[:4],
        f"Measured: {served['p50_ms']:.2f} ms served against {direct['p50_ms']:.3f} ms in process, {ratio:,.0f} "
        "times. The request is parsed, checked, queued, copied and sent back through the network stack; the "
        "overlay's own work on one event is the small part.",
        "Compare a tenth of a millisecond of numpy with what an HTTP round trip costs in Python: a connection's "
        "read and write, JSON parsing, a thread hand-off.")


CALL_BANDS = ("about 100", "10 to 99", "under 10")


def check_batching_calls(answer, batched: dict) -> Verdict:
    """How many overlay calls served each 100 requests with batching on (``requests`` and ``calls``)."""
    per_100 = 100.0 * batched["calls"] / max(batched["requests"], 1)
    band = "about 100" if per_100 >= 90 else "10 to 99" if per_100 >= 10 else "under 10"
    return check_choice(
        answer, band, CALL_BANDS,
        f"Measured: {batched['calls']:,.0f} calls for {batched['requests']:,.0f} requests, {per_100:.0f} per 100. "
        "While one call runs, the other clients' requests queue; the next call takes them all.",
        "With 16 clients each waiting for its answer, how many requests are queued when a call ends?")


def check_board_time_saved(answer, batched: dict, call_us: float) -> Verdict:
    """Seconds of board time batching saved: (requests - calls) x the fixed cost of one call."""
    expected = (batched["requests"] - batched["calls"]) * call_us * 1e-6
    return check_number(
        answer, expected,
        f"({batched['requests']:,.0f} - {batched['calls']:,.0f}) calls x {call_us:g} us = {expected:.2f} s of board "
        "time saved: on a board, fewer calls is what batching buys.",
        "Without batching there is one call per request; with it, the calls the metrics counted. Multiply the "
        "difference by the cost of one call.", rel=0.01, abs_=1e-3)


# ---------------------------------------------------------------------- 11 convolutions
def check_prong_separation(answer, mass: float, pt: float, pixel: float = 0.1) -> Verdict:
    """Pixels between the two prongs of a resonance of ``mass`` at ``pt`` split evenly (dR = 2m/pT)."""
    expected = 2.0 * mass / pt / pixel
    return check_number(
        answer, expected,
        f"dR = 2m/pT = 2 x {mass:g} / {pt:g} = {2 * mass / pt:.3f}, i.e. {expected:.1f} pixels of {pixel:g}: the "
        "prongs sit a few pixels apart, which a 3x3 kernel sees in one window.",
        "Use dR = 2 m / pT for an even split, then divide by the pixel width.", rel=0.1)


def _check_extreme(answer, measured: dict, pick, number: str, why: str, hint: str) -> Verdict:
    """Which key of ``measured`` has the ``pick`` (max or min) value; ``why`` and ``hint`` show the
    measured values (each as ``name value``, ``value`` formatted with ``number``) at ``{counts}``."""
    expected = pick(measured, key=measured.get)
    counts = ", ".join(f"{name} {value:{number}}" for name, value in measured.items())
    return check_choice(answer, expected, tuple(measured), why.format(counts=counts), hint.format(counts=counts))


def check_most_pixels(answer, lit: dict) -> Verdict:
    """The class whose images light the most pixels on average (``lit``: class -> mean lit pixels)."""
    return _check_extreme(
        answer, lit, max, ".1f",
        "Measured: {counts}. Gluons radiate most (colour charge 3 against 4/3 for a quark), so their "
        "images are widest and busiest; the colourless W and Z are the cleanest.",
        "Measured per class: {counts}. Think of which parton radiates most.")


def check_conv_products(answer, model, layer: str) -> Verdict:
    """Multiplications one image costs in the convolution ``layer``: output pixels x kernel values."""
    conv = model.get_layer(layer)
    out_shape = tuple(int(d) for d in conv.output.shape[1:])
    kernel = tuple(int(d) for d in conv.kernel.shape)
    pixels = int(np.prod(out_shape[:-1]))
    per_pixel = int(np.prod(kernel))
    expected = pixels * per_pixel
    return check_number(
        answer, expected,
        f"{pixels} output pixels x ({' x '.join(map(str, kernel))} = {per_pixel}) kernel products = {expected:,}. "
        f"The kernel has only {per_pixel} distinct weights: the firmware reuses one set of {per_pixel} multipliers "
        "for every pixel, in turn.",
        f"Output pixels ({' x '.join(map(str, out_shape[:-1]))}) times the values of the kernel "
        f"(kernel height x width x input channels x filters).")


def check_fewer_luts(answer, luts: dict) -> Verdict:
    """Which I/O style's design needs fewer LUTs (``luts``: style -> estimated LUTs)."""
    return _check_extreme(
        answer, luts, min, ",",
        "Estimated LUTs: {counts}. io_stream keeps a few rows of the image in line buffers and computes one "
        "window at a time; io_parallel holds every value of every layer as wires and registers.",
        "Estimated LUTs: {counts}. Which style holds the whole image at once?")
