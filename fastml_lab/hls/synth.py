"""Synthesis with the vendor tools, when they exist, and reading their reports.

``synthesize`` runs hls4ml's build (C synthesis) when Vitis HLS or Vivado HLS is on PATH;
``parse_csynth_report`` reads the tool's ``csynth.xml`` (latency, interval, LUT, FF, DSP, BRAM)
into the project's report, which replaces the pre-synthesis estimate.
"""

from __future__ import annotations

import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from .._io import write_json_atomic
from ..exceptions import DataError, ToolchainNotFoundError
from .export import PROJECT_FILE, Project

log = logging.getLogger("fastml_lab")

#: Tools that can run hls4ml's build for each backend, in order of preference.
TOOLS = {"vitis": ("vitis-run", "vitis_hls"), "pynq-z2": ("vivado_hls",)}


def find_tool(backend: str):
    for tool in TOOLS.get(backend, ()):
        if shutil.which(tool):
            return tool
    return None


def synthesize(project, csim: bool = False, export_ip: bool = False) -> dict:
    """Run C synthesis with the vendor tool and store the parsed report in the project."""
    project = project if isinstance(project, Project) else Project.open(project)
    tool = find_tool(project.backend)
    if tool is None:
        raise ToolchainNotFoundError(
            f"Synthesis needs {' or '.join(TOOLS[project.backend])} on PATH, and none was found; "
            "the project's C++ and build scripts are ready in " + str(project.hls_dir) + "."
        )
    import hls4ml

    hls_model = hls4ml.converters.link_existing_project(str(project.hls_dir))
    hls_model.build(csim=csim, synth=True, export=export_ip)
    reports = sorted(project.hls_dir.rglob("csynth.xml"))
    if not reports:
        raise DataError(f"Synthesis ran but wrote no csynth.xml under {project.hls_dir}.")
    report = parse_csynth_report(reports[-1])
    store_report(project, report)
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


def store_report(project: Project, report: dict) -> None:
    """Record a synthesis report in project.json; timing from synthesis replaces the estimate."""
    meta = dict(project.meta)
    meta["synthesis"] = report
    meta["timing"] = {
        "latency_cycles": report["latency_cycles"], "ii_cycles": report["ii_cycles"],
        "clock_mhz": round(1000.0 / report["target_clock_ns"], 3) if report.get("target_clock_ns") else
        meta.get("timing", {}).get("clock_mhz"),
        "source": "synthesis report",
    }
    write_json_atomic(project.path / PROJECT_FILE, meta)
    project.meta = meta
