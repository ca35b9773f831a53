"""A software AXI DMA for the board driver's tests: pynq's DMA interface with the emulator as the IP.

It lives with the tests because only they use it: tests/test_board_driver.py runs the real PYNQ-Z2
driver (``fastml_lab/overlay/board.py``) against a fake ``pynq`` whose DMA is this class. The
package's software overlay needs no DMA (it hands checked events to the emulator directly).

``SoftwareDMA(firmware)`` offers ``sendchannel`` / ``recvchannel`` with ``transfer(array, start=0,
nbytes=0)``, ``wait()``, ``idle``, ``running``, ``start()``, ``stop()`` and pynq's length check. The
modelled IP behaves like hls4ml's VivadoAccelerator stream wrapper: it consumes ``n_inputs`` words
per event, casts each word to the input type, and writes ``n_outputs`` words per event, raising
TLAST on the last output word of an event whose input carried TLAST. A receive buffer shorter than
the packet halts the channel as the real engine does. After ``wait()`` a channel's ``transferred``
holds the bytes it moved (for S2MM: up to TLAST), as pynq 3.1 reads them from the length register.

Faults, one knob each, for tests/test_board_faults.py:

* ``delay_s``: every transfer completes that long after it starts (late when beyond the driver's
  deadline; the receive buffer is still written when it completes);
* ``stall=True``: the IP never answers;
* ``short_words=k``: the IP raises TLAST ``k`` words before the end of each packet and drops the
  rest, so a receive ends early with ``transferred`` short;
* ``fail={"send"|"receive": text}``: that channel's next transfer ends in a DMA error: the channel
  halts with ``error`` set (pynq: the status register's error bits) and ``wait()`` raises;
* ``interrupt={"send"|"receive": n}``: KeyboardInterrupt on the ``n``-th poll of that channel's
  ``idle`` (or in ``wait()``) while a transfer is in flight, as Ctrl-C during the driver's wait.

:func:`make_fake_pynq` wraps it in a fake ``pynq`` whose allocator counts live buffers.
"""

from __future__ import annotations

import time
import types

import numpy as np

from fastml_lab.overlay.software import stream_ip

#: Largest transfer of hls4ml's PYNQ-Z2 design (``c_sg_length_width`` = 26).
HLS4ML_MAX_TRANSFER_BYTES = (1 << 26) - 1


def _byte_view(array) -> np.ndarray:
    flat = np.asarray(array).reshape(-1)
    if not flat.flags.c_contiguous:
        raise ValueError("DMA buffers must be contiguous (use pynq.allocate).")
    return flat.view(np.uint8)


class _StreamIP:
    """The IP between the two channels: input FIFO -> emulator -> output FIFO."""

    def __init__(self, firmware, word_dtype, stall, short_words=0):
        self.firmware = firmware
        self.word_dtype = np.dtype(word_dtype)
        self.stall = stall
        self.short_words = short_words
        self.pending = np.empty(0, dtype=self.word_dtype)
        self.pending_last = False
        self.out_words = []
        self.out_last = []

    def push(self, words: np.ndarray) -> None:
        self.pending = np.concatenate([self.pending, words.astype(self.word_dtype)])
        self.pending_last = True  # the DMA raises TLAST on the last word of a transfer
        self._run()

    def _run(self) -> None:
        if self.stall:
            return
        n_in = self.firmware.n_inputs
        n_events = self.pending.size // n_in
        if n_events == 0:
            return
        words = self.pending[:n_events * n_in]
        self.pending = self.pending[n_events * n_in:]
        last_event_has_tlast = self.pending_last and self.pending.size == 0
        out = stream_ip(self.firmware, words, self.word_dtype)
        if self.short_words:
            out = out[:max(1, out.size - self.short_words)]
        last = np.zeros(out.size, dtype=bool)
        if last_event_has_tlast:
            last[-1] = True
            self.pending_last = False
        self.out_words.append(out)
        self.out_last.append(last)

    def pull(self, max_words: int):
        """Up to ``max_words`` words, stopping after a TLAST; returns (words, saw_last)."""
        if not self.out_words:
            return np.empty(0, dtype=self.word_dtype), False
        words = np.concatenate(self.out_words)
        last = np.concatenate(self.out_last)
        hits = np.flatnonzero(last[:max_words])
        take = hits[0] + 1 if hits.size else min(max_words, words.size)
        self.out_words = [words[take:]] if take < words.size else []
        self.out_last = [last[take:]] if take < words.size else []
        return words[:take], bool(hits.size)


class SoftwareChannel:
    """One direction of :class:`SoftwareDMA` (``MM2S`` sends, ``S2MM`` receives)."""

    def __init__(self, dma, direction: str, max_size: int):
        self._dma = dma
        self.direction = direction
        self.max_size = max_size
        self._running = True
        self._busy = False
        self._ready_at = 0.0
        self._target = None  # S2MM: [byte view, start, nbytes, written, complete]
        self._nbytes = 0
        self.bytes_received = 0
        self.transferred = 0
        self.transfers = 0
        self.error_reason = None  # None, or what went wrong (``error`` is True while set)
        self.fail_with = None  # fault: the next transfer ends in this DMA error
        self.interrupt_after = None  # fault: KeyboardInterrupt on this many polls while busy
        self._polls = 0

    @property
    def running(self) -> bool:
        """False once stopped or halted by an error (as the DMASR halted bit reads)."""
        return self._running

    @property
    def error(self) -> bool:
        """True in an error state (pynq: the status register's error bits); why is ``error_reason``."""
        return self.error_reason is not None

    @property
    def idle(self) -> bool:
        self._dma._pump()
        if self._busy:
            self._poll_interrupt()
        return not self._busy

    def _poll_interrupt(self) -> None:
        if self.interrupt_after is not None:
            self._polls += 1
            if self._polls >= self.interrupt_after:
                self.interrupt_after, self._polls = None, 0
                raise KeyboardInterrupt

    def start(self) -> None:
        self._running, self.error_reason, self._busy, self._target = True, None, False, None

    def stop(self) -> None:
        self._running, self._busy, self._target = False, False, None

    def transfer(self, array, start: int = 0, nbytes: int = 0) -> None:
        view = _byte_view(array)
        nbytes = nbytes or view.size - start
        if nbytes > self.max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA "
                             f"buffer size {self.max_size}.")
        if start < 0 or start + nbytes > view.size:
            raise ValueError(f"Transfer of {nbytes} bytes from offset {start} exceeds the "
                             f"{view.size}-byte array.")
        if not self._running:
            raise RuntimeError("DMA channel not started")
        if self._busy:
            raise RuntimeError("DMA channel not idle")
        if nbytes % self._dma.word_bytes:
            raise ValueError(f"Transfer of {nbytes} bytes is not a whole number of "
                             f"{self._dma.word_bytes}-byte stream words.")
        self.transfers += 1
        self._busy = True
        self._nbytes = nbytes
        self.transferred = 0
        self._ready_at = time.monotonic() + self._dma.delay_s
        if self.fail_with:
            self.error_reason, self.fail_with = self.fail_with, None
            self._running = False  # the engine halts on an error, busy for ever
            return
        if self.direction == "MM2S":
            if hasattr(array, "flush"):
                array.flush()
            words = view[start:start + nbytes].view(self._dma.word_dtype).copy()
            self._dma.ip.push(words)
        else:
            self._target = [view, start, nbytes, 0, False]
        self._dma._pump()

    def wait(self) -> None:
        """Block until idle, like pynq's ``wait`` (which has no timeout; this one gives up
        after ``guard_s`` so a broken test cannot hang)."""
        if not self._running:
            raise RuntimeError("DMA channel not started")
        deadline = time.monotonic() + self._dma.wait_guard_s
        while True:
            if self.error_reason:
                raise RuntimeError(self.error_reason)
            if self.idle:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("SoftwareDMA: wait() gave up; the transfer never completed.")
            time.sleep(1e-4)
        self.transferred = self.bytes_received if self.direction == "S2MM" else self._nbytes


class SoftwareDMA:
    """An AXI DMA in software, wired to the bit-exact emulator of ``firmware``."""

    def __init__(self, firmware, word_dtype="float32",
                 max_transfer_bytes: int = HLS4ML_MAX_TRANSFER_BYTES,
                 delay_s: float = 0.0, stall: bool = False, short_words: int = 0,
                 fail=None, interrupt=None):
        self.word_dtype = np.dtype(word_dtype)
        self.word_bytes = self.word_dtype.itemsize
        self.buffer_max_size = int(max_transfer_bytes)
        self.delay_s = float(delay_s)
        #: pynq's ``wait()`` has no timeout; this one gives up after this long so a broken test cannot hang.
        self.wait_guard_s = 10.0
        self.ip = _StreamIP(firmware, word_dtype, stall, short_words)
        self.sendchannel = SoftwareChannel(self, "MM2S", self.buffer_max_size)
        self.recvchannel = SoftwareChannel(self, "S2MM", self.buffer_max_size)
        channels = {"send": self.sendchannel, "receive": self.recvchannel}
        for name, text in (fail or {}).items():
            channels[name].fail_with = text
        for name, polls in (interrupt or {}).items():
            channels[name].interrupt_after = polls

    def _pump(self) -> None:
        now = time.monotonic()
        send = self.sendchannel
        if send._busy and now >= send._ready_at:
            send._busy = False
        recv = self.recvchannel
        if recv._target is None:
            return
        view, start, nbytes, written, done = recv._target
        if not done:
            room = (nbytes - written) // self.word_bytes
            words, saw_last = self.ip.pull(room)
            if words.size:
                raw = words.view(np.uint8)
                view[start + written:start + written + raw.size] = raw
                written += raw.size
            full = written == nbytes
            if full and not saw_last and self.ip.out_words:
                recv.error_reason = "S2MM buffer full before TLAST (DMAIntErr)"
                recv._running, recv._target = False, None  # halted, never idle
                return
            done = saw_last or full
            recv._target = [view, start, nbytes, written, done]
        if done and now >= recv._ready_at:
            recv._busy, recv._target = False, None
            recv.bytes_received = written


DMA_TYPE = "xilinx.com:ip:axi_dma:7.1"
IP_TYPE = "xilinx.com:hls:myproject_axi:1.0"


def make_fake_pynq(firmware, dmas=1, hwh_width=None, **dma_options):
    """A ``pynq`` module with one design: ``dmas`` DMAs ``hier_0/axi_dma_<i>`` (each a
    :class:`SoftwareDMA`) beside the HLS IP. ``hwh_width`` gives the DMAs' ``c_sg_length_width`` in
    the ``.hwh`` only (the DMA objects then lack ``buffer_max_size``). ``pynq.allocate`` hands out
    buffers listed in ``pynq.allocations``, whose live count is ``pynq.memory.live``."""
    from software_register_ip import SoftwareMemory

    pynq = types.ModuleType("pynq")
    pynq.memory = SoftwareMemory()
    pynq.allocations = pynq.memory.allocations
    pynq.overlays = []

    class Overlay:
        def __init__(self, bitfile, **kwargs):
            self.bitfile, self.kwargs = bitfile, kwargs
            self.hier_0 = types.SimpleNamespace()
            params = {} if hwh_width is None else {"c_sg_length_width": str(hwh_width)}
            self.ip_dict = {"hier_0/myproject_axi_0": {"type": IP_TYPE, "parameters": {}}}
            for i in range(dmas):
                dma = SoftwareDMA(firmware, **dma_options)
                if hwh_width is not None:
                    del dma.buffer_max_size  # only the HWH says how long a transfer may be
                setattr(self.hier_0, f"axi_dma_{i}", dma)
                self.ip_dict[f"hier_0/axi_dma_{i}"] = {"type": DMA_TYPE, "parameters": params,
                                                      "fullpath": f"hier_0/axi_dma_{i}"}
            pynq.overlays.append(self)

    class Device:
        devices = [object()]

    pynq.allocate, pynq.Overlay, pynq.Device = pynq.memory.allocate, Overlay, Device
    return pynq
