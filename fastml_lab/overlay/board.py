"""The PYNQ-Z2 driver for a network: the package's bitstream, its AXI DMA and the IP behind it.

(A BDT's conifer accelerator, driven through its control registers, is
:mod:`fastml_lab.overlay.register_board`; :func:`open_board` picks the driver for a package.)

Needs Python 3.10, numpy and pynq 3.1 (the board image); pynq is imported when a
:class:`BoardOverlay` is created, never at module import. The DMA is found by its IP type in the
overlay's metadata, buffers are allocated once and reused, every wait has a deadline, results are
copied out of the DMA buffer, and an OS file lock keeps a second notebook off the board.
"""

from __future__ import annotations

import datetime
import getpass
import importlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path

import numpy as np

from ..boards import DEFAULT_BOARD, get_board
from ..exceptions import BoardError, FastMLError
from . import manifest as mf
from .accelerator import Accelerator

log = logging.getLogger(__name__)

#: Used when neither the driver nor the HWH states the DMA's length register width (14 bits).
SAFE_MAX_TRANSFER_BYTES = (1 << 14) - 1
DEFAULT_TIMEOUT_S = 5.0
LOCK_ENV_VAR = "FASTML_LAB_LOCK_DIR"


def import_pynq():
    """The pynq module, or BoardError saying it only exists on a PYNQ board image."""
    try:
        return importlib.import_module("pynq")
    except ImportError as exc:
        raise BoardError(f"pynq is not installed ({exc}); the board driver runs on a PYNQ-Z2 "
                         "image (pynq 3.1). Use backend='software' elsewhere.") from None


def board_unavailable_reason(package):
    """Why the board cannot run ``package`` here, or None if it can."""
    if package.board is None:
        return f"the package {package.name!r} targets no board (software only)"
    if not package.has_bitstream:
        missing = package.missing_bitstream_files()
        if missing:
            return (f"the package {package.name!r} lacks {', '.join(missing)}; fetch it with "
                    "`fastml_lab.overlay.fetch_bitstream(path)` if it has a .link file")
        return (f"the package {package.name!r} has no bitstream (software only); build one "
                "with Vivado (see bitstreams/README.md) and package again")
    return device_absent_reason()


def device_absent_reason():
    """Why this machine has no PYNQ device to program, or None on a board.

    The one board detection of fastml_lab: pynq must import and list at least one device.
    """
    try:
        pynq = importlib.import_module("pynq")
    except ImportError:
        return "pynq is not installed (it ships with the PYNQ board image)"
    try:
        devices = list(pynq.Device.devices)
    except Exception as exc:  # pynq raises several kinds when no device can be probed
        return f"pynq found no device ({type(exc).__name__}: {exc})"
    if not devices:
        return "pynq found no device (not running on a PYNQ board?)"
    return None


def on_board() -> bool:
    """True when running on a PYNQ board (pynq imports and sees a device)."""
    return device_absent_reason() is None


def open_board(package, **options) -> Accelerator:
    """The board driver for ``package``'s interface: :class:`BoardOverlay` for a network's AXI stream,
    :class:`~fastml_lab.overlay.register_board.RegisterBoardOverlay` for a BDT's conifer accelerator."""
    if package.io["interface"] == mf.MEMORY_MAPPED:
        from .register_board import RegisterBoardOverlay

        return RegisterBoardOverlay(package, **options)
    return BoardOverlay(package, **options)


def verify_board(overlay, X, record: bool = True) -> dict:
    """Compare a board overlay with the software overlay on ``X``; record a clean run in the package.

    ``mismatches`` counts output values that differ (:func:`fastml_lab.compare.count_mismatches`).
    """
    from ..compare import count_mismatches
    from .software import SoftwareOverlay

    board = overlay.predict(X)
    with SoftwareOverlay(overlay.package) as software:
        reference = software.predict(X)
    comparison = count_mismatches(board, reference, ("board", "software overlay"))
    mismatches = comparison.mismatches
    result = {
        "events": comparison.events,
        "values": comparison.values,
        "events_differing": comparison.events_differing,
        "mismatches": mismatches,
        "bit_sha256": overlay.package.manifest["bitstream"]["bit"]["sha256"],
        "firmware_digest": overlay.package.firmware_digest,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if record and mismatches == 0:
        mf.write_json_atomic(overlay.package.path / mf.VERIFICATION_FILE, result)
    if mismatches:
        warnings.warn(f"The board disagrees with the emulator on {mismatches} of {comparison.values} "
                      f"output values ({comparison.events_differing} of {comparison.events} events).",
                      stacklevel=3)
    return result


def find_dma(overlay, board: str = DEFAULT_BOARD):
    """(name, driver, ip_dict entry) of the overlay's one AXI DMA, found by the IP type that the
    board table gives for ``board``."""
    prefix = get_board(board).dma_vlnv
    ip_dict = getattr(overlay, "ip_dict", None) or {}
    dmas = [(name, entry) for name, entry in ip_dict.items()
            if str(entry.get("type", "")).startswith(prefix)]
    if len(dmas) != 1:
        types = sorted({str(e.get("type")) for e in ip_dict.values()})
        raise BoardError(f"Expected one AXI DMA ({prefix}*) in the overlay; found "
                         f"{len(dmas)} ({', '.join(n for n, _ in dmas) or 'none'}). IP types "
                         f"present: {', '.join(types) or 'none'}. Is the .hwh beside the .bit?")
    name, entry = dmas[0]
    driver = overlay
    for part in str(entry.get("fullpath", name)).split("/"):
        driver = getattr(driver, part)
    if not (hasattr(driver, "sendchannel") and hasattr(driver, "recvchannel")):
        raise BoardError(f"The DMA {name!r} has no send/receive channels (driver "
                         f"{type(driver).__name__}); pynq did not bind its DMA driver.")
    return name, driver, entry


def max_transfer_bytes(dma, entry: dict) -> int:
    """The largest single transfer: the driver's limit and the HWH's length width, whichever
    is smaller; a safe 14-bit default (with a warning) when neither is known."""
    limits = []
    driver_limit = getattr(dma, "buffer_max_size", None)
    if isinstance(driver_limit, (int, np.integer)) and driver_limit > 0:
        limits.append(int(driver_limit))
    width = (entry.get("parameters") or {}).get("c_sg_length_width")
    if width is not None:
        try:
            limits.append((1 << int(width)) - 1)
        except (TypeError, ValueError):
            pass
    if not limits:
        warnings.warn(f"The DMA's maximum transfer length is unknown; using "
                      f"{SAFE_MAX_TRANSFER_BYTES} bytes. Keep the .hwh beside the .bit.",
                      stacklevel=3)
        return SAFE_MAX_TRANSFER_BYTES
    return min(limits)


class BoardLock:
    """An exclusive ``flock`` on a file naming the holder; one per programmable logic.

    The lock covers the whole PL rather than one bitstream: a second overlay would reprogram the
    fabric under the first one just as surely as a second user of the same overlay.
    """

    def __init__(self, lock_dir=None, key: str = "pynq-pl"):
        folder = Path(lock_dir or os.environ.get(LOCK_ENV_VAR) or tempfile.gettempdir())
        self.path = folder / f"fastml_lab-{key}.lock"
        self._fd = None
        self._finalizer = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str) -> "BoardLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise BoardError(f"Cannot open the board lock {self.path}: {exc}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise BoardError(f"The board is in use: {holder}. Close that overlay there "
                             "(overlay.close() or restart its kernel), then load again. "
                             f"Lock file: {self.path}.") from None
        holder = json.dumps({
            "pid": os.getpid(), "user": _user(), "program": " ".join(sys.argv[:2]) or "python",
            "overlay": what, "since": datetime.datetime.now().isoformat(timespec="seconds"),
        })
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8"), 0)
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._finalizer()  # closes the descriptor exactly once
            self._fd = None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry in some containers
        return str(os.getuid())


class _BoardDriver(Accelerator):
    """What every board driver shares: the lock, verification, the profile's label, closing.

    A driver sets ``measured_on``, holds ``self._lock`` and ``self.timeout_s``, frees its buffers in
    ``_free_buffers`` and adds its own facts in ``_describe_extra``.
    """

    backend = "board"
    measured_on = "the board"

    def verify(self, X, record: bool = True) -> dict:
        """Compare the board with the software overlay on ``X``; record a clean run in the package.

        ``mismatches`` counts output values that differ (:func:`fastml_lab.compare.count_mismatches`).
        """
        return verify_board(self, X, record)

    def describe(self) -> dict:
        info = super().describe()
        info.update({**self._describe_extra(), "timeout_s": self.timeout_s, "lock": str(self._lock.path)})
        return info

    def _describe_extra(self) -> dict:
        return {}

    def profile(self, X, scale: bool = False, repeats: int = 50) -> dict:
        result = super().profile(X, scale=scale, repeats=repeats)
        result["measured_on"] = self.measured_on
        return result

    def _free_buffers(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        try:
            self._free_buffers()
        finally:
            self._lock.release()


class BoardOverlay(_BoardDriver):
    """The package's bitstream on a PYNQ board, driven through its AXI DMA.

    ``timeout_s`` bounds each transfer; ``lock_dir`` holds the board lock (default: the system
    temporary folder); ``overlay_kwargs`` go to ``pynq.Overlay`` unchanged; ``pynq`` replaces the
    pynq module (tests pass a fake one).
    """

    measured_on = "the board, through Python and the AXI DMA"

    def __init__(self, package, timeout_s: float = DEFAULT_TIMEOUT_S, lock_dir=None,
                 overlay_kwargs=None, pynq=None):
        super().__init__(package)
        if package.io["interface"] != mf.STREAM:
            raise BoardError(f"The package {package.name!r} has the {package.io['interface']!r} interface, not "
                             "an AXI stream behind a DMA; open it with fastml_lab.overlay.load().")
        if not package.has_bitstream:
            raise BoardError(board_unavailable_reason(package) or "no bitstream")
        self.timeout_s = float(timeout_s)
        self._pynq = pynq if pynq is not None else import_pynq()
        self._lock = BoardLock(lock_dir).acquire(f"{package.name} ({package.bitstream_path})")
        self._in_buf = self._out_buf = None
        self._buffer_events = 0
        self._fault = None
        try:
            self.overlay = self._pynq.Overlay(str(package.bitstream_path), **(overlay_kwargs or {}))
            self.dma_name, self._dma, entry = find_dma(self.overlay, self.package.board)
            self.max_transfer_bytes = max_transfer_bytes(self._dma, entry)
            self.ip_names = [n for n, e in self.overlay.ip_dict.items()
                             if ":hls:" in str(e.get("type", ""))]
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, FastMLError) or not isinstance(exc, Exception):
                raise
            raise BoardError(f"Loading {package.bitstream_path} failed: "
                             f"{type(exc).__name__}: {exc}") from exc
        if self.max_events_per_transfer < 1:
            self._lock.release()
            raise BoardError(f"One event ({self._event_bytes} bytes) exceeds the DMA's maximum "
                             f"transfer of {self.max_transfer_bytes} bytes.")
        log.info("Board overlay %s: DMA %s, up to %d events per transfer.",
                 package.name, self.dma_name, self.max_events_per_transfer)

    # ------------------------------------------------------------------ sizes and buffers
    @property
    def _event_bytes(self) -> int:
        return max(self.n_inputs, self.n_outputs) * self.word_dtype.itemsize

    @property
    def max_events_per_transfer(self) -> int:
        return self.max_transfer_bytes // self._event_bytes

    def _buffers(self, n_events: int):
        """Input and output DMA buffers for ``n_events``, reused while large enough."""
        if n_events > self._buffer_events:
            self._free_buffers()
            allocate = self._pynq.allocate
            self._in_buf = allocate(shape=(n_events * self.n_inputs,), dtype=self.word_dtype)
            self._out_buf = allocate(shape=(n_events * self.n_outputs,), dtype=self.word_dtype)
            self._buffer_events = n_events
        return self._in_buf, self._out_buf

    def _free_buffers(self) -> None:
        for buf in (self._in_buf, self._out_buf):
            if buf is not None and hasattr(buf, "freebuffer"):
                buf.freebuffer()
        self._in_buf = self._out_buf = None
        self._buffer_events = 0

    # ------------------------------------------------------------------ the transfer
    def _transfer(self, words, n_events):
        if self._fault:
            raise BoardError(f"The DMA failed earlier ({self._fault}); close this overlay and load "
                             "it again (reloading the bitstream resets the DMA and the IP).")
        in_buf, out_buf = self._buffers(n_events)
        n_in = words.size
        n_out = n_events * self.n_outputs
        item = self.word_dtype.itemsize
        in_buf[:n_in] = words
        dma = self._dma
        try:
            dma.recvchannel.transfer(out_buf, 0, n_out * item)  # arm the receiver first
            dma.sendchannel.transfer(in_buf, 0, n_in * item)
        except (RuntimeError, ValueError) as exc:
            raise BoardError(f"The DMA refused a transfer of {n_events} events: {exc}") from exc
        deadline = time.monotonic() + self.timeout_s
        self._wait(dma.sendchannel, "send", deadline, n_events)
        self._wait(dma.recvchannel, "receive", deadline, n_events)
        if hasattr(out_buf, "invalidate"):
            out_buf.invalidate()
        return np.array(out_buf[:n_out], copy=True)

    def _wait(self, channel, what: str, deadline: float, n_events: int) -> None:
        spins = 0
        while True:
            if not channel.running:
                self._fault = f"the {what} channel halted"
                raise BoardError(f"The DMA {what} channel halted during a transfer of {n_events} "
                                 "events (a DMA error: stream length and buffer disagree?).")
            if channel.idle:
                return
            if time.monotonic() > deadline:
                self._fault = f"the {what} channel timed out"
                raise BoardError(f"The DMA {what} channel did not finish a transfer of {n_events} "
                                 f"events within {self.timeout_s:g} s; the IP may be stalled. "
                                 "Close the overlay and load it again.")
            spins += 1
            if spins > 100:
                time.sleep(5e-5)

    def _describe_extra(self) -> dict:
        return {"dma": self.dma_name, "ip": self.ip_names, "max_transfer_bytes": self.max_transfer_bytes}
