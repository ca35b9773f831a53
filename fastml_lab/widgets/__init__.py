"""The guided walk in Jupyter: Data -> Train -> Quantize -> Export -> Deploy, as widgets.

>>> import fastml_lab
>>> fastml_lab.lab(project_dir="my_lab")        # last in a cell: shows the walk

Each step is a panel (``step.widget``) with controls, Run/Stop, a progress bar, its results as
numbers and plots, and a "Show code" toggle with the same step in Python. The panels only call
the toolkit's API (``data``, ``train``, ``evaluate``, ``plots``, ``quantize``, ``hls``, ``bdt``,
``overlay``). Steps work alone too, e.g. ``ExportStep(model=model, project_dir="prj_dir")``.

Train offers a neural network or boosted decision trees; for trees, Quantize becomes "Precision"
(the trees' profile and precision study) and Export writes conifer's HLS (``state.family`` says
which family the walk is on; it follows the trained model).

Modules: ``state`` (shared state, project folder), ``runner`` (background work), ``step`` (the
panel frame), ``panel``/``figures``/``live`` (widget pieces and plots), one module per step,
``code`` (the equivalent Python), ``walk`` (the stepper and :func:`lab`), ``app`` (the Voilà page).
Names load on first use, so ``fastml-lab`` verbs can read the defaults without ipywidgets.
"""

from __future__ import annotations

import importlib

#: Where the walk keeps its work unless told otherwise.
DEFAULT_PROJECT_DIR = "fastml_lab_project"

_EXPORTS = {
    "DataStep": "data_step", "TrainStep": "train_step", "QuantizeStep": "quantize_step", "ExploreStep": "explore_step",
    "ExportStep": "export_step", "DeployStep": "deploy_step", "LabState": "state",
    "StepResult": "state", "Walk": "walk", "lab": "walk",
}

__all__ = sorted([*_EXPORTS, "DEFAULT_PROJECT_DIR"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
