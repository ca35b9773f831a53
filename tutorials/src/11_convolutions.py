# %% [markdown]
# # 11. Convolutions on an FPGA
#
# ## Learning goals
#
# After this tutorial you can
#
# - say what a **jet image** is: the transverse momentum a calorimeter records in a grid of
#   (eta, phi) pixels around the jet axis, and why one, two or three **prongs** appear by class;
# - build and train a small **convolutional network** (CNN) with `fastml_lab.train.build_cnn`, and
#   count what a convolution costs: products per image against distinct weights;
# - compare it **honestly** with a fully connected network (MLP) on the same images;
# - train it **quantization-aware** (HGQ2's `QConv2D`) and check that Keras, the emulator and the
#   C simulation agree bit for bit;
# - export one network with hls4ml's two I/O styles, **io_stream** (a FIFO between layers, a **line
#   buffer** in each convolution) and **io_parallel** (every value a wire), and read the estimate of
#   each: latency per image, II, LUT/FF/DSP/BRAM, and which one fits the PYNQ-Z2.
#
# Tutorial 1's jets were 16 numbers computed from each jet; here the network sees the jet itself,
# pixel by pixel. The images come from an offline generator in the spirit of the synthetic jets
# (`fastml_lab.data.images`); `load_jet_images("path/to/zenodo/files")` reads the real hls4ml jet
# images (the Zenodo HDF5 files' `jetImage`) in the same format. (HLS, II, LUT, FF, DSP, BRAM and
# the I/O styles are in the [glossary](GLOSSARY.md).)
#
# Computing time: about a minute on two cores with `FASTML_LAB_QUICK=1` (three C simulations are
# compiled); it needs TensorFlow, HGQ2, hls4ml and `g++`. On a PYNQ-Z2 the image cells run and the
# training and export cells are skipped with a notice.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("11_convolutions")
lab

# %% [markdown]
# ## Jet images: prongs in a grid of pixels
#
# A large-radius jet (R = 0.8) is a spray of particles. Draw its particles in (eta, phi) around
# the jet axis, sum their pT in pixels of 0.1 x 0.1, and you get a 16 x 16 **image**. What the
# image shows depends on what started the jet:
#
# - a **quark or gluon** (q, g) gives one hard core with soft radiation around it (gluons radiate
#   more, and wider);
# - a boosted **W or Z** decays to two quarks: **two prongs**, separated by about
#   `dR = 2 m / pT` (the two-body opening angle for an even split);
# - a **top** quark decays to b W, and the W to two quarks: **three prongs**.
#
# The images are *preprocessed* as in the literature: centred on the jet's pT-weighted centre and
# rotated so the two leading prongs lie along eta. The generator also smears positions, gives the
# pixels a calorimeter's resolution, adds pileup and applies a 1 GeV threshold.

# %%
from fastml_lab.data.images import IMAGE_SIZE, PIXEL, make_jet_images
from fastml_lab.data.schema import CLASSES

s = lab.settings
images, labels = make_jet_images(2000, seed=s.seed)
print(f"{images.shape[0]:,} images of {images.shape[1]}x{images.shape[2]} pixels ({PIXEL} wide in eta and phi), "
      f"{images.nbytes / 2**20:.1f} MiB")
for index, name in enumerate(CLASSES):
    mine = images[labels == index]
    print(f"{name}: total pT {mine.sum(axis=(1, 2, 3)).mean():6.0f} GeV, brightest pixel "
          f"{mine.max(axis=(1, 2, 3)).mean():5.0f} GeV on average")

# %%
%%needs matplotlib
import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 5, figsize=(12, 5))
for index, name in enumerate(CLASSES):
    mine = images[labels == index][..., 0]
    axes[0, index].imshow(np.log1p(mine.mean(axis=0)), cmap="viridis")
    axes[0, index].set_title(f"{name}: average")
    axes[1, index].imshow(np.log1p(mine[0]), cmap="viridis")
    axes[1, index].set_title(f"{name}: one jet")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("log(1 + pT per pixel); eta down, phi across")
plt.show()

# %% [markdown]
# ### Exercise 1: how far apart are a W's prongs?
#
# A W boson (80.4 GeV) with pT = 700 GeV decays to two quarks that share its momentum evenly. How
# many **pixels** (0.1 wide) apart are its two prongs? Use `dR = 2 m / pT`.

# %%
w_prong_pixels = ...   # a number of pixels

checks.check_prong_separation(w_prong_pixels, mass=80.4, pt=700.0, pixel=PIXEL)

# %% [markdown]
# ### Exercise 2: predict which class lights the most pixels
#
# Before the next cell counts them: which class (`"g"`, `"q"`, `"t"`, `"w"` or `"z"`) lights the
# most pixels above threshold, on average?

# %%
busiest_class = ...   # one of "g", "q", "t", "w", "z"

# %%
lit = {name: float((images[labels == index] > 0).sum(axis=(1, 2, 3)).mean()) for index, name in enumerate(CLASSES)}
print("lit pixels per image:", {name: round(value, 1) for name, value in lit.items()})
checks.check_most_pixels(busiest_class, lit)

# %% [markdown]
# ## A small CNN, and an MLP on the same pixels
#
# `load_jet_images` generates the images, splits them as `load_jets` splits the jets
# (`random_state=42`) and divides every pixel by one number, so the largest training pixel is 16:
# empty pixels stay exactly zero and every value fits `ap_fixed<16,6>`. That number is a
# `Scaler` (mean 0, one scale), kept with the export so the overlay scales raw images the same way.
#
# The CNN: `conv1` (8 filters of 3x3, 'same' padding) + ReLU + 2x2 max pooling, `conv2` (8 filters
# of 3x3) + ReLU + pooling, Flatten, one Dense layer and a softmax. A convolution slides one small
# kernel over the image: the same few weights are used at every pixel.
#
# The honest comparison is an MLP on **the same images**, flattened into 256 inputs (tutorial 1's
# MLP saw 16 engineered features of *other* jets: not the same data). Same training budget for both.

# %%
%%needs tensorflow sklearn
from fastml_lab.data.images import load_jet_images
from fastml_lab.evaluate import evaluate
from fastml_lab.train import build_cnn, build_model, parse_spec, train_model

ds = load_jet_images("synthetic", n_events=s.image_events, seed=s.seed)
print(ds.notice)
print(ds, ds.summary()["scaling"])

cnn = build_cnn("8-8", seed=s.seed)
train_model(cnn, ds, epochs=s.cnn_epochs, batch_size=256, learning_rate=s.learning_rate, patience=s.patience,
            seed=s.seed, progress=False)
cnn_accuracy = evaluate(cnn, ds).accuracy

flat = ds.flattened()
mlp = build_model(parse_spec("64-32-32", n_inputs=flat.X_train.shape[1]), seed=s.seed)
train_model(mlp, flat, epochs=s.cnn_epochs, batch_size=256, learning_rate=s.learning_rate, patience=s.patience,
            seed=s.seed, progress=False)
mlp_accuracy = evaluate(mlp, flat).accuracy
print(f"CNN 8-8: {cnn.count_params():,} weights, test accuracy {cnn_accuracy:.4f}")
print(f"MLP 256-64-32-32-5 on the flattened pixels: {mlp.count_params():,} weights, test accuracy {mlp_accuracy:.4f}")
for layer in cnn.layers:
    print(f"   {layer.name:<8} {type(layer).__name__:<13} output {tuple(layer.output.shape[1:])}, "
          f"{layer.count_params():,} weights")

# %% [markdown]
# What to read from this: on images that were centred and rotated first, the MLP can learn "these
# pixels light up for a W" directly, and it does at least as well as the CNN here, with about 20
# times more weights. The CNN's strengths are elsewhere: its weights do not depend on the image
# size (a 32 x 32 image costs the MLP four times more weights, the CNN none), and it finds a
# pattern wherever it sits (useful without the rotation, or for calorimeter showers that can land
# anywhere). On the FPGA, weights are what cost multipliers; the next exercise counts products.
#
# ### Exercise 3: products per image in `conv2`
#
# `conv2` reads the 8 x 8 x 8 output of `pool1` and writes 6 x 6 pixels of 8 filters, each pixel
# from a 3 x 3 window of all 8 input channels. How many multiplications does **one image** cost in
# `conv2`?

# %%
%%needs tensorflow
conv2_products = ...   # an integer

checks.check_conv_products(conv2_products, cnn, "conv2")

# %% [markdown]
# ## Quantization-aware training of the CNN
#
# `quantize` builds the HGQ2 twin of the float CNN: every `Conv2D` becomes a `QConv2D` (and the
# `Dense` a `QDense`) with quantizers on its inputs, weights and biases; pooling and Flatten pass
# their quantized inputs on. Here: 6-bit weights and 8-bit activations, fine-tuned from the float
# weights. The Keras model of the result computes exactly what its firmware computes, so its
# export takes every type from the quantizers. hls4ml 1.3 writes those per-value quantizers for
# io_parallel only: a quantization-aware CNN exports with `io_type="parallel"`.

# %%
%%needs tensorflow hgq hls4ml
from fastml_lab.hls import export
from fastml_lab.quantize import quantize

q = quantize(cnn, ds, bits={"weights": 6, "activations": 8}, epochs=s.qat_epochs, batch_size=256,
             learning_rate=s.learning_rate, seed=s.seed, progress=False)
qat_accuracy = evaluate(q.model, ds).accuracy
print(f"QAT CNN (6-bit weights, 8-bit activations): test accuracy {qat_accuracy:.4f} (float {cnn_accuracy:.4f}), "
      f"{q.ebops:,} EBOPs")
qat_project = export(q.model, lab.work / "cnn_qat_parallel", io_type="parallel", backend="pynq-z2", overwrite=True,
                     scaler=ds.scaler, class_names=ds.class_names)
X_check = ds.X_test[: s.csim_events]
keras_out = q.model.predict(X_check, verbose=0, batch_size=1024).astype(np.float64)
emulated = qat_project.firmware().predict(X_check)
print(f"Keras vs emulator: {int(np.sum(keras_out != emulated))} of {emulated.size:,} values differ")

# %%
%%needs tensorflow hgq hls4ml g++
from fastml_lab.hls import check_project

qat_check = check_project(qat_project, X_check)
print(qat_check.describe())

# %% [markdown]
# ## io_stream or io_parallel: the same network, two designs
#
# hls4ml lays a CNN out in one of two ways:
#
# - **io_parallel**: every value of every layer is a wire or a register. A convolution computes
#   its output pixels through one kernel's multipliers in turn (im2col), but the whole image and
#   every intermediate map are held at once: many registers and multiplexers.
# - **io_stream**: the image arrives one pixel (all its channels) per cycle through a FIFO. A
#   convolution keeps only the last `kernel - 1` rows in a **line buffer** (BRAM or shift
#   registers) and computes each output pixel as soon as its window is complete: far less logic,
#   and the next layer starts before the image has finished arriving.
#
# Both compute the same numbers (the emulator and the C simulation say so below); the design, its
# resources and its latency differ. The float CNN is exported with each at one narrow type,
# `ap_fixed<8,4,AP_RND,AP_SAT>`, for the PYNQ-Z2 board flow.
#
# ### Exercise 4: predict which I/O style needs fewer LUTs
#
# Before the estimate: which design needs fewer LUTs on the PYNQ-Z2, `"stream"` or `"parallel"`?

# %%
fewer_luts = ...   # "stream" or "parallel"

# %%
%%needs tensorflow hls4ml
from fastml_lab.estimate import estimate

PRECISION = "ap_fixed<8,4,AP_RND,AP_SAT>"
projects, estimates = {}, {}
for io in ("stream", "parallel"):
    projects[io] = export(cnn, lab.work / f"cnn_{io}", precision=PRECISION, io_type=io, backend="pynq-z2",
                          overwrite=True, scaler=ds.scaler, class_names=ds.class_names)
    estimates[io] = estimate(projects[io])
    totals = estimates[io].to_dict()["totals"]
    accuracy = float(np.mean(projects[io].firmware().predict(ds.X_test).argmax(axis=1) == ds.labels_test))
    print(f"io_{io}: accuracy {accuracy:.4f} at {PRECISION}; latency {totals['latency_cycles']:,} cycles "
          f"({estimates[io].latency_ns / 1000:.2f} us) per image, II {totals['ii_cycles']:,}; "
          f"{totals['dsp']:,} DSP, {totals['lut']:,} LUT, {totals['ff']:,} FF, {totals['bram_18k']} BRAM18")
    print(f"   {estimates[io].verdict()}")
checks.check_fewer_luts(fewer_luts, {io: int(e.to_dict()["totals"]["lut"]) for io, e in estimates.items()})

# %% [markdown]
# Both designs round to the same narrow type, so they agree with each other; against the float
# model that type costs accuracy (post-training quantization at 8 bits). The quantization-aware
# CNN above keeps its accuracy at 6-bit weights, but in hls4ml 1.3 it exports with io_parallel only.
#
# Read the rows layer by layer: in io_stream each convolution's row carries its line buffer (the
# BRAM18 column) and an II close to the number of pixels it reads; the zero-padding layer that
# io_stream adds for `padding="same"` is there too. A few BRAMs buy back most of the logic.

# %%
%%needs tensorflow hls4ml
for io in ("stream", "parallel"):
    print(f"io_{io}")
    for row in estimates[io].to_dict()["layers"]:
        print(f"   {row['name']:<20} {row['op']:<10} II {row['ii_cycles']:>5}  DSP {row['dsp']:>4}  "
              f"LUT {row['lut']:>7,}  BRAM18 {row['bram_18k']:>3}")

# %% [markdown]
# ## Bit for bit: emulator against the C simulation
#
# The emulator computes each layer as hls4ml's C++ does (the line buffer's order, the pooling, the
# casts), so it must agree with the compiled C simulation on every value, for both designs.

# %%
%%needs tensorflow hls4ml g++
for io, project in projects.items():
    result = check_project(project, ds.X_test[: s.csim_events])
    print(f"io_{io}: {result.describe()}")

# %% [markdown]
# ## Summary
#
# - A **jet image** is pT in (eta, phi) pixels; W/Z jets show two prongs about `2m/pT` apart
#   (Exercise 1: a few pixels), tops three, and gluons the most radiation (Exercise 2).
# - `build_cnn` gives a small CNN with readable layer names; `train_model` trains it as it trains
#   the MLP. On these preprocessed images an MLP on the flattened pixels is as accurate, with about
#   20 times more weights; a convolution costs many **products per image** but few **distinct
#   weights** (Exercise 3), and the firmware reuses one kernel's multipliers for every pixel.
# - `quantize` trains the CNN quantization-aware (`QConv2D`, `QDense`); Keras, the emulator and the
#   C simulation agree bit for bit, and the export takes every type from the quantizers
#   (io_parallel).
# - **io_stream** keeps line buffers and computes window by window: BRAM18 instead of logic;
#   **io_parallel** holds whole maps in registers (Exercise 4). The estimate's verdict says which
#   design fits the PYNQ-Z2; `fastml-lab demo --model cnn` runs the same comparison from the
#   command line, and `fastml-lab export MODEL --io stream|parallel` exports either.
#
# This is the last notebook of the course so far; the [index](README.md) lists them all.
