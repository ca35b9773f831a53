"""Describe a model at a plan: the Firmware its export would have, without keeping a project.

The PTQ study, profiling and the Quantize step all need "what would the firmware compute with
these types?". :func:`describe` answers it once: it exports silently to a temporary folder (hls4ml
writes the C++, no g++ runs), reads the firmware back, and removes the folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def describe(model, plan=None, precision=None, **export_options):
    """The :class:`~fastml_lab.emulator.Firmware` of ``model`` exported with ``plan`` or ``precision``.

    ``model`` is a Keras model or a ``.keras`` path; ``export_options`` are those of
    :func:`~fastml_lab.hls.export` (backend, reuse_factor, strategy, ...). The firmware's plan,
    as the export resolved it, is ``plan_from_firmware(firmware)``; for a quantization-aware model
    (no plan) that is the types its quantizers set.
    """
    from .export import export

    with tempfile.TemporaryDirectory(prefix="fastml_lab_describe_") as tmp:
        project = export(model, Path(tmp) / "described", plan=plan, precision=precision, quiet=True,
                         **export_options)
        return project.firmware()


def resolved_plan(model, firmware, plan=None, precision=None):
    """The plan the export of ``model`` used: ``plan``/``precision`` for a float model, the types
    read back from ``firmware`` for a quantization-aware one (which takes no plan)."""
    from .export import plan_from_firmware
    from .keras_model import as_model, has_quantizers
    from .plan import as_plan

    if has_quantizers(as_model(model)):
        return plan_from_firmware(firmware)
    return as_plan(plan, precision)
