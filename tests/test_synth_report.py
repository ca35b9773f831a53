"""Synthesis reports: parsing Vitis HLS and Vivado HLS csynth.xml, recording them in the project
(where their timing replaces the estimate and travels into the package), and `fastml-lab synth`
without any vendor tool on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError, DataError, ToolchainNotFoundError
from fastml_lab.hls.synth import find_tool, parse_csynth_report, record_report

VITIS_2023 = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion>
    <Version>2023.2</Version>
  </ReportVersion>
  <UserAssignments>
    <unit>ns</unit>
    <ProductFamily>zynq</ProductFamily>
    <Part>xc7z020-clg400-1</Part>
    <TopModelName>myproject</TopModelName>
    <TargetClockPeriod>10.00</TargetClockPeriod>
    <ClockUncertainty>2.70</ClockUncertainty>
    <FlowTarget>vivado</FlowTarget>
  </UserAssignments>
  <PerformanceEstimates>
    <PipelineType>yes</PipelineType>
    <SummaryOfTimingAnalysis>
      <unit>ns</unit>
      <EstimatedClockPeriod>6.912</EstimatedClockPeriod>
    </SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>9</Best-caseLatency>
      <Average-caseLatency>10</Average-caseLatency>
      <Worst-caseLatency>11</Worst-caseLatency>
      <Best-caseRealTimeLatency>90.000 ns</Best-caseRealTimeLatency>
      <Average-caseRealTimeLatency>0.100 us</Average-caseRealTimeLatency>
      <Worst-caseRealTimeLatency>0.110 us</Worst-caseRealTimeLatency>
      <Interval-min>1</Interval-min>
      <Interval-max>2</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources>
      <BRAM_18K>4</BRAM_18K>
      <DSP>37</DSP>
      <FF>4105</FF>
      <LUT>9876</LUT>
      <URAM>0</URAM>
    </Resources>
    <AvailableResources>
      <BRAM_18K>280</BRAM_18K>
      <DSP>220</DSP>
      <FF>106400</FF>
      <LUT>53200</LUT>
      <URAM>0</URAM>
    </AvailableResources>
  </AreaEstimates>
  <InterfaceSummary>
    <RtlPorts>
      <name>ap_clk</name>
      <Object>myproject</Object>
      <Type>return value</Type>
      <Bits>1</Bits>
      <Protocol>ap_ctrl_hs</Protocol>
      <Dir>in</Dir>
    </RtlPorts>
  </InterfaceSummary>
</profile>
"""

VIVADO_2019 = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion>
    <Version>2019.2</Version>
  </ReportVersion>
  <UserAssignments>
    <unit>ns</unit>
    <ProductFamily>zynq</ProductFamily>
    <Part>xc7z020clg400-1</Part>
    <TopModelName>myproject_axi</TopModelName>
    <TargetClockPeriod>5.00</TargetClockPeriod>
    <ClockUncertainty>0.62</ClockUncertainty>
  </UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis>
      <unit>ns</unit>
      <EstimatedClockPeriod>4.376</EstimatedClockPeriod>
    </SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>27</Best-caseLatency>
      <Average-caseLatency>27</Average-caseLatency>
      <Worst-caseLatency>31</Worst-caseLatency>
      <Interval-min>28</Interval-min>
      <Interval-max>32</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources>
      <BRAM_18K>2</BRAM_18K>
      <DSP48E>12</DSP48E>
      <FF>2311</FF>
      <LUT>4420</LUT>
      <URAM>0</URAM>
    </Resources>
    <AvailableResources>
      <BRAM_18K>280</BRAM_18K>
      <DSP48E>220</DSP48E>
      <FF>106400</FF>
      <LUT>53200</LUT>
      <URAM>0</URAM>
    </AvailableResources>
  </AreaEstimates>
</profile>
"""


def _write(tmp_path, text, name="csynth.xml"):
    path = tmp_path / "myproject_prj" / "solution1" / "syn" / "report" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_parse_vitis_2023_report(tmp_path):
    report = parse_csynth_report(_write(tmp_path, VITIS_2023))
    assert report == {
        "source": "synthesis report",
        "tool_version": "2023.2",
        "part": "xc7z020-clg400-1",
        "top": "myproject",
        "target_clock_ns": 10.0,
        "estimated_clock_ns": 6.912,
        "latency_cycles": 11,
        "latency_best_cycles": 9,
        "ii_cycles": 2,
        "resources": {"LUT": 9876, "FF": 4105, "DSP": 37, "BRAM_18K": 4},
        "available": {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280},
    }


def test_parse_vivado_hls_2019_report_with_dsp48e(tmp_path):
    report = parse_csynth_report(_write(tmp_path, VIVADO_2019))
    assert report["tool_version"] == "2019.2"
    assert report["part"] == "xc7z020clg400-1" and report["top"] == "myproject_axi"
    assert report["target_clock_ns"] == 5.0 and report["estimated_clock_ns"] == 4.376
    assert (report["latency_best_cycles"], report["latency_cycles"], report["ii_cycles"]) == (27, 31, 32)
    assert report["resources"] == {"LUT": 4420, "FF": 2311, "DSP": 12, "BRAM_18K": 2}
    assert report["available"] == {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280}
    json.dumps(report)  # storable as JSON


def test_truncated_report_names_the_file(tmp_path):
    path = _write(tmp_path, VITIS_2023[: len(VITIS_2023) // 2], name="truncated.xml")
    with pytest.raises(DataError, match="truncated.xml"):
        parse_csynth_report(path)


@pytest.mark.parametrize("tag, what", [
    ("<EstimatedClockPeriod>6.912</EstimatedClockPeriod>", "EstimatedClockPeriod"),
    ("<Worst-caseLatency>11</Worst-caseLatency>", "Worst-caseLatency"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>", "TargetClockPeriod"),
    ("<Version>2023.2</Version>", "Version"),
])
def test_report_missing_a_field_names_file_and_field(tmp_path, tag, what):
    assert tag in VITIS_2023
    path = _write(tmp_path, VITIS_2023.replace(tag, ""), name="partial.xml")
    with pytest.raises(DataError) as err:
        parse_csynth_report(path)
    assert "partial.xml" in str(err.value) and what in str(err.value)


def test_report_without_resources_names_the_section(tmp_path):
    start, end = VITIS_2023.index("<AvailableResources>"), VITIS_2023.index("</AvailableResources>")
    text = VITIS_2023[:start] + VITIS_2023[end + len("</AvailableResources>"):]
    with pytest.raises(DataError, match="AvailableResources"):
        parse_csynth_report(_write(tmp_path, text))


def test_missing_report_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nothere.xml"):
        parse_csynth_report(tmp_path / "nothere.xml")


# ------------------------------------------------------------------------------------ projects
keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")


@pytest.fixture
def project(tmp_path):
    from fastml_lab.hls import export

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="fc1"),
                              keras.layers.Dense(2, name="fc2")])
    return export(model, tmp_path / "prj", precision="ap_fixed<12,4>")


def test_recorded_report_replaces_the_timing_estimate(project, tmp_path):
    from fastml_lab.hls import Project

    before = dict(project.meta)
    assert before["timing"]["source"] == "estimate"
    report = parse_csynth_report(_write(tmp_path, VIVADO_2019))
    project.record_synthesis(report)
    expected_timing = {"latency_cycles": 31, "ii_cycles": 32, "clock_mhz": 200.0, "source": "synthesis report"}
    assert project.meta["timing"] == expected_timing
    assert project.meta["synthesis"] == report
    again = Project.open(project.path)          # written to disk, not only in memory
    assert again.meta["timing"] == expected_timing and again.meta["synthesis"] == report
    for key in ("firmware_digest", "plan", "part", "backend", "reuse_factor"):
        assert again.meta[key] == before[key]
    assert sorted(p.name for p in project.path.iterdir() if p.name.startswith(".")) == []


def test_find_tool_looks_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_tool("vitis") is None and find_tool("pynq-z2") is None
    for name in ("vitis_hls", "vivado_hls"):
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    assert find_tool("vitis") == "vitis_hls"
    assert find_tool("pynq-z2") == "vivado_hls"
    (bin_dir / "vitis-run").write_text("#!/bin/sh\n")
    (bin_dir / "vitis-run").chmod(0o755)
    assert find_tool("vitis") == "vitis-run"     # the newer tool is preferred


def test_synthesize_without_tools_raises_toolchain_error(project, tmp_path, monkeypatch):
    from fastml_lab.hls.synth import synthesize

    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolchainNotFoundError) as err:
        synthesize(project.path)
    assert "vitis_hls" in str(err.value) and str(project.hls_dir) in str(err.value)


def test_cli_synth_without_tools_prints_one_line_and_exits_2(project, tmp_path):
    cli = Path(sys.executable).with_name("fastml-lab")
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env["PATH"] = str(empty)
    proc = subprocess.run([str(cli), "synth", str(project.path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "no synthesis tool" in lines[0].lower() and lines[0].startswith("fastml-lab synth: error:")
    assert "Traceback" not in proc.stderr
    assert json.loads((project.path / "project.json").read_text())["timing"]["source"] == "estimate"


def test_a_report_for_another_part_is_refused_and_nothing_changes(project, tmp_path):
    before = (project.path / "project.json").read_bytes()
    other = _write(tmp_path, VITIS_2023.replace("<Part>xc7z020-clg400-1</Part>", "<Part>xczu9eg-ffvb1156-2-e</Part>"))
    with pytest.raises(ConfigError) as err:
        record_report(project.path, other)
    message = str(err.value)
    assert "xczu9eg-ffvb1156-2-e" in message and "xc7z020clg400-1" in message and str(other) in message
    assert (project.path / "project.json").read_bytes() == before


def test_a_report_without_latency_is_refused(project, tmp_path):
    path = _write(tmp_path, VITIS_2023.replace("<Worst-caseLatency>11</Worst-caseLatency>",
                                               "<Worst-caseLatency>undef</Worst-caseLatency>"))
    with pytest.raises(DataError, match="latency_cycles"):
        record_report(project, path)
    assert project.timing["source"] == "estimate"


def test_recording_a_report_leaves_the_firmware_and_its_digest_alone(project, tmp_path):
    from fastml_lab.hls import Project

    files = {name: (project.path / name).read_bytes() for name in ("firmware.json", "firmware.npz")}
    digest = project.firmware().digest()
    assert "timing" not in json.loads(files["firmware.json"])   # timing is not firmware
    record_report(project.path, _write(tmp_path, VIVADO_2019))
    again = Project.open(project.path)
    assert again.timing["source"] == "synthesis report"
    assert {name: (project.path / name).read_bytes() for name in files} == files
    assert again.firmware().digest() == digest == again.meta["firmware_digest"]


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fastml_lab.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_report_recorded_by_the_cli_travels_into_the_package_and_its_profile(overlay_project, tmp_path):
    """synth --report -> package -> run --profile: the manifest and the profile carry the report's timing."""
    import shutil

    prj = tmp_path / "prj"
    shutil.copytree(overlay_project, prj)
    before = _cli("package", prj, "--name", "before", "--out", tmp_path / "before")
    assert before.returncode == 0, before.stderr
    estimate = json.loads((tmp_path / "before" / "manifest.json").read_text())["timing"]
    assert estimate["source"] == "estimate" and (estimate["latency_cycles"], estimate["ii_cycles"]) != (11, 2)

    done = _cli("synth", prj, "--report", _write(tmp_path, VITIS_2023))
    assert done.returncode == 0, done.stderr
    assert "latency 11 cycles, II 2" in done.stdout
    assert json.loads((prj / "project.json").read_text())["timing"]["source"] == "synthesis report"

    after = _cli("package", prj, "--name", "after", "--out", tmp_path / "after")
    assert after.returncode == 0, after.stderr
    manifest = json.loads((tmp_path / "after" / "manifest.json").read_text())
    assert manifest["timing"] == {"latency_cycles": 11, "ii_cycles": 2, "clock_mhz": 100.0,
                                  "source": "synthesis report"}
    first = json.loads((tmp_path / "before" / "manifest.json").read_text())
    assert manifest["firmware"] == first["firmware"]          # same firmware, same digest

    np.save(tmp_path / "X.npy", np.random.default_rng(0).normal(size=(40, 16)))
    run = _cli("run", tmp_path / "after", "--input", tmp_path / "X.npy", "--output", tmp_path / "Y.npy",
               "--backend", "software", "--profile")
    assert run.returncode == 0, run.stderr
    modelled = json.loads(run.stdout)["modelled"]
    assert modelled["source"] == "synthesis report"
    assert modelled["latency_us"] == pytest.approx(11 / 100.0)
    assert modelled["cycles_per_event"] == 16                   # II 2, but 16 input words per event


def test_cli_synth_report_for_another_part_exits_2_in_one_line(overlay_project, tmp_path):
    import shutil

    prj = tmp_path / "prj"
    shutil.copytree(overlay_project, prj)
    other = _write(tmp_path, VITIS_2023.replace("xc7z020-clg400-1", "xczu9eg-ffvb1156-2-e"))
    done = _cli("synth", prj, "--report", other)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "xczu9eg-ffvb1156-2-e" in done.stderr and "xc7z020clg400-1" in done.stderr
    assert json.loads((prj / "project.json").read_text())["timing"]["source"] == "estimate"
