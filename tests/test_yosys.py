"""`fastml-lab synth PRJ --tool yosys`: the open technology mapping of a project's RTL (fastml_lab.rtl.yosys).

The designs are real generated RTL: da4ml's Verilog of a 6-8-4 HGQ2 network (yosys maps it in about
10 s on two cores) and conifer's VHDL of a 3-tree BDT (GHDL, then yosys: about 5 s). The project
folders around them are written here, as the RTL exporters write them, so these tests do not depend
on the exporters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.estimate import TECHNOLOGY_MAPPING, estimate
from fastml_lab.exceptions import CompileError, ConfigError, DataError, ToolchainNotFoundError
from fastml_lab.project import Project
from fastml_lab.rtl import yosys
from fastml_lab.rtl.yosys import count_resources, map_project, parse_stat_json, project_rtl

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None,
                                 reason="yosys is not installed (apt-get install yosys)")
needs_ghdl = pytest.mark.skipif(shutil.which("ghdl") is None or shutil.which("yosys") is None,
                                reason="ghdl and yosys are needed (apt-get install ghdl yosys)")
CLI = Path(sys.executable).with_name("fastml-lab")
PART = "xc7z020clg400-1"


def write_record(folder: Path, hls_dir: str, rtl: dict | None, **extra) -> Project:
    meta = {"name": folder.name, "backend": "rtl", "family": "nn", "board": "pynq-z2", "part": PART,
            "clock_period_ns": 10.0, "hls_dir": hls_dir, **extra}
    if rtl is not None:
        meta["rtl"] = rtl
    folder.mkdir(parents=True, exist_ok=True)
    return Project.write_new(folder, meta)


def run_cli(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


# ------------------------------------------------------------------ designs
def da4ml_verilog(out: Path, table: bool = False) -> Path:
    """da4ml's Verilog of a small HGQ2 network (6-8-4; ``table``: a sigmoid lookup table between
    the layers) written to ``out``; returns ``out``."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("hgq")
    pytest.importorskip("da4ml")
    from da4ml.codegen import RTLModel
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace
    from hgq.layers import QDense, QUnaryFunctionLUT

    keras.utils.set_random_seed(4)
    layers = ([QDense(8), QUnaryFunctionLUT(keras.ops.sigmoid)] if table else [QDense(8, activation="relu")])
    model = keras.Sequential([keras.Input((6,)), *layers, QDense(4)])
    model(np.random.default_rng(0).normal(size=(64, 6)).astype("float32"), training=True)
    inp, outp = trace_model(model)
    RTLModel(comb_trace(inp, outp), "fastml_top", out, flavor="verilog", latency_cutoff=5, part_name=PART,
             clock_period=10).write()
    return out


def da4ml_rtl_entry(rtl_dir: Path) -> dict:
    """The record's 'rtl' entry as the RTL export writes it: the static helpers except
    lookup_table.v, the stages, the top."""
    src = rtl_dir / "src"
    static = sorted(f"src/static/{p.name}" for p in (src / "static").glob("*.v") if p.name != "lookup_table.v")
    stages = sorted(f"src/{p.name}" for p in src.glob("fastml_top_stage*.v"))
    return {"language": "verilog", "top": "fastml_top", "sources": [*static, *stages, "src/fastml_top.v"],
            "include_dirs": ["src", "src/static"]}


@pytest.fixture(scope="module")
def da4ml_project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yosys") / "net"
    da4ml_verilog(folder / "rtl")
    return write_record(folder, "rtl", da4ml_rtl_entry(folder / "rtl"),
                        timing={"latency_cycles": 3, "ii_cycles": 1, "clock_mhz": 100.0, "source": "RTL pipeline"})


@pytest.fixture(scope="module")
def mapped(da4ml_project):
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (apt-get install yosys)")
    return map_project(da4ml_project)


@pytest.fixture
def fresh_project(da4ml_project, tmp_path):
    """A copy of the da4ml project that a test may record into."""
    shutil.copytree(da4ml_project.path, tmp_path / "net")
    return Project.open(tmp_path / "net")


def _converter_class():
    """conifer's FixedPointConverter without its g++/pybind11 build (which also leaves a folder in the
    current directory): fastml_lab's FixedType converts alike."""
    from conifer.utils.fixed_point import FixedPointConverter

    from fastml_lab.fixed import FixedType

    class Converter(FixedPointConverter):
        def __init__(self, type_string):
            self._parse(type_string)
            self.type = FixedType.parse(type_string)

        def to_int(self, x):
            return int(self.type.to_raw(np.array([x]))[0])

        def from_int(self, x):
            return float(self.type.from_raw(np.array([x]))[0])

    return Converter


@pytest.fixture(scope="module")
def vhdl_project(tmp_path_factory):
    conifer = pytest.importorskip("conifer")
    xgb = pytest.importorskip("xgboost")
    from conifer.backends.vhdl import writer

    folder = tmp_path_factory.mktemp("yosys") / "bdt"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=3, n_jobs=1).fit(X, y)
    cfg = conifer.backends.vhdl.auto_config()
    cfg.update(OutputDir=str(folder / "vhdl"), Precision="ap_fixed<16,6>", XilinxPart=PART)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer, "FixedPointConverter", _converter_class())
        model = conifer.converters.convert_from_xgboost(clf.get_booster(), cfg)
        model.write()
    design = ["Constants", "Split", "Types", "Tree", "AddReduce", "Arrays0", "BDT", "BDTTop"]
    return write_record(folder, "vhdl", {"language": "vhdl", "top": "BDTTop", "library": "BDT",
                                         "sources": [f"firmware/{name}.vhd" for name in design]},
                        backend="vhdl", family="bdt")


# ------------------------------------------------------------------ mapping real designs
@needs_yosys
def test_maps_da4ml_verilog(mapped, da4ml_project):
    meta = json.loads((da4ml_project.hls_dir / "metadata.json").read_text())
    res, cells = mapped["resources"], mapped["cells"]
    assert mapped["source"] == TECHNOLOGY_MAPPING == "yosys technology mapping, before place and route"
    assert mapped["tool_version"].startswith("Yosys ")
    assert (mapped["part"], mapped["top"], mapped["language"]) == (PART, "fastml_top", "verilog")
    assert mapped["flow"] == "synth_xilinx -family xc7 -abc9 -noiopad -flatten"
    assert mapped["rtl"]["sources"] == da4ml_project.rtl["sources"]  # nothing added: no tables
    # da4ml builds adders from LUTs and carry chains, registers between stages, and no DSP or BRAM.
    assert res["LUT"] == sum(cells.get(k, 0) for k in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"))
    assert res["FF"] == cells["FDRE"] + cells.get("FDSE", 0)
    assert res["CARRY4"] == cells["CARRY4"] > 0
    assert res["DSP"] == res["BRAM_18K"] == 0
    # da4ml's own estimate is within tens of percent (yosys drops constant register bits).
    assert 0.5 * meta["cost"] < res["LUT"] < 2.0 * meta["cost"]
    assert 0.7 * meta["reg_bits"] <= res["FF"] <= meta["reg_bits"]
    assert 0 < mapped["seconds"] < 120


@needs_ghdl
def test_cli_maps_vhdl_through_ghdl_records_and_estimate_shows_it(vhdl_project, tmp_path):
    """conifer's VHDL through GHDL and yosys, as a user runs it, for another 7-series part than the project's."""
    prj = tmp_path / "bdt"
    shutil.copytree(vhdl_project.path, prj)
    proc = run_cli("synth", prj, "--tool", "yosys", "--part", "xc7a35tcpg236-1")
    assert proc.returncode == 0, proc.stderr
    assert "yosys technology mapping, before place and route" in proc.stdout
    for word in ("LUT", "FF", "CARRY4", "DSP", "BRAM_18K", "xc7a35tcpg236-1"):
        assert word in proc.stdout
    record = Project.open(prj)
    mapped, res = record.mapping, record.mapping["resources"]
    assert mapped["part"] == "xc7a35tcpg236-1" and record.part == PART  # the part mapped, not the project's
    assert mapped["language"] == "vhdl" and mapped["top"] == "BDTTop"
    assert mapped["ghdl_version"].startswith("GHDL")
    assert res["LUT"] > 0 and res["FF"] > 0 and res["DSP"] == 0
    # conifer's constant delays become shift registers: counted inside LUT and on their own
    assert res["LUT"] == res["LUT_logic"] + res.get("SRL", 0) + res.get("LUTRAM", 0)
    proc = run_cli("estimate", prj, "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["kind"] == TECHNOLOGY_MAPPING
    assert shown["technology_mapping"] == mapped
    assert shown["totals"]["lut"] == res["LUT"] and shown["totals"]["ff"] == res["FF"]
    assert "routing is not included" in shown["verdict"]


# ------------------------------------------------------------------ recording and the estimate
@needs_yosys
def test_record_mapping_and_estimate_shows_it(mapped, fresh_project):
    timing = fresh_project.timing
    fresh_project.record_mapping(mapped)
    again = Project.open(fresh_project.path)
    assert again.mapping == mapped
    assert again.timing == timing  # a mapping has no timing
    result = estimate(fresh_project.path)
    res = mapped["resources"]
    assert result.kind == TECHNOLOGY_MAPPING
    assert (result.resources["lut"], result.resources["ff"], result.resources["dsp"],
            result.resources["bram_18k"]) == (res["LUT"], res["FF"], res["DSP"], res["BRAM_18K"])
    assert result.implementation is None  # no place-and-route factors on a mapping
    assert (result.latency_cycles, result.ii_cycles) == (3, 1)
    record = result.to_dict()
    assert record["technology_mapping"] == mapped
    assert record["totals"]["kind"] == TECHNOLOGY_MAPPING
    assert record["after_implementation"] is None
    assert record["compared"]["lut"] == res["LUT"]
    assert "routing is not included" in record["verdict"] and record["fits"] is True
    table = result.table()
    assert TECHNOLOGY_MAPPING in table and "routing is not included" in table
    assert "(RTL pipeline)" in table  # the latency's own source, not the mapping's


def test_record_mapping_refuses_a_dict_without_resources(tmp_path):
    project = write_record(tmp_path / "p", "rtl", None)
    with pytest.raises(DataError, match="resources"):
        project.record_mapping({"cells": {"LUT2": 3}})
    assert "mapping" not in json.loads((tmp_path / "p" / "project.json").read_text())


@pytest.mark.needs_tf
def test_estimate_of_an_hls_project_shows_its_mapping(overlay_project, tmp_path):
    """A project the cost model prices: the mapping's resources replace the totals, the layer rows stay."""
    prj = tmp_path / "hls"
    shutil.copytree(overlay_project, prj)
    project = Project.open(prj)
    before = estimate(project)
    mapping = {"source": TECHNOLOGY_MAPPING, "part": project.part, "top": "myproject_axi",
               "cells": {"LUT2": 900, "FDRE": 700, "CARRY4": 50, "DSP48E1": 12, "RAMB18E1": 1},
               "resources": count_resources({"LUT2": 900, "FDRE": 700, "CARRY4": 50, "DSP48E1": 12, "RAMB18E1": 1})}
    project.record_mapping(mapping)
    after = estimate(prj)
    assert after.kind == TECHNOLOGY_MAPPING
    assert after.resources == {"dsp": 12, "lut": 900, "ff": 700, "bram_18k": 1}
    assert after.latency_cycles == before.latency_cycles and after.latency_kind == before.kind
    assert len(after.layers) == len(before.layers)
    assert after.implementation is None and "routing is not included" in after.verdict()
    # a what-if changes the design: the mapping no longer describes it
    assert estimate(prj, reuse_factor=2).kind != TECHNOLOGY_MAPPING


# ------------------------------------------------------------------ refusals
def test_refuses_a_part_that_is_not_7_series(fresh_project):
    with pytest.raises(ConfigError, match="xcu250-figd2104-2L-e is not a 7-series part") as info:
        map_project(fresh_project, part="xcu250-figd2104-2L-e")
    assert "xc7" in str(info.value)
    ultra = write_record(fresh_project.path.parent / "zu", "rtl", fresh_project.rtl, part="xczu9eg-ffvb1156-2-e")
    with pytest.raises(ConfigError, match="xczu9eg-ffvb1156-2-e"):
        map_project(ultra)
    proc = run_cli("synth", fresh_project.path, "--tool", "yosys", "--part", "xcvu9p-flga2104-2L-e")
    assert proc.returncode == 2 and "7-series" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_options_that_do_not_go_together(tmp_path):
    project = write_record(tmp_path / "p", "rtl", None)
    proc = run_cli("synth", project.path, "--part", "xc7a35tcpg236-1")
    assert proc.returncode == 2 and "--part goes with --tool yosys" in proc.stderr
    proc = run_cli("synth", project.path, "--tool", "yosys", "--report", tmp_path / "csynth.xml")
    assert proc.returncode == 2 and "--report" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("synth", project.path, "--tool", "yosys")
    assert proc.returncode == 2 and "has no RTL yet" in proc.stderr


def test_project_without_rtl_is_refused_clearly(tmp_path):
    project = write_record(tmp_path / "p", "hls4ml", None, backend="vitis")
    with pytest.raises(DataError, match="has no RTL yet") as info:
        map_project(project)
    for hint in ("--backend rtl", "--backend vhdl", "HLS synthesis"):
        assert hint in str(info.value)


def test_missing_sources_are_named(fresh_project):
    (fresh_project.hls_dir / "src" / "fastml_top_stage0.v").unlink()
    with pytest.raises(DataError, match="fastml_top_stage0.v"):
        map_project(fresh_project)


def test_missing_yosys_says_how_to_install(fresh_project, monkeypatch):
    monkeypatch.setattr(yosys.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainNotFoundError, match="apt-get install yosys"):
        map_project(fresh_project)


@needs_yosys
def test_missing_ghdl_says_how_to_install(vhdl_project, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(yosys.shutil, "which", lambda name: None if name == "ghdl" else real(name))
    with pytest.raises(ToolchainNotFoundError, match="apt-get install ghdl"):
        map_project(vhdl_project)


@needs_yosys
def test_a_design_yosys_fails_on_shows_the_log(tmp_path):
    rtl = tmp_path / "p" / "rtl"
    rtl.mkdir(parents=True)
    (rtl / "top.v").write_text("module top(input clk, output reg q);\n  always @(posedge clk) q <= ;\nendmodule\n")
    project = write_record(tmp_path / "p", "rtl", {"language": "verilog", "top": "top", "sources": ["top.v"]})
    with pytest.raises(CompileError, match="yosys .* failed") as info:
        map_project(project)
    assert "ERROR" in str(info.value) and "top.v" in str(info.value)


@needs_yosys
def test_timeout_stops_the_tool(fresh_project):
    with pytest.raises(CompileError, match="time limit"):
        map_project(fresh_project, timeout_s=0.5)


# ------------------------------------------------------------------ HLS Verilog
def test_finds_the_verilog_of_an_hls_project(da4ml_project, tmp_path):
    """An HLS project without an 'rtl' entry: the Verilog the tool wrote, the top from csynth.xml
    or, without one, the module no other instantiates."""
    prj = tmp_path / "hls"
    syn = prj / "hls4ml" / "myproject_prj" / "solution1" / "syn"
    (syn / "verilog").mkdir(parents=True)
    src = da4ml_project.hls_dir / "src"
    for path in [*src.glob("fastml_top*.v"), src / "static" / "shift_adder.v"]:
        shutil.copy(path, syn / "verilog" / path.name)
    project = write_record(prj, "hls4ml", None, backend="vitis")
    found = project_rtl(project)
    assert found["top"] == "fastml_top_wrapper"  # nothing instantiates the wrapper
    assert found["language"] == "verilog" and len(found["sources"]) == 6
    assert "syn/verilog" in found["origin"]
    (syn / "report").mkdir()
    (syn / "report" / "csynth.xml").write_text(
        "<profile><UserAssignments><TopModelName>fastml_top</TopModelName></UserAssignments></profile>")
    assert project_rtl(project)["top"] == "fastml_top"


# ------------------------------------------------------------------ reading yosys' statistics
_STAT = {
    "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
    "invocation": "stat -json ",
    "modules": {"\\top": {"num_cells": 9, "num_cells_by_type": {"LUT2": 3}}},
    "design": {"num_cells": 9, "num_cells_by_type": {
        "BUFG": 1, "CARRY4": 4, "FDRE": 10, "FDSE": 2, "FDCE_1": 1, "LDCE": 1, "INV": 2, "LUT1": 1, "LUT6": 5,
        "MUXF7": 2, "MUXF8": 1, "SRLC32E": 3, "RAM64M": 2, "DSP48E1": 2, "RAMB18E1": 1, "RAMB36E1": 2}},
}


def test_parse_stat_json_and_count(tmp_path):
    path = tmp_path / "stat.json"
    path.write_text(json.dumps(_STAT, indent=3))
    stat = parse_stat_json(path, "top")
    assert stat["creator"].startswith("Yosys 0.23")
    assert stat["cells"] == dict(sorted(_STAT["design"]["num_cells_by_type"].items()))
    res = count_resources(stat["cells"])
    # LUT: 1 LUT1 + 5 LUT6 + 2 INV (one LUT1 each in Vivado) + 3 SRL + 2 RAM64M x 4 LUTs
    assert res == {"LUT": 19, "LUT_logic": 8, "SRL": 3, "LUTRAM": 8, "FF": 14, "CARRY4": 4, "MUXF7": 2,
                   "MUXF8": 1, "DSP": 2, "BRAM_18K": 5}
    assert "SRL" not in count_resources({"LUT2": 1})


def test_parse_stat_json_without_a_design_total(tmp_path):
    path = tmp_path / "stat.json"
    path.write_text(json.dumps({"creator": "Yosys 0.23", "modules": _STAT["modules"]}))
    assert parse_stat_json(path, "top")["cells"] == {"LUT2": 3}


def test_hierarchical_stat_text_is_refused_clearly(tmp_path):
    path = tmp_path / "stat.json"  # yosys 0.23 writes a hierarchy's module tree as text into the JSON
    path.write_text('{\n "modules": {},\n     top    1\n       sub   2\n "design": {}\n}\n')
    with pytest.raises(DataError, match="-flatten"):
        parse_stat_json(path)


def test_generic_cells_mean_an_incomplete_mapping():
    with pytest.raises(DataError, match=r"\$mul"):
        count_resources({"LUT2": 4, "$mul": 1})


# ------------------------------------------------------------------ a design with lookup tables
@needs_yosys
@pytest.mark.slow
def test_maps_a_design_with_lookup_tables(tmp_path):
    """da4ml's tables: lookup_table.v (unlisted, as the export writes the record) is found, its
    $readmemh finds memfiles/*.mem, and the ROMs become LUT logic (about 17 s)."""
    rtl = da4ml_verilog(tmp_path / "p" / "rtl", table=True)
    assert list((rtl / "src" / "memfiles").glob("*.mem"))
    project = write_record(tmp_path / "p", "rtl", da4ml_rtl_entry(rtl))
    mapped = map_project(project)
    assert "src/static/lookup_table.v" in mapped["rtl"]["sources"]
    assert mapped["resources"]["LUT"] > 0 and mapped["resources"]["BRAM_18K"] == 0
