# %% [markdown]
# # 9. From network to gates: da4ml's Verilog, Verilator and yosys
#
# ## Learning goals
#
# After this tutorial you can
#
# - say what **da4ml** does with a quantized network: every product with a constant weight becomes
#   **shifts and adds** (no multipliers, no DSPs), and the adders are cut into **pipeline stages**;
# - count the adders a constant needs in **canonical signed digits**;
# - export an HGQ2 model to Verilog with `fastml_lab.rtl.network.export_rtl`, and read the top
#   module, a stage and `describe_rtl`;
# - show that the Keras model, the emulator and the Verilog simulated by **Verilator** compute the
#   same numbers, bit for bit;
# - read a **waveform**: events entering one per clock cycle, results leaving a fixed number of
#   cycles later;
# - tell an **estimate** from a **technology mapping** (yosys), set both beside hls4ml's HLS
#   estimate of the same model, and say what place and route would still change.
#
# Computing time: about a minute on two cores with `FASTML_LAB_QUICK=1`, a minute and a half at
# full size; most of it is quantization-aware training, compiling the Verilog twice with Verilator
# (for the check and for the waveform) and mapping it with yosys. It
# needs HGQ2 and da4ml (`pip install 'fastml-lab[lab]'`), Verilator, yosys and g++ (Binder has
# them; on Debian `apt-get install verilator yosys g++`). Every tool here is open: no Vivado.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("09_from_network_to_gates")
lab

# %% [markdown]
# ## A product with a constant is shifts and adds
#
# Tutorial 4 exported the network with hls4ml: C++ in which every weight multiplies an input, and
# HLS builds a multiplier for each product (a DSP slice, or LUTs for narrow ones). But the weights
# are **constants**, fixed when the firmware is built, and a product with a constant needs no
# multiplier at all. In binary, `x * 6 = x * 0b110 = (x << 2) + (x << 1)`: shifting is only wiring
# (free on an FPGA), so the product costs one adder (or one subtractor, as `(x << 3) - (x << 1)`).
# Digits may also be negative:
# `x * 7 = x * 0b111` takes two adders as `(x << 2) + (x << 1) + x`, but one subtractor as
# `(x << 3) - x`. The form with the fewest non-zero digits is the **canonical signed digit**
# (CSD) form, and `n` non-zero digits cost `n - 1` adders or subtractors.
#
# ### Exercise 1: adders for one constant
#
# Predict before the next cell tells you: how many adders (or subtractors) does `x * 187` need at
# the least? `187 = 0b10111011`.

# %%
signed_digit_adders = ...   # an integer

checks.check_signed_digit_adders(signed_digit_adders, 187)

# %% [markdown]
# `checks.signed_digits` writes a constant in CSD, lowest digit first, as `(shift, sign)` pairs:

# %%
for constant in (6, 7, 119, 187):
    digits = checks.signed_digits(constant)
    terms = " ".join(f"{'+' if sign > 0 else '-'} (x << {shift})" for shift, sign in reversed(digits)).lstrip("+ ")
    print(f"x * {constant:3d} = {terms:40s} {len(digits) - 1} adder(s); binary needs {bin(constant).count('1') - 1}")

# %% [markdown]
# A dense layer is many such products, summed: `y[j] = b[j] + sum_i x[i] * w[i][j]`. **da4ml**
# (distributed arithmetic for machine learning) writes the whole layer as one graph of adders: the
# products of one input by several weights share their partial sums (`x * 3` made once serves
# `x * 6` and `x * 12`), and products that add up share adders too. A weight that is zero costs
# nothing. The graph then goes to Verilog: one adder module per node, and registers cut it into
# **pipeline stages** that each fit one clock period. One event enters per clock cycle (initiation
# interval 1) and the latency is the number of stages, exactly.
#
# da4ml needs every value's fixed-point type, and a quantization-aware model has them: here an
# HGQ2 model, which learns a width for every weight and input (tutorial 2).
#
# ## The model
#
# The course's network (16-64-32-32-5) takes Verilator about two minutes to compile; here we use a
# smaller one, 16-16-5, through the same helper, so every tool answers within seconds. The steps
# are the same for the larger one.

# %%
%%needs tensorflow hgq
from fastml_lab import quantize
from fastml_lab.evaluate import evaluate

ds = lab.load_jets()
print(ds.notice)
model = lab.train_float_model(ds, spec="16")   # 16 inputs, 16 hidden ReLUs, 5 classes
hgq = quantize.quantize(model, ds, hgq_beta=1e-5, epochs=lab.settings.qat_epochs, seed=lab.settings.seed,
                        progress=False)
qmodel = hgq.model
float_accuracy, hgq_accuracy = evaluate(model, ds).accuracy, evaluate(qmodel, ds).accuracy
print(f"float accuracy {float_accuracy:.4f}, HGQ2 accuracy {hgq_accuracy:.4f}, {hgq.ebops:,} EBOPs")
print("zero weights:", ", ".join(f"{layer} {fraction:.0%}" for layer, fraction in hgq.sparsity.items()))

# %% [markdown]
# ## Tracing: the network as a program of adders
#
# `trace` runs HGQ2's tracer over the model: instead of numbers, symbolic fixed-point values flow
# through the layers, and da4ml records every operation they need. The final softmax is left out
# (the design outputs the **logits**; the largest one names the same class). Count what came out:

# %%
%%needs tensorflow hgq da4ml
from collections import Counter

from fastml_lab.firmware.ops.dais import SUPPORTED_OPCODES
from fastml_lab.rtl.network import trace

program, softmax_left_out = trace(qmodel)
kinds = Counter(SUPPORTED_OPCODES[op.opcode] for op in program.ops)
products = sum(layer.kernel.shape[0] * layer.kernel.shape[1] for layer in qmodel.layers if hasattr(layer, "kernel"))
print(f"{products} weight x input products in the network; da4ml's program has {len(program.ops)} operations:")
for kind, count in kinds.most_common():
    print(f"  {kind:14s} {count:4d}")
print(f"multiplications: {kinds.get('multiply', 0)}; softmax left out: {softmax_left_out}")
print(f"da4ml's estimate of the logic: {program.cost:,.0f} LUTs")

# %% [markdown]
# Each "add" and "subtract" is a shift-and-add of two values; "add constant" adds a bias;
# "quantize" and "relu" cut bits. No operation multiplies: the whole network needs no DSP slice.
#
# ## Exporting the Verilog
#
# `export_rtl` traces the model, lets da4ml cut the adders into pipeline stages for the board's
# clock (the PYNQ-Z2, 100 MHz, unless a board or part is given) and writes the Verilog project
# under `rtl/`. It also reads the stages back into the **emulator** (`project.firmware()`), as
# tutorial 4's export does for hls4ml's C++.

# %%
%%needs tensorflow hgq da4ml
from fastml_lab.rtl.network import export_rtl, rtl_model_summary
from fastml_lab.rtl.waveform import describe_rtl

rtl_project = export_rtl(qmodel, lab.work / "jet_rtl", scaler=ds.scaler, class_names=ds.class_names,
                         feature_names=ds.feature_names, overwrite=True)
print(rtl_project)
print(rtl_model_summary(rtl_project))
print(rtl_project.meta["outputs"])
print(describe_rtl(rtl_project))

# %% [markdown]
# The top module is the pipeline: a register (`reg`) in front of each stage, clocked together, so
# an event moves one stage further at every rising edge of `clk`:

# %%
%%needs tensorflow hgq da4ml
rtl_dir = rtl_project.hls_dir
print((rtl_dir / "src" / "fastml_top.v").read_text())

# %% [markdown]
# Inside a stage every wire has exactly the width its values need, and every adder is an instance
# of `shift_adder #(width of a, width of b, a signed, b signed, width out, shift of b, subtract)`
# computing `a + (b << shift)`, or `a - (b << shift)` when the last parameter is 1: the shifts are
# where the weights' powers of two went. The first lines of stage 0:

# %%
%%needs tensorflow hgq da4ml
stage0 = (rtl_dir / "src" / "fastml_top_stage0.v").read_text().splitlines()
print("\n".join(line for line in stage0[:40] if line.strip()))
print(f"... {sum('shift_adder' in line for line in stage0)} shift_adder instances in this stage")

# %% [markdown]
# ## Bit for bit: Keras, the emulator and Verilator
#
# The HGQ2 model in Keras computes exactly what its quantizers allow; the Verilog must compute the
# same numbers. First the emulator against the Keras model without its softmax (the logits), on
# every test jet. Keras reads its inputs as float32, so the emulator gets the same float32 values:

# %%
%%needs tensorflow hgq da4ml
import keras

from fastml_lab.compare import count_mismatches

X = ds.X_test.astype(np.float32)
logits_model = keras.Model(qmodel.inputs, qmodel.layers[-2].output)   # the model without its softmax
keras_logits = np.asarray(logits_model([X], training=False))
emulated = rtl_project.firmware().predict(X)
print(count_mismatches(keras_logits, emulated, ("Keras", "emulator")).describe(),
      "between the HGQ2 Keras model (logits) and the emulator")
rtl_accuracy = np.mean(emulated.argmax(axis=1) == ds.labels_test)
print(f"accuracy from the logits: Keras {np.mean(keras_logits.argmax(axis=1) == ds.labels_test):.4f}, "
      f"emulator {rtl_accuracy:.4f}; from the HGQ2 model's quantized softmax: {hgq_accuracy:.4f}")

# %% [markdown]
# The logits agree value for value. The accuracy from the model's own softmax can differ slightly:
# that softmax is quantized too, in coarse steps, so on a few jets two classes get the same
# probability and the first of them wins, where the logits still tell them apart. The HLS export
# below keeps that softmax; the RTL design leaves it out.

# %% [markdown]
# Then the Verilog itself. **Verilator** translates it into C++ that simulates every clock cycle;
# `check_project` compiles that (once; later runs reuse the build), feeds the test jets through the
# pipeline one per cycle, and compares the outputs with the emulator's, as tutorial 4 did for the
# C simulation:

# %%
%%needs tensorflow hgq da4ml verilator g++
from fastml_lab.hls.check import check_project

check = check_project(rtl_project, ds.X_test, n_events=lab.settings.csim_events)
print(check.describe())
print(f"compile {check.compile_seconds:.1f} s, RTL simulation {check.csim_seconds:.2f} s, "
      f"emulator {check.emulator_seconds * 1e3:.1f} ms")

# %% [markdown]
# ### Exercise 2: predict the pipeline's length
#
# Commit before the waveform answers: event `e0` enters the top module at a rising clock edge.
# How many clock cycles later does its result `y0` leave? (`describe_rtl` above lists the stages,
# and the top module shows the registers.)

# %%
pipeline_cycles = ...   # an integer

# %% [markdown]
# ## The waveform: events through the pipeline
#
# `record_vcd` builds the Verilog once more with Verilator's tracing and feeds a few test jets, one
# per clock cycle; every signal's value at every edge goes to a VCD file (the format any waveform
# viewer, e.g. GTKWave, reads). `plot_waveform` draws the clock and the two ports: event `ek` on
# the input, its result `yk` on the output. Grey is the output before the first result arrives.

# %%
%%needs tensorflow hgq da4ml verilator g++ matplotlib
from fastml_lab.rtl.waveform import plot_waveform, read_vcd, record_vcd

latency = rtl_project.timing["latency_cycles"]
vcd = record_vcd(rtl_project, ds.X_test[:8], lab.work / "jet_rtl.vcd")
signals = read_vcd(vcd)
print(f"{vcd}: {len(signals['clk'])} clock changes; {len(signals['model_out'])} output values")
ax = plot_waveform(signals, latency=latency)
ax.figure.suptitle("Verilator's simulation of the exported Verilog, 8 test jets (a simulation, not a board)",
                   fontsize=9, y=1.02);

# %%
%%needs tensorflow hgq da4ml
checks.check_pipeline_latency(pipeline_cycles, rtl_project)

# %% [markdown]
# Every event's result leaves exactly `latency` cycles after it entered, and a new result leaves
# at every cycle: a latency of a few tens of nanoseconds at 100 MHz and 100 million events per
# second. On an FPGA that is a guarantee, not an average.
#
# ## What it costs: estimates and a mapping
#
# Three kinds of figure, each labelled with its kind wherever it appears:
#
# - **estimate**: a cost model, before any tool ran. hls4ml's export is priced by fastml_lab's
#   C-synthesis model (tutorial 4); da4ml prices its own adders (LUTs from their widths, flip-flops
#   from the pipeline registers).
# - **technology mapping**: **yosys** reads the Verilog and maps it onto the cells of a Xilinx
#   7-series FPGA: LUTs, flip-flops, `CARRY4` (the fast carry chains that adders use). These are
#   real cells, counted, but **before place and route**.
# - **implementation** (place and route with Vivado): not here; see the last section.
#
# First da4ml's own estimate of the RTL project:

# %%
%%needs tensorflow hgq da4ml
from fastml_lab.estimate import estimate

rtl_estimate = estimate(rtl_project)
print(rtl_estimate.table())

# %% [markdown]
# Now yosys. `map_project` runs its `synth_xilinx` flow on the project's Verilog for the project's
# part (the PYNQ-Z2's xc7z020); `record_mapping` keeps the result in the project record, where
# `estimate` finds it:

# %%
%%needs tensorflow hgq da4ml yosys
from fastml_lab.rtl.yosys import map_project

mapping = map_project(rtl_project)
rtl_project.record_mapping(mapping)
res = mapping["resources"]
print(f"{mapping['source']} ({mapping['tool_version'].split('(')[0].strip()}, {mapping['part']}, "
      f"{mapping['seconds']:.0f} s):")
print(f"  LUT {res['LUT']:,}  FF {res['FF']:,}  CARRY4 {res['CARRY4']:,}  DSP {res['DSP']}  BRAM_18K {res['BRAM_18K']}")
print(estimate(rtl_project).verdict())

# %% [markdown]
# ## Side by side with hls4ml
#
# The same HGQ2 model, exported with hls4ml as in tutorial 4 (its quantizers set every type), for
# the same part at the same clock, and priced by the C-synthesis estimate. Its emulator is bit-exact
# with its C simulation (tutorial 4), so its accuracy is computed here from the emulator.

# %%
%%needs tensorflow hgq da4ml hls4ml
from fastml_lab.hls import export

hls_project = export(qmodel, lab.work / "jet_hls", scaler=ds.scaler, class_names=ds.class_names, overwrite=True)
hls_estimate = estimate(hls_project)
print(hls_estimate.table())
hls_accuracy = np.mean(hls_project.firmware().predict(ds.X_test).argmax(axis=1) == ds.labels_test)

# %% [markdown]
# The table puts the three columns together. Mind what each column is: two estimates and one
# mapping, and the HLS design still contains the softmax (its own row above: a few cycles, LUTs
# and a small table in block RAM) which the RTL design leaves out.

# %%
%%needs tensorflow hgq da4ml hls4ml yosys
columns = {
    "hls4ml HLS (estimate)": {"LUT": hls_estimate.resources["lut"], "FF": hls_estimate.resources["ff"],
                              "DSP": hls_estimate.resources["dsp"], "CARRY4": None,
                              "latency_cycles": hls_estimate.latency_cycles, "accuracy": hls_accuracy},
    "da4ml RTL (estimate)": {"LUT": rtl_estimate.resources["lut"], "FF": rtl_estimate.resources["ff"],
                             "DSP": rtl_estimate.resources["dsp"], "CARRY4": None,
                             "latency_cycles": rtl_estimate.latency_cycles, "accuracy": rtl_accuracy},
    "da4ml RTL (mapping)": {"LUT": res["LUT"], "FF": res["FF"], "DSP": res["DSP"], "CARRY4": res["CARRY4"],
                            "latency_cycles": latency, "accuracy": rtl_accuracy},
}
clock_ns = rtl_project.meta["clock_period_ns"]
rows = {"LUT": "LUT", "FF": "FF", "DSP": "DSP", "CARRY4": "CARRY4", "latency_cycles": "latency (cycles)",
        "accuracy": "accuracy"}
print(f"{'':18s}" + "".join(f"{name:>24s}" for name in columns))
for key, label in rows.items():
    cells = ["-" if c[key] is None else f"{c[key]:.4f}" if key == "accuracy" else f"{c[key]:,}"
             for c in columns.values()]
    print(f"{label:18s}" + "".join(f"{cell:>24s}" for cell in cells))
print(f"{'latency (ns)':18s}" + "".join(f"{c['latency_cycles'] * clock_ns:>24,.0f}" for c in columns.values()))
print(f"\nlatency: the estimate's for HLS, the pipeline's own depth for RTL (exact); clock {clock_ns:g} ns; "
      f"accuracy on {len(ds.X_test):,} test jets. The mapping is {mapping['source']}.")

# %%
%%needs tensorflow hgq da4ml hls4ml yosys matplotlib
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3))
keys = ["LUT", "FF", "DSP"]
for k, (name, column) in enumerate(columns.items()):
    bars = ax.bar(np.arange(len(keys)) + (k - 1) * 0.27, [column[key] for key in keys], width=0.27, label=name)
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=7)
ax.set_xticks(range(len(keys)), keys)
ax.set_ylabel("count")
ax.set_title("The same HGQ2 16-16-5 network: two estimates and a yosys mapping (before place and route)",
             fontsize=9)
ax.legend(fontsize=8);

# %% [markdown]
# Both generators start from the same quantized weights, so both compute the same classes; what
# differs is the circuit. hls4ml writes a multiplication per weight and leaves it to HLS to make it
# small; da4ml builds the adders itself and shares them. On the RTL side the estimate and the
# mapping are close but not equal: da4ml counts one LUT per bit of an adder, yosys packs real
# cells.
#
# ### Exercise 3: how far is the estimate from the mapping?
#
# By how many percent does da4ml's LUT estimate differ from yosys' LUT count
# (`100 * (estimate - mapping) / mapping`, negative when the estimate is lower)?

# %%
%%needs tensorflow hgq da4ml yosys
estimate_off_by_percent = ...   # a number

checks.check_number(estimate_off_by_percent, 100 * (rtl_estimate.resources["lut"] - res["LUT"]) / res["LUT"],
                    "da4ml's cost model counts about one LUT per bit of each adder; yosys maps to real "
                    "cells and packs some logic together, so the two agree to a few percent, not exactly.",
                    "Compute 100 * (estimate - mapping) / mapping from the two LUT rows.",
                    rel=0.02, abs_=0.5)

# %% [markdown]
# ## What place and route would add
#
# A technology mapping is not a finished design. Vivado's implementation would still
#
# - **place** every cell on the chip and **route** the wires between them. On an FPGA most of a
#   path's delay is often in the routing, so only now is it known whether each pipeline stage fits
#   the clock period: **timing closure**. da4ml cut the stages with a model of adder delays (about
#   2 ns per adder level here); if a path is too long, the design needs more stages or a slower
#   clock, and the latency in nanoseconds changes.
# - **optimise** with its own synthesis: Vivado packs LUTs differently from yosys, merges
#   inverters into neighbouring LUTs, moves registers across logic (retiming) and removes logic
#   that no output uses. Its LUT and FF counts can differ from yosys' by **tens of percent**, either
#   way; the CARRY4 count tends to agree more closely, since adders map to carry chains in both.
# - add the **surroundings**: on a PYNQ-Z2 the AXI-stream wrapper and the DMA around the IP
#   (tutorials 4 and 5 count them), the clock and its constraints.
#
# So the mapping is a good guide to size and to relative comparisons (this design against
# another), and the cycle count of the pipeline is exact; the final LUT count, and whether 100 MHz
# is met, come only from the vendor's place and route (`fastml-lab synth PRJ --tool vendor` where
# Vivado is installed).
#
# ## Summary
#
# - A product with a constant weight is **shifts and adds**: `n` signed digits cost `n - 1` adders
#   (Exercise 1), and da4ml shares adders across a whole layer: no multipliers, no DSPs.
# - `trace` turns an HGQ2 model into da4ml's program; `export_rtl(qmodel, out)` writes the
#   **pipelined Verilog** (`rtl/src/`) and the emulator's description of it; `describe_rtl` lists
#   ports and stages. A final softmax is left out: the outputs are logits.
# - Keras, the emulator and the Verilator simulation of the RTL (`check_project`) agree **bit for
#   bit** on every test jet compared.
# - The **latency** is the number of pipeline stages, exactly, and a new event enters every cycle
#   (`record_vcd` + `plot_waveform`).
# - `estimate(project)` gives da4ml's own **estimate**; `map_project` + `record_mapping` give
#   yosys' **technology mapping** (LUT, FF, CARRY4; before place and route); hls4ml's HLS export
#   of the same model is priced by the C-synthesis **estimate**. Only place and route gives the
#   final figures and timing closure.
#
# The command line does the same: `fastml-lab export Q.keras --backend rtl --out PRJ`,
# `fastml-lab check PRJ --input X.npy` and `fastml-lab synth PRJ --tool yosys`.
#
# Next: **tutorial 10** (`10_acceleration_as_a_service.ipynb`) puts an overlay behind a service that many
# jobs can share, as the LHC experiments do with Triton.
