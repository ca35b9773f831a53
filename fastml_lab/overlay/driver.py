"""What both PYNQ board drivers share: pynq, board detection, the board lock, the package's files,
buffers, deadlines and faults.

:class:`BoardDriver` is the base of :class:`~fastml_lab.overlay.board.BoardOverlay` (a network's AXI
DMA) and :class:`~fastml_lab.overlay.register_board.RegisterBoardOverlay` (a BDT's conifer
accelerator). Needs Python 3.10 and numpy; pynq is imported when a driver is created, never at module
import.

What the drivers do when the board misbehaves:

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

from ..exceptions import BoardError, FastMLError
from . import manifest as mf
from .accelerator import Accelerator

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
#: How long loading waits for another user's board lock before giving up (0: refuse at once).
DEFAULT_LOCK_TIMEOUT_S = 0.0
LOCK_ENV_VAR = "FASTML_LAB_LOCK_DIR"
_LOCK_POLL_S = 0.05
#: A wait polls without sleeping this many times, then sleeps this long between polls.
_BUSY_POLLS = 100
_POLL_SLEEP_S = 5e-5


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


def find_ip(overlay, type_prefix: str, what: str, members: tuple = ()):
    """(name, driver, ip_dict entry) of the overlay's one IP whose type starts with ``type_prefix``,
    its driver reached along the entry's ``fullpath``. BoardError unless there is exactly one and
    pynq bound it a driver with ``members``; ``what`` names the IP in the messages."""
    ip_dict = getattr(overlay, "ip_dict", None) or {}
    found = [(name, entry) for name, entry in ip_dict.items()
             if str(entry.get("type", "")).startswith(type_prefix)]
    if len(found) != 1:
        types = sorted({str(e.get("type")) for e in ip_dict.values()})
        raise BoardError(f"Expected one {what} ({type_prefix}*) in the overlay; found "
                         f"{len(found)} ({', '.join(n for n, _ in found) or 'none'}). IP types "
                         f"present: {', '.join(types) or 'none'}. Is the .hwh beside the .bit?")
    name, entry = found[0]
    driver = overlay
    for part in str(entry.get("fullpath", name)).split("/"):
        driver = getattr(driver, part)
    missing = [member for member in members if not hasattr(driver, member)]
    if missing:
        raise BoardError(f"The {what} {name!r} has no {' or '.join(missing)} (driver "
                         f"{type(driver).__name__}); pynq did not bind its driver to it.")
    return name, driver, entry


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


class BoardDriver(Accelerator):
    """What every board driver shares: loading under the board lock, the package's files, buffers,
    deadlines, faults, verification, the profile's label, closing.

    A driver names its ``interface``, checks its own options and calls :meth:`_load`, which calls its
    ``_bind`` to find and check the IP; its ``_run_ip`` has the IP process one batch (waiting with
    :meth:`_poll`); it sets ``self._fault`` when the hardware is left in an unknown state and adds its
    own facts in ``_describe_extra``.
    """

    backend = "board"
    measured_on = "the board"
    #: The manifest's ``io.interface`` the driver runs, and what that is, in words.
    interface = None
    interface_in_words = "a board interface"
    #: What failed, in the words of "The ... failed earlier".
    _fault_subject = "The board"
    _fault = None
    _file_stats = None
    _loaded_files = None
    _in_buf = _out_buf = None
    _buffer_events = 0

    def __init__(self, package):
        super().__init__(package)
        interface = package.io["interface"]
        if interface != self.interface:
            raise BoardError(f"The package {package.name!r} has the {interface!r} interface, not "
                             f"{self.interface_in_words}; open it with fastml_lab.overlay.load().")
        if not package.has_bitstream:
            raise BoardError(board_unavailable_reason(package) or "no bitstream")

    # ------------------------------------------------------------------ loading
    def _load(self, timeout_s: float, lock_dir, overlay_kwargs, pynq, lock_timeout_s: float) -> None:
        """Take the board lock, check the package's files, load its bitstream and :meth:`_bind` the IP.
        Any failure releases the lock; one that is not fastml_lab's own becomes a BoardError."""
        package = self.package
        self.timeout_s = float(timeout_s)
        self._pynq = pynq if pynq is not None else import_pynq()
        self._lock = BoardLock(lock_dir).acquire(f"{package.name} ({package.bitstream_path})", lock_timeout_s)
        try:
            self._check_package()
            self.overlay = self._pynq.Overlay(str(package.bitstream_path), **(overlay_kwargs or {}))
            self._note_loaded()
            self._bind()
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, FastMLError) or not isinstance(exc, Exception):
                raise
            raise BoardError(f"Loading {package.bitstream_path} failed: "
                             f"{type(exc).__name__}: {exc}") from exc

    def _bind(self) -> None:
        """Find the driver's IP in ``self.overlay`` and check it against the package."""
        raise NotImplementedError

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

    # ------------------------------------------------------------------ the transfer
    def _transfer(self, words, n_events):
        """The words into the input buffer, :meth:`_run_ip`, the outputs copied out of the output
        buffer; an interrupt closes the overlay."""
        self._check_usable()
        in_buf, out_buf = self._buffers(n_events)
        n_out = n_events * self.n_outputs
        in_buf[:words.size] = words
        try:
            self._run_ip(in_buf, out_buf, words.size, n_out, n_events)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                self._interrupted(exc)
            raise
        if hasattr(out_buf, "invalidate"):
            out_buf.invalidate()
        return np.array(out_buf[:n_out], copy=True)

    def _run_ip(self, in_buf, out_buf, n_in: int, n_out: int, n_events: int) -> None:
        """Have the IP read ``n_in`` words of ``in_buf`` and write ``n_out`` words of ``out_buf``,
        within ``timeout_s``."""
        raise NotImplementedError

    @staticmethod
    def _poll(finished, deadline: float) -> bool:
        """Call ``finished()`` until it is true (True) or ``deadline`` has passed (False); busy at
        first, then sleeping briefly between calls."""
        polls = 0
        while not finished():
            if time.monotonic() > deadline:
                return False
            polls += 1
            if polls > _BUSY_POLLS:
                time.sleep(_POLL_SLEEP_S)
        return True

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

