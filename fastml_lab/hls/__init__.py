"""HLS export with hls4ml, the C simulation, synthesis reports and precision plans.

``export`` writes a project (from a precision plan, or from hls4ml's own configuration dict:
``hls4ml_config``), ``run_csim`` compiles and runs its C++, ``Firmware`` (in
:mod:`fastml_lab.emulator`) computes the same outputs in numpy, ``check_project`` compares the
two value for value, and ``describe`` is the firmware a model would become at a plan. ``Project`` (the project record)
lives in :mod:`fastml_lab.project` and is offered here too. hls4ml and Keras are imported only when
a function that needs them runs.
"""

from ..project import Project
from .check import CheckResult, check_project
from .describe import describe
from .export import BACKENDS, export, hls4ml_config
from .plan import PrecisionPlan

__all__ = ["BACKENDS", "CheckResult", "PrecisionPlan", "Project", "check_project", "compile_csim", "describe",
           "export", "hls4ml_config", "run_csim"]


def __getattr__(name):
    if name in ("run_csim", "compile_csim"):
        from . import csim

        return getattr(csim, name)
    raise AttributeError(name)
