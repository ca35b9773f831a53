"""What a design costs on the FPGA before synthesis: latency, II, events/s, DSP, LUT, FF and BRAM.

:func:`estimate` prices a project, a Firmware, a Keras/HGQ2 model or a BDT on a board of the board
table (or a bare part); :func:`advise` lists the reuse factors and strategies that fit a board.
The cost model (:mod:`.model`), the AXI-stream wrapper (:mod:`.wrapper`) and the published points
it is checked against (:mod:`.published`, ``published_points.csv``) are numpy only.
"""

from .advisor import Advice, advise
from .hardware import DMA_MARGIN, IMPLEMENTATION_FACTORS, Estimate, estimate, estimate_description
from .model import (C_SYNTHESIS, FLAVOURS, IMPLEMENTATION, STRATEGIES, SYNTHESIS_REPORT, TECHNOLOGY_MAPPING,
                    valid_reuse_factors)

__all__ = ["Advice", "C_SYNTHESIS", "DMA_MARGIN", "Estimate", "FLAVOURS", "IMPLEMENTATION",
           "IMPLEMENTATION_FACTORS", "STRATEGIES", "SYNTHESIS_REPORT", "TECHNOLOGY_MAPPING", "advise", "estimate",
           "estimate_description", "valid_reuse_factors"]
