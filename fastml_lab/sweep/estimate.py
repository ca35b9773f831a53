"""Resources, latency, II and the fit verdict of one exported point: the sweep's single source of them.

:func:`hardware_estimate` is the only function the sweep calls for hardware figures. It reads them
from the toolkit's hardware estimate, :func:`fastml_lab.estimate.estimate` (NN: its per-layer cost
model for the project's strategy and reuse factor and the board's AXI-stream wrapper; BDT:
conifer's performance estimates), so a sweep's figures are those ``fastml-lab estimate`` prints
for the same project. The resources are the design's (C-synthesis estimate); ``fits`` is the
estimate's verdict against the board's budget (which adds the DMA's margin), and ``fit_detail`` says
what it compared: each resource's figure over the board's, and the kind of those figures.
"""

from __future__ import annotations

#: Keys of :func:`hardware_estimate`'s result (the sweep table's hardware columns).
KEYS = ("dsp", "lut", "ff", "bram_18k", "latency_cycles", "ii_cycles", "clock_mhz", "latency_ns", "fits",
        "fit_detail", "estimate_source")


def hardware_estimate(project, board: str) -> dict:
    """``{dsp, lut, ff, bram_18k, latency_cycles, ii_cycles, clock_mhz, latency_ns, fits, fit_detail,
    estimate_source}``
    of the exported ``project`` (a :class:`~fastml_lab.project.Project`) on ``board`` (a board name)."""
    from ..estimate import estimate

    found = estimate(project, board=board)
    resources = {key: int(found.resources[key]) for key in ("dsp", "lut", "ff", "bram_18k")}
    return {**resources, "latency_cycles": int(found.latency_cycles), "ii_cycles": int(found.ii_cycles),
            "clock_mhz": float(found.clock_mhz), "latency_ns": round(float(found.latency_ns), 3),
            "fits": found.fits, "fit_detail": found.fit_detail(),
            "estimate_source": f"fastml_lab.estimate ({found.kind})"}
