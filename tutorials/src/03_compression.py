# %% [markdown]
# # 3. Compression: pruning, and what it saves on the board
#
# ## Learning goals
#
# After this tutorial you can
#
# - explain why removing weights saves FPGA resources: each non-zero weight of a fully unrolled
#   layer is a multiplier, while a weight that is exactly zero is a constant zero that synthesis
#   removes;
# - prune a trained network by **magnitude** to a target sparsity, with a **schedule** that
#   removes weights gradually while it keeps training;
# - report the sparsity per layer and estimate DSP slices, LUTs and EBOPs against the
#   PYNQ-Z2's budget, before and after;
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
# (here the weights rounded to `ap_fixed<16,6>`), and turns them into a first estimate of DSP
# slices (products of two operands of 10 bits or more) and LUTs (narrower products), against the
# xc7z020's 220 DSP slices and 53,200 LUTs. It is an estimate before synthesis, and says so;
# synthesis reports (tutorial 4) are the real figures.

# %%
%%needs tensorflow
from fastml_lab import quantize
from fastml_lab.evaluate import evaluate

float_accuracy = evaluate(model, ds).accuracy
baseline = quantize.fit_estimate(model)
print(baseline.summary())

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
# ### Exercise 2: how many multiplications are left?
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
# sparsity and quantizes every pruned model post-training, here to 16 bits.

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
# ### Exercise 3: what did it save?
#
# By what factor did pruning plus 6-bit QAT reduce the EBOPs of the float model at
# `ap_fixed<16,6>`? (`baseline.ebops` and `small.ebops`)

# %%
%%needs tensorflow hgq
ebops_reduction = ...   # a number: before / after

checks.check_reduction(ebops_reduction, baseline.ebops, small.ebops)

# %% [markdown]
# ## Zeros stay zeros in the firmware
#
# The weights are constants in the firmware, so synthesis removes every multiplication by an
# exact zero; hls4ml counts them per layer (`n_zeros` in `parameters.h`). The export must
# therefore keep every pruned weight **exactly** zero, and the estimate read from the firmware
# must agree with the one read from Keras:

# %%
%%needs tensorflow hgq hls4ml
from fastml_lab.hls import export

project = export(small.model, lab.work / "pruned_qat", backend="pynq-z2", reuse_factor=4,
                 overwrite=True)
parameters = (project.hls_dir / "firmware" / "parameters.h").read_text()
print([line.strip() for line in parameters.splitlines() if "n_zeros =" in line])
from_firmware = quantize.fit_estimate(project)
print(f"non-zero weights: Keras {small.fit.nonzero_weights:,}, firmware {from_firmware.nonzero_weights:,}")
print(from_firmware)

# %% [markdown]
# This is the recipe of the `jet_mlp_pynq` overlay that tutorial 5 runs: 75% pruned, 6-bit
# weights, and a reuse factor that shares the remaining multipliers.
#
# ## Summary
#
# - On an FPGA every non-zero weight is a multiplier; weights that are exactly zero cost nothing.
# - **Magnitude pruning** with a schedule removes the smallest weights while training continues;
#   `quantize.prune` reports the sparsity per layer.
# - `quantize.fit_estimate` gives multiplications, EBOPs and a first DSP/LUT estimate against the
#   PYNQ-Z2's 220 DSP / 53,200 LUT, labelled as an estimate.
# - Pruning and QAT together cut the cost many times over at a small loss of accuracy, and the
#   export keeps the pruned weights exactly zero.
#
# Next: **tutorial 4** turns a model into HLS C++ and looks at what HLS makes of it.
