"""The AXI-stream wrapper hls4ml's VivadoAccelerator backend puts around the network (``myproject_axi``).

What ``hls4ml/writer/vivado_accelerator_writer.py`` generates for ``io_parallel`` +
``interface='axi_stream'`` (read in hls4ml 1.3; the project's ``firmware/myproject_axi.cpp``)::

    for (i = 0; i < N_IN; i++) {  #pragma HLS PIPELINE   // II 1: one stream word per cycle
        in_local[i] = in[i].data;                       // float word -> input_t
        is_last |= in[i].last; }
    myproject(in_local, out_local);                     // the network: its own pipeline
    for (i = 0; i < N_OUT; i++) { #pragma HLS PIPELINE   // II 1
        out[i].data = out_local[i]; ... }               // result_t -> float word

The two loops are pipelined (one 32-bit word per cycle), but the function around them has no
``PIPELINE`` or ``DATAFLOW`` pragma (``ap_ctrl_none``): the next event's first word is read only
after the last output word is written. So events do not overlap, and

    latency = (N_IN + d_in - 2) + L_network + (N_OUT + d_out - 2) + 4,   II = latency,

where ``d_in``/``d_out`` are the depths of the loops' bodies: a float-to-fixed conversion
(``fpext``, a shift by the exponent, saturation) and back (count of leading zeros, shifts). Those
are a fixed amount of logic delay, cut into cycles at the target clock. The constants come from
the one public report of this wrapper with its loop details (Vivado HLS 2019.2, xc7z020 at 5 ns:
``Loop 1`` 16 trips, depth 9, 23 cycles; ``Loop 2`` 5 trips, depth 10, 13 cycles; network 55;
total 95 = II, confirmed on the board at 100 MHz: 703,900 events/s measured against a 1.05 M/s bound).

Resources: the conversions (about 2,000 LUT) and the packed ``in_local`` register written at a
variable index (about 15 LUT and 3 FF per input bit). numpy-free.
"""

from __future__ import annotations

import math

from .model import Device, Flavour, LayerCost

#: Logic delay (ns on a delay-1 part) of one float word converted to fixed point, and back.
FLOAT_TO_FIXED_NS = 24.0
FIXED_TO_FLOAT_NS = 26.5
#: A fixed-point word needs only a register.
FIXED_WORD_NS = 1.0
#: The wrapper's states around the loops and the call (the report's total minus its parts).
CONTROL_CYCLES = 4
CONVERSION_LUT = 2_000
CONVERSION_FF = 2_500
LUT_PER_INPUT_BIT = 15
FF_PER_INPUT_BIT = 3


def _depth(delay_ns: float, flavour: Flavour, device: Device, clock_ns: float) -> int:
    usable = clock_ns * (1.0 - flavour.clock_uncertainty)
    return max(1, int(math.ceil(delay_ns * device.delay / usable - 1e-9)))


def axi_stream_cost(n_inputs: int, n_outputs: int, input_bits: int, core_latency: int, *, word: str,
                    flavour: Flavour, device: Device, clock_ns: float) -> LayerCost:
    """The wrapper's own figures; its latency includes the network's (``core_latency``)."""
    is_float = word.startswith("float")
    d_in = _depth(FLOAT_TO_FIXED_NS if is_float else FIXED_WORD_NS, flavour, device, clock_ns)
    d_out = _depth(FIXED_TO_FLOAT_NS if is_float else FIXED_WORD_NS, flavour, device, clock_ns)
    read = n_inputs + d_in - 2
    write = n_outputs + d_out - 2
    latency = read + core_latency + write + CONTROL_CYCLES
    packed = n_inputs * input_bits
    return LayerCost(
        "axi_stream wrapper", "wrapper", latency=latency, ii=latency, dsp=0,
        lut=(CONVERSION_LUT if is_float else 300) + LUT_PER_INPUT_BIT * packed,
        ff=(CONVERSION_FF if is_float else 300) + FF_PER_INPUT_BIT * packed,
        detail=(f"read {n_inputs} words ({read} cycles, depth {d_in}), network {core_latency}, write "
                f"{n_outputs} words ({write} cycles, depth {d_out}); not pipelined across events"))
