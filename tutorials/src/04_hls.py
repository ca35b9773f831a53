# %% [markdown]
# # 4. From Keras to firmware: high-level synthesis with hls4ml
#
# ## Learning goals
#
# After this tutorial you can
#
# - say what high-level synthesis (HLS) does with a C++ description of a network, and what the
#   **reuse factor** trades: multipliers against latency and throughput;
# - export a Keras model with `fastml_lab.hls.export` and find your way around the generated
#   project (`myproject.cpp`, `defines.h`, `parameters.h`, the weights);
# - run the **C simulation** and show that the numpy **emulator** computes exactly the same
#   numbers, bit for bit;
# - write **precision plans** (one type, per layer, from data) and see where values overflow;
# - read, edit and export from **hls4ml's own configuration** dict, as you would with hls4ml alone;
# - set the time per event of a CPU, the PYNQ-Z2's Arm core, its DMA and its fabric against a
#   trigger's budget, and say what an FPGA buys a trigger;
# - read a synthesis report: latency, initiation interval, DSP and LUT against a device's budget.
#
# Computing time: about a minute on two cores. The C simulation needs `g++`; synthesis needs the
# vendor tools, which Binder and CI do not have, so this tutorial reads a report instead of making
# one. Words in **bold** are in the [glossary](GLOSSARY.md).
#
# **Two vendor tools.** AMD (formerly Xilinx) ships two HLS compilers: **Vivado HLS** (up to 2020.1)
# and its successor **Vitis HLS** (2020.2 on). hls4ml's `VivadoAccelerator` backend, which writes
# the PYNQ-Z2's AXI-stream wrapper and block design, needs Vivado HLS; a bare part (here
# `xc7z020clg400-1`: a Zynq-7020, package clg400, speed grade -1) can use either. Their reports differ,
# so every figure below names the tool it stands for.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("04_hls")
lab

# %% [markdown]
# ## What HLS does
#
# An FPGA has no instruction stream: a design is a circuit of lookup tables (LUTs), flip-flops,
# block RAM and hard multipliers (DSP slices), wired once and then clocked. **High-level
# synthesis** turns C++ into that circuit. For a dense layer
# `y[j] = b[j] + sum_i x[i] * w[i][j]`, HLS can
#
# - **unroll** the loops: every product gets its own multiplier and all of them work in the same
#   clock cycle (lowest latency, most resources);
# - **pipeline**: start a new input every *II* cycles (the initiation interval) while earlier ones
#   are still in flight;
# - **reuse** each multiplier *R* times (the **reuse factor**): *R* times fewer multipliers, and a
#   new event only every *R* cycles.
#
# hls4ml writes that C++ from a trained network, with every number in a fixed-point type
# (`ap_fixed<W,I>`, tutorial 2) and `#pragma HLS` directives that tell the tool what to unroll and
# pipeline. fastml_lab sets every type explicitly through a **precision plan**, so nothing is left
# to guesswork.
#
# We start from the network tutorial 1 trained and kept (it is trained here, the same way, only
# if tutorial 1 has not run), so the numbers below are those of the same model.

# %%
%%needs tensorflow
ds = lab.load_jets()
print(ds.notice)
model = lab.train_float_model(ds)

# %% [markdown]
# ## Exporting
#
# `export` converts the model with hls4ml and writes a project folder. `precision` gives one
# type to everything (inputs, weights, biases, results); the accumulators of the dense layers are
# made wide enough to hold their sums **exactly**. The scaler and the class names are recorded, so
# the overlay in tutorial 5 can take raw features and name its answers.

# %%
%%needs tensorflow hls4ml
from fastml_lab.hls import export

project = export(model, lab.work / "jet_mlp_16_6", precision="ap_fixed<16,6>",
                 scaler=ds.scaler, class_names=ds.class_names, overwrite=True)
print(project)
print(sorted(p.name for p in project.path.iterdir()))
print(sorted(p.name for p in (project.hls_dir / "firmware").iterdir()))

# %% [markdown]
# ## The generated C++
#
# `myproject.cpp` is the top function: one call per Keras layer, each a template from hls4ml's
# `nnet_utils` library, instantiated with the layer's types and configuration.

# %%
%%needs tensorflow hls4ml
cpp = (project.hls_dir / "firmware" / "myproject.cpp").read_text()
print("\n".join(line.strip() for line in cpp.splitlines() if "nnet::" in line and "load_weights" not in line))

# %% [markdown]
# `defines.h` holds the types. Look at the accumulators (`fc1_accum_t`, ...): they are wider than
# the 16-bit data because a sum of products grows.

# %%
%%needs tensorflow hls4ml
defines = (project.hls_dir / "firmware" / "defines.h").read_text()
print("\n".join(line for line in defines.splitlines() if line.startswith("typedef ap_fixed")))

# %% [markdown]
# ### Exercise 1: how wide must an exact accumulator be?
#
# `fc1` sums 16 products of `ap_fixed<16,6>` inputs and weights, plus an `ap_fixed<16,6>` bias,
# and needs `ap_fixed<37,17>`. How many bits does `fc2`, with **64** inputs, need? Check your
# answer against `defines.h`.

# %%
fc2_accumulator_bits = ...   # an integer

checks.check_accumulator_width(fc2_accumulator_bits, n_in=64)

# %% [markdown]
# `parameters.h` configures each layer. For `fc1`: 16 inputs, 64 outputs, the reuse factor and
# `multiplier_limit`, the number of multipliers HLS will build.

# %%
%%needs tensorflow hls4ml
parameters = (project.hls_dir / "firmware" / "parameters.h").read_text()
start = parameters.index("struct config2")
print(parameters[start:parameters.index("};", start) + 2])

# %% [markdown]
# ## C simulation and the bit-exact emulator
#
# The **C simulation** compiles the generated C++ with `g++` (Xilinx's `ap_fixed` headers ship
# with hls4ml) and runs it. It is the same source HLS synthesizes, so it computes what the firmware
# is meant to compute; that the synthesized circuit does so too is what the vendor's C/RTL
# co-simulation checks, which needs the vendor tools (not here). The C simulation is slow to build
# (about 15 seconds) and to run (one call per event). fastml_lab reads the same project back into a
# numpy **emulator** (`project.firmware()`). That it computes the same values as the C simulation is
# a claim we can test: `check_project` compiles the C simulation (`run_csim` runs it alone), runs
# both on the same events and counts the output **values** that differ, the same check the walk's
# Export step, the demo and the board's verification make.

# %%
%%needs tensorflow hls4ml g++
from fastml_lab.hls.check import check_project

firmware = project.firmware()
check = check_project(project, ds.X_test, n_events=lab.settings.csim_events)
print(check.describe())
print(f"compile {check.compile_seconds:.1f} s, C simulation {check.csim_seconds:.2f} s, "
      f"emulator {check.emulator_seconds * 1e3:.1f} ms")

# %% [markdown]
# Zero mismatches on these events: the emulator equals the C simulation value for value, and is
# fast enough to study precisions on the whole test set. How much does fixed point cost in accuracy
# here?

# %%
%%needs tensorflow hls4ml
from fastml_lab.evaluate import evaluate

float_accuracy = evaluate(model, ds).accuracy
fixed_accuracy = evaluate(firmware.predict(ds.X_test), ds.labels_test).accuracy
print(f"float {float_accuracy:.4f}   ap_fixed<16,6> {fixed_accuracy:.4f}")

# %% [markdown]
# ## Precision plans
#
# One type everywhere is simple but wasteful: inputs are standardised (mostly within +-4), hidden
# activations may be larger, and the softmax outputs lie in [0, 1]. A `PrecisionPlan` gives each
# layer its own types. `ptq_study` exports a plan to a temporary project and emulates it, counting
# per layer the values that fell outside the result type's range (**overflows**).

# %%
%%needs tensorflow hls4ml
from fastml_lab.hls import PrecisionPlan
from fastml_lab.hls.study import ptq_study

plans = {
    "ap_fixed<16,6> everywhere": PrecisionPlan.uniform("ap_fixed<16,6>"),
    "ap_fixed<8,3> everywhere": PrecisionPlan.uniform("ap_fixed<8,3>"),
    "8 bits, sized from data": PrecisionPlan.from_data(model, ds.X_train, width=8),
}
studies = {name: ptq_study(model, ds.X_test, ds.labels_test, plan=plan)
           for name, plan in plans.items()}
for name, study in studies.items():
    print(f"{name:28s} accuracy {study['accuracy']:.4f}  overflows {study['overflows']}")

# %% [markdown]
# Sizing the integer bits from the data removes the overflows, but with only 8 bits in all,
# what goes to the integer part is taken from the fraction: the steps become coarse and the
# accuracy still drops. Tutorial 2 shows how to choose widths per layer with profiling, and how
# quantization-aware training lets the network adapt to narrow types.
#
# A plan is plain data: it can be saved with the project, edited and loaded again.

# %%
%%needs tensorflow hls4ml
plans["8 bits, sized from data"].to_dict()

# %% [markdown]
# ## hls4ml's own configuration
#
# A plan is fastml_lab's shorthand. What hls4ml itself reads is a configuration dict, the one
# `hls4ml.utils.config_from_keras_model(model, granularity="name")` makes: a `Model` entry (the
# defaults) and one entry per layer under `LayerName`, each with its `Precision` per slot
# (`weight`, `bias`, `result`, `accum`), `ReuseFactor` and `Strategy`. `hls4ml_config` gives the dict
# `export` would hand hls4ml, with every precision set (hls4ml's own default leaves per-layer
# precisions at `"auto"`, and an inferred last-layer type can be too wide for the softmax).

# %%
%%needs tensorflow hls4ml
from fastml_lab.hls import hls4ml_config

config = hls4ml_config(model, precision="ap_fixed<16,6>")
print("Model:", config["Model"])
for name in ("fc1", "output"):
    print(f"{name}:", config["LayerName"][name])

# %% [markdown]
# Edit it as you would for hls4ml: here the first layer gets 8-bit weights and shares each
# multiplier 4 times, and every other layer keeps its settings. `export(model, out,
# hls_config=config)` exports from it (the command line takes it as a JSON or YAML file:
# `fastml-lab export model.keras --hls-config config.json`); what is refused before any work: a
# precision left at `"auto"`, a layer the model does not have, a reuse factor that hls4ml would
# quietly replace. The same dict works with `hls4ml.converters.convert_from_keras_model(model,
# hls_config=config, ...)` directly.

# %%
%%needs tensorflow hls4ml
import copy

edited = copy.deepcopy(config)
edited["LayerName"]["fc1"]["Precision"]["weight"] = "fixed<8,3>"
edited["LayerName"]["fc1"]["ReuseFactor"] = 4
from_config = export(model, lab.work / "from_config", hls_config=edited, scaler=ds.scaler,
                     class_names=ds.class_names, overwrite=True)
for layer in from_config.firmware().description["layers"]:
    if layer["op"] == "dense":
        print(f"{layer['name']:7s} weights {layer['weight_type']['width']}-bit, reuse factor {layer['reuse_factor']}")
print(check_project(from_config, ds.X_test, n_events=lab.settings.csim_events).describe())

# %% [markdown]
# ### Exercise 2: where does `ap_fixed<8,3>` break?
#
# With 3 integer bits (sign included) a value must lie in [-4, 4). Which layer has the most
# overflows under `ap_fixed<8,3>` everywhere? Use `studies["ap_fixed<8,3> everywhere"]["overflows"]`.

# %%
%%needs tensorflow hls4ml
worst_layer = ...   # a layer name, e.g. "fc1"

checks.check_worst_layer(worst_layer, studies["ap_fixed<8,3> everywhere"]["overflows"])

# %% [markdown]
# ## Reuse factor: resources against latency
#
# At reuse factor 1 every product has its own multiplier: fc1 alone has 16 x 64 = 1,024. The
# PYNQ-Z2's xc7z020 has **220 DSP slices**. Re-exporting with a larger reuse factor shares the
# multipliers; the **initiation interval (II)**, the cycles between two events the design accepts,
# grows with it, while the latency barely moves (HLS schedules the shared products inside the same
# pipeline; the published Vitis HLS reports of this model say 14 cycles at reuse 1, 13 at reuse 2).
# The figures below are fastml_lab's **estimate** (a cost model fitted to published synthesis
# reports; tutorial 8 shows its measured error), not a synthesis.

# %%
%%needs tensorflow hls4ml
import math

dense = [layer for layer in firmware.description["layers"] if layer["op"] == "dense"]
print("reuse  multipliers  latency  II (cycles at 100 MHz, estimate)")
for reuse in (1, 4, 16, 64):
    exported = export(model, lab.work / f"reuse_{reuse}", precision="ap_fixed<16,6>",
                      reuse_factor=reuse, overwrite=True)
    timing = exported.timing  # the project's record: an estimate until a synthesis report replaces it
    multipliers = sum(math.ceil(layer["n_in"] * layer["n_out"] / reuse) for layer in dense)
    print(f"{reuse:5d}  {multipliers:11,d}  {timing['latency_cycles']:7d}  {timing['ii_cycles']:3d}")

# %% [markdown]
# hls4ml accepted reuse 64 for every layer, although the output layer has 32 x 5 = 160 products
# and 64 does not divide 160: with the **Latency** strategy hls4ml takes any reuse factor (the
# last multiplier is simply used fewer times). With the **Resource** strategy it quietly replaces a
# factor that does not divide a layer's products evenly by the nearest one that does; `export`
# refuses that instead and lists the valid ones.
#
# ## What an FPGA buys a trigger
#
# The LHC crosses bunches 40 million times a second: a Level-1 trigger algorithm must take a new
# event every **25 ns**, and the whole Level-1 decision has a few microseconds (2.5-4 us today,
# 10-12.5 us after the HL-LHC upgrades) from the detector to the accept signal. An algorithm gets a
# fraction of that. FPGAs sit beside the detector's optical links and answer with a **fixed**
# latency; a CPU farm sees events only after that decision.
#
# How do the paths compare per event? Four of them, for this model or the PYNQ-Z2 version of it:
#
# - `"fabric"`: the network in the PYNQ-Z2's fabric, the IP alone (a published design, reuse 64);
# - `"keras_batch"`: Keras on this machine, on batches of 10,000 jets (as a CPU farm runs it);
# - `"arm_c"`: the same network as C code on the PYNQ-Z2's Arm core, one event per call (published);
# - `"dma_one"`: the FPGA called from Python through the DMA, one event per call (published).
#
# ### Exercise 3: predict the ranking
#
# Commit to a ranking, **fastest per event first**, before you run the next cell.

# %%
ranking = ...   # a list of "fabric", "keras_batch", "arm_c", "dma_one", fastest first

# %% [markdown]
# The next cell measures the CPU rows here (batched, best of three; the emulator and the firmware's
# C++ compiled with g++ beside Keras), estimates this design on the PYNQ-Z2 and on a large trigger
# FPGA, and sets the published run on a real PYNQ-Z2 beside them. Every row says what it is: a
# measurement here, a published measurement or synthesis report (with its source), or an estimate.
# A design that does not fit a board is no figure of that board: it is left out of the plot.

# %%
%%needs tensorflow hls4ml
from fastml_lab.estimate.headline import headline_table, latency_ladder, measure_cpu, trigger_headline
from fastml_lab.plots import plot_latency_ladder

cpu = measure_cpu(project, ds.X_test, model=model)   # batches of 10,000 jets, best of 3, per event
headline = trigger_headline(project, cpu)
print(headline_table(headline))
ladder = latency_ladder(headline)
fig = plot_latency_ladder(ladder)
checks.check_latency_order(ranking, ladder)

# %% [markdown]
# Read the two panels. **Per event** (left), only a pipelined circuit at II 1 (the trigger
# FPGA's estimate) keeps up with one event every 25 ns; the PYNQ-Z2 design, sharing each
# multiplier 64 times to fit the small chip, takes 950 ns per event, about what one desktop CPU core
# needs for the same network in C, and batched Keras on a laptop's cores can beat it. **Until one
# answer** (right), the batched CPU is worst: each event waits for its batch. A single call through Python and the DMA spends almost all of its 940 us in
# software, a thousand times the fabric's own time. So a trigger FPGA is worth it for what no CPU
# gives: a fixed latency well inside the budget, a new event every crossing, next to the links;
# the PYNQ-Z2 is a place to learn that path, not a trigger.
#
# ### Exercise 4: multipliers at reuse factor 4
#
# How many multipliers does `fc1` (16 inputs, 64 outputs) need at reuse factor 4?

# %%
fc1_multipliers = ...   # an integer

checks.check_multipliers(fc1_multipliers, n_in=16, n_out=64, reuse_factor=4)

# %% [markdown]
# ## Reading a synthesis report
#
# Synthesis (`fastml_lab.hls.synth.synthesize(project)`, or `fastml-lab synth PRJ`) runs the
# vendor tool, which writes `csynth.xml`: the latency and interval it achieved and the resources
# it used. Without the tools it stops with a clear message:

# %%
from fastml_lab.hls.synth import find_tool, parse_csynth_report

print("Vitis HLS / Vivado HLS found:", find_tool("vitis") or find_tool("pynq-z2") or "none")

# %% [markdown]
# So we read a report in the tool's format instead. Its latency, interval, DSP and LUT figures
# are the published ones for this very model at `ap_fixed<16,6>` and reuse factor 1 (the hls4ml
# tutorial, `fastmachinelearning/hls4ml-tutorial` part 1: Vitis HLS 2024.1, 200 MHz, an Alveo U250
# part; the row `vitis-rf1` of `fastml_lab/estimate/published_points.csv`); fields that were not
# published are `undef`. A C-synthesis report is itself an estimate by the HLS tool: placement and
# routing (implementation) change the LUTs, often by a lot.

# %%
EXAMPLE_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>published figures</Version></ReportVersion>
  <UserAssignments>
    <Part>xcu250-figd2104-2L-e</Part><TopModelName>myproject</TopModelName>
    <TargetClockPeriod>5.00</TargetClockPeriod>
  </UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>undef</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <Best-caseLatency>undef</Best-caseLatency><Worst-caseLatency>14</Worst-caseLatency>
      <Interval-min>1</Interval-min><Interval-max>1</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>undef</BRAM_18K><DSP>1502</DSP><FF>undef</FF><LUT>101839</LUT></Resources>
    <AvailableResources><BRAM_18K>5376</BRAM_18K><DSP>12288</DSP><FF>3456000</FF><LUT>1728000</LUT></AvailableResources>
  </AreaEstimates>
</profile>
"""
report_path = lab.work / "csynth_example.xml"
report_path.write_text(EXAMPLE_REPORT)
report = parse_csynth_report(report_path)
report

# %% [markdown]
# 14 cycles at 5 ns is 70 ns per jet, and a new jet every cycle: 200 million jets per second.
# That is the speed of a trigger. But look at the DSP count.
#
# ### Exercise 5: would it fit the PYNQ-Z2?
#
# The xc7z020 has 220 DSP slices and 53,200 LUTs. By what factor does this design exceed the
# DSP budget? (used / available)

# %%
dsp_ratio = ...   # a number

checks.check_resource_ratio(dsp_ratio, used=report["resources"]["DSP"], available=220)

# %% [markdown]
# Tutorials 2 and 3 shrink the model until it fits: fewer bits per multiplication (a 6-bit
# product fits in LUTs instead of a DSP slice), fewer multiplications (pruning), and a larger reuse
# factor. The `jet_mlp_pynq` overlay of tutorial 5 combines all three.
#
# ## Summary
#
# - HLS turns the C++ that hls4ml writes into a circuit; unrolling, pipelining and the **reuse
#   factor** trade multipliers for latency and interval.
# - `export(model, out, precision=... | plan=..., reuse_factor=...)` writes the project;
#   `myproject.cpp` has one call per layer, `defines.h` the types, `parameters.h` the layer
#   configurations.
# - The C simulation and the emulator agree **bit for bit** on the events compared; the emulator is
#   fast enough to study precisions on the full test set (`ptq_study`).
# - Precision plans set the types per layer; overflow counts show where a type is too narrow;
#   hls4ml's own configuration dict (`hls4ml_config`, `export(hls_config=...)`) does the same in
#   hls4ml's terms, per layer, reuse factor included.
# - Per event, a pipelined trigger FPGA answers within the 25 ns of a bunch crossing with a fixed
#   latency; the PYNQ-Z2's small design is about as fast as one CPU core, and a single Python call
#   through its DMA costs a millisecond.
# - Synthesis reports give latency, interval and resources; the tutorial model at reuse factor 1
#   needs about seven times the PYNQ-Z2's DSP slices.
#
# Next: **tutorial 5** packages a model that does fit as an overlay and runs it.
