"""The board table (fastml_lab.boards) is the one source of board facts: export's targets, the CLI's
choices, the manifest's boards and stream word, the fit estimate's budget and the driver's DMA all
read it, and the second board (ZCU102) works through export, C simulation, package and run."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.boards import BOARDS, DEFAULT_BOARD, PART_BACKEND, export_backends, get_board, same_part
from fastml_lab.exceptions import ConfigError
from fastml_lab.overlay import manifest as mf


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fastml_lab.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kwargs)


# ------------------------------------------------------------------------------ numpy-only readers
def test_export_targets_are_the_bare_part_backend_and_every_board():
    targets = export_backends()
    assert list(targets) == [PART_BACKEND, *BOARDS]
    for name, board in BOARDS.items():
        assert targets[name] == (board.hls_backend, board.hls_board)
    pytest.importorskip("hls4ml")
    from fastml_lab.hls import BACKENDS

    assert BACKENDS == targets


def test_the_cli_offers_every_board_as_an_export_backend():
    from fastml_lab.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["export", "m.keras", "--out", "p", "--backend", "zcu102"])
    assert args.backend == "zcu102" and args.clock_period is None
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "m.keras", "--out", "p", "--backend", "zcu999"])
    shown = cli("export", "--help")
    assert shown.returncode == 0 and all(name in shown.stdout for name in export_backends())


def test_manifests_accept_every_board_of_the_table_and_no_other():
    for name, board in BOARDS.items():
        io = {"interface": board.interface, "n_inputs": 2, "n_outputs": 1, "word_dtype": board.word_dtype,
              "input_type": "ap_fixed<8,3>", "output_type": "ap_fixed<8,3>"}
        manifest = {"schema_version": 1, "name": "x", "version": "1", "fastml_lab_version": "0",
                    "board": name, "io": io, "firmware": {"files": []}}
        assert mf.validate(manifest)["board"] == name
        with pytest.raises(ConfigError, match="float64"):
            mf.validate(dict(manifest, io=dict(io, word_dtype="float64")))
    with pytest.raises(ConfigError, match="Unknown board 'zcu999'.*pynq-z2, zcu102"):
        mf.validate(dict(manifest, board="zcu999"))


def test_the_fit_budget_is_the_board_table():
    from fastml_lab.quantize.fit import PYNQ_Z2, Budget, estimate
    from fastml_lab.quantize.operands import DenseOperands, Operands

    for name, board in BOARDS.items():
        budget = Budget.of(name)
        assert (budget.board, budget.part, budget.dsp, budget.lut) == (
            board.title, board.part, board.resources.dsp, board.resources.lut)
    assert PYNQ_Z2 == Budget.of(DEFAULT_BOARD)
    # 400 products of two 12-bit operands: 400 DSPs, more than the Z2's 220, fewer than the ZCU102's 2,520
    ops = Operands([DenseOperands("a", np.full((20, 20), 1023 / 1024), np.full(20, 12))], "hand-made")
    z2, zcu = estimate(ops, budget=Budget.of("pynq-z2")), estimate(ops, budget=Budget.of("zcu102"))
    assert z2.dsp == zcu.dsp == 400 and not z2.fits and zcu.fits
    assert "ZCU102 (xczu9eg-ffvb1156-2-e)" in zcu.summary() and "/ 2,520" in zcu.summary()


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_the_driver_finds_the_dma_by_the_type_the_table_gives(name):
    from types import SimpleNamespace

    from fastml_lab.exceptions import BoardError
    from fastml_lab.overlay.driver import find_ip

    dma = SimpleNamespace(sendchannel=object(), recvchannel=object())
    vlnv = get_board(name).dma_vlnv + "7.1"
    overlay = SimpleNamespace(ip_dict={"axi_dma_0": {"type": vlnv, "fullpath": "axi_dma_0"},
                                       "myproject_axi_0": {"type": "xilinx.com:hls:myproject_axi:1.0"}},
                              axi_dma_0=dma)
    found, driver, entry = find_ip(overlay, get_board(name).dma_vlnv, "AXI DMA",
                                   ("sendchannel", "recvchannel"))
    assert (found, driver, entry["type"]) == ("axi_dma_0", dma, vlnv)
    overlay.ip_dict["axi_dma_0"]["type"] = "example.org:ip:other_dma:1.0"
    with pytest.raises(BoardError, match=get_board(name).dma_vlnv):
        find_ip(overlay, get_board(name).dma_vlnv, "AXI DMA", ("sendchannel", "recvchannel"))


def test_parts_compare_with_or_without_dashes():
    assert same_part("xc7z020-clg400-1", "XC7Z020CLG400-1") and not same_part("xc7z020clg400-1", "xczu9eg")


# ------------------------------------------------------------------------------ hls4ml agrees
def test_every_board_is_one_hls4ml_writes_with_the_same_part():
    hls4ml = pytest.importorskip("hls4ml")
    supported = Path(hls4ml.__file__).parent / "backends" / "vivado_accelerator" / "supported_boards.json"
    known = json.loads(supported.read_text())
    for board in BOARDS.values():
        assert board.hls_backend == "VivadoAccelerator"
        assert known[board.hls_board]["part"] == board.part, board.name
        assert board.interface in known[board.hls_board]["tcl_scripts"], board.name


# ------------------------------------------------------------------------------ the second board
def second_board(test):
    """Marks of the tests that export and compile for the ZCU102 (one export and one g++ build, shared)."""
    for mark in (pytest.mark.slow, pytest.mark.needs_tf, pytest.mark.needs_gxx):
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def zcu102_project(tmp_path_factory):
    """A 16-8-5 model exported with `fastml-lab export --backend zcu102` and its C simulation run."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("hls4ml")
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(5, activation="softmax", name="out")])
    root = tmp_path_factory.mktemp("zcu102")
    model.save(root / "m.keras")
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 2, (500, 16)), rng.normal(0, 40, (50, 16))]).astype(np.float32)
    np.save(root / "X.npy", X)
    done = cli("export", root / "m.keras", "--out", root / "prj", "--backend", "zcu102",
               "--precision", "ap_fixed<12,4,AP_RND,AP_SAT>")
    assert done.returncode == 0, done.stderr
    csim = cli("csim", root / "prj", "--input", root / "X.npy", "--output", root / "C.npy")
    assert csim.returncode == 0, csim.stderr
    return root


@second_board
def test_zcu102_export_records_the_board_and_writes_its_design(zcu102_project):
    from fastml_lab.project import Project

    project = Project.open(zcu102_project / "prj")
    board = BOARDS["zcu102"]
    assert project.board is board and project.backend == "zcu102"
    assert project.part == board.part and project.clock_mhz == board.clock_mhz
    assert project.meta["interface"] == board.interface
    assert project.timing["source"] == "estimate" and project.timing["clock_mhz"] == board.clock_mhz
    design = (project.hls_dir / "design.tcl").read_text()
    assert "zynq_ultra_ps_e" in design and board.dma_vlnv in design        # the ZCU102's PS and its DMA


@second_board
def test_zcu102_package_and_software_run_equal_the_c_simulation(zcu102_project, tmp_path):
    root = zcu102_project
    done = cli("package", root / "prj", "--name", "jet_zcu", "--out", tmp_path / "jet_zcu")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "jet_zcu" / "manifest.json").read_text())
    board = BOARDS["zcu102"]
    assert manifest["board"] == "zcu102" and manifest["part"] == board.part
    assert manifest["io"]["word_dtype"] == board.word_dtype
    assert f"{board.word_bits}-bit AXI stream" in manifest["io"]["packing"]
    run = cli("run", tmp_path / "jet_zcu", "--input", root / "X.npy", "--output", tmp_path / "R.npy",
              "--backend", "software")
    assert run.returncode == 0, run.stderr
    C, R = np.load(root / "C.npy"), np.load(tmp_path / "R.npy")
    assert C.shape == R.shape == (550, 5)
    differ = np.argwhere(C != R)
    assert differ.size == 0, f"{len(differ)} values differ, first at {differ[:5].tolist()}"


@second_board
def test_zcu102_project_brings_its_budget_to_the_fit_estimate(zcu102_project):
    from fastml_lab.quantize import fit_estimate
    from fastml_lab.quantize.fit import Budget

    prj = zcu102_project / "prj"
    assert fit_estimate(prj).budget == Budget.of("zcu102")
    assert fit_estimate(prj, board="pynq-z2").budget == Budget.of("pynq-z2")
    with pytest.raises(ConfigError, match="budget or a board"):
        fit_estimate(prj, board="zcu102", budget=Budget.of("zcu102"))
    with pytest.raises(ConfigError, match="Unknown board 'zcu999'"):
        fit_estimate(prj, board="zcu999")


@second_board
def test_the_stream_word_comes_from_the_board_entry(zcu102_project, tmp_path, monkeypatch):
    from fastml_lab.overlay import load, package

    wide = dataclasses.replace(BOARDS["zcu102"], word_dtype="float64")
    monkeypatch.setitem(BOARDS, "zcu102", wide)
    out = package(zcu102_project / "prj", name="wide", out=tmp_path / "wide")
    io = json.loads((out / "manifest.json").read_text())["io"]
    assert io["word_dtype"] == "float64" and io["packing"].startswith("float64 words on a 64-bit AXI stream")
    X = np.load(zcu102_project / "X.npy")
    with load(out, backend="software") as ol:
        assert ol.word_dtype == np.float64
        np.testing.assert_array_equal(ol.predict(X), np.load(zcu102_project / "C.npy"))
