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
# - read a synthesis report: latency, initiation interval, DSP and LUT against a device's budget.
#
# Computing time: under a minute on two cores. The C simulation needs `g++`; synthesis needs the
# vendor tools (Vitis HLS or Vivado HLS), which Binder and CI do not have, so this tutorial reads
# a report instead of making one.

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
# First we need a trained model (tutorial 1 explains these steps).

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
# The C simulation compiles the generated C++ with `g++` (Xilinx's `ap_fixed` headers ship with
# hls4ml) and runs it: it computes what the firmware will compute. It is slow to build (about 15
# seconds) and to run (one call per event). fastml_lab reads the same project back into a numpy
# **emulator** (`project.firmware()`) that computes, in vectorised numpy, exactly the same values.
# "Exactly" is a claim we can test: `check_project` compiles the C simulation (`run_csim` runs it
# alone), runs both on the same events and counts the output **values** that differ, the same
# check the walk's Export step, the demo and the board's verification make.

# %%
%%needs tensorflow hls4ml g++
from fastml_lab.hls.check import check_project

firmware = project.firmware()
check = check_project(project, ds.X_test, n_events=lab.settings.csim_events)
print(check.describe())
print(f"compile {check.compile_seconds:.1f} s, C simulation {check.csim_seconds:.2f} s, "
      f"emulator {check.emulator_seconds * 1e3:.1f} ms")

# %% [markdown]
# Zero mismatches: the emulator is a faithful stand-in for the firmware, fast enough to study
# precisions on the whole test set. How much does fixed point cost in accuracy here?

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
# multipliers; the estimate of latency and initiation interval (before synthesis) grows with it.

# %%
%%needs tensorflow hls4ml
import math

dense = [layer for layer in firmware.description["layers"] if layer["op"] == "dense"]
print("reuse  multipliers  latency  II (cycles, estimated at 100 MHz)")
for reuse in (1, 4, 16, 64):
    exported = export(model, lab.work / f"reuse_{reuse}", precision="ap_fixed<16,6>",
                      reuse_factor=reuse, overwrite=True)
    timing = exported.timing  # the project's record: an estimate until a synthesis report replaces it
    multipliers = sum(math.ceil(layer["n_in"] * layer["n_out"] / reuse) for layer in dense)
    print(f"{reuse:5d}  {multipliers:11,d}  {timing['latency_cycles']:7d}  {timing['ii_cycles']:3d}")

# %% [markdown]
# ### An FPGA beside a CPU, measured like for like
#
# A Level-1 trigger uses FPGAs because they answer every event within a fixed, sub-microsecond
# latency, at the 40 MHz bunch-crossing rate, right beside the detector links. A CPU can match
# the *throughput* only by gathering many events into a batch, and then each event waits for its
# batch. The table below shows both figures for each row: **latency** (time until one event's
# answer) and **per event** (time per event at full throughput).
#
# - The FPGA rows are the hardware model's **estimates** (`fastml_lab.estimate`; no synthesis
#   ran) for this design as exported, on the PYNQ-Z2 at 100 MHz and on a large trigger FPGA (an
#   Alveo U250 part at 200 MHz). The PYNQ-Z2 row says whether the design fits that board: a
#   reuse-1 design of this size does not, so its figure is what the board *could not* run.
# - The CPU rows are **measurements** on this machine, each on a batch of 10,000 jets as a CPU
#   trigger farm would run them: the Keras model's compiled `predict_on_batch`, the emulator
#   (numpy), and the generated firmware's own C++ compiled with g++ -O3 (the C simulation, which
#   emulates every fixed-point operation in software, hence its slowness).

# %%
%%needs tensorflow hls4ml
from fastml_lab.estimate.headline import headline_table, measure_cpu, trigger_headline

cpu = measure_cpu(project, ds.X_test, model=model)   # batches of 10,000 jets, best of 3, per event
print(headline_table(trigger_headline(project, cpu)))

# %% [markdown]
# hls4ml only accepts reuse factors that divide the layers' sizes evenly; `export` refuses
# others and lists the valid ones.
#
# ### Exercise 3: multipliers at reuse factor 4
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
# tutorial: Vitis HLS, 200 MHz, on an Alveo U250); fields that were not published are `undef`.

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
# ### Exercise 4: would it fit the PYNQ-Z2?
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
# - The C simulation and the emulator agree **bit for bit**; the emulator is fast enough to study
#   precisions on the full test set (`ptq_study`).
# - Precision plans set the types per layer; overflow counts show where a type is too narrow.
# - Synthesis reports give latency, interval and resources; the tutorial model at reuse factor 1
#   needs about seven times the PYNQ-Z2's DSP slices.
#
# Next: **tutorial 5** packages a model that does fit as an overlay and runs it.
