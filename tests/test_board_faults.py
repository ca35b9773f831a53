"""Board-path faults, table-driven, for both drivers: the network's DMA driver (``board.py``) against the
software DMA (tests/software_dma.py) and the BDT's register driver (``register_board.py``) against the
software conifer accelerator (tests/software_register_ip.py), on the shipped packages with stand-in
bitstreams. Every fault ends by its deadline in a BoardError that says what to do; the lock is released
on every path (a second process, KeyboardInterrupt); files changed on disk after loading and emulator
data that disagree with the manifest are refused; no buffer leaks across 10,000 calls and failed ones;
a 50,000-event slice of the soak (bench/bench_soak.py)."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import software_dma
import software_register_ip
from fastml_lab.exceptions import BoardError, IntegrityError, NotReadyError
from fastml_lab.overlay import load, open_package
from fastml_lab.overlay import manifest as mf
from fastml_lab.overlay.board import BoardOverlay
from fastml_lab.overlay.driver import BoardLock
from fastml_lab.overlay.register_board import RegisterBoardOverlay
from fastml_lab.overlay.software import SoftwareOverlay, load_firmware

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"nn": ROOT / "bitstreams" / "jet_mlp_pynq", "bdt": ROOT / "bitstreams" / "jet_bdt_pynq"}
FAMILIES = tuple(SHIPPED)
DRIVERS = {"nn": (BoardOverlay, software_dma.make_fake_pynq),
           "bdt": (RegisterBoardOverlay, software_register_ip.make_fake_pynq)}
#: Slack between a deadline and its BoardError on a busy two-core machine.
MARGIN_S = 1.0
SLAVE_ERROR = "DMA Slave Error (cannot access memory map interface)"
INTERNAL_ERROR = "DMA Internal Error (transfer length 0?)"


def with_bitstream(src: Path, dest: Path):
    """A copy of the package ``src`` with a stand-in ``.bit`` and ``.hwh`` recorded in its manifest."""
    shutil.copytree(src, dest)
    manifest = mf.read(dest)
    name = manifest["name"]
    manifest["bitstream"] = {}
    for role, data in (("bit", b"\x00\x09bit stand-in " + name.encode()), ("hwh", b"<MODULES>stand-in</MODULES>\n")):
        (dest / f"{name}.{role}").write_bytes(data)
        manifest["bitstream"][role] = {"path": f"{name}.{role}", "sha256": mf.sha256_file(dest / f"{name}.{role}")}
    mf.write(dest, manifest)
    return open_package(dest)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    return {family: with_bitstream(src, root / src.name) for family, src in SHIPPED.items()}


@pytest.fixture(scope="module")
def firmwares(packages):
    return {family: load_firmware(pkg) for family, pkg in packages.items()}


@pytest.fixture(scope="module")
def events():
    return np.random.default_rng(3).normal(0.0, 2.0, size=(64, 16))


@pytest.fixture(scope="module")
def reference(packages, firmwares, events):
    return {family: SoftwareOverlay(pkg, firmwares[family]).predict(events) for family, pkg in packages.items()}


@pytest.fixture
def own_package(tmp_path):
    """``own_package(family)`` -> a fresh copy that a test may damage."""
    return lambda family: with_bitstream(SHIPPED[family], tmp_path / "own" / SHIPPED[family].name)


def the_ip(pynq, family):
    """The software DMA (nn) or register IP (bdt) of the fake pynq's last loaded design."""
    design = pynq.overlays[-1]
    return design.hier_0.axi_dma_0 if family == "nn" else design.conifer_myproject


def inject(pynq, family, **faults):
    """Set fault knobs on the loaded design (after loading, so the BDT's size check at load runs clean)."""
    ip = the_ip(pynq, family)
    for knob, value in faults.items():
        if family == "bdt":
            setattr(ip, knob, value)
        elif knob == "delay_s":
            ip.delay_s = value
        elif knob in ("stall", "short_words"):
            setattr(ip.ip, knob, value)
        elif knob in ("fail", "interrupt"):
            channels = {"send": ip.sendchannel, "receive": ip.recvchannel}
            for name, setting in value.items():
                setattr(channels[name], "fail_with" if knob == "fail" else "interrupt_after", setting)
        else:
            raise KeyError(knob)


@pytest.fixture
def rig(packages, firmwares, tmp_path):
    """``rig(family, timeout_s=5, package=None, pynq=None, lock_timeout_s=0, **faults)`` -> (driver, fake
    pynq) with ``faults`` injected after loading; every driver is closed at teardown."""
    opened = []

    def make(family, timeout_s=5.0, package=None, pynq=None, lock_timeout_s=0.0, **faults):
        driver, fake = DRIVERS[family]
        pynq = pynq if pynq is not None else fake(firmwares[family])
        ol = driver(package or packages[family], timeout_s=timeout_s, lock_dir=tmp_path, pynq=pynq,
                    lock_timeout_s=lock_timeout_s)
        opened.append(ol)
        inject(pynq, family, **faults)
        return ol, pynq

    yield make
    for ol in opened:
        ol.close()


def lock_is_free(lock_dir) -> bool:
    try:
        BoardLock(lock_dir).acquire("probe").release()
        return True
    except BoardError:
        return False


# ---------------------------------------------------------------------------- the fault table
FAULTS = [
    # (fault, family, timeout_s, knobs, outcome, message)
    ("stall", "nn", 0.3, {"stall": True}, "refused",
     r"receive channel did not finish a transfer of 8 events within 0.3 s.*Close the overlay and load it again"),
    ("stall", "bdt", 0.3, {"stall": True}, "refused",
     r"did not finish a run of 8 events within 0.3 s.*Close the overlay and load it again"),
    ("late completion", "nn", 0.3, {"delay_s": 0.6}, "refused",
     r"send channel did not finish .* within 0.3 s.*a late transfer may still write into the buffers"),
    ("late completion", "bdt", 0.3, {"delay_s": 0.6}, "refused",
     r"did not finish a run of 8 events within 0.3 s.*load it again"),
    ("completion just before the deadline", "nn", 1.0, {"delay_s": 0.7}, "ok", None),
    ("completion just before the deadline", "bdt", 1.0, {"delay_s": 0.7}, "ok", None),
    ("short receive", "nn", 5.0, {"short_words": 2}, "refused",
     r"receive channel moved 152 bytes of a 160-byte transfer of 8 events.*none are returned.*load it again"),
    ("short write", "bdt", 5.0, {"short_words": 2}, "refused",
     r"wrote only 38 of its 40 scores; none are returned.*load it again"),
    ("receive channel error", "nn", 5.0, {"fail": {"receive": SLAVE_ERROR}}, "refused",
     r"receive channel reported an error during a transfer of 8 events \(.*slave or decode error.*load it again"),
    ("send channel error", "nn", 5.0, {"fail": {"send": INTERNAL_ERROR}}, "refused",
     r"send channel reported an error during a transfer of 8 events \(an internal error.*load it again"),
    ("register access error", "bdt", 5.0, {"fail_with": OSError(5, "Input/output error")}, "refused",
     r"Driving the accelerator 'conifer_myproject' failed .* OSError: .*Input/output error.*load it again"),
]


@pytest.mark.parametrize("fault, family, timeout_s, knobs, outcome, message", FAULTS,
                         ids=[f"{f[1]}-{f[0].replace(' ', '_')}" for f in FAULTS])
def test_board_path_faults(rig, reference, events, tmp_path, fault, family, timeout_s, knobs, outcome, message):
    ol, pynq = rig(family, timeout_s=timeout_s, **knobs)
    X = events[:8]
    start = time.monotonic()
    if outcome == "ok":
        Y = ol.predict(X)
        elapsed = time.monotonic() - start
        assert knobs["delay_s"] <= elapsed <= timeout_s + MARGIN_S
        np.testing.assert_array_equal(Y, reference[family][:8])
        print(f"\nFAULT {fault} [{family}]: correct result after {elapsed:.3f} s (deadline {timeout_s} s)")
        return
    with pytest.raises(BoardError, match=message):
        ol.predict(X)
    elapsed = time.monotonic() - start
    assert elapsed <= timeout_s + MARGIN_S
    if "stall" in knobs or "delay_s" in knobs:
        assert elapsed >= timeout_s  # not before its deadline either
    print(f"\nFAULT {fault} [{family}]: BoardError after {elapsed:.3f} s (deadline {timeout_s} s)")
    if "delay_s" in knobs:
        # The late run completes after the deadline and writes into the old buffer...
        time.sleep(max(0.0, knobs["delay_s"] - (time.monotonic() - start)) + 0.05)
        ip = the_ip(pynq, family)
        if family == "nn":
            assert ip.recvchannel.idle
        else:
            ip.read(0)
        late = np.asarray(pynq.memory.allocations[1]).reshape(8, -1)
        np.testing.assert_array_equal(late, reference[family][:8].astype(np.float32))
    # ... which no later call reads: the overlay takes no more calls until loaded again.
    with pytest.raises(BoardError, match="failed earlier .* close this overlay and load it again"):
        ol.predict(X)
    assert ol.describe()["fault"]
    ol.close()
    assert pynq.memory.live == 0 and lock_is_free(tmp_path)
    again, _ = rig(family)
    np.testing.assert_array_equal(again.predict(X), reference[family][:8])


def test_a_short_receive_never_lets_a_later_call_read_the_stream_it_left(rig, events):
    """The IP's outputs left in the stream after an early TLAST would be the next call's first words:
    the short receive latches a fault, so no next call on that DMA happens."""
    ol, pynq = rig("nn", short_words=2)
    with pytest.raises(BoardError, match="moved 152 bytes"):
        ol.predict(events[:8])
    inject(pynq, "nn", short_words=0)
    with pytest.raises(BoardError, match="failed earlier"):
        ol.predict(events[:8])
    assert the_ip(pynq, "nn").sendchannel.transfers == 1


# ---------------------------------------------------------------------------- KeyboardInterrupt
@pytest.mark.parametrize("family, knobs", [
    ("nn", {"stall": True, "interrupt": {"receive": 3}}),
    ("nn", {"delay_s": 0.2, "interrupt": {"send": 3}}),
    ("bdt", {"delay_s": 0.2, "interrupt_after": 3}),
], ids=["nn-receive", "nn-send", "bdt"])
def test_ctrl_c_during_a_wait_closes_the_overlay_and_frees_everything(rig, reference, events, tmp_path,
                                                                      family, knobs):
    ol, pynq = rig(family)
    ol.predict(events[:4])
    assert pynq.memory.live == 2
    inject(pynq, family, **knobs)
    with pytest.raises(KeyboardInterrupt):
        ol.predict(events[:8])
    assert ol.closed and pynq.memory.live == 0 and lock_is_free(tmp_path)
    with pytest.raises(NotReadyError, match="is closed; load it again"):
        ol.predict(events[:8])
    again, _ = rig(family)  # the same process loads again
    np.testing.assert_array_equal(again.predict(events[:8]), reference[family][:8])


def test_ctrl_c_during_the_bdt_size_check_at_load_releases_the_lock(packages, firmwares, reference, events,
                                                                      tmp_path):
    pynq = software_register_ip.make_fake_pynq(firmwares["bdt"], delay_s=0.05, interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        RegisterBoardOverlay(packages["bdt"], lock_dir=tmp_path, pynq=pynq)
    assert lock_is_free(tmp_path) and pynq.memory.live == 0
    with RegisterBoardOverlay(packages["bdt"], lock_dir=tmp_path,
                              pynq=software_register_ip.make_fake_pynq(firmwares["bdt"])) as ol:
        np.testing.assert_array_equal(ol.predict(events[:8]), reference["bdt"][:8])


# ---------------------------------------------------------------------------- a second process
def _hold_the_lock(lock_dir, held, release):
    lock = BoardLock(lock_dir).acquire("jet_overlay (in another process)")
    held.set()
    release.wait(30)
    lock.release()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_second_process_holding_the_lock(rig, reference, events, tmp_path, family):
    ctx = multiprocessing.get_context("fork")
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_the_lock, args=(tmp_path, held, release), daemon=True)
    child.start()
    try:
        assert held.wait(20)
        start = time.monotonic()
        with pytest.raises(BoardError, match=(rf'The board is in use: .*"pid": {child.pid},.*'
                                              r"in another process.*\(waited 0.3 s\)\. Close that overlay")):
            rig(family, lock_timeout_s=0.3)
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed <= 0.3 + MARGIN_S
        print(f"\nFAULT lock held by pid {child.pid} [{family}]: BoardError after {elapsed:.3f} s")
        with pytest.raises(BoardError, match="The board is in use"):  # lock_timeout_s=0: at once
            rig(family)
        # A holder that lets go within lock_timeout_s: the load waits for it and works.
        start = time.monotonic()
        threading_release = ctx.Process(target=_set_after, args=(release, 0.3))
        threading_release.start()
        ol, _ = rig(family, lock_timeout_s=10.0)
        assert 0.2 <= time.monotonic() - start < 10.0
        np.testing.assert_array_equal(ol.predict(events[:8]), reference[family][:8])
        threading_release.join(10)
    finally:
        release.set()
        child.join(10)
    assert child.exitcode == 0


def _set_after(event, delay_s):
    time.sleep(delay_s)
    event.set()


# ---------------------------------------------------------------------------- files changed on disk
def _append(path):
    path.write_bytes(path.read_bytes() + b"\0")


def _same_size_and_time(path):
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _replace(path):
    tmp = path.with_suffix(".new")
    tmp.write_bytes(path.read_bytes()[::-1])
    os.replace(tmp, path)


CHANGES = {"appended": _append, "same_size_and_mtime": _same_size_and_time, "replaced": _replace}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("role", ["bit", "hwh"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_bitstream_changed_on_disk_after_loading_is_refused(rig, own_package, reference, events, tmp_path,
                                                               family, role, change):
    pkg = own_package(family)
    ol, pynq = rig(family, package=pkg)
    np.testing.assert_array_equal(ol.predict(events[:8]), reference[family][:8])
    path = pkg.path / f"{pkg.name}.{role}"
    CHANGES[change](path)
    with pytest.raises(BoardError, match=rf"{pkg.name}\.{role} changed on disk after the overlay loaded it.*"
                                         "load the package again"):
        ol.predict(events[:8])
    with pytest.raises(BoardError, match="failed earlier"):
        ol.predict(events[:8])
    ol.close()
    assert pynq.memory.live == 0
    # Loading again (even from the package object opened before) checks the files against the manifest.
    with pytest.raises(IntegrityError, match=rf"{pkg.name}\.{role} does not match the manifest"):
        rig(family, package=pkg)
    with pytest.raises(IntegrityError, match=rf"{pkg.name}\.{role} does not match the manifest"):
        open_package(pkg.path)
    assert lock_is_free(tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bitstream_changed_while_pynq_loads_it_is_refused(own_package, firmwares, tmp_path, family):
    pkg = own_package(family)
    pynq = DRIVERS[family][1](firmwares[family])
    overlay = pynq.Overlay

    def overlay_while_the_file_changes(bitfile, **kwargs):
        _append(Path(bitfile))
        return overlay(bitfile, **kwargs)

    pynq.Overlay = overlay_while_the_file_changes
    with pytest.raises(BoardError, match=r"changed while it was being loaded; load the package again"):
        DRIVERS[family][0](pkg, lock_dir=tmp_path, pynq=pynq)
    assert lock_is_free(tmp_path) and pynq.memory.live == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_verify_hashes_the_bitstream_again_before_recording(rig, own_package, events, family):
    """A file system whose times do not show a change (the stat check passes): verify() still refuses."""
    pkg = own_package(family)
    ol, _ = rig(family, package=pkg)
    _same_size_and_time(pkg.path / f"{pkg.name}.bit")
    ol._file_stats = ol._stat_files()  # as if the change left no trace in the file's status
    ol.predict(events[:8])
    with pytest.raises(BoardError, match=rf"{pkg.name}\.bit changed on disk after the overlay loaded it"):
        ol.verify(events)
    assert not (pkg.path / mf.VERIFICATION_FILE).exists()


# ---------------------------------------------------------------------------- emulator data vs manifest
def _edit_emulator_bytes(pkg, family):
    _append(pkg.path / "firmware.npz")
    return r"firmware.npz does not match the manifest: sha256"


def _other_emulator_same_checksums(pkg, family):
    """Another model's description (one more integer bit on the output), the manifest's checksums updated:
    the files match their checksums, but not the firmware digest the manifest records."""
    path = pkg.path / "firmware.json"
    description = json.loads(path.read_text())
    description["output_type"]["integer"] += 1
    path.write_text(json.dumps(description, indent=1))
    manifest = mf.read(pkg.path)
    for entry in manifest["firmware"]["files"]:
        entry["sha256"] = mf.sha256_file(pkg.path / entry["path"])
    mf.write(pkg.path, manifest)
    return r"The emulator data in .* has digest .* but the manifest records .*Re-create it"


def _manifest_sizes_differ(pkg, family):
    manifest = mf.read(pkg.path)
    manifest["io"]["n_outputs"] = 4
    manifest["io"]["output_shape"] = [4]
    if manifest.get("class_names"):
        manifest["class_names"] = manifest["class_names"][:4]
    mf.write(pkg.path, manifest)
    return r"has 16 inputs and 5 outputs; the manifest says 16 and 4"


EMULATOR_LIES = {"emulator_file_edited": _edit_emulator_bytes,
                 "another_emulator_with_matching_checksums": _other_emulator_same_checksums,
                 "manifest_sizes_differ": _manifest_sizes_differ}


@pytest.mark.parametrize("lie", EMULATOR_LIES)
@pytest.mark.parametrize("family", FAMILIES)
def test_emulator_data_that_disagree_with_the_manifest_are_refused_at_load(rig, own_package, tmp_path, family, lie):
    pkg = own_package(family)  # opened (and checked) before the files change
    message = EMULATOR_LIES[lie](pkg, family)
    if lie != "manifest_sizes_differ":  # the emulator files changed under the package object: checked again
        with pytest.raises(IntegrityError, match=r"firmware\.(json|npz) does not match the manifest"):
            rig(family, package=pkg)
    if lie == "emulator_file_edited":
        with pytest.raises(IntegrityError, match=message):
            open_package(pkg.path)
    else:  # the files match the manifest's checksums: the driver's emulator check refuses them
        with pytest.raises(IntegrityError, match=message):
            rig(family, package=open_package(pkg.path))
    assert lock_is_free(tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_load_on_the_board_refuses_an_edited_emulator_file(own_package, firmwares, tmp_path, monkeypatch, family):
    pkg = own_package(family)
    _append(pkg.path / "firmware.json")
    pynq = DRIVERS[family][1](firmwares[family])
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    with pytest.raises(IntegrityError, match=r"firmware.json does not match the manifest"):
        load(pkg.path, backend="board", lock_dir=tmp_path)
    assert pynq.overlays == [] and lock_is_free(tmp_path)


# ---------------------------------------------------------------------------- buffers
LEAK_CALLS = 10_000
FAILING = [({"stall": True}, BoardError), ({"short_words": 1}, BoardError),
           ({"fail": {"receive": SLAVE_ERROR}}, BoardError), ({"stall": True, "interrupt": {"receive": 1}}, KeyboardInterrupt)]
BDT_FAILING = [({"stall": True}, BoardError), ({"short_words": 1}, BoardError),
               ({"fail_with": OSError(5, "Input/output error")}, BoardError), ({"stall": True, "interrupt_after": 1}, KeyboardInterrupt)]


@pytest.mark.parametrize("family", FAMILIES)
def test_no_buffer_leaks_across_10000_calls_and_failed_ones(rig, firmwares, reference, events, family):
    pynq = DRIVERS[family][1](firmwares[family])  # one allocator for every load
    memory = pynq.memory
    sizes = np.random.default_rng(1).integers(1, 9, size=LEAK_CALLS)
    ol, _ = rig(family, pynq=pynq)
    start = time.perf_counter()
    for n in sizes:
        ol.predict(events[:n])
    elapsed = time.perf_counter() - start
    assert memory.live == 2 and len(memory.allocations) <= 2 * 8  # grown to 8 events at most, then reused
    np.testing.assert_array_equal(ol.predict(events[:8]), reference[family][:8])
    ol.close()
    assert memory.live == 0
    print(f"\nLEAK [{family}]: {LEAK_CALLS} calls in {elapsed:.2f} s, {len(memory.allocations)} buffers "
          "allocated, 2 live, 0 after close")
    failing = FAILING if family == "nn" else BDT_FAILING
    for round_ in range(5):
        for knobs, error in failing:
            ol, _ = rig(family, pynq=pynq, timeout_s=0.05)
            ol.predict(events[:4])
            assert memory.live == 2
            inject(pynq, family, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in knobs.items()})
            with pytest.raises(error):
                ol.predict(events[:4])
            ol.close()
            assert memory.live == 0, (round_, knobs)
    ol, _ = rig(family, pynq=pynq)
    for n in sizes[:1000]:
        ol.predict(events[:n])
    assert memory.live == 2
    ol.close()
    assert memory.live == 0 and all(buf.freed for buf in memory.allocations)


# ---------------------------------------------------------------------------- the soak's slice
def _bench_soak():
    spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "bench_soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", FAMILIES)
def test_soak_slice_batches_equal_one_call_and_memory_stays_flat(family):
    soak = _bench_soak()
    with load(SHIPPED[family], backend="software") as ol:
        result = soak.soak(ol, n_events=50_000, max_batch=10_000, seed=7)
    assert result["identical"] and result["events"] == 50_000 and result["batches"] >= 5
    assert result["smallest_batch"] >= 1 and result["largest_batch"] <= 10_000
    assert result["rss_end"] - result["rss_start"] < 64 * soak.MIB
    print("\nSOAK", soak.summary(result))


@pytest.mark.parametrize("family", FAMILIES)
def test_contiguous_memory_used_up_is_a_board_error_and_frees_what_was_allocated(rig, firmwares, reference,
                                                                                 events, family):
    pynq = DRIVERS[family][1](firmwares[family])
    memory, allocate = pynq.memory, pynq.allocate
    ol, _ = rig(family, pynq=pynq)

    calls = []

    def cma_exhausted(shape, dtype="u4", target=None, **kwargs):
        calls.append(shape)
        if len(calls) == 2:  # the input buffer was allocated, the output buffer is not
            raise RuntimeError("Failed to allocate Memory!")
        return allocate(shape, dtype=dtype, target=target, **kwargs)

    pynq.allocate = cma_exhausted
    with pytest.raises(BoardError, match=r"contiguous memory that 64 events need.*Failed to allocate"
                                         r".*fewer events per call"):
        ol.predict(events)
    assert len(calls) == 2
    assert memory.live == 0
    np.testing.assert_array_equal(ol.predict(events[:8]), reference[family][:8])  # smaller calls still run
    assert memory.live == 2
