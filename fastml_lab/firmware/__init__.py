"""The firmware's operations and how they are read from generated code.

:mod:`.registry` holds the op registry (one class per op, ``@register_op``); :mod:`.ops` the ops
of hls4ml's ``nnet`` library; :mod:`.reader` the generic parsing of an hls4ml project. The
emulator (:class:`fastml_lab.emulator.Firmware`) builds its layers from this registry.

Numpy only (no hls4ml): the board imports it.
"""

from . import ops  # noqa: F401  (registers every op)
from .registry import (Field, Op, build_layer, known_ops, op_class, op_classes, register_op,
                       supported_functions)

__all__ = ["Field", "Op", "build_layer", "known_ops", "op_class", "op_classes", "register_op",
           "supported_functions"]
