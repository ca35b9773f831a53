"""The project record (fastml_lab.project): reading, the facts readers need, recording a synthesis
report atomically, one error for "not a project" in every step, and numpy-free import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fastml_lab.boards import BOARDS
from fastml_lab.exceptions import ConfigError, DataError
from fastml_lab.project import PROJECT_FILE, Project, open_project

REPORT = {"source": "synthesis report", "tool_version": "2020.1", "part": "xc7z020-clg400-1",
          "top": "myproject_axi", "target_clock_ns": 10.0, "estimated_clock_ns": 8.1,
          "latency_cycles": 43, "latency_best_cycles": 41, "ii_cycles": 44,
          "resources": {"LUT": 4321, "FF": 3210, "DSP": 7, "BRAM_18K": 2},
          "available": {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280}}


def write_record(folder, **changes):
    """A hand-written project record for the PYNQ-Z2 (no hls4ml needed)."""
    meta = {"name": folder.name, "backend": "pynq-z2", "board": "pynq-z2", "part": "xc7z020clg400-1",
            "clock_period_ns": 10.0, "reuse_factor": 4, "hls_dir": "hls4ml",
            "timing": {"latency_cycles": 30, "ii_cycles": 30, "clock_mhz": 100.0, "source": "estimate"}}
    meta.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROJECT_FILE).write_text(json.dumps(meta))
    return folder


def test_facts_of_a_board_project(tmp_path):
    project = Project.open(write_record(tmp_path / "prj"))
    assert project.board is BOARDS["pynq-z2"] and project.budget_board is BOARDS["pynq-z2"]
    assert project.backend == "pynq-z2" and project.part == "xc7z020clg400-1"
    assert project.clock_mhz == 100.0 and project.reuse_factor == 4
    assert project.hls_dir == tmp_path / "prj" / "hls4ml"
    assert project.timing == {"latency_cycles": 30, "ii_cycles": 30, "clock_mhz": 100.0, "source": "estimate"}
    assert project.synthesis is None
    project.timing["source"] = "changed"        # a copy: the record is changed only by recording
    assert project.timing["source"] == "estimate"
    assert open_project(project) is project and open_project(project.path).meta == project.meta


def test_a_bare_part_project_has_no_board_but_is_measured_against_the_board_with_its_part(tmp_path):
    bare = Project.open(write_record(tmp_path / "a", backend="vitis", board=None, part="xczu9eg-ffvb1156-2-e"))
    assert bare.board is None and bare.budget_board is BOARDS["zcu102"]
    other = Project.open(write_record(tmp_path / "b", backend="vitis", board=None, part="xcku115-flvb2104-2-e"))
    assert other.board is None and other.budget_board is None


def test_a_record_naming_an_unknown_board_says_which_boards_exist(tmp_path):
    project = Project.open(write_record(tmp_path / "prj", board="zcu999"))
    with pytest.raises(ConfigError, match="zcu999.*pynq-z2, zcu102"):
        project.board


@pytest.mark.parametrize("content, words", [
    (None, "project.json is missing"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "holds no project record"),
    ('{"name": "x"}', "holds no project record"),
])
def test_not_a_project_is_a_data_error_naming_the_folder(tmp_path, content, words):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    if content is not None:
        (folder / PROJECT_FILE).write_text(content)
    with pytest.raises(DataError) as err:
        Project.open(folder)
    assert str(folder) in str(err.value) and words in str(err.value)


def test_every_step_refuses_a_folder_that_is_not_a_project_with_the_same_error(tmp_path):
    from fastml_lab.hls.csim import compile_csim
    from fastml_lab.hls.synth import record_report
    from fastml_lab.overlay import package

    folder = tmp_path / "empty"
    folder.mkdir()
    messages = set()
    for step in (lambda: package(folder, name="x", out=tmp_path / "pkg"),
                 lambda: compile_csim(folder),
                 lambda: record_report(folder, tmp_path / "csynth.xml")):
        with pytest.raises(DataError) as err:
            step()
        messages.add(str(err.value))
    assert messages == {f"{folder} is not an exported project: project.json is missing. "
                        "Create one with `fastml-lab export MODEL.keras --out PRJ`."}
    assert not (tmp_path / "pkg").exists()


def test_recording_a_report_replaces_the_estimate_on_disk(tmp_path):
    project = Project.open(write_record(tmp_path / "prj", extra="kept"))
    timing = project.record_synthesis(REPORT)
    expected = {"latency_cycles": 43, "ii_cycles": 44, "clock_mhz": 100.0, "source": "synthesis report"}
    assert timing == expected and project.timing == expected
    again = Project.open(project.path)
    assert again.timing == expected and again.synthesis == REPORT and again.meta["extra"] == "kept"
    assert sorted(p.name for p in project.path.iterdir()) == [PROJECT_FILE]   # no temporary file left


def test_a_report_without_a_clock_keeps_the_project_clock(tmp_path):
    project = Project.open(write_record(tmp_path / "prj", clock_period_ns=5.0,
                                        timing={"latency_cycles": 1, "ii_cycles": 1, "clock_mhz": 200.0,
                                                "source": "estimate"}))
    assert project.record_synthesis(dict(REPORT, target_clock_ns=None))["clock_mhz"] == 200.0


def test_a_report_for_another_part_is_refused_naming_both(tmp_path):
    project = Project.open(write_record(tmp_path / "prj"))
    before = (project.path / PROJECT_FILE).read_text()
    with pytest.raises(ConfigError) as err:
        project.record_synthesis(dict(REPORT, part="xczu9eg-ffvb1156-2-e"), origin="lab/csynth.xml")
    assert all(w in str(err.value) for w in ("xczu9eg-ffvb1156-2-e", "xc7z020clg400-1", "lab/csynth.xml"))
    assert (project.path / PROJECT_FILE).read_text() == before and project.timing["source"] == "estimate"


def test_an_interrupted_record_keeps_the_old_one(tmp_path, monkeypatch):
    project = Project.open(write_record(tmp_path / "prj"))
    before = (project.path / PROJECT_FILE).read_text()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        project.record_synthesis(REPORT)
    monkeypatch.undo()
    assert (project.path / PROJECT_FILE).read_text() == before
    assert sorted(p.name for p in project.path.iterdir()) == [PROJECT_FILE]
    assert Project.open(project.path).timing["source"] == "estimate"


def test_the_record_imports_without_numpy():
    code = ("import sys; import fastml_lab.project, fastml_lab.boards; "
            "print(sorted(m for m in ('numpy', 'keras', 'tensorflow', 'hls4ml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_old_import_paths_give_the_same_class():
    from fastml_lab.hls import Project as from_hls
    from fastml_lab.hls.export import Project as from_export

    assert from_hls is Project and from_export is Project
