"""A published end-to-end run of the tutorial's jet MLP on a real PYNQ-Z2, and the trigger's budget.

The run (a third party's, public): the hls4ml tutorial's 6-bit QKeras, 75%-pruned 16-64-32-32-5
network, reuse factor 64, hls4ml 1.2 + Vivado HLS 2019.2, 100 MHz, PYNQ 3.1.1, 166,000 test jets.
The same network was also compiled as portable C (``-O3``) and timed one event per call on the
board's Cortex-A9 and on a desktop CPU. These are the only measurements on a board that the
toolkit quotes; every use names :data:`SOURCE`. Numpy-free (the board imports it).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results, results/CPU_FPGA_RESULTS.md and "
          "results/RESULTS_VIVADO2019_2.md (2026)")
DESIGN = ("the hls4ml tutorial's jet MLP, 6-bit QKeras, 75% pruned, reuse factor 64, Vivado HLS 2019.2, "
          "100 MHz on the PYNQ-Z2")


@dataclass(frozen=True)
class PublishedFigure:
    """One published time: per event at full throughput and until one answer, in ns."""

    key: str
    where: str
    what: str
    ns_per_event: float
    latency_ns: float
    kind: str = "published measurement"


#: The run's figures, fastest path first (medians of three runs of 20,000 calls for the CPUs).
FIGURES = (
    PublishedFigure("fabric", "PYNQ-Z2 fabric (the IP alone)",
                    "II 95 cycles at 100 MHz from the C-synthesis report, confirmed by the batch rate below",
                    950.0, 950.0, kind="published synthesis report"),
    PublishedFigure("dma_batch", "PYNQ-Z2 FPGA through the DMA, one batch",
                    "166,000 jets in one call: 0.236 s, 703,900 events/s (67% of the II bound)",
                    1e9 / 703_899.9, 0.236e9),
    PublishedFigure("desktop_c", "desktop CPU (Ryzen 5 5600), C, one event per call",
                    "the same network as portable C -O3, one core", 944.7, 944.7),
    PublishedFigure("arm_c", "PYNQ-Z2 Cortex-A9 (650 MHz), C, one event per call",
                    "the same network as portable C -O3, one core", 28_185.0, 28_185.0),
    PublishedFigure("dma_one", "PYNQ-Z2 FPGA through Python + DMA, one event per call",
                    "median of one-event calls: Python, buffers, DMA set-up and wait dominate", 940_094.0, 940_094.0),
)
BY_KEY = {figure.key: figure for figure in FIGURES}
#: Agreement of the board's predicted classes with the CPU emulation in the same run.
CLASS_AGREEMENT = 0.9941

#: The LHC's bunch crossings: 40 MHz, one every 25 ns; a Level-1 algorithm takes a new event each.
BUNCH_CROSSING_NS = 25.0
#: The whole Level-1 decision's latency budget (detector to accept), Run 3 and the HL-LHC upgrades:
#: CMS 4 us (CERN-LHCC-2013-011) and 12.5 us (Phase-2 TDR, CERN-LHCC-2020-004); ATLAS 2.5 us and
#: 10 us (CERN-LHCC-2017-020). One algorithm gets a fraction of it, typically well under 1 us.
L1_LATENCY_BUDGETS_NS = {"CMS Run 3": 4_000.0, "ATLAS Run 3": 2_500.0, "CMS Phase-2": 12_500.0,
                         "ATLAS Phase-II": 10_000.0}
