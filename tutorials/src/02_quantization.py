# %% [markdown]
# # 2. Quantization: from floating point to fixed point
#
# ## Learning goals
#
# After this tutorial you can
#
# - explain why FPGA firmware computes in **fixed point**, and read a type such as
#   `ap_fixed<8,3>`: its step, its range, its rounding and overflow modes;
# - quantize a trained network **after training** (post-training quantization, PTQ) and find out,
#   layer by layer, where the chosen types overflow or lose small values (**profiling**);
# - train a network **with** the quantization in the loop (quantization-aware training, QAT, with
#   HGQ2), uniformly or with per-weight widths learned under a resource penalty (HGQ);
# - compare accuracy against the number of bits for PTQ and QAT, and check that a QAT model and
#   its firmware compute the same numbers.
#
# Computing time: about 3 minutes on two cores (1.5 with `FASTML_LAB_QUICK=1`). The fixed-point part at
# the start needs numpy only and runs on a PYNQ board too.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("02_quantization")
lab

# %% [markdown]
# ## Why fixed point?
#
# On an FPGA every arithmetic operator is a piece of circuit, and its size grows with the width
# of its operands. The circuit is built from **LUTs** (look-up tables: small programmable logic
# cells, tens of thousands per chip), **FFs** (flip-flops, one-bit registers), **DSP slices** (hard
# multiply-add blocks, a few hundred) and **BRAM** (on-chip memory blocks); the
# [glossary](GLOSSARY.md) has them all. A 32-bit floating-point multiply-add needs alignment
# shifters, normalisation and rounding logic: hundreds of LUTs, or several DSP slices, and several
# clock cycles. A **fixed-point** number is an integer with an implied binary point: multiplying
# two of them is an integer multiplication, and the binary point of the result is known in
# advance. A DSP48 slice of the PYNQ-Z2's chip (the Zynq-7020, part xc7z020) multiplies 25 x 18
# bits in one cycle; narrower products (say 6 x 8 bits) can be built from a few dozen LUTs, so
# the chip's 220 DSP slices need not be the limit.
#
# `ap_fixed<W,I>` (Xilinx's C++ type, also `fastml_lab.fixed.FixedType`) has **W** bits in all,
# **I** of them before the binary point, sign included. So its step (the value of the lowest bit)
# is $2^{-(W-I)}$ and it holds values from $-2^{I-1}$ to $2^{I-1} - 2^{-(W-I)}$. Two more choices:
#
# - **rounding** of bits that fall off the bottom: `TRN` truncates (rounds towards minus
#   infinity, the default and the cheapest), `RND` rounds to nearest, ...;
# - **overflow** of values beyond the range: `WRAP` keeps the low bits like an integer overflow
#   (the default, free in hardware, and catastrophic for the value), `SAT` clips to the largest
#   value.

# %%
from fastml_lab.fixed import FixedType

t = FixedType.parse("ap_fixed<8,3>")
values = np.array([0.1, 0.7, -1.23, 3.99, 4.5, -5.0])
print(f"{t}: step {t.lsb}, range [{t.min}, {t.max}]")
print("values           ", values)
print("TRN, WRAP        ", t.quantize(values))
print("RND, SAT         ", t.with_modes("RND", "SAT").quantize(values))

# %% [markdown]
# ### Exercise 1: read a type
#
# What is the smallest step, and the largest value, of `ap_fixed<6,2>`?

# %%
step = ...      # a number
largest = ...   # a number

checks.check_fixed_range("ap_fixed<6,2>", step, largest)

# %% [markdown]
# ### Exercise 2: the surprise of WRAP
#
# What does 2.3 become when stored in `ap_fixed<6,2>` (default modes, TRN and WRAP)? Work it out
# by hand first, then check with `FixedType.parse("ap_fixed<6,2>").quantize(...)`.

# %%
stored = ...   # a number

checks.check_quantized("ap_fixed<6,2>", 2.3, stored)

# %% [markdown]
# ## Post-training quantization and profiling
#
# The simplest path: train in floating point (tutorial 1), then pick a type for every weight,
# bias and activation. The question is which types. **Profiling** answers it: run data through
# the network and compare, for every layer, the distribution of its numbers on a log2 scale with
# what a type can hold. Values above the type's top bit **overflow**; values below its lowest
# bit **vanish** (round to zero).

# %%
%%needs tensorflow
ds = lab.load_jets()
print(ds.notice)
model = lab.train_float_model(ds)

# %%
%%needs tensorflow hls4ml
from fastml_lab import quantize
from fastml_lab.evaluate import evaluate
from fastml_lab.hls import PrecisionPlan

float_accuracy = evaluate(model, ds).accuracy
narrow = PrecisionPlan.uniform("ap_fixed<8,3>")
profile = quantize.profile(model, ds, plan=narrow, sample=lab.settings.profile_events)
print(profile.summary())
fig = profile.plot()

# %% [markdown]
# Each box is a layer's numbers (log2 of their magnitude); the shaded band is what `ap_fixed<8,3>`
# holds. The figure is measured: the float model's weights, and its layer outputs on the first
# training jets (`profile_events` of them). Where a box sticks out above the band, values
# overflow and wrap; where it sticks out below, values vanish. The profile also **suggests a
# plan**: per layer, integer bits that cover what was seen, with the same total width.
# fastml_lab's **emulator** of the exported firmware (numpy, the same fixed-point arithmetic as the
# HLS C++; tutorial 4 compares it with hls4ml's C simulation) tells what each plan costs in
# accuracy on the test jets, without compiling anything:

# %%
%%needs tensorflow hls4ml
from fastml_lab.hls.study import ptq_study

suggested = profile.suggested_plan()
for name, plan in (("ap_fixed<8,3> everywhere", narrow), ("8 bits, suggested by the profile", suggested)):
    result = ptq_study(model, ds.X_test, ds.labels_test, plan=plan)
    print(f"{name:34s} accuracy {result['accuracy']:.4f} (float {float_accuracy:.4f}), "
          f"{sum(result['overflows'].values()):,} overflows")

# %% [markdown]
# ## Accuracy against bits
#
# `bit_width_study` repeats this for a list of widths: for each, a plan with that many bits and
# integer bits from the data, then the accuracy on the test jets, through the same emulator.

# %%
%%needs tensorflow hls4ml
ptq = quantize.bit_width_study(model, ds, bits=lab.settings.study_bits, mode="ptq")
print(ptq.table())

# %% [markdown]
# ### Exercise 3: how narrow can post-training quantization go?
#
# What is the smallest width in the study whose accuracy stays within 1 point (0.01) of the float
# accuracy?

# %%
%%needs tensorflow hls4ml
smallest_bits = ...   # an integer from the study

checks.check_smallest_width(smallest_bits, ptq, tolerance=0.01)

# %% [markdown]
# ## Quantization-aware training (QAT)
#
# PTQ rounds weights that were never trained to be rounded. QAT puts the rounding **into
# training**: the forward pass uses quantized weights and activations, while the gradients flow
# as if the rounding were not there (the *straight-through estimator*), so the float "shadow"
# weights learn values that work well once rounded. fastml_lab builds the model's twin from HGQ2
# layers (`QDense`), starts it from the float weights and fine-tunes it.
#
# **Uniform** mode: you choose the widths, here 6-bit weights and 8-bit activations. (The QKeras
# model of this network in the hls4ml tutorial, part 4, uses 6 bits for both: `quantized_bits(6,0)`
# weights and biases, `quantized_relu(6)` activations. The 8-bit activations here leave the ReLU
# outputs a little more range; try 6 yourself.)

# %%
%%needs tensorflow hgq
qat = quantize.quantize(model, ds, bits={"weights": 6, "activations": 8}, epochs=lab.settings.qat_epochs,
                        learning_rate=lab.settings.learning_rate, seed=lab.settings.seed)
print(f"QAT 6/8 bits: accuracy {evaluate(qat.model, ds).accuracy:.4f} (float {float_accuracy:.4f})")
print(qat.fit.summary())

# %% [markdown]
# The fit summary is an **estimate**, not a synthesis report: fastml_lab counts every
# multiplication with the widths of its operands and prices the layers with a cost model fitted to
# synthesis results. Narrow products cost far less than 16-bit ones, and many of them end up in
# LUTs rather than DSP slices. A width-aware count of that cost is **EBOPs** (effective bit
# operations: the sum over multiplications of the product of the operand widths), which the HGQ
# authors found to track LUTs + 55 x DSP after place and route
# ([Sun et al., arXiv:2405.00645](https://arxiv.org/abs/2405.00645)). Tutorial 3 cuts the number
# of multiplications.
#
# **HGQ** mode (high-granularity quantization): every weight and every input of a layer gets its
# own width, starting from 8 bits, and training minimises the loss **plus beta x EBOPs**. beta is
# the knob: larger beta, fewer bits, and eventually lower accuracy. The widths learn fast enough to
# settle within these few epochs, where the penalty and the loss balance, and then stay fixed while
# the weights adapt to them. Measured with the quick sizes on the offline synthetic jets (20,000
# jets, 6 epochs of fine-tuning, test accuracy of the Keras models): beta = 1e-6 needed about half
# the EBOPs of the uniform 6/8-bit model (56k against 120k) at about the same accuracy (0.728
# against 0.731); beta = 1e-5 three times fewer again (18k), for two points of accuracy (0.710),
# and fits the PYNQ-Z2 by the estimate. At 1e-4 the penalty outweighed the loss: 5.5k EBOPs, and
# the accuracy fell to 0.567. The next cell prints your run's numbers; with other data or sizes
# they differ.

# %%
%%needs tensorflow hgq
print(f"uniform 6/8 bits: accuracy {evaluate(qat.model, ds).accuracy:.4f}, {qat.ebops:,} EBOPs")
for beta in (1e-6, 1e-5):
    hgq = quantize.quantize(model, ds, hgq_beta=beta, epochs=lab.settings.qat_epochs,
                            learning_rate=lab.settings.learning_rate, seed=lab.settings.seed)
    print(f"HGQ beta={beta:g}: accuracy {evaluate(hgq.model, ds).accuracy:.4f}, {hgq.ebops:,} EBOPs, "
          f"{'fits' if hgq.fit.fits else 'does not fit'} the PYNQ-Z2 (estimate)")

# %% [markdown]
# ## PTQ against QAT
#
# The same study in QAT mode trains one model per width. At wide types PTQ and QAT agree; the
# difference shows at narrow ones.
#
# ### Exercise 4: predict, then measure
#
# The PTQ study above gave the accuracy at 4 bits. Before the QAT study runs: will QAT at 4 bits
# (4-bit weights and activations, fine-tuned from the float model) keep **more** accuracy than PTQ,
# or less? Write `"qat"` or `"ptq"` in the next cell and commit to it before you run the study; the
# cell after the plot grades it.

# %%
better_at_4_bits = ...   # your prediction: "ptq" or "qat"; commit before you run the next cell

# %%
%%needs tensorflow hgq
qat_study = quantize.bit_width_study(model, ds, bits=lab.settings.qat_study_bits, mode="qat",
                                     epochs=lab.settings.qat_epochs)
print(qat_study.table())

# %%
%%needs tensorflow hgq matplotlib
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 4))
for study, label, style in ((ptq, "post-training (PTQ)", "o-"), (qat_study, "quantization-aware (QAT)", "s-")):
    rows = study.bit_rows()
    ax.plot([r["bits"] for r in rows], [r["accuracy"] for r in rows], style, label=label)
ax.axhline(float_accuracy, color="gray", linestyle="--", label="float")
ax.set_xlabel("total bits per number")
ax.set_ylabel("test accuracy (emulator of the exported firmware)")
ax.set_title(f"{len(ds.X_test):,} test jets")
ax.legend();

# %% [markdown]
# Both curves are measured: each point is one model exported and run through the emulator on the
# test jets. Grade your prediction, and read off the size of the effect:

# %%
%%needs tensorflow hgq
qat_gain_at_4_bits = ...   # b) QAT accuracy minus PTQ accuracy at 4 bits, from the two tables

print(checks.check_method_prediction(better_at_4_bits, ptq, qat_study, bits=4))
print(checks.check_accuracy_gain(qat_gain_at_4_bits, ptq, qat_study, bits=4))

# %% [markdown]
# ## The QAT model is its firmware
#
# A QAT model knows its types, so the export needs no plan: `export` reads the precisions from
# the HGQ2 quantizers. The next cell compares, on every test jet, the output of the HGQ2 Keras
# model with the output of the exported firmware run on fastml_lab's emulator: they agree bit for
# bit. (Tutorial 4 compares the emulator with hls4ml's C simulation, the compiled HLS C++; neither
# is the synthesized circuit.)

# %%
%%needs tensorflow hgq hls4ml
from fastml_lab.hls import export

project = export(qat.model, lab.work / "qat_6_8", overwrite=True)
y_keras = qat.model.predict(ds.X_test, verbose=0)
y_firmware = project.firmware().predict(ds.X_test)
print(f"{int(np.sum(y_keras != y_firmware))} of {y_keras.size:,} output values differ")

# %% [markdown]
# ## Summary
#
# - FPGA arithmetic is integer arithmetic: `ap_fixed<W,I>` has W bits, I before the binary
#   point; step $2^{-(W-I)}$, range $\pm 2^{I-1}$; TRN/RND choose the rounding, WRAP/SAT what
#   happens beyond the range.
# - Post-training quantization works down to a point; **profiling** shows per layer where values
#   overflow or vanish, and suggests integer bits.
# - **QAT** trains with the rounding in the loop and keeps accuracy at far fewer bits; **HGQ**
#   learns a width per weight under an EBOPs penalty.
# - A QAT model exports without a plan, and its exported firmware, on the emulator, gives the same
#   outputs as the Keras model, bit for bit.
#
# Next: **tutorial 3** (`03_compression.ipynb`) removes most of the multiplications altogether
# (pruning) and estimates what that saves on the board.
