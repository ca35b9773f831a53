"""Synthesis with the vendor tools, when they exist, and reading their reports.

``synthesize`` runs hls4ml's build (C synthesis) when Vitis HLS or Vivado HLS is on PATH;
``parse_csynth_report`` reads the tool's ``csynth.xml`` (latency, interval, LUT, FF, DSP, BRAM);
``record_report`` records a report made elsewhere (a lab machine with the tools) without running
anything. Either way the report goes into the project's record, where its timing replaces the
pre-synthesis estimate (:meth:`fastml_lab.project.Project.record_synthesis`).
"""

from __future__ import annotations

import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from ..exceptions import DataError, ToolchainNotFoundError
from ..project import open_project
from ..boards import export_backends

log = logging.getLogger("fastml_lab")

#: Tools that can run hls4ml's build for each hls4ml backend, in order of preference.
HLS_TOOLS = {"Vitis": ("vitis-run", "vitis_hls"), "VivadoAccelerator": ("vivado_hls",)}


def tools_for(backend: str) -> tuple:
    """The synthesis tools for an export backend (``vitis`` or a board), preferred first."""
    hls_backend = export_backends().get(backend, (None, None))[0]
    return HLS_TOOLS.get(hls_backend, ())


def find_tool(backend: str):
    """The first synthesis tool for ``backend`` found on PATH, or None."""
    for tool in tools_for(backend):
        if shutil.which(tool):
            return tool
    return None


def synthesize(project, csim: bool = False, export_ip: bool = False) -> dict:
    """Run C synthesis with the vendor tool and record the parsed report in the project.

    ToolchainNotFoundError when no tool for the project's backend is on PATH.
    """
    project = open_project(project)
    tool = find_tool(project.backend)
    if tool is None:
        raise ToolchainNotFoundError(
            f"No synthesis tool on PATH: a {project.backend} project needs "
            f"{' or '.join(tools_for(project.backend)) or 'Vitis HLS or Vivado HLS'}. The project's C++ "
            f"and build scripts are ready in {project.hls_dir}; a report made elsewhere is recorded "
            "with `fastml-lab synth PRJ --report csynth.xml`."
        )
    import hls4ml

    hls_model = hls4ml.converters.link_existing_project(str(project.hls_dir))
    hls_model.build(csim=csim, synth=True, export=export_ip)
    reports = sorted(project.hls_dir.rglob("csynth.xml"))
    if not reports:
        raise DataError(f"Synthesis ran but wrote no csynth.xml under {project.hls_dir}.")
    report = parse_csynth_report(reports[-1])
    project.record_synthesis(report, origin=reports[-1])
    return report


def record_report(project, path) -> dict:
    """Record the synthesis report ``path`` (a ``csynth.xml`` made elsewhere) in ``project``.

    Runs no tool. A report for another part than the project's is refused (ConfigError).
    Returns the parsed report.
    """
    project = open_project(project)
    report = parse_csynth_report(path)
    project.record_synthesis(report, origin=path)
    return report


def parse_csynth_report(path) -> dict:
    """Latency, interval and resources from a Vitis/Vivado HLS ``csynth.xml``."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"Cannot read the synthesis report {path}: {exc}") from None

    def text(xpath, cast=str):
        node = root.find(xpath)
        if node is None or node.text is None:
            raise DataError(f"The synthesis report {path} has no {xpath}.")
        value = node.text.strip()
        return cast(value) if value not in ("undef", "") else None

    def resources(section):
        node = root.find(f"AreaEstimates/{section}")
        if node is None:
            raise DataError(f"The synthesis report {path} has no AreaEstimates/{section}.")
        values = {child.tag: int(child.text) for child in node if child.text and child.text.strip().isdigit()}
        dsp = values.get("DSP", values.get("DSP48E"))
        return {"LUT": values.get("LUT"), "FF": values.get("FF"), "DSP": dsp,
                "BRAM_18K": values.get("BRAM_18K")}

    return {
        "source": "synthesis report",
        "tool_version": text("ReportVersion/Version"),
        "part": text("UserAssignments/Part"),
        "top": text("UserAssignments/TopModelName"),
        "target_clock_ns": text("UserAssignments/TargetClockPeriod", float),
        "estimated_clock_ns": text("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod", float),
        "latency_cycles": text("PerformanceEstimates/SummaryOfOverallLatency/Worst-caseLatency", int),
        "latency_best_cycles": text("PerformanceEstimates/SummaryOfOverallLatency/Best-caseLatency", int),
        "ii_cycles": text("PerformanceEstimates/SummaryOfOverallLatency/Interval-max", int),
        "resources": resources("Resources"),
        "available": resources("AvailableResources"),
    }
