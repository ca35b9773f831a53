"""Post-training quantization studies on the emulator: accuracy, overflows and the hardware estimate, no compile."""

from __future__ import annotations

import time

import numpy as np

from ..boards import DEFAULT_BOARD
from .describe import describe, resolved_plan


def ptq_study(model, X, labels, plan=None, precision=None, float_scores=None, board: str = DEFAULT_BOARD) -> dict:
    """Quantized accuracy and per-layer overflow counts of ``model`` under a precision plan.

    The model is described at the plan (:func:`~fastml_lab.hls.describe`: a temporary export, no
    g++), and its firmware is emulated on ``X``; ``labels`` are integer classes. ``float_scores``
    (the float model's outputs on ``X``) adds the float accuracy for reference. ``hardware`` holds
    the firmware's hardware estimate on ``board`` (:func:`hardware_columns`).
    """
    labels = np.asarray(labels)
    firmware = describe(model, plan=plan, precision=precision)
    start = time.perf_counter()
    scores, overflows = firmware.predict_counting_overflows(X)
    seconds = time.perf_counter() - start
    result = {
        "plan": resolved_plan(model, firmware, plan=plan, precision=precision).to_dict(),
        "accuracy": float(np.mean(scores.argmax(axis=1) == labels)),
        "overflows": overflows,
        "events": int(len(labels)),
        "seconds": seconds,
        "hardware": hardware_columns(firmware, board),
    }
    if float_scores is not None:
        result["float_accuracy"] = float(np.mean(np.asarray(float_scores).argmax(axis=1) == labels))
    return result


#: The columns a study row gains from the hardware estimate.
HARDWARE_COLUMNS = ("latency_cycles", "latency_ns", "ii_cycles", "events_per_s", "dsp", "lut", "ff", "bram_18k",
                    "fits", "resources_kind")


def hardware_columns(firmware, board: str = DEFAULT_BOARD) -> dict:
    """Latency, II, events/s and the resources of ``firmware`` on ``board``
    (:func:`fastml_lab.estimate.estimate`, reuse factor 1, Latency strategy): the resources are
    those the verdict compares (``resources_kind``: after implementation on the PYNQ-Z2)."""
    from ..estimate import estimate

    result = estimate(firmware, board=board)
    figures, kind = result.compared()
    return {"latency_cycles": result.latency_cycles, "latency_ns": round(result.latency_ns, 3),
            "ii_cycles": result.ii_cycles, "events_per_s": round(result.events_per_s, 1),
            **{key: int(figures[key]) for key in ("dsp", "lut", "ff", "bram_18k")},
            "fits": result.fits, "resources_kind": kind}
