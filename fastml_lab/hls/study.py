"""Post-training quantization studies on the emulator: accuracy and overflows, no compile."""

from __future__ import annotations

import time

import numpy as np

from .describe import describe, resolved_plan


def ptq_study(model, X, labels, plan=None, precision=None, float_scores=None) -> dict:
    """Quantized accuracy and per-layer overflow counts of ``model`` under a precision plan.

    The model is described at the plan (:func:`~fastml_lab.hls.describe`: a temporary export, no
    g++), and its firmware is emulated on ``X``; ``labels`` are integer classes. ``float_scores``
    (the float model's outputs on ``X``) adds the float accuracy for reference.
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
    }
    if float_scores is not None:
        result["float_accuracy"] = float(np.mean(np.asarray(float_scores).argmax(axis=1) == labels))
    return result
