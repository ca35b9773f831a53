"""The board driver for a BDT: conifer's Zynq accelerator, driven through its control registers.

conifer's accelerator (``myproject_accelerator(int N, int& n_f, int& n_c, float* x, float* score)``)
has no stream and no DMA: it reads its inputs from a buffer in the processor's memory and writes its
scores to another, over its own AXI master (``m_axi``), and is started through an AXI-lite block of
registers (``s_axilite``). One transfer is::

    x buffer   <- N events of n_inputs float32 words (flushed from the cache)
    N, x, score registers <- the event count and the buffers' physical addresses
    CTRL       <- ap_start; then CTRL is read until ap_done (or ap_idle once ap_start has cleared)
    score buffer -> N events of n_outputs float32 words (cache invalidated, copied out)

The register offsets and control bits are the manifest's (``io.registers``, ``io.control_bits``);
when pynq's register map of the IP (from the ``.hwh``) names them, they must agree. Unlike conifer's
own ``ZynqDriver``, every wait has a deadline, buffers are reused and freed on every path, the board
lock of :mod:`fastml_lab.overlay.driver` keeps a second user off the fabric, and the IP's own
``n_f``/``n_c`` are checked against the package when it loads. The score buffer is filled with NaN
(which no fixed-point score converts to) before each run, so a run that writes fewer scores than it
was asked for is a BoardError, never stale or partial results. Faults (deadlines, register access
errors, interrupts, files changed on disk) are handled as :mod:`fastml_lab.overlay.driver` describes.

Needs Python 3.10, numpy and pynq 3.1 (the board image); pynq is imported when the overlay is
created, never at module import.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..exceptions import BoardError, FastMLError
from . import manifest as mf
from .driver import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_TIMEOUT_S, BoardDriver, find_ip

log = logging.getLogger(__name__)

#: Events per transfer unless told otherwise: 64 Ki events of 16 features is a 4 MiB input buffer.
DEFAULT_MAX_EVENTS = 1 << 16
#: ``N`` is a C ``int`` in the accelerator.
MAX_EVENTS_LIMIT = (1 << 31) - 1


class RegisterBoardOverlay(BoardDriver):
    """A BDT package's bitstream on a PYNQ board: conifer's accelerator behind its control registers.

    ``timeout_s`` bounds each run of the IP; ``max_events`` is the largest batch per run (the
    buffers' size); ``lock_dir`` holds the board lock and ``lock_timeout_s`` is how long to wait for
    another user's lock; ``overlay_kwargs`` go to ``pynq.Overlay``; ``pynq`` replaces the pynq module
    (tests pass a fake one).
    """

    measured_on = "the board, through Python and the accelerator's control registers"
    interface = mf.MEMORY_MAPPED
    interface_in_words = "conifer's register-driven accelerator"
    _fault_subject = "The accelerator"

    def __init__(self, package, timeout_s: float = DEFAULT_TIMEOUT_S, lock_dir=None,
                 overlay_kwargs=None, pynq=None, max_events: int = DEFAULT_MAX_EVENTS,
                 lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S):
        super().__init__(package)
        if not isinstance(max_events, (int, np.integer)) or not 1 <= max_events <= MAX_EVENTS_LIMIT:
            raise BoardError(f"max_events must be between 1 and {MAX_EVENTS_LIMIT} (the IP's N is an int); "
                             f"got {max_events!r}.")
        io = package.io
        self.max_events = int(max_events)
        self.registers = dict(io["registers"])
        self.address_bits = int(io["address_bits"])
        bits = io["control_bits"]
        self._start, self._done, self._idle = (1 << bits["ap_start"], 1 << bits["ap_done"],
                                               1 << bits["ap_idle"])
        self._load(timeout_s, lock_dir, overlay_kwargs, pynq, lock_timeout_s)
        log.info("Board overlay %s: accelerator %s, up to %d events per run.",
                 package.name, self.ip_name, self.max_events)

    def _bind(self) -> None:
        # Any version: a bitstream built with another conifer release has another one.
        type_prefix = self.package.io["ip"]["vlnv"].rsplit(":", 1)[0] + ":"
        self.ip_name, self._ip, self.ip_entry = find_ip(self.overlay, type_prefix, "conifer accelerator",
                                                        ("read", "write"))
        self._check_register_map()
        self._check_sizes()

    # ------------------------------------------------------------------ loading checks
    def _check_register_map(self) -> None:
        """pynq's register map (from the .hwh), where it has one, must put every register where the
        manifest does: otherwise the manifest does not describe this bitstream."""
        register_map = getattr(self._ip, "register_map", None)
        if register_map is None:
            log.warning("The accelerator %s has no register map (no .hwh?); using the manifest's offsets.",
                        self.ip_name)
            return
        wrong = []
        for name, offset in self.registers.items():
            register = getattr(register_map, name, None)
            address = getattr(register, "address", None)
            if address is None:
                wrong.append(f"{name} (missing from the IP's register map)")
            elif int(address) != offset:
                wrong.append(f"{name} at {int(address):#x}, not {offset:#x}")
        if wrong:
            raise BoardError(f"The accelerator {self.ip_name!r} does not have the registers the manifest of "
                             f"{self.package.name!r} describes: {'; '.join(wrong)}. The package was made for "
                             "another build; package the project again from the build that made this .bit.")

    def _check_sizes(self) -> None:
        """A run of zero events (the IP only reports ``n_f`` and ``n_c``), as conifer's driver does at
        load; the IP must compute the package's numbers of inputs and outputs."""
        self._run(0, 0, 0)
        n_f, n_c = self._read("n_f"), self._read("n_c")
        if (n_f, n_c) != (self.n_inputs, self.n_outputs):
            raise BoardError(f"The accelerator reports {n_f} features and {n_c} scores; the package "
                             f"{self.package.name!r} has {self.n_inputs} inputs and {self.n_outputs} outputs. "
                             "The .bit belongs to another model; package the project again.")

    # ------------------------------------------------------------------ registers
    def _read(self, name: str) -> int:
        return int(self._ip.read(self.registers[name]))

    def _write(self, name: str, value: int) -> None:
        self._ip.write(self.registers[name], int(value))

    def _write_address(self, name: str, address: int) -> None:
        address = int(address)
        if address < 0 or address >> self.address_bits:
            raise BoardError(f"The {name} buffer lies at {address:#x}, beyond the accelerator's "
                             f"{self.address_bits}-bit addresses; the board's memory allocator gave an "
                             "address the IP cannot reach.")
        self._ip.write(self.registers[name], address & 0xFFFFFFFF)
        if self.address_bits == 64:
            self._ip.write(self.registers[name] + 4, address >> 32)

    def _run(self, n_events: int, x_address: int, score_address: int) -> None:
        """One run of the IP: registers, ap_start, and a wait for ap_done bounded by ``timeout_s``."""
        ctrl = self._read("CTRL")
        if not ctrl & self._idle:
            self._fault = "the accelerator was busy before a run"
            raise BoardError(f"The accelerator {self.ip_name!r} is not idle (control register {ctrl:#x}) "
                             "before a run; close the overlay and load it again (reloading the bitstream "
                             "resets the IP).")
        self._write("N", n_events)
        self._write_address("x", x_address)
        self._write_address("score", score_address)
        self._write("CTRL", self._start)

        def finished() -> bool:
            nonlocal ctrl
            ctrl = self._read("CTRL")
            # ap_done clears when read; ap_idle with ap_start cleared also means the run is over.
            return bool(ctrl & self._done or (ctrl & self._idle and not ctrl & self._start))

        if not self._poll(finished, time.monotonic() + self.timeout_s):
            self._fault = "the accelerator timed out"
            raise BoardError(f"The accelerator {self.ip_name!r} did not finish a run of {n_events} events "
                             f"within {self.timeout_s:g} s (control register {ctrl:#x}); the IP may be "
                             "stalled. Close the overlay and load it again (reloading the bitstream "
                             "resets the IP), or pass a larger timeout_s for very large batches.")

    # ------------------------------------------------------------------ sizes
    @property
    def max_events_per_transfer(self) -> int:
        return self.max_events

    # ------------------------------------------------------------------ the transfer
    def _run_ip(self, in_buf, out_buf, n_in: int, n_out: int, n_events: int) -> None:
        out_buf[:n_out] = np.nan  # what the IP does not write stays NaN
        for buf in (in_buf, out_buf):  # the NaNs too: a dirty cache line must not land on the scores later
            if hasattr(buf, "flush"):
                buf.flush()
        try:
            self._run(n_events, in_buf.physical_address, out_buf.physical_address)
        except FastMLError:
            raise
        except Exception as exc:  # pynq's MMIO (or the memory behind it) failed
            self._fault = f"a register access failed ({type(exc).__name__}: {exc})"
            raise BoardError(f"Driving the accelerator {self.ip_name!r} failed during a run of {n_events} "
                             f"events: {type(exc).__name__}: {exc}. Close the overlay and load it again "
                             "(reloading the bitstream resets the IP).") from exc

    def _transfer(self, words, n_events):
        scores = super()._transfer(words, n_events)
        unwritten = int(np.count_nonzero(np.isnan(scores)))
        if unwritten:
            n_out = scores.size
            self._fault = f"a run left {unwritten} of {n_out} scores unwritten"
            raise BoardError(f"The accelerator {self.ip_name!r} reported a run of {n_events} events done but "
                             f"wrote only {n_out - unwritten} of its {n_out} scores; none are returned. Close "
                             "the overlay and load it again; if it recurs, the bitstream does not compute what "
                             "the package describes (package the project again from the build that made the "
                             ".bit).")
        return scores

    def _describe_extra(self) -> dict:
        return {"ip": [self.ip_name], "registers": dict(self.registers)}
