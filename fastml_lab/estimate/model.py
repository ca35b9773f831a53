"""The cost model: latency, II, DSP, LUT, FF and BRAM of an hls4ml firmware description, layer by layer.

It reads what the firmware really computes (the emulator's description: layer list, fixed-point
types, the stored weights) and prices it the way HLS builds it. Each layer is priced by its op
class of the firmware registry (:meth:`~fastml_lab.firmware.registry.Op.price`), which names the
hardware hls4ml builds for it; :class:`Pricing` holds the prices:

* **Dense, Latency strategy** (``nnet::dense_latency``, weights are constants). Every non-zero
  weight is one multiplication by a constant. A weight that is a power of two is a shift (free).
  Otherwise it goes to a DSP slice when the weight has at least ``dsp_weight_bits`` significant
  bits and its input at least ``dsp_input_bits`` bits (the flavour's rule, :data:`FLAVOURS`), else
  it is built from LUTs as shift-and-add (``lut_per_mult_bit`` per bit of each extra adder). The
  products of one output are summed in a balanced adder tree: one adder per term, each as wide as
  the product (at most the accumulator), ``lut_per_add_bit`` LUT per bit. Vivado HLS honours the
  reuse factor's ``ALLOCATION`` limit (DSPs divided by the reuse factor, multiplexers added,
  latency longer); Vitis HLS 2024.1 does not for constant weights (published: 1502 -> 1476 DSP
  from reuse 1 to 2).
* **Dense, Resource strategy** (``nnet::dense_resource``): the weights sit in a ROM, so every
  product, zero or not, is a real multiplier: the block factor ``ceil(n_in * n_out / R)`` of them,
  each a DSP by the flavour's rule for a product by a weight of the weight type's width (the same
  rule as a constant weight's), else an array multiplier of LUTs. Around them the multiplexers of
  hls4ml's three kernels (R <= n_in: each multiplier picks its input among R; R a multiple of n_in:
  one input for all, each multiplier adds into one of R / n_in accumulators; otherwise each picks
  its input), priced like the Latency strategy's shared multipliers (``lut_per_mux_bit`` per bit
  and extra way); the accumulators and pipeline registers; the ROM as BRAM once it is deep enough,
  else one LUT per bit per 64 words. Latency about R plus the pipeline. Only one published point
  covers this strategy and it is held out (:mod:`fastml_lab.estimate.published`): no constant was
  set on it.
* **io_stream**: every layer is a DATAFLOW process (at least one cycle each) and every layer but
  the last writes a FIFO of its output word (depth 1) that the next reads, priced per bit of the
  word (:data:`STREAMS`, calibrated on hls4ml's io_stream synthesis baselines). Vivado HLS overlaps
  the processes (II = the largest reuse factor); Vitis HLS 2023-2024 does not for these designs
  (II = the latency).
* **Latency**: each layer's adder tree is cut into clock cycles by the part's speed (an adder
  level costs ``t_add_ns`` times the device's delay factor, :func:`device_of`), at the target
  clock minus the flavour's clock uncertainty; plus the flavour's cycles for the multiply,
  activations and softmax. io_parallel with the Latency strategy is one pipeline; the Resource
  strategy makes hls4ml use DATAFLOW. The II is the largest reuse factor in both.
* **Registers** (FF): the bits alive at each cycle boundary of each layer's tree, times ``ff_per_bit``
  and the part's delay factor (a slower part cuts each operation into more stages).
* **Tables** (softmax exp/inverse, sigmoid/tanh/ELU): ROMs, one copy per two parallel reads.
* **Convolutions** (:meth:`Pricing.conv`): one dense kernel of the ``(window, filters)`` weights,
  priced as a dense layer, shared by the output pixels. io_parallel (``conv_2d_latency_cl``): a loop
  over the output pixels pipelined at the reuse factor (II = pixels x reuse, DATAFLOW around it),
  the image held in registers, the im2col multiplexers a window value per extra pixel
  (:data:`CONV_MUX_LUT_PER_BIT`). The Resource strategy at reuse factor 1 is a constant kernel whose
  DSPs follow :data:`RESOURCE_RF1_DSP_DIGITS`. io_stream (``compute_output_buffer_2d``): one input
  pixel per reuse-factor cycles (II = input pixels x reuse), a line buffer of ``kernel rows - 1``
  image rows in shift registers (SRL32: a LUT per bit per 32 pixels), the window in registers; the
  buffer fills while the image streams in, so after the last pixel only the kernel's pipeline is
  left. Pooling (:meth:`Pricing.pooling`): compare-and-selects or adders per window, combinational
  in io_parallel when they fit the clock, a divider per window for a padded average on Vivado HLS.
  The FIFOs between io_stream layers hold one pixel's channels per word, as deep as the image
  (hls4ml's default depth): HLS builds one FIFO per channel, SRLs up to :data:`FIFO_SRL_DEPTH`
  words, a BRAM18 each beyond. Fitted on hls4ml's Conv2D and pooling test baselines and the
  tutorial's part 6 CNN (README, "The hardware estimate": the points, their split and the errors).
* **A dense layer with one product per output** (one input, or one non-zero weight per output) has
  no adder tree: when its product and bias addition fit in the clock (a multiplication takes
  :data:`MULT_ADD_LEVELS` adder levels), HLS leaves it combinational: no cycle, no register.

The constants are calibrated on the ``fit`` published synthesis points of
:mod:`fastml_lab.estimate.published`; its ``held-out`` points never set one (see that module and the
README for which ones and how far the model is from each, fit and held-out apart). numpy only: this
module runs on the board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..exceptions import ConfigError
from ..options import STRATEGIES
from ..firmware.registry import pricing_class
from ..fixed import FixedType

__all__ = ["C_SYNTHESIS", "IMPLEMENTATION", "SYNTHESIS_REPORT", "TECHNOLOGY_MAPPING", "FLAVOURS", "STRATEGIES", "Flavour",
           "Device", "LayerCost", "Pricing", "StreamPrices", "STREAMS", "device_of", "significant_bits",
           "layer_inputs", "weighted_layers",
           "layer_costs", "combine", "valid_reuse_factors"]

#: Kinds of figure: what the model gives, what the model's place-and-route factors give, what
#: a recorded synthesis report says, and what yosys mapped a project's RTL to (cells counted before
#: placement and routing: :mod:`fastml_lab.rtl.yosys`).
C_SYNTHESIS = "C-synthesis estimate"
IMPLEMENTATION = "after implementation"
SYNTHESIS_REPORT = "synthesis report"
TECHNOLOGY_MAPPING = "yosys technology mapping, before place and route"
#: BRAM18 holds 18 Kib (512 x 36 at its widest).
BRAM18_BITS = 18 * 1024
#: A Resource-strategy weight ROM at least this deep (the reuse factor) goes to BRAM.
ROM_MIN_DEPTH = 32
#: 7-series part prefixes (commercial, automotive, defence-grade).
SEVEN_SERIES = ("xc7", "xa7", "xq7")
#: A multiplication takes as long as this many adder levels (``t_add_ns``): hls4ml's one-input
#: Dense(64) synthesized at 2.9 ns (Vivado HLS 2020.1) and 3.0 ns (Vitis HLS 2024.1) on a -2 part.
MULT_ADD_LEVELS = 4
#: The Resource strategy at reuse factor 1: the ROM is fully partitioned, its words are constants, and
#: a product goes to a DSP when its weight has at least this many canonical signed digits (hls4ml's
#: Conv2D test: 740 (Vivado HLS) and 792 (Vitis HLS) DSPs for 1,536 products).
RESOURCE_RF1_DSP_DIGITS = 3
#: An average pool's divider by the run-time count of a padded window (Vivado HLS, hls4ml's 'same'
#: pooling tests): LUT and FF per bit of the accumulator, and its latency beyond that width.
DIVIDER_LUT_PER_BIT = 29.0
DIVIDER_FF_PER_BIT = 45.0
DIVIDER_EXTRA_CYCLES = 5
#: An average pool's output cast (the shift of a power-of-two average included), LUT per bit.
POOL_CAST_LUT_PER_BIT = 0.45
#: io_stream FIFOs deeper than this are BRAM (one FIFO per channel of the word); shallower ones SRLs.
FIFO_SRL_DEPTH = 32
#: FF of a BRAM FIFO's pointers and flags.
FIFO_BRAM_FF = 40
#: io_parallel convolution: LUT per bit and extra way of the im2col multiplexers that feed the kernel
#: its window at each output pixel (hls4ml's Conv2D test, Vivado HLS).
CONV_MUX_LUT_PER_BIT = 1.55


@dataclass(frozen=True)
class Flavour:
    """How one HLS tool builds hls4ml's C++ (the constants, calibrated on published points)."""

    name: str
    title: str
    dsp_weight_bits: int      # a constant weight needs this many significant bits to go to a DSP
    dsp_input_bits: int       # ... and its input this many bits
    shares_dsps: bool         # the Latency strategy's ALLOCATION limit divides the DSPs by the reuse factor
    clock_uncertainty: float  # the fraction of the clock period the tool keeps as margin
    t_add_ns: float           # one adder level on the fastest part (delay factor 1)
    mult_cycles: int          # registers around a dense layer's multiplications and its output cast
    activation_cycles: int    # a ReLU-like activation
    table_cycles: int         # a table activation (sigmoid, tanh, ELU)
    softmax_cycles: int       # the softmax (max tree, exp table, sum, inverse table, multiply)
    lut_per_add_bit: float
    lut_per_mult_bit: float
    lut_per_mux_bit: float    # the multiplexers in front of a DSP shared by the reuse factor
    ff_per_bit: float
    lut_per_output_bit: float  # each output's cast to the result type and the layer's control
    lut_per_compare_bit: float = 2.0  # a max pool's compare-and-select, per bit of the value
    pool_divider: bool = True  # an average pool with padding divides by a run-time count (a divider per window)


FLAVOURS = {
    "vitis": Flavour(
        name="vitis", title="Vitis HLS", dsp_weight_bits=9, dsp_input_bits=10, shares_dsps=False,
        clock_uncertainty=0.27, t_add_ns=0.55, mult_cycles=1, activation_cycles=0, table_cycles=3,
        softmax_cycles=3, lut_per_add_bit=1.0, lut_per_mult_bit=0.3, lut_per_mux_bit=0.8,
        ff_per_bit=0.07, lut_per_output_bit=3.0, lut_per_compare_bit=2.45, pool_divider=False),
    "vivado": Flavour(
        name="vivado", title="Vivado HLS", dsp_weight_bits=3, dsp_input_bits=10, shares_dsps=True,
        clock_uncertainty=0.125, t_add_ns=0.6, mult_cycles=1, activation_cycles=0, table_cycles=2,
        softmax_cycles=1, lut_per_add_bit=1.0, lut_per_mult_bit=0.3, lut_per_mux_bit=0.8,
        ff_per_bit=0.34, lut_per_output_bit=3.0, lut_per_compare_bit=1.9, pool_divider=True),
}


@dataclass(frozen=True)
class StreamPrices:
    """What io_stream adds, per HLS tool (calibrated on hls4ml's io_stream synthesis baselines)."""

    lut_per_bit: float  # a depth-1 FIFO between two layers, per bit of its word
    ff_per_bit: float
    overlaps: bool      # DATAFLOW overlaps events: II = the largest reuse factor (else II = latency)


STREAMS = {
    "vitis": StreamPrices(lut_per_bit=1.0, ff_per_bit=2.0, overlaps=False),
    "vivado": StreamPrices(lut_per_bit=3.5, ff_per_bit=0.3, overlaps=True),
}


@dataclass(frozen=True)
class Device:
    """What the model needs to know about an FPGA part: its family and how fast its logic is."""

    part: str
    family: str
    delay: float        # logic delay relative to an UltraScale+ -2 part
    dsp_widths: tuple   # the DSP multiplier's operand widths


def device_of(part: str) -> Device:
    """The :class:`Device` of an AMD/Xilinx part name: the family from its prefix, the delay from its
    speed grade (``-1`` slowest). ``xc7z020clg400-1`` -> 7-series, delay 1.6."""
    text = str(part).lower().replace("_", "-")
    grade = text.rsplit("-", 2)
    speed = next((g for g in reversed(grade) if g[:1] in "123"), "2")
    fast = speed.startswith(("2", "3"))
    if text.startswith(SEVEN_SERIES):
        return Device(part, "7-series", 1.35 if fast else 1.6, (25, 18))
    if text.startswith(("xczu", "xcu", "xcvu", "xcku", "xcvc", "xcve", "xcvp", "xcau", "xck")):
        return Device(part, "UltraScale+", 1.0 if fast else 1.5, (27, 18))
    raise ConfigError(f"Unknown FPGA part {part!r}: the estimate knows AMD/Xilinx 7-series (xc7...) and "
                      "UltraScale(+)/Versal parts (xczu..., xcu..., xcvu..., xcku...).")


@dataclass
class LayerCost:
    """One layer's (or the wrapper's) figures."""

    name: str
    op: str
    latency: int = 0
    ii: int = 1
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram_18k: int = 0
    detail: str = ""
    #: io_stream: the cycles the layer spends reading one image's words, overlapped with the other
    #: layers' (its latency holds only its own delay: the line buffer's fill and its pipeline).
    stream_cycles: int = 0
    #: A layer that makes hls4ml build the top function as DATAFLOW processes (a convolution in io_parallel).
    dataflow: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "latency_cycles": self.latency, "ii_cycles": self.ii,
                "dsp": self.dsp, "lut": self.lut, "ff": self.ff, "bram_18k": self.bram_18k,
                "detail": self.detail}


# ---------------------------------------------------------------------------------- weights
def significant_bits(values) -> np.ndarray:
    """Per value: the bits from its highest to its lowest set bit, plus a sign bit; 0 for zero.

    ``0.75`` (binary 0.11) -> 3, ``-4`` -> 2, ``0.1015625`` (binary 0.0001101) -> 5.
    """
    values = np.abs(np.asarray(values, dtype=np.float64))
    mantissa, _ = np.frexp(values)  # values = mantissa * 2**e, mantissa in [0.5, 1)
    code = (mantissa * 2.0 ** 53).astype(np.int64)  # the 53-bit integer significand
    lowest = code & -code
    trailing = np.log2(np.where(code > 0, lowest, 1)).astype(np.int64)
    return np.where(code > 0, 53 - trailing + 1, 0)


def csd_digits(values) -> np.ndarray:
    """Per value: the non-zero digits of its canonical signed-digit form (the adds a shift-and-add
    multiplier by that constant needs, plus one); 0 for zero, 1 for a power of two."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    mantissa, _ = np.frexp(values)
    code = (mantissa * 2.0 ** 53).astype(np.int64)
    code = code // np.where(code > 0, code & -code, 1)  # odd integers with the same digits
    count = np.zeros(code.shape, dtype=np.int64)
    while np.any(code > 0):
        odd = (code & 1) == 1
        digit = np.where(odd, 2 - (code & 3), 0)  # +1 or -1, chosen so the next bit is 0
        count += odd
        code = (code - digit) >> 1
    return count


# ---------------------------------------------------------------------------------- layers
def _ceil_log2(n) -> int:
    return int(math.ceil(math.log2(n))) if n > 1 else 0


def _add_cycles(depth: int, flavour: Flavour, device: Device, clock_ns: float) -> int:
    usable = clock_ns * (1.0 - flavour.clock_uncertainty)
    return int(math.ceil(depth * flavour.t_add_ns * device.delay / usable - 1e-9))


def _tree_register_bits(terms: np.ndarray, widths: np.ndarray, depth: int, cycles: int) -> float:
    """Bits held in registers when a balanced tree of ``terms`` values per output is cut into
    ``cycles`` evenly spaced stages: at the boundary after level ``k * depth / cycles`` about
    ``terms / 2**level`` partial sums per output are alive."""
    if cycles <= 0 or depth <= 0:
        return float((np.minimum(terms, 1) * widths).sum())
    bits = 0.0
    for k in range(cycles):
        level = k * depth / cycles
        bits += float((np.maximum(terms / 2.0 ** level, 1.0) * widths).sum())
    return bits


def dense_cost(name: str, weights: np.ndarray, input_bits: np.ndarray, accum: FixedType, result: FixedType,
               weight_type: FixedType, strategy: str, reuse: int, flavour: Flavour, device: Device,
               clock_ns: float) -> LayerCost:
    """One dense layer (see the module docstring)."""
    n_in, n_out = weights.shape
    a = np.broadcast_to(np.asarray(input_bits, dtype=np.int64)[:, None], weights.shape)
    s = significant_bits(weights)
    live = (s > 0) & (a > 0)
    terms = live.sum(axis=0) + 1  # + the bias
    depth = _ceil_log2(int(terms.max()) if terms.size else 1)
    add_cycles = _add_cycles(depth, flavour, device, clock_ns)
    product_bits = np.minimum(a + s, accum.width)
    add_width = np.minimum(product_bits.max(axis=0, initial=1) + np.ceil(np.log2(terms)).astype(int), accum.width)
    constant_rom = strategy == "Resource" and reuse == 1
    if strategy == "Resource" and not constant_rom:
        return _dense_resource(name, weights, a, add_width, weight_type, result, reuse, flavour, device)
    digits = csd_digits(weights)
    shifted = live & (digits == 1)
    if constant_rom:  # the fully partitioned ROM: constants, DSPs by their signed digits (RESOURCE_RF1_DSP_DIGITS)
        on_dsp = live & ~shifted & (digits >= RESOURCE_RF1_DSP_DIGITS) & (a >= flavour.dsp_input_bits)
    else:
        on_dsp = live & ~shifted & (s >= flavour.dsp_weight_bits) & (a >= flavour.dsp_input_bits)
    in_lut = live & ~shifted & ~on_dsp
    wide, narrow = np.maximum(a, weight_type.width), np.minimum(a, weight_type.width)
    slices = np.ceil(wide / device.dsp_widths[0]) * np.ceil(narrow / device.dsp_widths[1])
    dsp_all = int(slices[on_dsp].sum())
    n_dsp = int(on_dsp.sum())
    share = min(reuse, max(1, n_dsp)) if flavour.shares_dsps else 1
    dsp = int(math.ceil(dsp_all / share))
    # The ALLOCATION limit leaves ``dsp`` multipliers for ``n_dsp`` products: they take turns.
    turns = int(math.ceil(n_dsp / max(1, dsp))) if share > 1 else 1
    mult_lut = float(((digits - 1) * (a + s))[in_lut].sum()) * flavour.lut_per_mult_bit
    add_lut = float(((terms - 1) * add_width).sum()) * flavour.lut_per_add_bit
    mux_lut = float((a + s)[on_dsp].sum()) * (share - 1) / share * flavour.lut_per_mux_bit
    out_lut = n_out * result.width * flavour.lut_per_output_bit
    pipeline = flavour.mult_cycles + add_cycles
    usable = clock_ns * (1.0 - flavour.clock_uncertainty)
    if depth <= 1 and turns == 1 and flavour.t_add_ns * (depth + MULT_ADD_LEVELS) * device.delay <= usable:
        pipeline = 0  # one product per output: no tree; product and bias in one clock, combinational
    cycles = pipeline + (turns - 1)
    # A slower part cuts every operation into proportionally more stages: registers scale with its delay.
    ff = (_tree_register_bits(terms, add_width, depth, pipeline) * flavour.ff_per_bit * device.delay
          + n_out * result.width) if cycles else 0.0
    return LayerCost(
        name, "dense", latency=cycles, ii=reuse, dsp=dsp,
        lut=int(round(mult_lut + add_lut + mux_lut + out_lut)), ff=int(round(ff)),
        detail=(f"{int(live.sum())} of {weights.size} products: {int(on_dsp.sum())} DSP, "
                f"{int(in_lut.sum())} LUT, {int(shifted.sum())} shifts; adder depth {depth}"))


def _dense_resource(name, weights, a, add_width, weight_type, result, reuse, flavour, device) -> LayerCost:
    """hls4ml's Resource strategy (``nnet_dense_resource.h``): the weights in a ROM read one row per
    cycle, ``block = ceil(n_in*n_out/R)`` real multipliers (zero weights included), the multiplexers of
    the kernel hls4ml picks for R, the accumulators; see the module docstring."""
    n_in, n_out = weights.shape
    reuse = max(1, min(int(reuse), weights.size))
    block = int(math.ceil(weights.size / reuse))
    a_max = int(a.max()) if a.size else 0
    w_bits = weight_type.width
    acc_width = int(add_width.max()) if add_width.size else 1
    product_bits = min(a_max + w_bits, acc_width)
    # Multipliers: a DSP by the flavour's rule (the same as for a constant weight, with all its bits).
    on_dsp = a_max >= flavour.dsp_input_bits and w_bits >= flavour.dsp_weight_bits
    wide, narrow = max(a_max, w_bits), min(a_max, w_bits)
    per_slice = math.ceil(wide / device.dsp_widths[0]) * math.ceil(narrow / device.dsp_widths[1])
    dsp = block * per_slice if on_dsp else 0
    # An array multiplier of LUTs: one adder bit per partial-product bit.
    mult_lut = 0.0 if on_dsp else block * a_max * w_bits * flavour.lut_per_add_bit
    # The kernel's multiplexers: (muxes, ways) for the input operand and for the accumulator each multiplier adds into.
    if reuse <= n_in:                 # dense_resource_rf_leq_nin: fixed outputs, each multiplier picks among R inputs
        data_muxes, data_ways, acc_ways, kernel = block, reuse, 1, "rf_leq_nin"
    elif reuse % n_in == 0:           # rf_gt_nin_rem0: one input for all; R/n_in accumulators per multiplier
        data_muxes, data_ways, acc_ways, kernel = 1, n_in, reuse // n_in, "rf_gt_nin_rem0"
    else:                             # rf_gt_nin: each multiplier picks its input; products summed per output
        data_muxes, data_ways, acc_ways, kernel = block, min(reuse, n_in), 1, "rf_gt_nin"
    mux_lut = (data_muxes * a_max * (data_ways - 1) + block * acc_width * (acc_ways - 1)) * flavour.lut_per_mux_bit
    add_lut = block * acc_width * flavour.lut_per_add_bit  # each product added into its accumulator
    out_lut = n_out * result.width * flavour.lut_per_output_bit
    # The ROM: R words of block x weight bits: BRAM (36 bits x 512 per BRAM18) once it is deep enough
    # (R >= ROM_MIN_DEPTH), else distributed ROM, one LUT per bit per 64 words.
    rom_bits = block * w_bits
    if reuse >= ROM_MIN_DEPTH:
        bram, rom_lut = int(math.ceil(rom_bits / 36) * math.ceil(reuse / 512)), 0.0
    else:
        bram, rom_lut = 0, float(rom_bits * math.ceil(reuse / 64)) if reuse > 1 else 0.0
    # The pipelined reuse loop: a new row each cycle, the products and sums in flight; then the cast.
    cycles = reuse + flavour.mult_cycles + 2
    # Registers: the accumulators and the results, plus the loop's pipeline (operands, products and
    # sums in flight, as the Latency strategy's tree registers: ff_per_bit and the part's delay).
    ff = (n_out * (acc_width + result.width)
          + block * (a_max + w_bits + product_bits + acc_width) * flavour.ff_per_bit * device.delay)
    return LayerCost(name, "dense", latency=cycles, ii=reuse, dsp=dsp,
                     lut=int(round(mult_lut + mux_lut + add_lut + out_lut + rom_lut)), ff=int(round(ff)),
                     bram_18k=bram, detail=f"Resource strategy ({kernel}): {block} multipliers "
                                           f"({'DSP' if on_dsp else 'LUT'}), weights in a {reuse}-word ROM")


def _table_brams(entries: int, width: int, reads: int) -> int:
    bits = entries * width
    if bits <= 4096:  # small tables become LUT ROMs
        return 0
    return int(math.ceil(bits / BRAM18_BITS)) * int(math.ceil(reads / 2))


# ---------------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class Pricing:
    """The cost model at one target, for one layer (its name, op and the widths of its input values).

    Each op's :meth:`~fastml_lab.firmware.registry.Op.price` calls the method for the hardware hls4ml
    builds for it, with the op's own facts. ``reuse`` and ``strategy``, when given, replace a
    dense layer's own.
    """

    flavour: Flavour
    device: Device
    clock_ns: float
    reuse: int | None = None
    strategy: str | None = None
    name: str = ""
    op: str = ""
    widths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: io_stream: the words an image's values arrive in (its pixels); an element-wise layer's
    #: hardware handles one word at a time.
    words: int = 1

    @property
    def n(self) -> int:
        """The number of values the layer reads at once (one word's in io_stream)."""
        return max(1, len(self.widths) // self.words) if len(self.widths) else 0

    def dense(self, weights: np.ndarray, *, weight_type: FixedType, accum_type: FixedType,
              result_type: FixedType, strategy: str, reuse: int) -> LayerCost:
        """A dense layer: see :func:`dense_cost`."""
        return dense_cost(self.name, weights, self.widths, accum_type, result_type, weight_type,
                          self.strategy or strategy.capitalize(), int(self.reuse or reuse), self.flavour,
                          self.device, self.clock_ns)

    def stream_fifo(self, cost: LayerCost, bits: int, reads_fifo: bool = True) -> LayerCost:
        """``cost`` in io_stream: at least a cycle (its own DATAFLOW process), plus the depth-1 FIFO of
        its ``bits``-bit output word that the next layer reads (none after the last layer: 0 bits). A
        layer that reads a FIFO (all but the first) holds its input word there, not in a register
        stage of its own: its registers lose one input word."""
        prices = STREAMS[self.flavour.name]
        # A layer that streams an image word by word registers its window itself (``stream_cycles``).
        ff = max(0, cost.ff - int(self.widths.sum())) if reads_fifo and not cost.stream_cycles else cost.ff
        return replace(cost, latency=max(1, cost.latency), lut=cost.lut + int(round(bits * prices.lut_per_bit)),
                       ff=ff + int(round(bits * prices.ff_per_bit)),
                       detail=cost.detail + (f"; {bits}-bit stream FIFO" if bits else ""))

    def stream_memory(self, bits: int, depth: int) -> tuple:
        """``(LUT, BRAM18)`` of a FIFO or shift register ``bits`` wide and ``depth`` deep: SRL32
        shift registers up to 64 words, BRAM18 (36 bits x 512) beyond."""
        if depth <= 1:
            return 0, 0
        if depth <= 64:
            return bits * int(math.ceil(depth / 32)), 0
        return 0, int(math.ceil(bits / 36) * math.ceil(depth / 512))

    def conv(self, weights: np.ndarray, geometry: dict, *, weight_type: FixedType, accum_type: FixedType,
             result_type: FixedType, strategy: str, reuse: int, io: str) -> LayerCost:
        """A convolution: see the module docstring."""
        g = geometry
        reuse = int(self.reuse or reuse)
        width = int(self.widths.max()) if self.n else result_type.width
        window = weights.shape[0]
        kernel = dense_cost(self.name, weights, np.full(window, width), accum_type, result_type, weight_type,
                            self.strategy or strategy.capitalize(), reuse, self.flavour, self.device, self.clock_ns)
        out_pixels = g["out_height"] * g["out_width"]
        flavour = self.flavour
        if io == "stream":
            in_pixels = g["in_height"] * g["in_width"]
            rows = max(g["filt_height"] - 1, 0)
            line_lut, line_bram = self.stream_memory(rows * g["n_chan"] * width, g["in_width"])
            window_ff = window * width
            # The line buffer fills while the image streams in: after the last pixel only the kernel is left.
            return LayerCost(
                self.name, self.op, latency=kernel.latency + 1, ii=in_pixels * reuse, dsp=kernel.dsp,
                lut=kernel.lut + line_lut + int(window * width * flavour.lut_per_mux_bit), ff=kernel.ff + window_ff,
                bram_18k=kernel.bram_18k + line_bram, stream_cycles=in_pixels * reuse,
                detail=(f"io_stream line buffer: {rows} row(s) of {g['in_width']} pixels x {g['n_chan']} channels; "
                        f"{window}x{weights.shape[1]} kernel per pixel: {kernel.detail}"))
        mux_lut = window * width * max(out_pixels - 1, 0) * CONV_MUX_LUT_PER_BIT
        # The image stays in registers while the pixel loop reads its windows.
        image_ff = int(self.widths.sum()) if self.n else g["in_height"] * g["in_width"] * g["n_chan"] * width
        return LayerCost(
            self.name, self.op, latency=out_pixels * reuse + kernel.latency + 1, ii=out_pixels * reuse,
            dsp=kernel.dsp, lut=int(round(kernel.lut + mux_lut)), ff=kernel.ff + image_ff,
            bram_18k=kernel.bram_18k, dataflow=True,
            detail=(f"io_parallel: {out_pixels} output pixels through one {window}x{weights.shape[1]} kernel, "
                    f"{kernel.detail}"))

    def pooling(self, geometry: dict, *, pool_op: str, io: str, accum_type: FixedType,
                result_type: FixedType) -> LayerCost:
        """Max or average pooling (a global pool is one window over the whole image): a tree of
        compare-and-selects (``lut_per_compare_bit``) or adders per window and its output cast
        (:data:`POOL_CAST_LUT_PER_BIT`). An average divides by the window's size (a shift for a power
        of two, else a divider by a constant); in io_parallel, a window that overlaps the padding
        divides by a run-time count on Vivado HLS (``pool_divider``: a divider per window,
        :data:`DIVIDER_LUT_PER_BIT`), which Vitis HLS folds into constants. An io_parallel pool that
        fits in the clock is combinational, and HLS registers its input values."""
        g = geometry
        flavour = self.flavour
        width = accum_type.width
        window = g["filt_height"] * g["filt_width"]
        out_pixels = g["out_height"] * g["out_width"]
        depth = _ceil_log2(window)
        per_bit = flavour.lut_per_compare_bit if pool_op == "max" else flavour.lut_per_add_bit
        per_window = (window - 1) * width * per_bit + (width * POOL_CAST_LUT_PER_BIT if pool_op == "average" else 0)
        padded = any(g[key] for key in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
        counted = pool_op == "average" and padded and flavour.pool_divider and io != "stream"
        constant = pool_op == "average" and window & (window - 1) != 0 and not counted
        div_lut = DIVIDER_LUT_PER_BIT * width if counted else 4 * width if constant else 0
        div_ff = DIVIDER_FF_PER_BIT * width if counted else 0
        div_cycles = width + DIVIDER_EXTRA_CYCLES if counted else width if constant else 0
        tree = _add_cycles(depth, flavour, self.device, self.clock_ns)
        channels = g["n_chan"]
        if io == "stream":
            in_pixels = g["in_height"] * g["in_width"]
            rows = max(g["filt_height"] - 1, 0)
            line_lut, line_bram = self.stream_memory(rows * channels * width, g["in_width"])
            return LayerCost(self.name, self.op, latency=tree + div_cycles + 1, ii=in_pixels,
                             lut=int(channels * (per_window + div_lut)) + line_lut,
                             ff=channels * window * width, bram_18k=line_bram, stream_cycles=in_pixels,
                             detail=f"io_stream {pool_op} pooling, {window}-value windows, {channels} channels")
        n = out_pixels * channels
        usable = self.clock_ns * (1.0 - flavour.clock_uncertainty)
        cycles = 0 if not div_cycles and depth * flavour.t_add_ns * self.device.delay <= usable else tree + div_cycles
        inputs = int(self.widths.sum()) if self.n else g["in_height"] * g["in_width"] * channels * width
        return LayerCost(self.name, self.op, latency=cycles, ii=1, lut=int(n * (per_window + div_lut)),
                         ff=int(inputs + n * div_ff + (n * result_type.width if cycles and not div_ff else 0)),
                         detail=f"{n} {pool_op} windows of {window} values"
                                + ("; a divider per window (padded)" if counted else ""))

    def stream_padding(self, result_type: FixedType, out_pixels: int, channels: int) -> LayerCost:
        """io_stream's zero padding: one word (a pixel's channels) out per cycle."""
        bits = channels * result_type.width
        return LayerCost(self.name, self.op, latency=1, ii=out_pixels, lut=bits, ff=bits, stream_cycles=out_pixels,
                         detail=f"zero padding, {out_pixels} words of {channels} values")

    def wiring(self) -> LayerCost:
        """No logic: wires (and casts the next register absorbs)."""
        return LayerCost(self.name, self.op, detail="wiring")

    def given(self, *, lut: int, ff: int, latency: int, detail: str) -> LayerCost:
        """Figures the generator priced itself (da4ml's stages): taken as they are, one pipeline
        step of ``latency`` cycles with II 1, no DSP or BRAM."""
        return LayerCost(self.name, self.op, latency=latency, ii=1, lut=int(lut), ff=int(ff), detail=detail)

    def elementwise(self, result_type: FixedType) -> LayerCost:
        """A ReLU-like activation: a compare and a multiplexer per value."""
        n, width, cycles = self.n, result_type.width, self.flavour.activation_cycles
        return LayerCost(self.name, self.op, latency=cycles, lut=int(n * width * 0.5), ff=n * width * cycles,
                         detail=f"{n} values")

    def table_lookup(self, result_type: FixedType, table_size: int, table_type: FixedType) -> LayerCost:
        """A table activation (sigmoid, tanh, ELU): one lookup per value."""
        n, width, cycles = self.n, result_type.width, self.flavour.table_cycles
        return LayerCost(self.name, self.op, latency=cycles, dsp=0, lut=n * width,
                         ff=n * width * max(1, cycles), bram_18k=_table_brams(table_size, table_type.width, n),
                         detail=f"{n} lookups in a {table_size}-entry table")

    def softmax(self, exp_table_size: int, exp_table_type: FixedType, inv_table_size: int,
                inv_table_type: FixedType) -> LayerCost:
        """hls4ml's softmax: an exp lookup per value, a sum, one inverse lookup, a product per value."""
        n, exp_w, inv_w = self.n, exp_table_type.width, inv_table_type.width
        bram = _table_brams(exp_table_size, exp_w, n) + _table_brams(inv_table_size, inv_w, 1)
        dsp = n * (1 if exp_w >= self.flavour.dsp_input_bits else 0)
        return LayerCost(self.name, self.op, latency=self.flavour.softmax_cycles + _ceil_log2(n) // 2, dsp=dsp,
                         lut=n * (exp_w + inv_w) * 4, ff=n * (exp_w + inv_w) * 2, bram_18k=bram,
                         detail=f"{n} exp lookups, 1 inverse lookup, {n} products")

    def scale_and_shift(self, result_type: FixedType, scale_type: FixedType) -> LayerCost:
        """Batch normalisation: a product and a sum per value."""
        n, width, flavour = self.n, result_type.width, self.flavour
        dsp = n if scale_type.width >= flavour.dsp_weight_bits and width >= flavour.dsp_input_bits else 0
        return LayerCost(self.name, self.op, latency=flavour.mult_cycles, dsp=dsp,
                         lut=n * width * (1 if dsp else 3), ff=n * width, detail=f"{n} scale-and-shift")


def layer_inputs(description: dict, arrays: dict):
    """Each layer of a firmware description as ``(op class, spec, widths of its input values)``; the
    widths follow the types along the chain (:meth:`~fastml_lab.firmware.registry.Op.output_widths`)."""
    widths = np.full(int(description["n_inputs"]), FixedType.from_dict(description["input_type"]).width)
    for spec in description["layers"]:
        cls = pricing_class(spec)
        yield cls, spec, widths
        widths = cls.output_widths(spec, arrays, widths)


def weighted_layers(description: dict) -> list:
    """The layers that multiply by a weight matrix (they take a reuse factor and a strategy)."""
    return [spec for spec in description["layers"] if pricing_class(spec).weight_matrix]


def layer_costs(description: dict, arrays: dict, *, flavour: Flavour, device: Device, clock_ns: float,
                reuse: int | None = None, strategy: str | None = None) -> list:
    """Per-layer :class:`LayerCost` of a firmware description (its ``layers`` and stored arrays), each
    priced by its op class (:meth:`~fastml_lab.firmware.registry.Op.price`).

    ``reuse`` and ``strategy`` override the description's own (per dense layer) when given. A
    description with ``io_type`` ``"io_stream"`` adds each layer's output FIFO (:meth:`Pricing.stream_fifo`).
    """
    target = Pricing(flavour, device, clock_ns, reuse, strategy)
    found = list(layer_inputs(description, arrays))
    stream = description.get("io_type", "io_parallel") == "io_stream"
    pixels = _stream_pixels(description, [spec for _, spec, _ in found]) if stream else [1] * (len(found) + 1)
    priced = [(cls, spec, replace(target, name=spec["name"], op=spec["op"], widths=widths, words=words))
              for (cls, spec, widths), words in zip(found, pixels)]
    costs = [cls.price(spec, arrays, pricing) for cls, spec, pricing in priced]
    if stream:
        # The FIFO after layer i carries the next layer's input, one word per pixel of an image.
        words = [int(pricing.widths.sum()) for _, _, pricing in priced[1:]] + [0]
        values = [len(pricing.widths) for _, _, pricing in priced[1:]] + [0]
        costs = [_with_depth(pricing.stream_fifo(cost, bits // depth, reads_fifo=i > 0), bits // depth, depth,
                             max(1, n // depth))
                 for i, ((_, _, pricing), cost, bits, n, depth)
                 in enumerate(zip(priced, costs, words, values, pixels[1:] + [1]))]
    return costs


def _stream_pixels(description: dict, specs: list) -> list:
    """The words per image of each layer's input stream (and after the last): an image's pixels
    until a layer that reads the whole image (a dense layer, a global pool) makes it one word."""
    shape = description.get("input_shape") or [description["n_inputs"]]
    pixels = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    found = [pixels]
    for spec in specs:
        if "out_height" in spec and "out_width" in spec:
            pixels = int(spec["out_height"]) * int(spec["out_width"])
        elif spec.get("op", "").startswith(("global_pooling", "dense")):
            pixels = 1
        found.append(pixels)
    return found


def _with_depth(cost: LayerCost, word_bits: int, depth: int, channels: int) -> LayerCost:
    """``cost`` with its output FIFO as deep as the image's words (hls4ml's default depth). HLS makes
    one FIFO per channel of the word: up to :data:`FIFO_SRL_DEPTH` words shift registers (SRL32, a
    LUT per bit), deeper a BRAM18 each (tutorial part 6's CNN: 96 BRAM18 for six image-deep streams
    of 16 channels)."""
    if depth <= 1 or not word_bits:
        return cost
    bits = max(1, word_bits // channels)
    if depth <= FIFO_SRL_DEPTH:
        lut, bram, ff = word_bits, 0, 0
    else:
        lut, bram, ff = 0, channels * int(math.ceil(bits * depth / BRAM18_BITS)), channels * FIFO_BRAM_FF
    return replace(cost, lut=cost.lut + lut, ff=cost.ff + ff, bram_18k=cost.bram_18k + bram,
                   detail=cost.detail + f" x {depth} deep ({channels} FIFOs)")


def combine(costs: list, strategy_used: set, io_type: str = "io_parallel", flavour: Flavour | None = None) -> tuple:
    """(latency, II) of the layers together: one pipeline for io_parallel with the Latency strategy,
    DATAFLOW when any layer uses the Resource strategy (latency: the sum plus one cycle per
    hand-over). The II is the largest reuse factor in both: the Resource kernel's loop is pipelined
    with ``rewind``, so a layer takes a new event every R cycles (hls4ml's documented behaviour; no
    published Resource-strategy point checks it). io_stream: DATAFLOW of the layers (each at least a
    cycle, :meth:`Pricing.stream_fifo`) with no hand-over cycle; a ``flavour`` whose DATAFLOW does not
    overlap events (Vitis HLS, :data:`STREAMS`) has II = the latency."""
    latency = sum(c.latency for c in costs)
    ii = max((c.ii for c in costs), default=1)
    if io_type == "io_stream":
        # An image's words stream through every layer at once: the longest read, once.
        latency += max((c.stream_cycles for c in costs), default=0)
        overlaps = STREAMS[flavour.name].overlaps if flavour is not None else True
        return latency, ii if overlaps else max(ii, latency)
    if "Resource" in strategy_used or any(c.dataflow for c in costs):
        latency += len(costs)
    return latency, ii


def valid_reuse_factors(n_in: int, n_out: int) -> list:
    """Reuse factors hls4ml accepts for a dense layer (its ``_validate_reuse_factor`` rule, which the
    export also enforces)."""
    valid = []
    for rf in range(1, n_in * n_out + 1):
        limit = math.ceil(n_in * n_out / min(n_in, rf))
        ok = (limit % n_out == 0 or rf >= n_in) and (rf % n_in == 0 or rf < n_in)
        if ok and (n_in * n_out) % rf == 0:
            valid.append(rf)
    return valid
