"""The real PYNQ-Z2 driver (``fastml_lab/overlay/board.py``) against a fake ``pynq`` module whose
DMA is :class:`SoftwareDMA`: buffers, chunking, packing, timeouts, the lock, copies, errors, and
conformance with the software overlay."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from fastml_lab.exceptions import BoardError, DataError
from fastml_lab.overlay import load, open_package
from fastml_lab.overlay.board import SAFE_MAX_TRANSFER_BYTES, BoardOverlay
from fastml_lab.overlay.driver import BoardLock
from software_dma import SoftwareDMA, make_fake_pynq
from fastml_lab.overlay.package import VERIFIED
from fastml_lab.overlay.software import SoftwareOverlay

@pytest.fixture
def firmware(overlay_project):
    from fastml_lab.emulator import Firmware

    return Firmware.load(overlay_project)


@pytest.fixture
def built(make_overlay_package):
    return open_package(make_overlay_package("built", built=True))


@pytest.fixture
def board(built, firmware, tmp_path):
    """``board(**dma_options)`` -> an open BoardOverlay on a fake pynq (closed at teardown)."""
    opened = []

    def make(timeout_s=5.0, hwh_width=None, **dma_options):
        pynq = make_fake_pynq(firmware, hwh_width=hwh_width, **dma_options)
        ol = BoardOverlay(built, timeout_s=timeout_s, lock_dir=tmp_path, pynq=pynq)
        opened.append(ol)
        return ol, pynq

    yield make
    for ol in opened:
        ol.close()


def _events(firmware, n, seed=0):
    return np.random.default_rng(seed).normal(0.0, 2.0, size=(n, firmware.n_inputs))


def _dma(pynq):
    return pynq.overlays[-1].hier_0.axi_dma_0


# ---------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("n", [1, 37, 3000])
def test_board_driver_matches_the_software_overlay(board, built, firmware, n):
    X = _events(firmware, n, seed=n)
    ol, _ = board()
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(ol.predict(X), software.predict(X))
        np.testing.assert_array_equal(ol.classify(X), software.classify(X))


def test_load_auto_uses_the_board_when_pynq_and_a_device_are_present(built, firmware, tmp_path,
                                                                    monkeypatch):
    pynq = make_fake_pynq(firmware)
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    with load(built.path, lock_dir=tmp_path) as ol:
        assert ol.backend == "board" and ol.dma_name == "hier_0/axi_dma_0"
        assert ol.describe()["ip"] == ["hier_0/myproject_axi_0"]
        assert pynq.overlays[0].bitfile == str(built.bitstream_path)
    pynq.Device.devices = []
    with pytest.raises(BoardError, match="found no device"):
        load(built.path, backend="board", lock_dir=tmp_path)
    with load(built.path, lock_dir=tmp_path) as ol:
        assert ol.backend == "software"


def test_overlay_arguments_are_passed_through(built, firmware, tmp_path):
    pynq = make_fake_pynq(firmware)
    with BoardOverlay(built, lock_dir=tmp_path, pynq=pynq,
                      overlay_kwargs={"download": False, "ignore_version": True}):
        assert pynq.overlays[0].kwargs == {"download": False, "ignore_version": True}


# ---------------------------------------------------------------------------- buffers and copies
def test_buffers_are_allocated_once_and_reused(board, firmware):
    ol, pynq = board()
    ol.predict(_events(firmware, 100))
    first = list(pynq.allocations)
    assert len(first) == 2
    assert first[0].shape == (100 * firmware.n_inputs,) and first[0].dtype == np.float32
    assert first[1].shape == (100 * firmware.n_outputs,)
    ol.predict(_events(firmware, 100, seed=1))
    ol.predict(_events(firmware, 10, seed=2))
    assert pynq.allocations == first
    ol.predict(_events(firmware, 101))
    assert len(pynq.allocations) == 4 and all(buf.freed for buf in first)
    ol.close()
    assert all(buf.freed for buf in pynq.allocations)


def test_send_buffer_is_flushed_and_receive_buffer_invalidated(board, firmware):
    ol, pynq = board()
    ol.predict(_events(firmware, 5))
    in_buf, out_buf = pynq.allocations
    assert in_buf.flushes == 1 and out_buf.invalidates == 1


def test_results_are_copies_not_views_of_dma_buffers(board, firmware):
    ol, pynq = board()
    first = ol.predict(_events(firmware, 20))
    kept = first.copy()
    out_buf = pynq.allocations[1]
    assert not np.shares_memory(first, out_buf)
    ol.predict(_events(firmware, 20, seed=5))  # overwrites the DMA buffer
    np.testing.assert_array_equal(first, kept)
    first[:] = -1.0
    assert not np.any(np.asarray(out_buf) == -1.0)


def test_stream_words_are_float32_events_back_to_back(board, firmware):
    ol, pynq = board()
    X = _events(firmware, 3)
    ol.predict(X)
    in_buf = np.asarray(pynq.allocations[0])
    np.testing.assert_array_equal(in_buf, X.astype(np.float32).reshape(-1))


# ---------------------------------------------------------------------------- chunking
def test_batches_are_split_at_the_maximum_transfer_length(board, built, firmware):
    event_bytes = 4 * max(firmware.n_inputs, firmware.n_outputs)
    limit = 10 * event_bytes + 3
    ol, pynq = board(max_transfer_bytes=limit)
    assert ol.max_transfer_bytes == limit and ol.max_events_per_transfer == 10
    X = _events(firmware, 25)
    Y = ol.predict(X)
    dma = _dma(pynq)
    assert dma.sendchannel.transfers == 3 and dma.recvchannel.transfers == 3
    assert pynq.allocations[0].shape == (10 * firmware.n_inputs,)
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(Y, software.predict(X))


def test_transfer_limit_comes_from_the_hwh_when_the_driver_lacks_it(board, firmware):
    ol, _ = board(hwh_width=12)
    assert ol.max_transfer_bytes == (1 << 12) - 1


def test_unknown_transfer_limit_falls_back_to_a_safe_default(built, firmware, tmp_path):
    pynq = make_fake_pynq(firmware)
    overlay_cls = pynq.Overlay

    def bare_overlay(bitfile, **kw):
        ol = overlay_cls(bitfile, **kw)
        del ol.hier_0.axi_dma_0.buffer_max_size
        return ol

    pynq.Overlay = bare_overlay
    with pytest.warns(UserWarning, match="maximum transfer length is unknown"):
        with BoardOverlay(built, lock_dir=tmp_path, pynq=pynq) as ol:
            assert ol.max_transfer_bytes == SAFE_MAX_TRANSFER_BYTES


def test_software_dma_enforces_pynq_s_length_check(firmware):
    dma = SoftwareDMA(firmware, max_transfer_bytes=64)
    with pytest.raises(ValueError, match="Transfer size is 128 bytes, which exceeds the "
                                         "maximum DMA buffer size 64"):
        dma.sendchannel.transfer(np.zeros(32, dtype=np.float32))


# ---------------------------------------------------------------------------- timeouts and faults
def test_a_stalled_ip_raises_board_error_within_the_timeout(board, firmware):
    ol, _ = board(timeout_s=0.2, stall=True)
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"receive channel did not finish .* within 0.2 s"):
        ol.predict(_events(firmware, 4))
    assert time.monotonic() - start < 1.5
    with pytest.raises(BoardError, match="failed earlier"):
        ol.predict(_events(firmware, 4))


def test_a_slow_transfer_within_the_timeout_succeeds(board, built, firmware):
    ol, _ = board(timeout_s=2.0, delay_s=0.05)
    X = _events(firmware, 8)
    with SoftwareOverlay(built) as software:
        np.testing.assert_array_equal(ol.predict(X), software.predict(X))


def test_a_halted_channel_is_a_board_error(board, firmware):
    ol, pynq = board()
    _dma(pynq).recvchannel.stop()
    with pytest.raises(BoardError, match="DMA refused|halted"):
        ol.predict(_events(firmware, 2))


def test_software_dma_halts_when_the_receive_buffer_is_shorter_than_the_packet(firmware):
    dma = SoftwareDMA(firmware)
    words = np.zeros(2 * firmware.n_inputs, dtype=np.float32)
    out = np.zeros(firmware.n_outputs, dtype=np.float32)  # room for one event of two
    dma.recvchannel.transfer(out)
    dma.sendchannel.transfer(words)
    assert not dma.recvchannel.idle and not dma.recvchannel.running
    assert dma.recvchannel.error and "TLAST" in dma.recvchannel.error_reason


def test_software_dma_tlast_ends_the_receive_transfer(firmware):
    dma = SoftwareDMA(firmware)
    out = np.full(3 * firmware.n_outputs, -7.0, dtype=np.float32)  # longer than the packet
    dma.recvchannel.transfer(out)
    dma.sendchannel.transfer(np.zeros(firmware.n_inputs, dtype=np.float32))
    dma.recvchannel.wait()
    dma.sendchannel.wait()
    assert dma.recvchannel.bytes_received == 4 * firmware.n_outputs
    assert np.all(out[firmware.n_outputs:] == -7.0)
    with pytest.raises(RuntimeError, match="not idle"):
        dma.recvchannel.transfer(out)
        dma.recvchannel.transfer(out)


# ---------------------------------------------------------------------------- the lock
def test_a_second_user_is_refused_while_the_first_holds_the_board(board, built, firmware, tmp_path):
    ol, _ = board()
    with pytest.raises(BoardError, match=r"The board is in use: .*\"pid\": %d" % __import__("os").getpid()):
        BoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware))
    ol.close()
    with BoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware)) as again:
        assert again.predict(_events(firmware, 1)).shape == (1, firmware.n_outputs)


def test_the_lock_is_held_across_processes(built, tmp_path):
    import subprocess

    lock = BoardLock(tmp_path).acquire("test overlay")
    try:
        code = ("import sys; from fastml_lab.overlay.driver import BoardLock;"
                "from fastml_lab.exceptions import BoardError\n"
                "try:\n    BoardLock(sys.argv[1]).acquire('other')\n"
                "except BoardError as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, check=True).stdout
        assert "in use" in out and "test overlay" in out
    finally:
        lock.release()
    assert not lock.held


def test_a_failed_load_releases_the_lock(built, firmware, tmp_path):
    pynq = make_fake_pynq(firmware, dmas=2)
    with pytest.raises(BoardError, match="Expected one AXI DMA .* found 2"):
        BoardOverlay(built, lock_dir=tmp_path, pynq=pynq)
    pynq = make_fake_pynq(firmware, dmas=0)
    with pytest.raises(BoardError, match=r"found 0 \(none\).*myproject_axi"):
        BoardOverlay(built, lock_dir=tmp_path, pynq=pynq)
    with BoardOverlay(built, lock_dir=tmp_path, pynq=make_fake_pynq(firmware)):
        pass


def test_pynq_errors_while_loading_become_board_errors(built, tmp_path):
    pynq = types.ModuleType("pynq")

    def overlay(bitfile, **kw):
        raise RuntimeError("No Devices Found")

    pynq.Overlay = overlay
    with pytest.raises(BoardError, match="No Devices Found"):
        BoardOverlay(built, lock_dir=tmp_path, pynq=pynq)


# ---------------------------------------------------------------------------- inputs, verify
def test_bad_inputs_fail_before_any_transfer(board, firmware):
    ol, pynq = board()
    X = _events(firmware, 3)
    X[1, 1] = np.nan
    with pytest.raises(DataError, match=r"X\[1, 1\]"):
        ol.predict(X)
    with pytest.raises(DataError, match="shape"):
        ol.predict(np.zeros((2, firmware.n_inputs + 1)))
    assert _dma(pynq).sendchannel.transfers == 0 and pynq.allocations == []


def test_verify_records_a_clean_board_run(board, built, firmware):
    ol, _ = board()
    result = ol.verify(_events(firmware, 200))
    assert result["mismatches"] == 0 and result["events"] == 200
    assert open_package(built.path).status == VERIFIED


def test_profile_on_the_board_path(board, firmware):
    ol, _ = board()
    report = ol.profile(_events(firmware, 300), repeats=3)
    assert report["backend"] == "board" and report["events_per_s"] > 0
    assert "DMA" in report["measured_on"] and report["modelled"]["label"] == "modelled"
