"""Post-training quantization studies on the emulator: accuracy and overflows, no compile."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .export import export


def ptq_study(model, X, labels, plan=None, precision=None, float_scores=None) -> dict:
    """Quantized accuracy and per-layer overflow counts of ``model`` under a precision plan.

    The model is exported to a temporary project (no g++), and its firmware is emulated on
    ``X``; ``labels`` are integer classes. ``float_scores`` (the float model's outputs on ``X``)
    adds the float accuracy for reference.
    """
    labels = np.asarray(labels)
    with tempfile.TemporaryDirectory(prefix="fastml_ptq_") as tmp:
        project = export(model, Path(tmp) / "study", plan=plan, precision=precision)
        firmware = project.firmware()
    start = time.perf_counter()
    scores, overflows = firmware.predict_counting_overflows(X)
    seconds = time.perf_counter() - start
    result = {
        "plan": project.meta["plan"],
        "accuracy": float(np.mean(scores.argmax(axis=1) == labels)),
        "overflows": overflows,
        "events": int(len(labels)),
        "seconds": seconds,
    }
    if float_scores is not None:
        result["float_accuracy"] = float(np.mean(np.asarray(float_scores).argmax(axis=1) == labels))
    return result
