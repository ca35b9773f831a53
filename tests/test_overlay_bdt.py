"""BDT overlays: package -> manifest (conifer's accelerator interface) -> software run == the C simulation on
every value, manifests that lie are refused, and the register-driven board driver against a software
conifer accelerator (tests/software_register_ip.py): values, chunking, deadline, lock, buffers."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("conifer")
pytest.importorskip("hls4ml")

from fastml_lab.bdt.export import export_bdt  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.exceptions import BoardError, ConfigError, DataError  # noqa: E402
from fastml_lab.overlay import load, open_package, package  # noqa: E402
from fastml_lab.overlay import manifest as mf  # noqa: E402
from fastml_lab.overlay.board import BoardOverlay  # noqa: E402
from fastml_lab.overlay.package import VERIFIED  # noqa: E402
from fastml_lab.overlay.packaging import CONIFER_REGISTERS  # noqa: E402
from fastml_lab.overlay.register_board import RegisterBoardOverlay  # noqa: E402
from fastml_lab.overlay.software import SoftwareOverlay  # noqa: E402
from fastml_lab.project import Project  # noqa: E402
from software_register_ip import CONIFER_VLNV, make_fake_pynq  # noqa: E402

N_FEATURES = 4
PRECISION = {"input": "ap_fixed<10,4>", "score": "ap_fixed<12,5,AP_RND,AP_SAT>"}


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(5)
    X = rng.normal(scale=1.5, size=(1500, N_FEATURES)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    return train_bdt((X, labels), rounds=6, depth=3, learning_rate=0.5, early_stopping=None,
                     validation_split=0.0)


@pytest.fixture(scope="module")
def project(model, tmp_path_factory):
    """The BDT exported for the PYNQ-Z2 (conifer's Zynq accelerator), with class names."""
    return export_bdt(model, tmp_path_factory.mktemp("bdt") / "bdt_z2", backend="pynq-z2",
                      precision=PRECISION, class_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def firmware(project):
    return project.firmware()


@pytest.fixture(scope="module")
def probes(project, firmware):
    """float32 events: random, every threshold and one input step and half a step either side, grid
    midpoints, the input type's ends and values far beyond its range."""
    layer = firmware._layers[0]
    in_t = firmware.input_type
    lsb = in_t.lsb
    rng = np.random.default_rng(0)
    rows = [rng.normal(scale=2.0, size=(2000, N_FEATURES))]
    split = layer.feature >= 0
    for f in range(N_FEATURES):
        t = layer.threshold[split & (layer.feature == f)]
        values = np.concatenate([t + d for d in (0.0, lsb, -lsb, lsb / 2, -lsb / 2)])
        values = np.concatenate([values, [in_t.min, in_t.max, in_t.min - lsb, in_t.max + lsb, 2 * in_t.max,
                                          -2 * in_t.max, 1e3, -1e3, 3e38, -3e38, 0.0],
                                 (rng.integers(in_t.raw_min, in_t.raw_max, size=100) + 0.5) * lsb])
        base = rng.normal(scale=1.5, size=(len(values), N_FEATURES))
        base[:, f] = values
        rows.append(base)
    X = np.concatenate(rows).astype(np.float32)
    assert (np.abs(X) > in_t.max).any()
    return X


@pytest.fixture(scope="module")
def csim(project, probes):
    from fastml_lab.hls.csim import run_csim

    return run_csim(project, probes.astype(np.float64))


@pytest.fixture(scope="module")
def pkg(project, tmp_path_factory):
    return open_package(package(project, name="bdt_z2", out=tmp_path_factory.mktemp("pkg") / "bdt_z2"))


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    """The project with stand-in Vivado outputs where conifer's ZynqBuilder.package() leaves them, packaged."""
    root = tmp_path_factory.mktemp("built")
    copy_dir = root / "bdt_z2"
    shutil.copytree(project.path, copy_dir, ignore=shutil.ignore_patterns("csim"))
    out = copy_dir / "conifer" / "package"
    out.mkdir()
    (out / "myproject.bit").write_bytes(b"\x00\x09bit bdt")
    (out / "myproject.hwh").write_text("<MODULES>stand-in</MODULES>\n")
    return open_package(package(copy_dir, name="bdt_built", out=root / "bitstreams" / "bdt_built"))


# ---------------------------------------------------------------------------- package and manifest
def test_the_manifest_describes_conifers_accelerator(pkg, project):
    m = pkg.manifest
    assert m["family"] == "bdt" and pkg.family == "bdt" and m["board"] == "pynq-z2"
    io = m["io"]
    assert io["interface"] == "s_axilite_m_axi" and io["word_dtype"] == "float32"
    assert (io["n_inputs"], io["n_outputs"]) == (N_FEATURES, 3)
    assert io["input_type"] == "ap_fixed<10,4>" and io["output_type"] == "ap_fixed<12,5,AP_RND,AP_SAT>"
    assert io["registers"] == {"CTRL": 0x00, "N": 0x10, "n_f": 0x18, "n_c": 0x28, "x": 0x38, "score": 0x40}
    assert io["control_bits"] == {"ap_start": 0, "ap_done": 1, "ap_idle": 2, "ap_ready": 3}
    assert io["address_bits"] == 32 and io["ip"]["vlnv"] == CONIFER_VLNV
    assert m["source"]["n_trees"] == 18 and m["source"]["library"] == "xgboost"
    assert m["timing"] == project.timing and pkg.class_names == ["a", "b", "c"]
    assert pkg.status == "software only"


def test_timing_is_the_projects_when_it_has_one(project, tmp_path):
    copy_dir = tmp_path / "timed"
    shutil.copytree(project.path, copy_dir, ignore=shutil.ignore_patterns("csim"))
    timed = Project.open(copy_dir)
    timed.meta["timing"] = {"latency_cycles": 9, "ii_cycles": 1, "clock_mhz": 100.0, "source": "estimate"}
    timed.save()
    with load(package(timed, name="timed", out=tmp_path / "p"), backend="software") as ol:
        assert ol.package.timing["latency_cycles"] == 9
        modelled = ol.modelled()
        assert modelled["cycles_per_event"] == N_FEATURES and "m_axi" in modelled["bound"]
    timed.meta.pop("timing")
    timed.save()
    assert open_package(package(timed, name="untimed", out=tmp_path / "q")).timing == {}


def test_offsets_come_from_the_projects_hls_run_when_it_has_one(project, tmp_path):
    """An older tool's map (Vivado HLS packs n_c right after n_f) read from the generated x*_hw.h."""
    copy_dir = tmp_path / "synthesized"
    shutil.copytree(project.path, copy_dir, ignore=shutil.ignore_patterns("csim"))
    drivers = copy_dir / "conifer/myproject/solution1/impl/misc/drivers/myproject_accelerator_v1_0/src"
    drivers.mkdir(parents=True)
    defines = {"AP_CTRL": 0x00, "N_DATA": 0x10, "N_F_DATA": 0x18, "N_F_CTRL": 0x1c, "N_C_DATA": 0x20,
               "N_C_CTRL": 0x24, "X_DATA": 0x28, "SCORE_DATA": 0x30}
    text = "".join(f"#define XMYPROJECT_ACCELERATOR_CONTROL_ADDR_{k:<12} {v:#04x}\n" for k, v in defines.items())
    text += "#define XMYPROJECT_ACCELERATOR_CONTROL_BITS_X_DATA     32\n"
    (drivers / "xmyproject_accelerator_hw.h").write_text(text)
    io = open_package(package(copy_dir, name="synth", out=tmp_path / "p")).io
    assert io["registers"] == {"CTRL": 0, "N": 0x10, "n_f": 0x18, "n_c": 0x20, "x": 0x28, "score": 0x30}
    assert "xmyproject_accelerator_hw.h" in io["registers_from"]


def test_a_project_whose_cpp_is_not_conifers_accelerator_is_refused(project, tmp_path):
    copy_dir = tmp_path / "edited"
    shutil.copytree(project.path, copy_dir, ignore=shutil.ignore_patterns("csim"))
    cpp = copy_dir / "conifer/firmware/myproject.cpp"
    cpp.write_text(cpp.read_text().replace("port=score offset=slave", "port=score offset=direct"))
    with pytest.raises(ConfigError, match=r"not conifer's Zynq accelerator.*port=score offset=slave"):
        package(copy_dir, name="edited", out=tmp_path / "p")


def _lie(key, value):
    def edit(m):
        target = m
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_lie("io.registers.score", 0x38), r"io.registers.score \(0x38, 4 bytes\) overlaps io.registers.x"),
    (_lie("io.registers.N", 0x12), "io.registers.N must be a word-aligned byte offset"),
    (_lie("io.registers.x", 0x08), r"io.registers.x = 0x8 lies in the control block"),
    (_lie("io.registers.CTRL", 0x04), "io.registers.CTRL must be 0"),
    (_lie("io.registers.n_c", KeyError), "io.registers must give the offsets of exactly"),
    (_lie("io.registers.N", "0x10"), "io.registers.N must be a word-aligned"),
    (_lie("io.address_bits", 48), "io.address_bits must be 32 or 64"),
    (lambda m: m["io"].update(address_bits=64, registers=dict(m["io"]["registers"], score=0x3c)),
     r"io.registers.score \(0x3c, 8 bytes\) overlaps io.registers.x"),
    (_lie("io.word_dtype", "float64"), "conifer accelerator exchanges float32 words"),
    (_lie("io.control_bits.ap_done", 0), "distinct bit positions"),
    (_lie("io.control_bits.ap_idle", KeyError), "io.control_bits must give"),
    (_lie("io.ip", {"name": "conifer_myproject"}), "io.ip must give the accelerator's 'vlnv'"),
    (_lie("io.interface", "axi_stream"), "A bdt package on a board uses the 's_axilite_m_axi' interface"),
    (_lie("io.interface", "parallel"), "needs the 's_axilite_m_axi' interface"),
    (_lie("family", "nn"), "A nn package on a board uses the 'axi_stream' interface"),
    (_lie("family", "svm"), "family must be one of nn, bdt"),
    (_lie("board", None), "needs a board"),
])
def test_manifests_that_lie_are_refused(pkg, edit, message):
    manifest = copy.deepcopy(pkg.manifest)
    edit(manifest)
    with pytest.raises(ConfigError, match=message):
        mf.validate(manifest)


def test_a_lying_manifest_on_disk_is_refused_when_opened(pkg, tmp_path):
    dest = tmp_path / "liar"
    shutil.copytree(pkg.path, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["io"]["registers"]["x"] = 0x40  # on top of score
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="overlaps"):
        load(dest, backend="software")


def test_a_bare_part_bdt_packages_as_software_only_float64(model, tmp_path):
    prj = export_bdt(model, tmp_path / "vitis", precision=PRECISION)
    pkg = open_package(package(prj, name="bare", out=tmp_path / "p"))
    assert pkg.family == "bdt" and pkg.board is None
    assert pkg.io["interface"] == "parallel" and pkg.io["word_dtype"] == "float64"
    X = np.random.default_rng(1).normal(scale=3.0, size=(500, N_FEATURES))  # float64, not float32 values
    X[:5] *= 1e3
    with load(pkg.path) as ol:  # auto: no board here
        assert ol.backend == "software"
        np.testing.assert_array_equal(ol.predict(X), prj.firmware().predict(X))


# ---------------------------------------------------------------------------- software run == C simulation
def test_software_run_equals_the_c_simulation_on_every_value(pkg, probes, csim, firmware):
    layer = firmware._layers[0]
    reached = firmware.input_type.quantize(probes.astype(np.float64))
    on_grid = layer.threshold[layer.feature >= 0]
    assert np.isin(on_grid[firmware.input_type.quantize(on_grid) == on_grid], reached).all()
    with load(pkg.path, backend="software") as ol:
        Y = ol.predict(probes)
        assert ol.describe()["family"] == "bdt" and ol.describe()["interface"] == "s_axilite_m_axi"
    assert Y.shape == csim.shape == (len(probes), 3) and Y.dtype == np.float64
    mismatches = int((Y != csim).sum())
    assert mismatches == 0, f"{mismatches} of {csim.size} values differ from the C simulation"


def test_the_float_interface_rounds_inputs_to_float32_first(pkg, probes, csim):
    """float64 events reach the IP as float32 words: the run equals the C simulation of float32(X)."""
    nudged = probes.astype(np.float64) + np.where(probes >= 0, -1.0, 1.0) * 2.0 ** -40
    nudged = np.where(nudged.astype(np.float32) == probes, nudged, probes)  # stays float32(X) == X
    assert not np.array_equal(nudged, nudged.astype(np.float32))
    with load(pkg.path, backend="software") as ol:
        np.testing.assert_array_equal(ol.predict(nudged), csim)
        with pytest.raises(DataError, match="does not fit a float32"):
            ol.predict(np.full((1, N_FEATURES), 1e39))


def test_cli_run_equals_csim(pkg, probes, csim, tmp_path):
    import subprocess

    np.save(tmp_path / "X.npy", probes)
    done = subprocess.run([sys.executable, "-m", "fastml_lab.cli", "run", str(pkg.path), "--input",
                           str(tmp_path / "X.npy"), "--output", str(tmp_path / "Y.npy"), "--backend",
                           "software"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), csim)


# ---------------------------------------------------------------------------- the board driver
@pytest.fixture
def board(built, firmware, tmp_path):
    """``board(**options)`` -> (RegisterBoardOverlay on a fake pynq, the fake pynq); closed at teardown."""
    opened = []

    def make(timeout_s=5.0, max_events=None, **ip_options):
        pynq = make_fake_pynq(firmware, **ip_options)
        kwargs = {} if max_events is None else {"max_events": max_events}
        ol = RegisterBoardOverlay(built, timeout_s=timeout_s, lock_dir=tmp_path, pynq=pynq, **kwargs)
        opened.append(ol)
        return ol, pynq

    yield make
    for ol in opened:
        ol.close()


def _ip(pynq):
    return pynq.overlays[-1].conifer_myproject


@pytest.mark.parametrize("n", [1, 37, 3000])
def test_board_driver_matches_the_software_overlay(board, built, probes, n):
    X = probes[np.random.default_rng(n).choice(len(probes), n)]
    ol, pynq = board()
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(ol.predict(X), software.predict(X))
    assert _ip(pynq).runs == [0, n]  # the size check at load, then one run


def test_board_driver_equals_the_c_simulation(board, probes, csim):
    ol, _ = board()
    np.testing.assert_array_equal(ol.predict(probes), csim)


def test_registers_buffers_and_caches(board, firmware, probes):
    ol, pynq = board()
    X = probes[:20]
    ol.predict(X)
    in_buf, out_buf = pynq.memory.allocations
    assert in_buf.dtype == out_buf.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(in_buf), X.astype(np.float32).reshape(-1))
    assert in_buf.flushes == 1 and out_buf.invalidates == 1
    writes = dict(_ip(pynq).writes[-4:])
    assert writes == {0x10: 20, 0x38: in_buf.physical_address, 0x40: out_buf.physical_address, 0x00: 1}
    first = ol.predict(X)
    ol.predict(probes[20:30])  # smaller: the same buffers
    assert pynq.memory.allocations == [in_buf, out_buf]
    kept = first.copy()
    ol.predict(probes[40:60])  # overwrites the score buffer
    np.testing.assert_array_equal(first, kept)  # results are copies
    ol.predict(probes[:21])  # larger: new buffers, the old ones freed
    assert len(pynq.memory.allocations) == 4 and in_buf.freed and out_buf.freed
    ol.close()
    assert all(buf.freed for buf in pynq.memory.allocations)


def test_chunking_across_several_runs_gives_the_same_outputs(board, built, probes):
    ol, pynq = board(max_events=10)
    assert ol.max_events_per_transfer == 10
    X = probes[:25]
    Y = ol.predict(X)
    assert _ip(pynq).runs == [0, 10, 10, 5]
    assert pynq.memory.allocations[0].shape == (10 * N_FEATURES,)
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(Y, software.predict(X))


def test_load_picks_the_register_driver_for_a_bdt(built, firmware, tmp_path, monkeypatch):
    pynq = make_fake_pynq(firmware)
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    with load(built.path, lock_dir=tmp_path, max_events=100) as ol:
        assert isinstance(ol, RegisterBoardOverlay) and ol.backend == "board"
        assert ol.ip_name == "conifer_myproject" and ol.describe()["registers"]["x"] == 0x38
        assert ol.describe()["ip"] == ["conifer_myproject"]
        assert pynq.overlays[0].bitfile == str(built.bitstream_path)
    with pytest.raises(BoardError, match="not an AXI stream behind a DMA"):
        BoardOverlay(built, lock_dir=tmp_path, pynq=pynq)


def test_a_stalled_ip_ends_with_board_error_by_its_deadline(board, firmware, probes, tmp_path):
    ol, pynq = board(timeout_s=0.2, stall=True)
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"did not finish a run of 4 events within 0.2 s.*load it again"):
        ol.predict(probes[:4])
    assert time.monotonic() - start < 1.5
    with pytest.raises(BoardError, match="failed earlier"):
        ol.predict(probes[:4])
    ol.close()
    assert all(buf.freed for buf in pynq.memory.allocations)
    with RegisterBoardOverlay(ol.package, lock_dir=tmp_path, pynq=make_fake_pynq(firmware)) as again:
        assert again.predict(probes[:2]).shape == (2, 3)  # the lock was released


def test_a_slow_run_within_the_deadline_succeeds(board, built, probes):
    ol, _ = board(timeout_s=2.0, delay_s=0.05)
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(ol.predict(probes[:8]), software.predict(probes[:8]))


def test_a_busy_ip_is_refused_before_a_run(board, probes):
    ol, pynq = board()
    _ip(pynq).jam()
    with pytest.raises(BoardError, match="is not idle"):
        ol.predict(probes[:2])


def test_a_second_user_is_refused_while_the_first_holds_the_board(board, built, firmware, tmp_path):
    ol, _ = board()
    with pytest.raises(BoardError, match="The board is in use"):
        RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware))
    ol.close()
    with RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware)):
        pass


@pytest.mark.parametrize("options, message", [
    ({"n_ips": 2}, r"Expected one conifer accelerator .* found 2"),
    ({"n_ips": 0}, r"found 0 \(none\).*processing_system7"),
    ({"register_map": dict(CONIFER_REGISTERS, n_c=0x20, x=0x28, score=0x30)},
     r"n_c at 0x20, not 0x28; x at 0x28, not 0x38; score at 0x30, not 0x40.*package the project again"),
    ({"n_features": 7}, r"reports 7 features and 3 scores; the package .* has 4 inputs and 3 outputs"),
])
def test_a_failed_load_says_why_and_releases_the_lock(built, firmware, tmp_path, options, message):
    with pytest.raises(BoardError, match=message):
        RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware, **options))
    with RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware)):
        pass


def test_pynq_errors_while_loading_become_board_errors(built, tmp_path):
    import types

    pynq = types.ModuleType("pynq")

    def overlay(bitfile, **kw):
        raise RuntimeError("No Devices Found")

    pynq.Overlay = overlay
    with pytest.raises(BoardError, match="No Devices Found"):
        RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=pynq)
    with RegisterBoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(built_firmware(built))):
        pass


def built_firmware(pkg):
    from fastml_lab.emulator import Firmware

    return Firmware.load(pkg.path)


def test_bad_inputs_fail_before_any_run(board, probes):
    ol, pynq = board()
    X = probes[:3].astype(np.float64)
    X[1, 2] = np.nan
    with pytest.raises(DataError, match=r"X\[1, 2\]"):
        ol.predict(X)
    assert _ip(pynq).runs == [0] and pynq.memory.allocations == []


def test_verify_records_a_clean_board_run(board, built, probes):
    ol, _ = board()
    result = ol.verify(probes[:300])
    assert result["mismatches"] == 0 and result["events"] == 300
    assert open_package(built.path).status == VERIFIED


def test_a_bdt_package_runs_with_numpy_alone(pkg, probes, csim, tmp_path):
    """The driver module and a BDT's software run import neither conifer, xgboost nor any heavy library."""
    import subprocess

    np.save(tmp_path / "X.npy", probes)
    code = (
        "import sys, numpy as np; import fastml_lab.overlay.register_board; from fastml_lab.overlay import load;"
        f"ol = load({str(pkg.path)!r}, backend='software'); np.save({str(tmp_path / 'Y.npy')!r}, "
        f"ol.predict(np.load({str(tmp_path / 'X.npy')!r})));"
        "heavy = {'tensorflow', 'keras', 'hls4ml', 'sklearn', 'pandas', 'pynq', 'scipy', 'conifer', 'xgboost'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), csim)
