"""HLS export with hls4ml, the C simulation, synthesis reports and precision plans.

``export`` writes a project, ``run_csim`` compiles and runs its C++, ``Firmware`` (in
:mod:`fastml_lab.emulator`) computes the same outputs in numpy. ``Project`` (the project record)
lives in :mod:`fastml_lab.project` and is offered here too. hls4ml and Keras are imported only when
a function that needs them runs.
"""

from ..project import Project
from .export import BACKENDS, export
from .plan import PrecisionPlan

__all__ = ["BACKENDS", "PrecisionPlan", "Project", "export", "run_csim", "compile_csim"]


def __getattr__(name):
    if name in ("run_csim", "compile_csim"):
        from . import csim

        return getattr(csim, name)
    raise AttributeError(name)
