"""Bit-width studies: test accuracy against the total number of bits, and against sparsity.

``mode="ptq"`` quantizes the trained float model after the fact: for every width the model is
exported with a precision plan of that width and its firmware is run on the fast emulator
(:func:`fastml_lab.hls.study.ptq_study`, no compile). ``mode="qat"`` trains a quantization-aware
model per width with :func:`fastml_lab.quantize.quantize` (``bits`` for weights and activations)
and runs the export of each on the emulator too: its types come from the quantizers, and its
Keras output is the same bit for bit. With ``sparsities``
the float model is also pruned to each sparsity and every pruned model goes through the same PTQ
widths. The float model's accuracy is the reference.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError, DataError

__all__ = ["DEFAULT_BITS", "MODES", "Study", "bit_width_study"]

MODES = ("ptq", "qat")
DEFAULT_BITS = (4, 6, 8, 10, 12, 16)
#: Training events the per-width plans are derived from (PTQ, ``integer_bits="auto"``).
PLAN_SAMPLE = 20_000


@dataclass
class Study:
    """Accuracy per total width (and sparsity): ``rows`` are plain dicts, one per evaluated model.

    Each row has ``bits``, ``sparsity`` (0 for the unpruned model), ``accuracy``,
    ``float_accuracy`` (the float model it was quantized from: the pruned one for a sparsity),
    ``evaluated_with`` (``"emulator"`` or ``"keras"``), ``overflows`` (per layer, emulator only)
    and ``seconds``; QAT rows add ``ebops``. Emulated rows add the hardware estimate's columns on the
    PYNQ-Z2 (:data:`fastml_lab.hls.study.HARDWARE_COLUMNS`: ``latency_cycles``, ``latency_ns``,
    ``ii_cycles``, ``events_per_s``, ``dsp``, ``lut``, ``ff``, ``bram_18k``, ``fits``, ``resources_kind``),
    so accuracy can be read against LUTs or latency.
    """

    mode: str
    float_accuracy: float
    events: int
    integer_bits: "str | int"
    rows: list = field(default_factory=list)
    seconds: float = 0.0

    def bit_rows(self) -> list:
        """Rows of the unpruned model, by width."""
        return sorted((r for r in self.rows if r["sparsity"] == 0), key=lambda r: r["bits"])

    def sparsity_rows(self) -> list:
        """Rows of the pruned models, by sparsity then width."""
        return sorted((r for r in self.rows if r["sparsity"] > 0), key=lambda r: (r["sparsity"], r["bits"]))

    def to_dict(self) -> dict:
        return {"mode": self.mode, "float_accuracy": self.float_accuracy, "events": self.events,
                "integer_bits": self.integer_bits, "seconds": self.seconds,
                "rows": [dict(r) for r in self.rows]}

    def table(self) -> str:
        """A text table: one line per row, accuracy and its change from the float reference."""
        lines = [f"{self.mode.upper()} bit-width study on {self.events} events; float accuracy "
                 f"{self.float_accuracy:.4f} ('vs float': change in percentage points)",
                 f"{'bits':>4} {'sparsity':>8} {'accuracy':>8} {'vs float':>8} {'overflows':>9}  evaluated with"]
        for r in self.bit_rows() + self.sparsity_rows():
            overflows = "-" if r.get("overflows") is None else str(sum(r["overflows"].values()))
            lines.append(f"{r['bits']:>4} {r['sparsity']:>8.2f} {r['accuracy']:>8.4f} "
                         f"{100 * (r['accuracy'] - r['float_accuracy']):>+8.2f} {overflows:>9}  "
                         f"{r['evaluated_with']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Study(mode={self.mode!r}, {len(self.rows)} rows, float accuracy "
                f"{self.float_accuracy:.4f})")

    def plot(self, title: str | None = None):
        """Accuracy against total bits with the float accuracy as a dashed line; a second panel
        against sparsity (one line per width) when the study has pruned models."""
        from ..plots import _figure_and_axes

        pruned = self.sparsity_rows()
        fig, axes = _figure_and_axes(None, ncols=2 if pruned else 1,
                                     figsize=(11.0, 4.2) if pruned else (6.0, 4.2))
        rows = self.bit_rows()
        ax = axes[0]
        ax.plot([r["bits"] for r in rows], [r["accuracy"] for r in rows], "-o",
                label=f"{self.mode.upper()} ({rows[0]['evaluated_with'] if rows else '-'})")
        ax.axhline(self.float_accuracy, color="k", linestyle="--", label=f"float ({self.float_accuracy:.4f})")
        ax.set_xticks([r["bits"] for r in rows])
        ax.set_xlabel("Total bits per value")
        ax.set_ylabel("Test accuracy")
        ax.grid(True, alpha=0.4)
        ax.legend(loc="lower right")
        ax.set_title("Accuracy vs bit width")
        if pruned:
            _plot_sparsity(axes[1], rows + pruned, self.float_accuracy)
        fig.suptitle(title or f"Bit-width study ({self.mode.upper()}, {self.events} events)")
        return fig


def _plot_sparsity(ax, rows: list, float_accuracy: float) -> None:
    sparsities = sorted({r["sparsity"] for r in rows})
    reference = {r["sparsity"]: r["float_accuracy"] for r in rows}
    reference[0.0] = float_accuracy
    ax.plot(sparsities, [reference[s] for s in sparsities], "k--o", label="float")
    for bits in sorted({r["bits"] for r in rows}):
        points = sorted((r["sparsity"], r["accuracy"]) for r in rows if r["bits"] == bits)
        ax.plot(*zip(*points), "-o", markersize=4, label=f"{bits} bits")
    ax.set_xlabel("Sparsity (fraction of zero weights)")
    ax.set_ylabel("Test accuracy")
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize="small")
    ax.set_title("Accuracy vs sparsity (pruned, then PTQ)")


# ------------------------------------------------------------------------------------------ study
def bit_width_study(model, dataset, bits=DEFAULT_BITS, mode: str = "ptq", integer_bits="auto",
                    sparsities=None, epochs: int = 10, batch_size: int = 1024, progress: bool = True,
                    on_progress=None, seed: int = 0) -> Study:
    """Accuracy of ``model`` (a float Keras model or ``.keras`` path) quantized to each width in ``bits``.

    ``dataset`` is a JetDataset (plans and training use its training part, accuracy its test
    part) or an ``(X, labels)`` pair (used for both; PTQ only). ``integer_bits="auto"`` gives
    every quantity its own integer bits from the data (:meth:`PrecisionPlan.from_data`);
    an integer gives ``ap_fixed<bits, integer_bits>`` everywhere. ``epochs`` is the training
    per QAT width and per pruned model. ``on_progress(done, total, row)`` is called after each
    row; ``progress`` shows a tqdm bar.
    """
    from ..evaluate import evaluate
    from ..hls.keras_model import as_model

    mode, bits, sparsities = check_settings(mode, bits, integer_bits, sparsities, epochs)
    model = as_model(model)
    X_fit, X_eval, labels = _arrays(dataset, needs_training=mode == "qat" or bool(sparsities))
    start = time.perf_counter()
    float_accuracy = evaluate(model, (X_eval, labels)).accuracy
    study = Study(mode=mode, float_accuracy=float_accuracy, events=len(labels), integer_bits=integer_bits)
    total = len(bits) * (1 + len(sparsities))
    bar = _bar(total, f"{mode.upper()} study", progress)
    logger = logging.getLogger("fastml_lab")  # one "Exported ..." line per temporary export is noise here
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))

    def add(row):
        study.rows.append(row)
        bar.set_postfix(bits=row["bits"], sparsity=row["sparsity"], acc=f"{row['accuracy']:.4f}", refresh=False)
        bar.update(1)
        if on_progress is not None:
            on_progress(len(study.rows), total, row)

    try:
        for b in bits:
            if mode == "ptq":
                add(_ptq_row(model, X_fit, X_eval, labels, b, integer_bits, 0.0, float_accuracy))
            else:
                add(_qat_row(model, dataset, X_eval, labels, b, epochs, batch_size, seed, float_accuracy))
        for sparsity in sparsities:
            pruned = _prune(model, dataset, sparsity, epochs, batch_size, seed)
            pruned_accuracy = evaluate(pruned.model, (X_eval, labels)).accuracy
            for b in bits:
                row = _ptq_row(pruned.model, X_fit, X_eval, labels, b, integer_bits, sparsity, pruned_accuracy)
                row["measured_sparsity"] = _overall_sparsity(pruned.sparsity)
                add(row)
    finally:
        bar.close()
        logger.setLevel(level)
    study.seconds = round(time.perf_counter() - start, 3)
    return study


def _ptq_row(model, X_fit, X_eval, labels, bits, integer_bits, sparsity, reference) -> dict:
    from ..hls.study import ptq_study

    start = time.perf_counter()
    plan = ptq_plan(model, X_fit, bits, integer_bits)
    result = ptq_study(model, X_eval, labels, plan=plan)
    return {"bits": bits, "sparsity": sparsity, "accuracy": result["accuracy"], "float_accuracy": reference,
            "evaluated_with": "emulator", "overflows": result["overflows"], "plan": plan.to_dict(),
            **result["hardware"], "seconds": round(time.perf_counter() - start, 3)}


def ptq_plan(model, X_fit, bits: int, integer_bits="auto"):
    """The plan a PTQ study uses at ``bits`` total bits (see :func:`bit_width_study`)."""
    from ..fixed import FixedType
    from ..hls.plan import PrecisionPlan

    if integer_bits == "auto":
        return PrecisionPlan.from_data(model, X_fit, width=bits, sample=PLAN_SAMPLE)
    return PrecisionPlan.uniform(FixedType(bits, integer_bits))


def _qat_row(model, dataset, X_eval, labels, bits, epochs, batch_size, seed, reference) -> dict:
    from ..hls.study import ptq_study
    from . import quantize

    start = time.perf_counter()
    result = quantize(model, dataset, bits=bits, epochs=epochs, batch_size=batch_size, seed=seed,
                      progress=False)
    emulated = ptq_study(result.model, X_eval, labels)  # no plan: the quantizers set every type
    return {"bits": bits, "sparsity": 0.0, "accuracy": emulated["accuracy"], "float_accuracy": reference,
            "evaluated_with": "emulator", "overflows": emulated["overflows"], "ebops": float(result.ebops),
            **emulated["hardware"], "seconds": round(time.perf_counter() - start, 3)}


def _prune(model, dataset, sparsity, epochs, batch_size, seed):
    from . import prune

    return prune(model, dataset, sparsity=sparsity, epochs=epochs, batch_size=batch_size, seed=seed,
                 progress=False)


def _overall_sparsity(per_layer: dict) -> float | None:
    values = list((per_layer or {}).values())
    return float(np.mean(values)) if values else None


# ------------------------------------------------------------------------------------------ checks
def check_settings(mode, bits, integer_bits, sparsities, epochs):
    """Refuse settings :func:`bit_width_study` cannot use; returns ``(mode, bits, sparsities)``."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    try:
        bits = tuple(int(b) for b in bits)
    except (TypeError, ValueError):
        raise ConfigError(f"bits must be a sequence of integer widths such as (4, 6, 8); got {bits!r}.") from None
    if not bits or any(b < 2 or b > 32 for b in bits) or len(set(bits)) != len(bits):
        raise ConfigError(f"bits must be distinct widths from 2 to 32; got {bits!r}.")
    if integer_bits != "auto" and (isinstance(integer_bits, bool) or not isinstance(integer_bits, int)):
        raise ConfigError(f"integer_bits must be 'auto' or an integer; got {integer_bits!r}.")
    if integer_bits != "auto" and not 0 <= integer_bits <= min(bits):
        raise ConfigError(f"integer_bits must be 'auto' or a whole number from 0 to the smallest width "
                          f"({min(bits)}); got {integer_bits!r}.")
    if mode == "qat" and integer_bits != "auto":
        raise ConfigError("integer_bits applies to PTQ; QAT learns the integer bits of each quantity.")
    sparsities = tuple(float(s) for s in (sparsities or ()))
    if any(not 0 < s < 1 for s in sparsities):
        raise ConfigError(f"sparsities must be fractions between 0 and 1 (exclusive); got {sparsities!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1; got {epochs!r}.")
    return mode, bits, sparsities


def _arrays(dataset, needs_training: bool):
    """``(X to derive plans from, X to evaluate on, integer labels)``."""
    from ..data.prepare import dataset_part

    if needs_training and isinstance(dataset, (tuple, list)):
        raise ConfigError("QAT and pruning train on the dataset's training part and are judged "
                          "on its test part: pass a JetDataset, not an (X, labels) pair.")
    X_fit, _ = dataset_part(dataset, "train")
    X_eval, labels = dataset_part(dataset, "test")
    if labels is None:
        raise DataError(f"{type(dataset).__name__} has no test labels (labels_test or y_test).")
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    X_eval = np.asarray(X_eval)
    if X_eval.ndim != 2 or len(X_eval) != len(labels) or len(labels) == 0:
        raise DataError(f"the evaluation events {X_eval.shape} and labels {labels.shape} do not match.")
    return np.asarray(X_fit), X_eval, labels


def _bar(total: int, desc: str, enabled: bool):
    from .._deps import require

    tqdm = require("tqdm", "show progress").tqdm
    return tqdm(total=total, desc=desc, unit="model", disable=not enabled, leave=True)
