"""Design-space exploration on Dask: sweeps and multi-objective searches, with Pareto fronts.

::

    from fastml_lab.sweep import run_sweep, report
    summary = run_sweep("space.yaml", "sweeps/first", workers=2)        # a local Dask cluster
    summary = run_sweep("space.yaml", "sweeps/first", scheduler="tcp://10.0.0.5:8786")
    rep = report("sweeps/first")   # the table, the fronts, rep.plot()

Modules: ``space`` (the search space and its points), ``params`` (what a model family brings
to sweeps: its parameters, its points' training and export; ``network`` and ``trees`` for the
built-in families, listed in :data:`fastml_lab.sweep.space.SUPPORT`), ``point`` (one point: train, export,
emulate, estimate), ``estimate`` (the hardware figures of a point), ``runner`` (Dask),
``store`` (the sweep folder), ``results`` (table, fronts, plots). Dask, Optuna, TensorFlow and
pandas are imported only when a sweep runs or a report is made.
"""

from __future__ import annotations

from .network import NN_PARAMS
from .space import Point, Space, load_space
from .trees import BDT_PARAMS

__all__ = ["BDT_PARAMS", "NN_PARAMS", "Point", "Space", "SweepReport", "SweepSummary", "hardware_estimate",
           "load_space", "report", "run_point", "run_sweep", "train_point"]


def __getattr__(name):
    modules = {"run_sweep": "runner", "SweepSummary": "runner", "report": "results", "SweepReport": "results",
               "run_point": "point", "train_point": "point", "hardware_estimate": "estimate"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{modules[name]}"), name)
    raise AttributeError(name)
