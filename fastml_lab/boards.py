"""The boards fastml_lab targets: one table, read by export, packaging, the driver and the estimates.

Each :class:`Board` holds what the toolkit needs to know about one board: its FPGA part and fabric
clock, its resource budget, the hls4ml backend and board name that generate its design, the AXI DMA
that moves its stream and the stream's word type. A new board is one entry in :data:`BOARDS`.

Numpy-free: this module runs on the board.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .exceptions import ConfigError

#: The precision used when a user gives none: hls4ml's and the reference tutorial's default.
DEFAULT_PRECISION = "ap_fixed<16,6>"


@dataclass(frozen=True)
class Resources:
    """An FPGA's resource budget (or a design's use of one)."""

    dsp: int
    lut: int
    ff: int
    bram_18k: int

    def as_dict(self) -> dict:
        return {"DSP": self.dsp, "LUT": self.lut, "FF": self.ff, "BRAM_18K": self.bram_18k}


@dataclass(frozen=True)
class Board:
    """One board: part, clock, budget and how its overlay moves data."""

    name: str
    title: str
    part: str
    clock_mhz: float
    resources: Resources
    #: hls4ml backend and its ``board`` argument that write this board's design.
    hls_backend: str = "VivadoAccelerator"
    hls_board: str | None = None
    #: The AXI DMA IP (its VLNV prefix, as the ``.hwh`` lists it) and the stream it drives.
    dma_vlnv: str = "xilinx.com:ip:axi_dma:"
    interface: str = "axi_stream"
    word_dtype: str = "float32"
    #: The processor that runs the driver, for the text a student reads.
    processor: str = ""
    notes: tuple = field(default_factory=tuple)

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def word_bits(self) -> int:
        """Bits of one stream word (``"float32"`` -> 32)."""
        return int("".join(c for c in self.word_dtype if c.isdigit()))


BOARDS: dict[str, Board] = {
    "pynq-z2": Board(
        name="pynq-z2", title="PYNQ-Z2", part="xc7z020clg400-1", clock_mhz=100.0,
        resources=Resources(dsp=220, lut=53_200, ff=106_400, bram_18k=280),
        hls_board="pynq-z2", processor="dual Cortex-A9 (32-bit Arm), PYNQ 3.1",
    ),
    "zcu102": Board(
        name="zcu102", title="ZCU102", part="xczu9eg-ffvb1156-2-e", clock_mhz=100.0,
        resources=Resources(dsp=2_520, lut=274_080, ff=548_160, bram_18k=1_824),
        hls_board="zcu102", processor="quad Cortex-A53 (64-bit Arm), PYNQ",
    ),
}

#: The board a user gets when naming none.
DEFAULT_BOARD = "pynq-z2"
#: The export target for a bare FPGA part (hls4ml's Vitis backend, no board around the IP).
PART_BACKEND = "vitis"
PART_HLS_BACKEND = "Vitis"


def export_backends() -> dict:
    """Export targets: name -> (hls4ml backend, hls4ml board). ``vitis`` for a bare part, then
    one per board of the table."""
    targets = {PART_BACKEND: (PART_HLS_BACKEND, None)}
    targets.update((name, (board.hls_backend, board.hls_board)) for name, board in BOARDS.items())
    return targets


def get_board(name: str) -> Board:
    """The :class:`Board` called ``name``; ConfigError listing the known boards otherwise."""
    try:
        return BOARDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown board {name!r}; known boards: {', '.join(BOARDS)}.") from None


def same_part(a: str, b: str) -> bool:
    """Whether two spellings name one FPGA part (tools write ``xc7z020-clg400-1`` or ``xc7z020clg400-1``)."""
    return str(a).replace("-", "").lower() == str(b).replace("-", "").lower()


def board_for_part(part: str) -> Board | None:
    """The board whose FPGA is ``part`` (spelled with or without dashes), or None."""
    for board in BOARDS.values():
        if same_part(board.part, part):
            return board
    return None


def rtl_target(board: str | None = None, part: str | None = None, clock_period_ns: float | None = None) -> tuple:
    """``(board or None, part, clock period in ns)`` for an RTL export: a board of the table (its
    part and clock), or a bare ``part`` (clock: ``clock_period_ns`` or the default board's), or
    neither (the default board). A clock given replaces the board's."""
    if board is not None and part is not None:
        raise ConfigError(f"Give a board (--board) or a bare part (--part), not both: {board} has part "
                          f"{get_board(board).part}.")
    if clock_period_ns is not None and not (isinstance(clock_period_ns, (int, float)) and 0 < clock_period_ns < 1e4):
        raise ConfigError(f"The clock period must be a positive number of nanoseconds; got {clock_period_ns!r}.")
    if part is not None:
        if not isinstance(part, str) or not part.strip():
            raise ConfigError(f"--part must name an FPGA part (e.g. {BOARDS[DEFAULT_BOARD].part}); got {part!r}.")
        return None, part.strip(), float(clock_period_ns or BOARDS[DEFAULT_BOARD].clock_period_ns)
    chosen = get_board(board or DEFAULT_BOARD)
    return chosen, chosen.part, float(clock_period_ns or chosen.clock_period_ns)
