# %% [markdown]
# # 1. Getting started: tagging jets with a small neural network
#
# ## Learning goals
#
# After this tutorial you can
#
# - explain what a jet is and which physics separates gluon, light-quark, W, Z and top jets;
# - load the jet data with `fastml_lab.data.load_jets` and tell whether it is real or synthetic;
# - build and train the classic 16-64-32-32-5 network and read its training curves;
# - evaluate a tagger the way the field does: accuracy, ROC curves (signal efficiency against
#   background mistag rate), AUC and the confusion matrix.
#
# Computing time: under a minute on two cores (quicker with `FASTML_LAB_QUICK=1`).
# This network is the one that the later tutorials quantize, compress, turn into firmware
# and run on an FPGA: this notebook keeps the trained model, and the later tutorials load it, so
# their numbers start from the same weights as yours. Words such as FPGA, LUT or HLS are
# explained in the [glossary](GLOSSARY.md).

# %% [markdown]
# ## Setting up
#
# `tutorial.start` reads the sizes (set `FASTML_LAB_QUICK=1` for a fast run), looks at the
# machine (a PYNQ board? TensorFlow?) and makes a work folder for the files this notebook writes.
# Cells that start with `%%needs tensorflow` are skipped, with a notice, where TensorFlow is
# missing: on a PYNQ board, which has no TensorFlow, only the numpy parts run.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("01_getting_started")
lab

# %% [markdown]
# ## The physics: what is in a jet?
#
# Quarks and gluons produced in a proton-proton collision at the LHC cannot be seen alone:
# they radiate and turn into a collimated spray of hadrons, a **jet**. Heavy particles that
# decay into quarks leave jets too, and at high transverse momentum (the jets of this dataset
# lie in a narrow $p_T$ window around 1 TeV) their decay products merge into one large jet with a
# telltale inner structure:
#
# | class | origin | prongs | groomed mass |
# |---|---|---|---|
# | `g` | gluon | 1 | low, broad; more radiation |
# | `q` | light quark | 1 | low |
# | `w` | W boson -> q q' | 2 | peak near 80.4 GeV |
# | `z` | Z boson -> q q | 2 | peak near 91.2 GeV |
# | `t` | top quark -> b W -> b q q' | 3 | peak near 173 GeV |
#
# The 16 features are high-level summaries computed from the jet's constituents:
#
# - `mass_mmdt`: the jet mass after **mMDT grooming**, which strips soft, wide-angle radiation
#   so the mass of a decaying particle shows up as a peak;
# - `multiplicity`: the number of constituents; gluons carry more colour charge than quarks
#   and radiate more;
# - `zlogz`: $\sum z \log z$ over constituents with momentum fractions $z$: how evenly the
#   energy is shared;
# - `c1`, `c2`, `d2`, `m2`, `n2` (`_b1`, `_b2`: the angular exponent $\beta$): ratios of
#   **energy correlation functions**, sums over pairs and triples of constituents weighted by
#   their energies and angles. `c2` and `d2` are small for two-prong jets (W, Z), `n2` and `m2`
#   are their generalised cousins.
#
# No single feature separates all five classes; a neural network learns how to combine them.

# %% [markdown]
# ## Loading the data
#
# `load_jets("auto")` uses the real hls4ml LHC jet dataset (OpenML 42468, 830,000 jets) when it
# is cached or can be downloaded, and otherwise an **offline synthetic generator** with the same
# 16 features and the same five classes. It always says which one you got: with synthetic jets
# the plots look alike, but the numbers are illustrative, not the real dataset's.
# `n_events` takes a reproducible subset. The data is split 80/20 into training and test jets,
# and each feature is standardised (mean 0, width 1) with statistics from the training part.
#
# `lab.load_jets()` calls `load_jets("auto", n_events=..., seed=...)` with this course's sizes,
# so every notebook gets the same jets.

# %%
%%needs sklearn
ds = lab.load_jets()   # fastml_lab.data.load_jets("auto", n_events=lab.settings.n_events, seed=lab.settings.seed)
print(ds.notice)
ds.summary()["class_counts_train"]

# %% [markdown]
# The network sees standardised features; for physics we undo the scaling to get GeV and counts.
# The histograms are the training jets themselves (real or synthetic, as the notice above says).

# %%
%%needs sklearn matplotlib
import matplotlib.pyplot as plt

raw = ds.scaler.inverse_transform(ds.X_train)
labels = ds.labels_train
mass = raw[:, ds.feature_names.index("mass_mmdt")]
multiplicity = raw[:, ds.feature_names.index("multiplicity")]

fig, (ax_mass, ax_mult) = plt.subplots(1, 2, figsize=(11, 4))
for index, name in enumerate(ds.class_names):
    pick = labels == index
    ax_mass.hist(mass[pick], bins=60, range=(0, 300), histtype="step", density=True, label=name)
    ax_mult.hist(multiplicity[pick], bins=50, range=(0, 120), histtype="step", density=True, label=name)
ax_mass.set_xlabel("groomed jet mass mass_mmdt [GeV]")
ax_mult.set_xlabel("number of constituents")
ax_mass.legend()
ax_mult.legend();

# %% [markdown]
# ### Exercise 1: read the plots
#
# a) Which class has the heaviest jets? Answer with one of `"g"`, `"q"`, `"t"`, `"w"`, `"z"`.
#
# b) Gluon (`"g"`) or quark (`"q"`) jets: which have more constituents?
#
# You can compute medians, e.g. `np.median(mass[labels == ds.class_names.index("t")])`.

# %%
heaviest = ...            # a) one of "g", "q", "t", "w", "z"
more_constituents = ...   # b) "g" or "q"

print(checks.check_heaviest_class(heaviest))
print(checks.check_more_constituents(more_constituents))

# %% [markdown]
# ## The model: a small multilayer perceptron
#
# `build_model("64-32-32")` makes the network of the hls4ml tutorial: 16 inputs, three hidden
# layers of 64, 32 and 32 neurons with ReLU, and 5 outputs turned into class probabilities by a
# softmax. Every operation is its own named layer (`fc1`, `relu1`, ..., `output`, `softmax`):
# that is how the export in tutorial 4 sees it, one layer of firmware per Keras layer. (That
# export goes through hls4ml and **high-level synthesis**, HLS: C++ turned into a circuit.)
#
# It needs 4,256 multiplications per jet (16x64 + 64x32 + 32x32 + 32x5). That sounds tiny,
# but on an FPGA each one costs silicon, and the next tutorials are about making it fit.

# %%
%%needs tensorflow
from fastml_lab.train import build_model, train_model

model = build_model("64-32-32", seed=lab.settings.seed)
model.summary()

# %% [markdown]
# `train_model` compiles the model with the Adam optimiser and the categorical cross-entropy
# loss, holds out a quarter of the training jets for validation, and stops early when the
# validation loss stops improving (keeping the best weights).

# %%
%%needs tensorflow
from fastml_lab.plots import plot_training

history = train_model(model, ds, epochs=lab.settings.epochs, patience=lab.settings.patience,
                      learning_rate=lab.settings.learning_rate, batch_size=lab.settings.batch_size,
                      seed=lab.settings.seed)
print(f"{history.epochs_run} epochs in {history.seconds:.1f} s")
fig = plot_training(history)

# %% [markdown]
# If the validation curve lies close to the training curve, the model is not overfitting: with
# ~4,000 weights and tens of thousands of jets, it is unlikely to memorise them.
#
# ### Exercise 2: predict the confusion
#
# Before you evaluate the model: which **two classes** will it mix up most often? Use the physics
# table above (prongs, mass peaks). Write your prediction in the next cell, e.g. `("q", "t")`, and
# commit to it before you run the evaluation; the cell after the confusion matrix grades it.
#
# ## Evaluation
#
# Accuracy alone hides what a physicist needs. For each class, a **ROC curve** plots, as the
# threshold on that class's score moves, the **signal efficiency** (fraction of true jets of that
# class that pass) against the **background mistag rate** (fraction of all other jets that pass),
# on a log scale. The area under it (AUC) is 1 for a perfect tagger and 0.5 for a coin.
#
# The **confusion matrix** counts, for each true class (a row), which class the network picked
# (a column); each row is normalised to sum to 1.

# %%
confused_pair = ...   # your prediction: two of "g", "q", "t", "w", "z"; commit before you run the next cell

# %%
%%needs tensorflow
from fastml_lab.evaluate import evaluate
from fastml_lab.plots import plot_confusion, plot_roc

evaluation = evaluate(model, ds)
print(f"test accuracy {evaluation.accuracy:.4f}")
print("AUC:", {name: round(value, 3) for name, value in evaluation.auc.items()})
fig = plot_roc(evaluation, title="Float model, test jets")
fig = plot_confusion(evaluation)

# %% [markdown]
# Both figures are measured: this model on the test jets. Now grade your prediction, and read one
# number off the matrix.

# %%
%%needs tensorflow
w_as_z = ...   # b) the fraction of true W jets tagged as Z, read off the matrix

print(checks.check_confused_pair(confused_pair, evaluation))
print(checks.check_confusion_entry(w_as_z, evaluation, "w", "z"))

# %% [markdown]
# The confusion matrix shows where the mistakes go: W and Z jets are often confused (two prongs
# each, and mass peaks only 11 GeV apart, about the mass resolution), and so are quarks and
# gluons (one prong each, no mass peak).
#
# ### Exercise 3: accuracy by hand
#
# `scores = model.predict(ds.X_test)` gives one row of five probabilities per test jet. Compute
# the accuracy yourself from `scores` and the integer labels `ds.labels_test`.

# %%
%%needs tensorflow
scores = model.predict(ds.X_test, verbose=0)

my_accuracy = ...   # your code: the fraction of jets whose highest score is the true class

checks.check_accuracy(my_accuracy, scores, ds.labels_test)

# %% [markdown]
# ### Exercise 4: read a ROC curve
#
# At a top-jet signal efficiency of 50%, what fraction of the other jets is mistagged as top?
# Read it off the plot (the `t` curve at 0.5), or ask the curve:
# `evaluation.roc["t"].mistag_at(0.5)`.

# %%
%%needs tensorflow
top_mistag = ...   # a number between 0 and 1

checks.check_mistag_at(top_mistag, evaluation, "t", 0.5)

# %% [markdown]
# ## Saving the model
#
# `save_model` writes the Keras 3 format; `load_model` reads it back, as the command line
# (`fastml-lab export model.keras ...`) does.
#
# `lab.keep_float_model` saves it once more, in the course's shared model folder: the later
# tutorials (2, 3, 4, 5, 7 and 9) load this very model from there (`lab.train_float_model` finds it, and trains one the same
# way only if it is missing), so their accuracies start from the one you see here.

# %%
%%needs tensorflow
from fastml_lab.train import save_model

path = save_model(model, lab.work / "jet_mlp.keras")
print("saved", path)
print("kept for the next tutorials:", lab.keep_float_model(model, ds))

# %% [markdown]
# ## Summary
#
# - Jets from gluons, quarks, W, Z and top quarks differ in **mass** (decay peaks), **prongs**
#   (energy correlation ratios) and **radiation** (multiplicity); 16 such features describe each.
# - `load_jets("auto")` gives real data when it can and synthetic jets offline, and says which.
# - The 16-64-32-32-5 MLP reaches about 75% accuracy on five classes with the real data (a little
#   less with few synthetic jets); the hard pairs are W/Z and q/g.
# - Taggers are judged by ROC curves: signal efficiency against background mistag rate.
# - The trained model is kept for the later tutorials, which load it instead of training again.
#
# Next: **tutorial 2** (`02_quantization.ipynb`) turns this float network into fixed-point
# arithmetic, the language of FPGAs, and measures what that costs in accuracy.
