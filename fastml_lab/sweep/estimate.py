"""Resources, latency, II and the fit verdict of one exported point: the sweep's single source of them.

:func:`hardware_estimate` is the only function the sweep calls for hardware figures. Until the
project's hardware estimate (``fastml_lab.estimate``) is available it combines what the toolkit
has: for a neural network, :func:`fastml_lab.quantize.fit_estimate` (DSP and LUT of the dense
layers' multiplications) and the project's timing (the export's estimate, or a recorded synthesis
report); for a BDT, conifer's own performance estimates (latency, LUT and FF of its HLS backend;
its trees need no DSP), with an initiation interval of one cycle (conifer's HLS is pipelined).
Figures a source does not give are None.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile

#: Keys of :func:`hardware_estimate`'s result (the sweep table's hardware columns).
KEYS = ("dsp", "lut", "ff", "bram_18k", "latency_cycles", "ii_cycles", "clock_mhz", "latency_ns", "fits",
        "estimate_source")


def hardware_estimate(project, board: str) -> dict:
    """``{dsp, lut, ff, bram_18k, latency_cycles, ii_cycles, clock_mhz, latency_ns, fits, estimate_source}``
    of the exported ``project`` (a :class:`~fastml_lab.project.Project`) on ``board`` (a board name)."""
    return _toolkit_estimate(project, board)


def _toolkit_estimate(project, board: str) -> dict:
    from ..boards import get_board

    budget = get_board(board).resources
    if project.family == "bdt":
        out = _bdt_estimate(project)
    else:
        from ..quantize import fit_estimate

        fit = fit_estimate(project, board=board)
        timing = project.timing
        out = {"dsp": fit.dsp, "lut": fit.lut, "ff": None, "bram_18k": None,
               "latency_cycles": timing.get("latency_cycles"), "ii_cycles": timing.get("ii_cycles"),
               "clock_mhz": timing.get("clock_mhz") or project.clock_mhz,
               "estimate_source": f"fit_estimate (multiplications) + timing {timing.get('source', 'none')}"}
    if out["latency_cycles"] is not None and out["clock_mhz"]:
        out["latency_ns"] = round(out["latency_cycles"] * 1000.0 / out["clock_mhz"], 3)
    else:
        out["latency_ns"] = None
    used = {"dsp": out["dsp"], "lut": out["lut"], "ff": out["ff"], "bram_18k": out["bram_18k"]}
    limits = {"dsp": budget.dsp, "lut": budget.lut, "ff": budget.ff, "bram_18k": budget.bram_18k}
    out["fits"] = all(used[k] <= limits[k] for k in used if used[k] is not None)
    return {key: out[key] for key in KEYS}


def _bdt_estimate(project) -> dict:
    from ..bdt.export import conifer_model

    with tempfile.TemporaryDirectory(prefix="fastml_lab_estimate_") as tmp, _quiet("conifer"):
        from conifer.utils.performance import performance_estimates

        figures = performance_estimates(conifer_model(project, tmp, backend="xilinxhls"))
    return {"dsp": 0, "lut": int(figures["lut"]), "ff": int(figures["ff"]), "bram_18k": 0,
            "latency_cycles": int(figures["latency"]), "ii_cycles": 1, "clock_mhz": project.clock_mhz,
            "estimate_source": "conifer performance_estimates (HLS)"}


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
