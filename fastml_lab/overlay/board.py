"""The PYNQ-Z2 driver for a network: the package's bitstream, its AXI DMA and the IP behind it.

(A BDT's conifer accelerator, driven through its control registers, is
:mod:`fastml_lab.overlay.register_board`; :func:`open_board` picks the driver for a package.)

Needs Python 3.10, numpy and pynq 3.1 (the board image); pynq is imported when a
:class:`BoardOverlay` is created, never at module import. The DMA is found by its IP type in the
overlay's metadata, buffers are allocated once and reused, every wait has a deadline, results are
copied out of the DMA buffer, and an OS file lock keeps a second notebook off the board.

What the drivers do when the board misbehaves (both drivers, through :class:`_BoardDriver`):

* A wait that passes its deadline (a stalled IP, or one that would finish late), a DMA channel that
  halts or reports an error, a receive that ends short of the events sent: BoardError, and the
  overlay refuses every later call until it is closed and loaded again. A late transfer may still
  write into the DMA buffers, so they are never read again; loading again programs the fabric,
  which resets the DMA and the IP. The buffers are freed at ``close()``.
* KeyboardInterrupt (or any other BaseException) during a transfer: the overlay closes itself (its
  buffers freed, the board lock released) and the interrupt goes on; load the package again.
* Loading checks the package's files against the manifest again (the ``.bit``, the ``.hwh`` and the
  emulator data, with the emulator's digest and sizes) and notes the ``.bit`` and ``.hwh``'s file
  status; every transfer compares it (two ``stat`` calls) and ``verify()`` hashes both files
  again, so the overlay never runs, or records a verification, under a manifest that no longer
  describes the files it loaded.
* Another process holding the board lock: BoardError naming it (its pid, user, program and
  overlay), at once or after ``lock_timeout_s``.
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
#: How long loading waits for another user's board lock before giving up (0: refuse at once).
DEFAULT_LOCK_TIMEOUT_S = 0.0
LOCK_ENV_VAR = "FASTML_LAB_LOCK_DIR"
_LOCK_POLL_S = 0.05


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

    def acquire(self, what: str, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> "BoardLock":
        """Take the lock for ``what``, waiting up to ``timeout_s`` for another holder to let go."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise BoardError(f"Cannot open the board lock {self.path}: {exc}.") from None
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
                        waited = f" (waited {timeout_s:g} s)" if timeout_s > 0 else ""
                        raise BoardError(f"The board is in use: {holder}{waited}. Close that overlay "
                                         "there (overlay.close() or restart its kernel), then load "
                                         f"again. Lock file: {self.path}.") from None
                    time.sleep(min(_LOCK_POLL_S, max(0.0, deadline - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
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
    """What every board driver shares: the lock, the package's files, faults, verification, the
    profile's label, closing.

    A driver sets ``measured_on``, holds ``self._lock`` and ``self.timeout_s``, calls
    :meth:`_check_package` once the lock is held and :meth:`_note_loaded` once the bitstream is
    loaded, starts each transfer with :meth:`_check_usable`, sets ``self._fault`` when the hardware
    is left in an unknown state, calls :meth:`_interrupted` when a transfer is interrupted, frees its
    buffers in ``_free_buffers`` and adds its own facts in ``_describe_extra``.
    """

    backend = "board"
    measured_on = "the board"
    #: What failed, in the words of "The ... failed earlier".
    _fault_subject = "The board"
    _fault = None
    _file_stats = None
    _loaded_files = None

    # ------------------------------------------------------------------ the package's files
    def _bitstream_files(self) -> list:
        """The ``.bit`` and ``.hwh`` (resolved once: each transfer stats them)."""
        if self._loaded_files is None:
            self._loaded_files = [self.package.bitstream_path, self.package.hwh_path]
        return self._loaded_files

    def _check_package(self) -> None:
        """The package's files against its manifest once more, now that the board is ours: the
        ``.bit``, the ``.hwh`` and the emulator data (checksums), and the emulator's digest and sizes.

        The package may have been opened long before; a bitstream the manifest does not describe must
        not reach the fabric. Raises IntegrityError naming the file.
        """
        from .software import load_firmware

        self._file_stats = self._stat_files()
        mf.check_files(self.package.path, self.package.manifest)
        load_firmware(self.package)

    def _note_loaded(self) -> None:
        """After pynq loaded the bitstream: the files must still be those checked before."""
        if self._stat_files() != self._file_stats:
            raise BoardError(f"The bitstream or .hwh of {self.package.path} changed while it was being "
                             "loaded; load the package again once it stays unchanged.")

    def _stat_files(self) -> dict:
        stats = {}
        for path in self._bitstream_files():
            try:
                st = os.stat(path)
                stats[str(path)] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            except OSError as exc:
                stats[str(path)] = type(exc).__name__
        return stats

    def _check_files_unchanged(self, full: bool = False) -> None:
        """BoardError unless the ``.bit`` and ``.hwh`` are still the files that were loaded: their
        status (device, inode, size, times), and with ``full`` their sha256 against the manifest."""
        now = self._stat_files()
        changed = [path for path, st in now.items() if st != self._file_stats.get(path)]
        if full and not changed:
            for role, path in zip(("bit", "hwh"), self._bitstream_files()):
                if mf.sha256_file(path) != self.package.manifest["bitstream"][role]["sha256"]:
                    changed.append(str(path))
        if changed:
            self._fault = f"{', '.join(changed)} changed on disk after loading"
            raise BoardError(f"{' and '.join(changed)} changed on disk after the overlay loaded it: the "
                             "fabric runs the design that was loaded, which the package may no longer "
                             "describe. Close the overlay and load the package again (its files are "
                             "checked against the manifest then).")

    def _check_usable(self) -> None:
        """Before a transfer: no earlier fault, and the loaded files unchanged."""
        if self._fault:
            raise BoardError(f"{self._fault_subject} failed earlier ({self._fault}); close this overlay "
                             "and load it again (reloading the bitstream resets the DMA and the IP).")
        self._check_files_unchanged()

    def _interrupted(self, exc: BaseException) -> None:
        """A transfer ended by KeyboardInterrupt (or another BaseException): the hardware's state is
        unknown, so the overlay closes (buffers freed, lock released); the caller re-raises."""
        log.warning("%s interrupted a transfer on %s; the overlay is closed, load it again.",
                    type(exc).__name__, self.name)
        self._fault = f"a transfer was interrupted ({type(exc).__name__})"
        self.close()

    # ------------------------------------------------------------------ buffers
    def _buffers(self, n_events: int):
        """Input and output buffers (contiguous memory the IP reads and writes) for ``n_events``,
        reused while large enough."""
        if n_events > self._buffer_events:
            self._free_buffers()
            allocate = self._pynq.allocate
            try:
                self._in_buf = allocate(shape=(n_events * self.n_inputs,), dtype=self.word_dtype)
                self._out_buf = allocate(shape=(n_events * self.n_outputs,), dtype=self.word_dtype)
            except (MemoryError, RuntimeError, OSError, ValueError) as exc:
                self._free_buffers()
                need = n_events * (self.n_inputs + self.n_outputs) * self.word_dtype.itemsize
                raise BoardError(
                    f"Could not allocate the {need:,} bytes of contiguous memory that {n_events:,} events "
                    f"need ({exc}). Close other overlays or restart their kernels to free the board's "
                    "contiguous memory, or pass fewer events per call.") from exc
            self._buffer_events = n_events
        return self._in_buf, self._out_buf

    def _free_buffers(self) -> None:
        buffers = (self._in_buf, self._out_buf)
        self._in_buf = self._out_buf = None
        self._buffer_events = 0
        for buf in buffers:
            if buf is not None and hasattr(buf, "freebuffer"):
                buf.freebuffer()

    # ------------------------------------------------------------------ the API
    def verify(self, X, record: bool = True) -> dict:
        """Compare the board with the software overlay on ``X``; record a clean run in the package.

        ``mismatches`` counts output values that differ (:func:`fastml_lab.compare.count_mismatches`).
        The ``.bit`` and ``.hwh`` are hashed again first: a record is only written for the files
        the manifest describes.
        """
        self._check_open()
        self._check_files_unchanged(full=True)
        return verify_board(self, X, record)

    def describe(self) -> dict:
        info = super().describe()
        info.update({**self._describe_extra(), "timeout_s": self.timeout_s, "lock": str(self._lock.path),
                     "fault": self._fault})
        return info

    def _describe_extra(self) -> dict:
        return {}

    def profile(self, X, scale: bool = False, repeats: int = 50) -> dict:
        result = super().profile(X, scale=scale, repeats=repeats)
        result["measured_on"] = self.measured_on
        return result

    def _close(self) -> None:
        try:
            self._free_buffers()
        finally:
            self._lock.release()


class BoardOverlay(_BoardDriver):
    """The package's bitstream on a PYNQ board, driven through its AXI DMA.

    ``timeout_s`` bounds each transfer; ``lock_dir`` holds the board lock (default: the system
    temporary folder) and ``lock_timeout_s`` is how long to wait for another user's lock;
    ``overlay_kwargs`` go to ``pynq.Overlay`` unchanged; ``pynq`` replaces the pynq module (tests
    pass a fake one).
    """

    measured_on = "the board, through Python and the AXI DMA"
    _fault_subject = "The DMA"

    def __init__(self, package, timeout_s: float = DEFAULT_TIMEOUT_S, lock_dir=None,
                 overlay_kwargs=None, pynq=None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S):
        super().__init__(package)
        if package.io["interface"] != mf.STREAM:
            raise BoardError(f"The package {package.name!r} has the {package.io['interface']!r} interface, not "
                             "an AXI stream behind a DMA; open it with fastml_lab.overlay.load().")
        if not package.has_bitstream:
            raise BoardError(board_unavailable_reason(package) or "no bitstream")
        self.timeout_s = float(timeout_s)
        self._pynq = pynq if pynq is not None else import_pynq()
        self._lock = BoardLock(lock_dir).acquire(f"{package.name} ({package.bitstream_path})", lock_timeout_s)
        self._in_buf = self._out_buf = None
        self._buffer_events = 0
        self._fault = None
        try:
            self._check_package()
            self.overlay = self._pynq.Overlay(str(package.bitstream_path), **(overlay_kwargs or {}))
            self._note_loaded()
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

    # ------------------------------------------------------------------ sizes
    @property
    def _event_bytes(self) -> int:
        return max(self.n_inputs, self.n_outputs) * self.word_dtype.itemsize

    @property
    def max_events_per_transfer(self) -> int:
        return self.max_transfer_bytes // self._event_bytes

    # ------------------------------------------------------------------ the transfer
    def _transfer(self, words, n_events):
        self._check_usable()
        in_buf, out_buf = self._buffers(n_events)
        n_in = words.size
        n_out = n_events * self.n_outputs
        item = self.word_dtype.itemsize
        in_buf[:n_in] = words
        dma = self._dma
        try:
            try:
                dma.recvchannel.transfer(out_buf, 0, n_out * item)  # arm the receiver first
                dma.sendchannel.transfer(in_buf, 0, n_in * item)
            except (RuntimeError, ValueError) as exc:
                self._fault = f"the DMA refused a transfer ({exc})"
                raise BoardError(f"The DMA refused a transfer of {n_events} events: {exc}. Close the "
                                 "overlay and load it again.") from exc
            deadline = time.monotonic() + self.timeout_s
            self._wait(dma.sendchannel, "send", deadline, n_events)
            self._wait(dma.recvchannel, "receive", deadline, n_events, n_out * item)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                self._interrupted(exc)
            raise
        if hasattr(out_buf, "invalidate"):
            out_buf.invalidate()
        return np.array(out_buf[:n_out], copy=True)

    def _wait(self, channel, what: str, deadline: float, n_events: int, nbytes=None) -> None:
        """Poll ``channel`` until idle, an error or ``deadline``; then, for a receive (``nbytes``),
        check the bytes it wrote: the S2MM length register (pynq's ``transferred``) holds the bytes
        received up to the IP's TLAST."""
        spins = 0
        while True:
            error = getattr(channel, "error", None)
            if error:  # pynq: a bool from the status register's error bits; the software DMA: its text
                self._fault = f"the {what} channel reported an error"
                detail = f" ({error})" if isinstance(error, str) else ""
                raise BoardError(f"The DMA {what} channel reported an error{detail} during a transfer of "
                                 f"{n_events} events (an internal error: the stream's length and the buffer "
                                 "disagree; a slave or decode error: the buffer's address is wrong). Close "
                                 "the overlay and load it again; if it recurs, check that the bitstream "
                                 "belongs to this package.")
            if not channel.running:
                self._fault = f"the {what} channel halted"
                raise BoardError(f"The DMA {what} channel halted during a transfer of {n_events} "
                                 "events (a DMA error: stream length and buffer disagree?). Close the "
                                 "overlay and load it again.")
            if channel.idle:
                break
            if time.monotonic() > deadline:
                self._fault = f"the {what} channel timed out"
                raise BoardError(f"The DMA {what} channel did not finish a transfer of {n_events} "
                                 f"events within {self.timeout_s:g} s; the IP may be stalled. "
                                 "Close the overlay and load it again (a late transfer may still "
                                 "write into the buffers, so this overlay takes no more calls), or "
                                 "pass a larger timeout_s for very large batches.")
            spins += 1
            if spins > 100:
                time.sleep(5e-5)
        try:
            channel.wait()  # idle already: returns at once, raising on the error bits, and sets transferred
        except RuntimeError as exc:
            self._fault = f"the {what} channel reported an error"
            raise BoardError(f"The DMA {what} channel reported an error during a transfer of {n_events} "
                             f"events: {exc}. Close the overlay and load it again.") from exc
        moved = getattr(channel, "transferred", None)
        if nbytes is not None and isinstance(moved, (int, np.integer)) and moved != nbytes:
            self._fault = f"the {what} channel moved {moved} of {nbytes} bytes"
            raise BoardError(f"The DMA {what} channel moved {int(moved)} bytes of a {nbytes}-byte transfer "
                             f"of {n_events} events: the IP ended its stream early, so the "
                             "outputs are incomplete and none are returned. Close the overlay and load "
                             "it again; if it recurs, the bitstream does not compute what the package "
                             "describes (package the project again from the build that made the .bit).")

    def _describe_extra(self) -> dict:
        return {"dma": self.dma_name, "ip": self.ip_names, "max_transfer_bytes": self.max_transfer_bytes}
