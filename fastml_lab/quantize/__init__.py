"""From a float model to one that fits the board: numerical profiling and bit-width studies.

The functions are imported here eagerly, so that ``quantize.profile`` stays the function even
after the module of the same name is imported; those modules import numpy alone at load time and
Keras, hls4ml and matplotlib only when a function that needs them runs.
"""

from __future__ import annotations

from .profile import Profile, profile
from .study import Study, bit_width_study

__all__ = ["Profile", "Study", "bit_width_study", "profile"]
