"""Latency and resources of a BDT before synthesis: conifer's own estimates for its xilinxhls backend.

conifer (``conifer.utils.performance.performance_estimates``) predicts the latency in clock cycles,
the LUTs and the flip-flops of the xilinxhls backend from the shape of the ensemble alone: three
regression BDTs of its own (JSON files in its wheel, run with its Python backend) on nineteen
metrics of the trees (depth, number of trees, features, nodes, leaves, the spread of the trees'
sparsity and of the features' use). They do not depend on the fixed-point types. conifer calls
the estimates experimental; they are labelled ``"kind": "estimate"`` here and are replaced by a
synthesis report once there is one (:meth:`fastml_lab.project.Project.record_synthesis`).

What is added to conifer's figures:

* DSP 0 and BRAM 0: every split compares ``x * weight`` with ``weight`` a one-hot constant (0 or
  1), which HLS folds away, and the unrolled trees are constants in logic, not memories;
* the initiation interval: 1 cycle, the ``#pragma HLS pipeline II = 1`` of conifer's ``BDT`` core;
* for a board project (conifer's accelerator wrapper around the core), the wrapper's loops:
  ``load`` reads one input per cycle and ``store`` writes one score per cycle, in a dataflow
  region, so the latency gains ``n_features + n_scores`` cycles and consecutive events start
  ``max(n_features, n_scores)`` cycles apart. The core's own figure stays in ``core_latency_cycles``.

:func:`as_estimate` gives the same figures as the one :class:`fastml_lab.estimate.Estimate` that
``fastml_lab.estimate.estimate`` returns for a BDT. conifer is imported inside :func:`estimate_bdt`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .._deps import require
from ..boards import DEFAULT_BOARD, get_board
from ..project import ESTIMATE, Project, open_project
from ..firmware.ops.bdt import OP
from ..options import check_clock_period
from .ensemble import FAMILY, n_scores, project_ensemble, to_ensemble

__all__ = ["as_estimate", "estimate_bdt", "estimate_ensemble", "timing_from_estimate"]


def _ensemble_and_project(model):
    """``(ensemble dict, Project or None)`` of a project (object or folder) or anything
    :func:`~fastml_lab.bdt.ensemble.to_ensemble` takes."""
    from ..project import PROJECT_FILE

    if isinstance(model, (str, Path)) and (Path(model) / PROJECT_FILE).is_file():
        model = open_project(model)
    if isinstance(model, Project):
        return project_ensemble(model), model
    return to_ensemble(model), None


def conifer_estimates(ensemble: dict) -> dict:
    """conifer's ``performance_estimates`` for its xilinxhls backend: ``{"latency", "lut", "ff"}``."""
    conifer = require("conifer", "estimate a BDT's latency and resources")
    from conifer.utils.performance import performance_estimates

    quiet = [logging.getLogger(name) for name in ("conifer", "conifer.utils.performance.prediction")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # "Performance estimation is experimental" on every call: said in our docstring
        lg.setLevel(logging.ERROR)
    try:
        model = conifer.model.ModelBase({k: v for k, v in ensemble.items() if k not in ("config", "metadata")})
        return {k: int(v) for k, v in performance_estimates(model, backend="xilinxhls").items()}
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)


def estimate_bdt(project_or_ensemble, board=None, clock_period_ns: float | None = None) -> dict:
    """Latency and resources of a BDT by conifer's estimates (see the module docstring).

    ``project_or_ensemble``: an exported BDT project (object or folder), a trained
    :class:`~fastml_lab.bdt.train.BDTModel`, an ensemble dict or a model file. ``board``: a name of
    the board table; default the project's board, else the PYNQ-Z2. The clock is the project's
    (as exported), else the board's; ``clock_period_ns`` sets another (conifer's cycle counts do not
    depend on it). Returns ``latency_cycles``, ``latency_ns``, ``ii_cycles``,
    ``clock_mhz``, ``LUT``, ``FF``, ``DSP``, ``BRAM``, ``core_latency_cycles``, ``wrapper``
    (whether the board wrapper's cycles are included), ``board``, the budget's use in percent
    (``utilization``), ``fits`` and ``"kind": "estimate"``.
    """
    ensemble, project = _ensemble_and_project(project_or_ensemble)
    if board is None:
        board = project.budget_board.name if project is not None and project.budget_board else DEFAULT_BOARD
    board = get_board(board)
    period = board.clock_period_ns
    if project is not None and project.meta.get("clock_period_ns"):
        period = float(project.meta["clock_period_ns"])
    if clock_period_ns is not None:
        period = check_clock_period(clock_period_ns)
    return estimate_ensemble(ensemble, board, period, wrapper=project is not None and project.board is not None)


def estimate_ensemble(ensemble: dict, board, clock_period_ns: float, wrapper: bool = False) -> dict:
    """:func:`estimate_bdt` of an ensemble dict for ``board`` (a :class:`~fastml_lab.boards.Board`)
    at ``clock_period_ns``; ``wrapper``: add the board wrapper's cycles (a board project)."""
    found = conifer_estimates(ensemble)
    core = int(found["latency"])
    n_in, n_out = int(ensemble["n_features"]), n_scores(ensemble)
    latency = core + (n_in + n_out if wrapper else 0)
    interval = max(n_in, n_out) if wrapper else 1
    resources = {"LUT": int(found["lut"]), "FF": int(found["ff"]), "DSP": 0, "BRAM": 0}
    budget = board.resources.as_dict()
    budget["BRAM"] = budget.pop("BRAM_18K")
    return {
        "latency_cycles": latency, "latency_ns": round(latency * float(clock_period_ns), 3),
        "ii_cycles": interval, "clock_mhz": round(1000.0 / float(clock_period_ns), 3),
        "core_latency_cycles": core, "wrapper": bool(wrapper),
        **resources, "board": board.name,
        "utilization": {key: round(100.0 * resources[key] / budget[key], 2) for key in resources},
        "fits": all(resources[key] <= budget[key] for key in resources),
        "n_rounds": int(ensemble["n_trees"]), "n_trees": int(ensemble["n_trees"]) * n_out,
        "max_depth": int(ensemble["max_depth"]),
        "source": "conifer.utils.performance.performance_estimates (xilinxhls)",
        "kind": ESTIMATE,
    }


def timing_from_estimate(estimate: dict) -> dict:
    """The project record's timing (:data:`fastml_lab.project.TIMING_KEYS`) from :func:`estimate_bdt`."""
    return {"latency_cycles": int(estimate["latency_cycles"]), "ii_cycles": int(estimate["ii_cycles"]),
            "clock_mhz": estimate["clock_mhz"], "source": ESTIMATE}


# ------------------------------------------------------------------ the one estimate
def _label(source) -> str:
    from ..project import PROJECT_FILE

    if isinstance(source, (str, Path)):
        path = Path(source)
        return f"project {path}" if (path / PROJECT_FILE).is_file() else f"BDT {path.name}"
    if isinstance(source, Project):
        return f"project {source.path}"
    return "BDT firmware" if hasattr(source, "description") else "BDT"


def as_estimate(source, board=None, part=None, clock_period_ns: float | None = None):
    """The :class:`Estimate` of a BDT project, model file, model or firmware (conifer's model)."""
    from ..estimate.hardware import Estimate
    from ..estimate.model import C_SYNTHESIS, LayerCost

    figures = estimate_bdt(source, board=board if part is None else None, clock_period_ns=clock_period_ns)
    target = None if part is not None else get_board(figures["board"])
    core = LayerCost("ensemble", OP, latency=int(figures["core_latency_cycles"]), ii=1,
                     dsp=int(figures["DSP"]), lut=int(figures["LUT"]), ff=int(figures["FF"]),
                     bram_18k=int(figures["BRAM"]),
                     detail=(f"{figures['n_trees']} trees of depth <= {figures['max_depth']} "
                             f"(conifer's performance_estimates)"))
    wrapper = None
    if figures["wrapper"] and target is not None:
        wrapper = LayerCost("board wrapper", "wrapper", latency=int(figures["latency_cycles"]),
                            ii=int(figures["ii_cycles"]), detail="conifer's load/store loops, one word per cycle")
    return Estimate(
        source=_label(source) + " (conifer's model)", part=part or target.part, clock_mhz=float(figures["clock_mhz"]),
        flavour="vitis" if target is None else "vivado", strategy="conifer", reuse_factor=1, board=target,
        layers=[core], wrapper=wrapper, latency_cycles=int(figures["latency_cycles"]),
        ii_cycles=int(figures["ii_cycles"]),
        resources={"dsp": int(figures["DSP"]), "lut": int(figures["LUT"]), "ff": int(figures["FF"]),
                   "bram_18k": int(figures["BRAM"])},
        kind=C_SYNTHESIS, family=FAMILY, own_model="conifer's xilinxhls model")
