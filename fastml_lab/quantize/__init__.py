"""From a float model to one that fits the board: quantization-aware training, pruning, the fit
estimate, numerical profiling and bit-width studies.

The functions are imported here eagerly, so that ``quantize.profile`` and ``quantize.prune`` stay
the functions even after the modules of the same names are imported; those modules import numpy
alone at load time and Keras, HGQ2, hls4ml and matplotlib only when a function that needs them runs.
"""

from __future__ import annotations

from .bits import bits_argument, parse_bits, parse_layer_bits
from .fit import PYNQ_Z2, Budget, FitEstimate, fit_estimate
from .profile import Profile, profile
from .prune import PruneResult, PruningSchedule, prune, sparsity
from .qat import QuantizeResult, quantize
from .study import Study, bit_width_study

__all__ = ["Budget", "FitEstimate", "PYNQ_Z2", "Profile", "PruneResult", "PruningSchedule", "QuantizeResult",
           "Study", "bit_width_study", "bits_argument", "fit_estimate", "parse_bits", "parse_layer_bits",
           "profile", "prune", "quantize", "sparsity"]
