"""BDTs in the one estimate: :func:`fastml_lab.bdt.estimate.estimate_bdt` (conifer's model) as an
:class:`~fastml_lab.estimate.hardware.Estimate`.

conifer's ``performance_estimates`` give the latency, LUTs and FFs of its xilinxhls backend from the
ensemble's shape (depth, trees, features, nodes); DSP and BRAM are 0 (constant comparisons,
trees in logic) and the II is 1 (conifer's ``#pragma HLS pipeline II = 1``), plus the board
wrapper's load/store loops. This module only reshapes those figures; it imports conifer through
:mod:`fastml_lab.bdt.estimate`.
"""

from __future__ import annotations

from .model import C_SYNTHESIS, LayerCost


def estimate_bdt_source(found: dict, board=None, part=None):
    """The :class:`Estimate` of a BDT source read by ``hardware._read_source``."""
    from ..bdt.estimate import estimate_bdt
    from ..boards import get_board
    from .hardware import Estimate

    figures = estimate_bdt(found["model"], board=board if part is None else None)
    target = None if part is not None else get_board(figures["board"])
    core = LayerCost("ensemble", "bdt", latency=int(figures["core_latency_cycles"]), ii=1,
                     dsp=int(figures["DSP"]), lut=int(figures["LUT"]), ff=int(figures["FF"]),
                     bram_18k=int(figures["BRAM"]),
                     detail=(f"{figures['n_trees']} trees of depth <= {figures['max_depth']} "
                             f"(conifer's performance_estimates)"))
    wrapper = None
    if figures["wrapper"] and target is not None:
        wrapper = LayerCost("board wrapper", "wrapper", latency=int(figures["latency_cycles"]),
                            ii=int(figures["ii_cycles"]), detail="conifer's load/store loops, one word per cycle")
    return Estimate(
        source=found["name"] + " (conifer's model)", part=part or target.part, clock_mhz=float(figures["clock_mhz"]),
        flavour="vitis" if target is None else "vivado", strategy="conifer", reuse_factor=1, board=target,
        layers=[core], wrapper=wrapper, latency_cycles=int(figures["latency_cycles"]),
        ii_cycles=int(figures["ii_cycles"]),
        resources={"dsp": int(figures["DSP"]), "lut": int(figures["LUT"]), "ff": int(figures["FF"]),
                   "bram_18k": int(figures["BRAM"])},
        kind=C_SYNTHESIS, family="bdt")
