"""The PYNQ-Z2 driver for a network: the package's bitstream, its AXI DMA and the IP behind it.

(A BDT's conifer accelerator, driven through its control registers, is
:mod:`fastml_lab.overlay.register_board`; :func:`open_board` picks the driver for a package.)

Needs Python 3.10, numpy and pynq 3.1 (the board image); pynq is imported when a
:class:`BoardOverlay` is created, never at module import. The DMA is found by its IP type in the
overlay's metadata, buffers are allocated once and reused, every wait has a deadline, results are
copied out of the DMA buffer, and an OS file lock keeps a second notebook off the board. What both
drivers share, and what they do when the board misbehaves, is :mod:`fastml_lab.overlay.driver`.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from ..boards import get_board
from ..exceptions import BoardError
from . import manifest as mf
from .accelerator import Accelerator
from .driver import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_TIMEOUT_S, BoardDriver, find_ip

log = logging.getLogger(__name__)

#: Used when neither the driver nor the HWH states the DMA's length register width (14 bits).
SAFE_MAX_TRANSFER_BYTES = (1 << 14) - 1


def open_board(package, **options) -> Accelerator:
    """The board driver for ``package``'s interface: :class:`BoardOverlay` for a network's AXI stream,
    :class:`~fastml_lab.overlay.register_board.RegisterBoardOverlay` for a BDT's conifer accelerator."""
    if package.io["interface"] == mf.MEMORY_MAPPED:
        from .register_board import RegisterBoardOverlay

        return RegisterBoardOverlay(package, **options)
    return BoardOverlay(package, **options)


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


class BoardOverlay(BoardDriver):
    """The package's bitstream on a PYNQ board, driven through its AXI DMA.

    ``timeout_s`` bounds each transfer; ``lock_dir`` holds the board lock (default: the system
    temporary folder) and ``lock_timeout_s`` is how long to wait for another user's lock;
    ``overlay_kwargs`` go to ``pynq.Overlay`` unchanged; ``pynq`` replaces the pynq module (tests
    pass a fake one).
    """

    measured_on = "the board, through Python and the AXI DMA"
    interface = mf.STREAM
    interface_in_words = "an AXI stream behind a DMA"
    _fault_subject = "The DMA"

    def __init__(self, package, timeout_s: float = DEFAULT_TIMEOUT_S, lock_dir=None,
                 overlay_kwargs=None, pynq=None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S):
        super().__init__(package)
        self._load(timeout_s, lock_dir, overlay_kwargs, pynq, lock_timeout_s)
        log.info("Board overlay %s: DMA %s, up to %d events per transfer.",
                 package.name, self.dma_name, self.max_events_per_transfer)

    def _bind(self) -> None:
        self.dma_name, self._dma, entry = find_ip(self.overlay, get_board(self.package.board).dma_vlnv,
                                                  "AXI DMA", ("sendchannel", "recvchannel"))
        self.max_transfer_bytes = max_transfer_bytes(self._dma, entry)
        self.ip_names = [n for n, e in self.overlay.ip_dict.items()
                         if ":hls:" in str(e.get("type", ""))]
        if self.max_events_per_transfer < 1:
            raise BoardError(f"One event ({self._event_bytes} bytes) exceeds the DMA's maximum "
                             f"transfer of {self.max_transfer_bytes} bytes.")

    # ------------------------------------------------------------------ sizes
    @property
    def _event_bytes(self) -> int:
        return max(self.n_inputs, self.n_outputs) * self.word_dtype.itemsize

    @property
    def max_events_per_transfer(self) -> int:
        return self.max_transfer_bytes // self._event_bytes

    # ------------------------------------------------------------------ the transfer
    def _run_ip(self, in_buf, out_buf, n_in: int, n_out: int, n_events: int) -> None:
        item = self.word_dtype.itemsize
        dma = self._dma
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

    def _wait(self, channel, what: str, deadline: float, n_events: int, nbytes=None) -> None:
        """Poll ``channel`` until idle, an error or ``deadline``; then, for a receive (``nbytes``),
        check the bytes it wrote: the S2MM length register (pynq's ``transferred``) holds the bytes
        received up to the IP's TLAST."""

        def idle() -> bool:
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
            return channel.idle

        if not self._poll(idle, deadline):
            self._fault = f"the {what} channel timed out"
            raise BoardError(f"The DMA {what} channel did not finish a transfer of {n_events} "
                             f"events within {self.timeout_s:g} s; the IP may be stalled. "
                             "Close the overlay and load it again (a late transfer may still "
                             "write into the buffers, so this overlay takes no more calls), or "
                             "pass a larger timeout_s for very large batches.")
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
