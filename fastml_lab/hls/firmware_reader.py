"""Read a written hls4ml project back into the emulator's description of the firmware.

The reading lives in :mod:`fastml_lab.firmware.reader` (generic parsing) and in the op classes of
:mod:`fastml_lab.firmware.ops` (what each call means); this module keeps the old import path.
"""

from __future__ import annotations

from ..firmware.reader import read_project
from ..firmware.registry import supported_functions

#: Functions of hls4ml's nnet library the emulator implements (from the op registry).
SUPPORTED_FUNCTIONS = supported_functions()

__all__ = ["SUPPORTED_FUNCTIONS", "read_project", "supported_functions"]
