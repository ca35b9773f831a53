"""A software conifer accelerator for the BDT board driver's tests: pynq's register interface with the
emulator as the IP, and the processor's memory as numpy buffers at made-up physical addresses.

It lives with the tests because only they use it: tests/test_overlay_bdt.py runs the real driver
(``fastml_lab/overlay/register_board.py``) against a fake ``pynq`` (:func:`make_fake_pynq`) whose IP is
:class:`SoftwareRegisterIP`, as tests/software_dma.py does for the network's DMA.

The modelled IP is conifer's ``myproject_accelerator(int N, int& n_f, int& n_c, float* x, float* score)``
behind Vitis HLS's ``ap_ctrl_hs`` block: writing ap_start to CTRL starts a run, which reports ``n_f`` and
``n_c``, reads ``N * n_f`` float32 words at the address in ``x``, casts each to the input type, runs the
bit-exact emulator and writes ``N * n_c`` float32 scores at the address in ``score``; ap_done then reads
1 once (clear on read) and ap_idle 1. An address outside every live buffer is a bus error
(``SoftwareBusError``), so a driver bug cannot pass silently.

Faults, one knob each, for tests/test_board_faults.py: ``delay_s`` (every run finishes that long after
it starts, writing its scores then: late when beyond the driver's deadline); ``stall=True`` (every run
with events hangs, an AXI master waiting forever on memory); ``short_words=k`` (a run writes its scores
but the last ``k``, and reports done); ``fail_with=exc`` (every register read raises ``exc``, as pynq's MMIO
can once the fabric is reprogrammed under it); ``interrupt_after=n``
(KeyboardInterrupt on the ``n``-th read of CTRL while a run is in flight, as Ctrl-C during the
driver's wait). :attr:`SoftwareMemory.live` counts the buffers allocated and not freed.
"""

from __future__ import annotations

import time
import types

import numpy as np

from fastml_lab.overlay.packaging import CONIFER_CONTROL_BITS, CONIFER_REGISTERS
from fastml_lab.overlay.software import stream_ip

CONIFER_VLNV = "cern.ch:conifer:myproject_accelerator:1.11"
#: Where the fake allocator starts handing out physical addresses (PYNQ-Z2's CMA lies in low DDR).
FIRST_ADDRESS = 0x1680_0000


class SoftwareBusError(RuntimeError):
    """The IP touched memory that no live buffer covers."""


class MemoryBuffer(np.ndarray):
    """What ``pynq.allocate`` returns: an ndarray with a physical address and cache methods."""

    def __array_finalize__(self, obj):
        self.physical_address = getattr(obj, "physical_address", 0)
        self.flushes = getattr(obj, "flushes", 0)
        self.invalidates = getattr(obj, "invalidates", 0)
        self.freed = getattr(obj, "freed", False)

    def flush(self):
        self.flushes += 1

    def invalidate(self):
        self.invalidates += 1

    def freebuffer(self):
        self.freed = True


class SoftwareMemory:
    """A bump allocator of :class:`MemoryBuffer` at made-up 4 KiB-aligned physical addresses."""

    def __init__(self, first_address: int = FIRST_ADDRESS):
        self.next_address = first_address
        self.allocations = []

    def allocate(self, shape, dtype="u4", target=None, **kwargs):
        buf = np.zeros(shape, dtype=dtype).view(MemoryBuffer)
        buf.physical_address = self.next_address
        self.next_address += (buf.nbytes + 4095) // 4096 * 4096 + 4096
        self.allocations.append(buf)
        return buf

    @property
    def live(self) -> int:
        """Buffers allocated and not freed."""
        return sum(not buf.freed for buf in self.allocations)

    def view(self, address: int, nbytes: int) -> np.ndarray:
        """The bytes ``[address, address + nbytes)`` of one live buffer."""
        for buf in self.allocations:
            start = buf.physical_address
            if not buf.freed and start <= address and address + nbytes <= start + buf.nbytes:
                return np.asarray(buf).reshape(-1).view(np.uint8)[address - start:address - start + nbytes]
        raise SoftwareBusError(f"No live buffer covers {nbytes} bytes at {address:#x}.")


class SoftwareRegisterIP:
    """conifer's accelerator in software: ``read(offset)``, ``write(offset, value)``, ``register_map``.

    ``registers`` are the offsets the IP decodes (default: conifer's Zynq top as Vitis HLS maps it);
    ``register_map`` what pynq would read from the .hwh (default: the same). ``n_features`` and
    ``n_scores`` override what the IP reports (default: the firmware's).
    """

    def __init__(self, firmware, memory: SoftwareMemory, registers=None, register_map=None,
                 address_bits: int = 32, delay_s: float = 0.0, stall: bool = False,
                 n_features=None, n_scores=None, short_words: int = 0, fail_with=None,
                 interrupt_after=None):
        self.firmware = firmware
        self.memory = memory
        self.registers = dict(registers or CONIFER_REGISTERS)
        self.address_bits = address_bits
        self.delay_s = float(delay_s)
        self.stall = stall
        self.short_words = short_words
        self.fail_with = fail_with
        self.interrupt_after = interrupt_after
        self._polls = 0
        self.n_features = firmware.n_inputs if n_features is None else n_features
        self.n_scores = firmware.n_outputs if n_scores is None else n_scores
        self.register_map = types.SimpleNamespace(**{
            name: types.SimpleNamespace(address=offset)
            for name, offset in (register_map or self.registers).items()})
        bits = CONIFER_CONTROL_BITS
        self._start, self._done, self._idle, self._ready = (1 << bits[k] for k in
                                                             ("ap_start", "ap_done", "ap_idle", "ap_ready"))
        self.values = {}  # offset -> last value written (or reported)
        self.busy = False
        self.done = False
        self.finish_at = 0.0
        self.pending = None  # (N, x address, score address) of the run in progress
        self.runs = []  # N of every run started
        self.writes = []  # (offset, value) in order

    # ------------------------------------------------------------------ the register interface
    def read(self, offset: int = 0) -> int:
        self._pump()
        if self.fail_with is not None:
            raise self.fail_with
        if self.busy and self.interrupt_after is not None and offset == self.registers["CTRL"]:
            self._polls += 1
            if self._polls >= self.interrupt_after:
                self.interrupt_after, self._polls = None, 0
                raise KeyboardInterrupt
        if offset == self.registers["CTRL"]:
            value = (self._idle if not self.busy else 0) | (self._done if self.done else 0)
            self.done = False  # ap_done: clear on read
            return value
        return int(self.values.get(offset, 0))

    def write(self, offset: int, value: int) -> None:
        self.writes.append((offset, int(value)))
        if offset == self.registers["CTRL"]:
            if value & self._start and not self.busy:
                self._begin()
            return
        if offset in (self.registers["n_f"], self.registers["n_c"]):
            return  # read-only outputs
        self.values[offset] = int(value) & 0xFFFFFFFF

    def jam(self) -> None:
        """Leave the IP in a run that never ends (as an earlier session aborted mid-run would)."""
        self.busy, self.stall, self.pending, self.finish_at = True, True, (1, 0, 0), 0.0

    # ------------------------------------------------------------------ the IP
    def _address(self, name: str) -> int:
        offset = self.registers[name]
        address = self.values.get(offset, 0)
        if self.address_bits == 64:
            address |= self.values.get(offset + 4, 0) << 32
        return address

    def _begin(self) -> None:
        n = self.values.get(self.registers["N"], 0)
        self.runs.append(n)
        self.busy, self.done = True, False
        self.pending = (n, self._address("x"), self._address("score"))
        self.finish_at = time.monotonic() + self.delay_s
        self.values[self.registers["n_f"]] = self.n_features
        self.values[self.registers["n_c"]] = self.n_scores
        self._pump()

    def _pump(self) -> None:
        if not self.busy or time.monotonic() < self.finish_at:
            return
        n, x_address, score_address = self.pending
        if n and self.stall:
            return  # waiting on memory forever
        if n:
            words = self.memory.view(x_address, n * self.n_features * 4).view(np.float32)
            scores = stream_ip(self.firmware, words.copy(), np.float32)
            if self.short_words:
                scores = scores[:max(0, scores.size - self.short_words)]
            self.memory.view(score_address, scores.nbytes)[:] = scores.view(np.uint8)
        self.busy, self.done, self.pending = False, True, None


def make_fake_pynq(firmware, n_ips: int = 1, **ip_options):
    """A ``pynq`` module with one design: ``conifer_myproject`` (a :class:`SoftwareRegisterIP`) and the PS."""
    pynq = types.ModuleType("pynq")
    pynq.memory = SoftwareMemory()
    pynq.overlays = []

    class Overlay:
        def __init__(self, bitfile, **kwargs):
            self.bitfile, self.kwargs = bitfile, kwargs
            self.ip_dict = {"processing_system7_0": {"type": "xilinx.com:ip:processing_system7:5.5"}}
            self.ips = []
            for i in range(n_ips):
                name = "conifer_myproject" if i == 0 else f"conifer_myproject_{i}"
                ip = SoftwareRegisterIP(firmware, pynq.memory, **ip_options)
                setattr(self, name, ip)
                self.ips.append(ip)
                self.ip_dict[name] = {"type": CONIFER_VLNV, "fullpath": name, "parameters": {}}
            pynq.overlays.append(self)

    class Device:
        devices = [object()]

    pynq.allocate, pynq.Overlay, pynq.Device = pynq.memory.allocate, Overlay, Device
    return pynq
