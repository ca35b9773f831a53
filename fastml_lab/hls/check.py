"""Check a project: its compiled C simulation against the bit-exact emulator, value for value.

The Export step, the demo and ``fastml-lab`` all check a project with :func:`check_project`, and
count mismatches with :func:`fastml_lab.compare.count_mismatches` (output values, not events), as
the board's verification does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..compare import Mismatches, count_mismatches

#: The stages :func:`check_project` reports to its ``progress`` callback, in order (``{sim}``: the
#: project's simulation, as :func:`simulation_name` calls it).
STAGES = ("compiling {sim}", "running {sim}", "running the emulator")
#: What each simulator of a project record runs: (the kind of simulation, the tool), for messages.
SIMULATIONS = {"g++": ("C simulation", "g++"), "verilator": ("RTL simulation", "Verilator"),
               "ghdl": ("RTL simulation", "GHDL")}


def simulation_kind(project) -> tuple:
    """``(kind, tool)`` of the project's simulation: ``("C simulation", "g++")``, ..."""
    return SIMULATIONS.get(project.simulator, ("simulation", project.simulator))


def simulation_name(project) -> str:
    """How to call the project's simulation in text: "the C simulation with g++", ..."""
    return "the {} with {}".format(*simulation_kind(project))


@dataclass(frozen=True)
class CheckResult:
    """C simulation vs emulator on the first ``events`` rows."""

    comparison: Mismatches
    compile_seconds: float
    csim_seconds: float
    emulator_seconds: float
    simulated: np.ndarray = field(repr=False)
    emulated: np.ndarray = field(repr=False)
    header_checks: bool = True
    simulation: str = "the C simulation with g++"

    @property
    def mismatches(self) -> int:
        return self.comparison.mismatches

    @property
    def values(self) -> int:
        return self.comparison.values

    @property
    def events(self) -> int:
        return self.comparison.events

    @property
    def max_abs_diff(self) -> float:
        return self.comparison.max_abs_diff

    @property
    def bit_exact(self) -> bool:
        return self.comparison.identical

    def describe(self) -> str:
        simulation = self.simulation + ("" if self.header_checks else " (without the ap_types header checks)")
        return f"{self.comparison.describe()} between {simulation} and the emulator"

    def to_dict(self) -> dict:
        return {"mismatches": self.mismatches, "values": self.values, "events": self.events,
                "events_differing": self.comparison.events_differing, "max_abs_diff": self.max_abs_diff,
                "compile_seconds": self.compile_seconds, "csim_seconds": self.csim_seconds,
                "emulator_seconds": self.emulator_seconds, "header_checks": self.header_checks,
                "simulation": self.simulation}


def check_project(project, X, n_events: int | None = None, progress=None,
                  header_checks: bool = True) -> CheckResult:
    """Compile ``project``'s C simulation (g++; cached), run it and the emulator on the first
    ``n_events`` rows of ``X`` (all without ``n_events``), and compare their outputs.
    ``header_checks=False``: the C simulation without the ap_types headers' asserts (see
    :data:`fastml_lab.hls.csim.BEYOND_MSB`).

    ``progress(stage)`` is called with each of :data:`STAGES` before it starts (a callback that
    raises stops the check there).
    """
    from ..exceptions import ConfigError
    from ..inputs import check_events
    from .csim import compile_csim, run_csim
    from ..project import Project

    project = project if isinstance(project, Project) else Project.open(project)
    if n_events is not None and (isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer))
                                 or n_events < 1):
        raise ConfigError(f"n_events must be a positive number of events or None (all); got {n_events!r}.")
    firmware = project.firmware()
    X = check_events(X, firmware.n_inputs, shape=firmware.input_shape)[:n_events]
    report = progress or (lambda stage: None)
    simulation = simulation_name(project)
    report(STAGES[0].format(sim=simulation))
    start = time.perf_counter()
    compile_csim(project, header_checks=header_checks)
    compiled = time.perf_counter()
    report(STAGES[1].format(sim=simulation))
    simulated = run_csim(project, X, header_checks=header_checks)
    simulated_at = time.perf_counter()
    report(STAGES[2])
    emulated = firmware.predict(X)
    done = time.perf_counter()
    return CheckResult(comparison=count_mismatches(simulated, emulated, (simulation_kind(project)[0], "emulator")),
                       compile_seconds=compiled - start, csim_seconds=simulated_at - compiled,
                       emulator_seconds=done - simulated_at, simulated=simulated, emulated=emulated,
                       header_checks=header_checks, simulation=simulation)
