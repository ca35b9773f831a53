# %% [markdown]
# # 3. Compression: pruning, and what it saves on the board
#
# ## Learning goals
#
# After this tutorial you can
#
# - explain why removing weights saves FPGA resources: in hls4ml's Latency strategy the weights
#   are constants, each non-zero weight of a fully unrolled layer is a multiplier, and a product
#   by an exact zero is removed; and why the saving per zero shrinks when multipliers are shared
#   (reuse factor) or the weights sit in memory (Resource strategy);
# - prune a trained network by **magnitude** to a target sparsity, with a **schedule** that
#   removes weights gradually while it keeps training;
# - report the sparsity per layer and estimate DSP slices, LUTs and EBOPs against the
#   PYNQ-Z2's budget, before and after (predicting the saving first);
# - combine pruning with quantization-aware training until the model fits, and check that
#   pruned weights stay exactly zero in the firmware.
#
# Computing time: about 2 minutes on two cores (1 with `FASTML_LAB_QUICK=1`).

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("03_compression")
lab

# %% [markdown]
# ## Most weights hardly matter
#
# A trained network has many weights close to zero. Their products contribute little to the
# sums, yet on an FPGA each costs a multiplier. Let us look, on the model of tutorial 1.

# %%
%%needs tensorflow
ds = lab.load_jets()
print(ds.notice)
model = lab.train_float_model(ds)

# %%
%%needs tensorflow matplotlib
import matplotlib.pyplot as plt

weights = np.concatenate([kernel.ravel() for kernel in checks.dense_kernels(model).values()])
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(np.abs(weights), bins=80)
ax.set_xlabel("|weight|")
ax.set_ylabel("weights")
ax.set_title(f"{weights.size:,} weights, median |w| = {np.median(np.abs(weights)):.3f}");

# %% [markdown]
# ### Exercise 1: where are the multiplications?
#
# Which Dense layer has the most weights, and so the most multiplications? (`"fc1"`, `"fc2"`,
# `"fc3"` or `"output"`)

# %%
%%needs tensorflow
largest_layer = ...   # a layer name

checks.check_largest_layer(largest_layer, model)

# %% [markdown]
# ## What the float model would cost
#
# `quantize.fit_estimate` counts, per layer, the multiplications and the bits of their operands
# (here the weights rounded to `ap_fixed<16,6>`), and turns them into an estimate of DSP slices
# (hard multiply-add blocks) and LUTs (look-up tables, the FPGA's small logic cells; see the
# [glossary](GLOSSARY.md)) with fastml_lab's cost model, against the PYNQ-Z2 chip's (xc7z020)
# 220 DSP slices and 53,200 LUTs. All the resource figures of this notebook are such **estimates**,
# made without running synthesis, and say so; synthesis reports (tutorial 4) are the real figures.
# It also counts **EBOPs** (tutorial 2: the sum over multiplications of the product of the
# operand widths). The estimate assumes **reuse factor** 1: every multiplier used once per event
# (a reuse factor R shares each multiplier among R products, taking R clock cycles).

# %%
%%needs tensorflow
from fastml_lab import quantize
from fastml_lab.evaluate import evaluate

float_accuracy = evaluate(model, ds).accuracy
baseline = quantize.fit_estimate(model)
print(baseline.summary())

# %% [markdown]
# ### Exercise 2: predict what pruning saves
#
# The estimate above counts the DSP slices of the float model at reuse factor 1. Next, 75% of the
# weights will be set to exactly zero. Predict: the estimated DSP count becomes about the
# `"same"`, a `"half"`, a `"quarter"` or a `"tenth"` of what it is now? Commit in the cell below
# before you run the pruning; the cell after the pruning grades it.

# %%
dsp_after_pruning = ...   # your prediction: "same", "half", "quarter" or "tenth"; commit before you go on

# %% [markdown]
# ## Magnitude pruning with a schedule
#
# `quantize.prune(model, ds, sparsity=0.75)` fine-tunes a copy of the model while it zeroes, in
# each Dense layer, the weights of smallest magnitude. The fraction removed follows a
# **polynomial schedule**: it rises from 0 to the target over the first part of training, fast at
# first and gently at the end, so the remaining weights have time to take over; the last epochs
# train at the final sparsity.

# %%
%%needs tensorflow matplotlib
schedule = quantize.PruningSchedule(0.75)
progress = np.linspace(0, 1, 50)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(progress, [schedule.at(p) for p in progress])
ax.set_xlabel("fraction of training done")
ax.set_ylabel("fraction of weights zeroed");

# %%
%%needs tensorflow
pruned = quantize.prune(model, ds, sparsity=0.75, epochs=lab.settings.qat_epochs,
                        learning_rate=lab.settings.learning_rate, seed=lab.settings.seed)
print("sparsity per layer:", {name: f"{value:.0%}" for name, value in pruned.sparsity.items()})
print(f"accuracy: pruned {evaluate(pruned.model, ds).accuracy:.4f}, float {float_accuracy:.4f}")

# %% [markdown]
# The same estimate for the pruned model, still at `ap_fixed<16,6>` and reuse factor 1, grades
# your prediction:

# %%
%%needs tensorflow
pruned_estimate = quantize.fit_estimate(pruned.model)
print(pruned_estimate.summary())

dsp_factor = ...   # b) how many times fewer DSP slices: baseline.dsp / pruned_estimate.dsp

print(checks.check_pruning_prediction(dsp_after_pruning, baseline.dsp, pruned_estimate.dsp, sparsity=0.75))
print(checks.check_reduction(dsp_factor, baseline.dsp, pruned_estimate.dsp, what="DSP slices"))

# %% [markdown]
# ### Exercise 3: how many multiplications are left?
#
# Count the non-zero kernel weights of the pruned model's Dense layers
# (`checks.dense_kernels(pruned.model)` gives the kernels by layer).

# %%
%%needs tensorflow
nonzero_weights = ...   # an integer

checks.check_nonzero_weights(nonzero_weights, pruned.model)

# %% [markdown]
# ## Accuracy against sparsity
#
# How far can pruning go? The bit-width study with `sparsities` prunes the float model to each
# sparsity and quantizes every pruned model post-training, here to 16 bits. The accuracies are
# measured: each pruned model exported and run through the emulator on the test jets.

# %%
%%needs tensorflow hls4ml
sweep = quantize.bit_width_study(model, ds, bits=(16,), sparsities=(0.5, 0.75, 0.9),
                                 epochs=lab.settings.qat_epochs)
print(sweep.table())
fig = sweep.plot()

# %% [markdown]
# ## Pruning and quantization together
#
# Pruning removes multiplications; quantization makes each one cheaper. Together, with
# quantization-aware training (tutorial 2) that prunes as it trains:

# %%
%%needs tensorflow hgq
small = quantize.quantize(model, ds, bits={"weights": 6, "activations": 8}, prune=0.75,
                          epochs=lab.settings.qat_epochs, learning_rate=lab.settings.learning_rate,
                          seed=lab.settings.seed)
print(f"6-bit QAT + 75% pruning: accuracy {evaluate(small.model, ds).accuracy:.4f} (float {float_accuracy:.4f})")
print(small.fit.summary())

# %% [markdown]
# ### Exercise 4: what did it save?
#
# By what factor did pruning plus 6-bit QAT reduce the EBOPs of the float model at
# `ap_fixed<16,6>`? (`baseline.ebops` and `small.ebops`)

# %%
%%needs tensorflow hgq
ebops_reduction = ...   # a number: before / after

checks.check_reduction(ebops_reduction, baseline.ebops, small.ebops)

# %% [markdown]
# ## Zeros stay zeros in the firmware, and what a zero saves
#
# What a zero weight saves depends on how hls4ml builds the layer (hls4ml 1.3, Vivado backend):
#
# - **Latency strategy** (the default, used here): the weights are compiled into the firmware as
#   constants, and HLS removes every product by a constant zero. hls4ml counts the zeros per layer
#   (`n_zeros` in `parameters.h`) and caps the multipliers of a layer with $n$ products at
#   `multiplier_limit` $= \lceil n/R \rceil - \lfloor n_\text{zeros}/R \rfloor$, where $R$ is the
#   **reuse factor**, the number of products each multiplier computes in turn (one per clock cycle:
#   the layer accepts a new event every $R$ cycles, its initiation interval, II). At $R = 1$ each
#   zero saves a whole multiplier. At $R = 4$ four products share one multiplier, so a zero saves
#   about a quarter of one, and the multiplexers and control that feed the shared multipliers stay.
# - **Resource strategy**: the weights live in an array (a ROM, in BRAM when $R > 1$) read one slice
#   per cycle; a zero keeps its place in that memory and its cycle, and saves nothing. Only hls4ml's
#   `compressed` kernel (its compression option) stores the non-zero weights alone.
#
# The export below is Latency strategy at reuse factor 4. It must keep every pruned weight
# **exactly** zero (else nothing is removed), and the estimate read from the firmware must agree
# with the one read from Keras:

# %%
%%needs tensorflow hgq hls4ml
import math
import re

from fastml_lab.hls import export

project = export(small.model, lab.work / "pruned_qat", backend="pynq-z2", reuse_factor=4,
                 overwrite=True)
parameters = (project.hls_dir / "firmware" / "parameters.h").read_text()
print("layer   products  n_zeros  multiplier_limit  (unpruned)")
for name, body in re.findall(r"// (\w+)\nstruct config\d+ : nnet::dense_config \{(.*?)\};", parameters, re.S):
    p = {key: int(value) for key, value in re.findall(r"static const unsigned (\w+) = (\d+);", body)}
    products, reuse = p["n_in"] * p["n_out"], p["reuse_factor"]
    limit = math.ceil(products / reuse) - p["n_zeros"] // reuse
    print(f"{name:7s} {products:8,} {p['n_zeros']:8,} {limit:17,}  ({math.ceil(products / reuse):,})")
from_firmware = quantize.fit_estimate(project)
print(f"non-zero weights: Keras {small.fit.nonzero_weights:,}, firmware {from_firmware.nonzero_weights:,}")
print(from_firmware)

# %% [markdown]
# At reuse factor 4, 75% zeros still cut each layer's multiplier cap about four times (a little
# more where 6-bit rounding zeroes further weights), but in absolute terms each zero saved only a
# quarter of a multiplier, against a whole one at reuse factor 1. The `jet_mlp_pynq` overlay that tutorial 5 runs follows the same
# recipe: 75% pruned, 6-bit weights, and a reuse factor that shares the remaining multipliers
# (tutorial 5 gives its reuse factor).
#
# ## Summary
#
# - In hls4ml's Latency strategy at reuse factor 1 every non-zero weight is a multiplier and a
#   product by an exact zero is removed; at reuse factor R a zero saves about 1/R of a multiplier
#   (the sharing logic stays); with the Resource strategy a zero still takes its memory and cycle.
# - **Magnitude pruning** with a schedule removes the smallest weights while training continues;
#   `quantize.prune` reports the sparsity per layer.
# - `quantize.fit_estimate` gives multiplications, EBOPs and a DSP/LUT estimate against the
#   PYNQ-Z2's 220 DSP / 53,200 LUT, labelled as an estimate; 75% pruning cut the estimated DSPs
#   about four times here, as the count of non-zero weights predicts.
# - Pruning and QAT together cut the cost many times over at a small loss of accuracy, and the
#   export keeps the pruned weights exactly zero.
#
# Next: **tutorial 4** (`04_hls.ipynb`) turns a model into HLS C++ with hls4ml and looks at what
# high-level synthesis makes of it.
