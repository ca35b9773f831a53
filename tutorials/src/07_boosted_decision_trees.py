# %% [markdown]
# # 7. Boosted decision trees: from xgboost to comparators on the FPGA
#
# ## Learning goals
#
# After this tutorial you can
#
# - train **boosted decision trees** (BDTs) on the jets with `fastml_lab.bdt.train.train_bdt`,
#   and say what rounds, depth, learning rate and early stopping do;
# - read one tree as **thresholds and leaves**, follow an event through its comparisons, and say
#   how the FPGA does the same with comparators and a lookup;
# - explain why a BDT's latency is about **its depth plus an adder tree**, and what grows with
#   the number of trees instead;
# - compare a network and a BDT on the same jets: accuracy, LUT/FF/DSP and latency in ns;
# - catch, before any synthesis, a score type that **wraps silently**, with `profile_bdt`, and
#   choose a precision that does not;
# - export the trees with conifer, check the C simulation against the emulator, and run the BDT
#   **overlay** (software backend) with 0 mismatches.
#
# Computing time: two to three minutes on two cores with `FASTML_LAB_QUICK=1`, more at full size:
# compiling the C simulation of the trees (every tree unrolled into C++) takes most of it.
# It needs xgboost and conifer (`pip install 'fastml-lab[lab]'`) and `g++`; on a PYNQ-Z2 the
# training and export cells are skipped with a notice.

# %%
import numpy as np

from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("07_boosted_decision_trees")
lab

# %% [markdown]
# ## Boosting: many small trees, each correcting the others
#
# A decision tree asks yes/no questions about the features (*is `mass_mmdt` below 0.98?*) and
# ends in a **leaf** that holds a number. One shallow tree is a weak classifier. **Gradient
# boosting** adds trees one **round** at a time: each new tree is fitted to what the ensemble so
# far still gets wrong, and only a fraction of it (the **learning rate**) is added. For five
# classes each round grows five trees, one per class; an event's **score** for a class is the sum
# of its trees' leaves (plus a starting value), and the softmax of the five scores gives the
# probabilities, as for the network.
#
# - `rounds`: how many rounds at most (more trees: more accuracy, more logic);
# - `depth`: the most questions one tree asks on the way to a leaf (2**depth leaves);
# - `learning_rate`: how much of each new tree is added (smaller: more rounds needed, less over-fitting);
# - `early_stopping`: stop when the loss on held-out jets has not improved for this many rounds,
#   and keep the best rounds only.
#
# The BDT trains on the same standardized jets as the network of tutorial 1.

# %%
%%needs sklearn xgboost
from fastml_lab.bdt.train import train_bdt
from fastml_lab.evaluate import evaluate

ds = lab.load_jets()
print(ds.notice)
s = lab.settings
bdt = train_bdt(ds, rounds=s.bdt_rounds, depth=s.bdt_depth, learning_rate=s.bdt_learning_rate,
                early_stopping=s.bdt_early_stopping, seed=s.seed)
bdt_evaluation = evaluate(bdt, ds)
print(bdt, f"trained in {bdt.history.seconds:.1f} s; kept {bdt.history.best_round or bdt.history.rounds_run} rounds")
print(f"test accuracy {bdt_evaluation.accuracy:.4f}")

# %% [markdown]
# ## A tree is comparators and a lookup
#
# `bdt.ensemble()` is the description conifer turns into C++: `trees[round][class]`, each tree
# as arrays over its nodes. A node with `feature >= 0` is a split: go to `children_left` when
# `x[feature] < threshold`, else to `children_right`. A node with `feature == -2` is a leaf with
# its `value`. Here is the first round's tree of the top-quark class:

# %%
%%needs sklearn xgboost
ensemble = bdt.ensemble()
top = list(ds.class_names).index("t")
tree = ensemble["trees"][0][top]
print(f"{ensemble['n_trees']} rounds x {len(ensemble['trees'][0])} classes; comparisons use "
      f"x {ensemble['splitting_convention']} threshold")
print("node  split or leaf")
for node, feature in enumerate(tree["feature"]):
    if feature >= 0:
        print(f"{node:4d}  {ds.feature_names[feature]:>14s} < {tree['threshold'][node]:+.4f} ? "
              f"-> {tree['children_left'][node]} : {tree['children_right'][node]}")
    else:
        print(f"{node:4d}  leaf {tree['value'][node]:+.4f}")

# %% [markdown]
# Now one event, the first test jet, through that tree, comparison by comparison:

# %%
%%needs sklearn xgboost
x = ds.X_test[0]
path = checks.tree_path(tree, x)
for node in path[:-1]:
    feature, threshold = tree["feature"][node], tree["threshold"][node]
    print(f"node {node}: {ds.feature_names[feature]} = {x[feature]:+.4f} < {threshold:+.4f}? "
          f"{'yes' if x[feature] < threshold else 'no'}")
print(f"leaf {path[-1]}: value {tree['value'][path[-1]]:+.4f}")

# %% [markdown]
# On a CPU that is a loop: compare, branch, compare again. The FPGA does it differently.
# conifer's HLS code makes **every** comparison of a tree at once, one comparator per split
# node (a comparison of a fixed-point input with a constant: a few LUTs, no multiplier), and the
# pattern of yes/no answers selects the leaf: a small **lookup** whose logic is as deep as the
# tree. All trees of all classes do this in parallel, in the same clock cycles.
#
# ### Exercise 1: follow an event
#
# What value does this tree give the **second** test jet, `ds.X_test[1]`? Follow the comparisons
# with the table above (or write the loop yourself).

# %%
%%needs sklearn xgboost
leaf_value = ...   # a number

checks.check_tree_leaf(leaf_value, tree, ds.X_test[1])

# %% [markdown]
# ## Latency: the depth plus an adder tree
#
# After the leaves come the sums: each class adds up its trees' leaf values. Added one after the
# other, `n` trees would take `n - 1` additions in a row. conifer adds them as a balanced **adder
# tree**: pairs first, then pairs of pairs, so `n` values need `ceil(log2(n))` levels. The
# latency of the whole ensemble is therefore about
#
#     cycles ~ depth (comparisons, then the leaf lookup) + ceil(log2(rounds)) (adder tree)
#
# give or take a couple of cycles, and it hardly grows with the number of trees. What grows with the trees is the **logic**: every
# split node is a comparator and every leaf a constant, so LUTs and flip-flops grow with
# rounds x classes x 2**depth. conifer's own estimate (`estimate_bdt`, an estimate before
# synthesis) shows both trends on trees grown from these jets:

# %%
%%needs sklearn xgboost conifer
import math

from fastml_lab.bdt.estimate import estimate_bdt

print("depth rounds  depth+log2(rounds)  estimated cycles      LUT      FF")
for depth in (2, 3, 4):
    for rounds in (8, 32):
        trees = train_bdt(ds, rounds=rounds, depth=depth, early_stopping=None, seed=s.seed)
        e = estimate_bdt(trees)
        print(f"{depth:5d} {rounds:6d}  {depth + math.ceil(math.log2(rounds)):18d}  "
              f"{e['core_latency_cycles']:16d}  {e['LUT']:7,d} {e['FF']:7,d}")

# %% [markdown]
# Four times the trees: a cycle or two more, four times the LUTs.
#
# ### Exercise 2: levels of the adder tree
#
# How many levels of adders sum the scores of **100** trees?

# %%
adder_levels = ...   # an integer

checks.check_adder_levels(adder_levels, n_trees=100)

# %% [markdown]
# ## Precision: a score type that wraps without a word
#
# The firmware computes in fixed point (tutorial 2). A BDT has three types: the inputs, the
# thresholds (compared with the inputs) and the **score** type, which holds the leaf values, every
# partial sum of the adder tree and the final scores. conifer's default overflow mode is
# **wrap-around**, like an integer: a score too large for its type does not stop anything or warn,
# it comes back from the other end. `ap_fixed<6,3>` holds -4 to 3.875, so a score of 4.5 becomes
# -3.5: a confident "top" becomes a confident "not top".
#
# ### Exercise 3: what does 4.5 become?
#
# What is 4.5 stored as `ap_fixed<6,3>` (truncation, wrap-around)?

# %%
wrapped_score = ...   # a number

checks.check_quantized("ap_fixed<6,3>", 4.5, wrapped_score)

# %% [markdown]
# Nothing in the export or the C simulation complains about such a type: both compute exactly
# the wrong numbers. `profile_bdt` runs the float trees on test jets and counts, for every
# quantity, the values its type cannot hold (**overflows**) or rounds to zero (**vanished**), and
# suggests a precision: the fewest integer bits that hold every value seen, and enough fractional
# bits to keep the thresholds apart and the sums accurate. Here the inputs and thresholds keep
# `ap_fixed<16,6>` and only the score type is narrow:

# %%
%%needs sklearn xgboost
from fastml_lab.bdt.profile import profile_bdt

narrow = {"input": "ap_fixed<16,6>", "score": "ap_fixed<6,3>"}
profile = profile_bdt(bdt, ds.X_test, precision=narrow)
print(profile.summary())

# %% [markdown]
# The scores row is flagged. What does the wrap do to the answers? Export the trees at the narrow
# precision, at the same width with **saturation** (`AP_SAT`: a value too large sticks at the
# largest one), and at the suggestion, and run each on the emulator (bit-exact with the C++, as
# we check below):

# %%
%%needs sklearn xgboost conifer hls4ml
from fastml_lab.bdt import export_bdt

reference = bdt.decision_function(ds.X_test)  # the float scores
candidates = {
    "score ap_fixed<6,3> (wraps)": narrow,
    "score ap_fixed<6,3,AP_TRN,AP_SAT> (saturates)": {**narrow, "score": "ap_fixed<6,3,AP_TRN,AP_SAT>"},
    f"suggested: {profile.suggested_text()}": profile.suggested_text(),
}
print(f"float trees: accuracy {bdt_evaluation.accuracy:.4f}")
for label, precision in candidates.items():
    trial = export_bdt(bdt, lab.work / "precision_trial", precision=precision, overwrite=True)
    scores = trial.firmware().predict(ds.X_test)
    flips = int(np.sum(np.sign(scores) != np.sign(reference)))
    accuracy = np.mean(scores.argmax(axis=1) == ds.labels_test)
    print(f"{label:62s} accuracy {accuracy:.4f}, {flips:,} scores changed sign")

# %% [markdown]
# The wrapped scores wreck the classifier (guessing one of five classes gets about 0.2), and
# nothing said so. Saturation loses far less: a score too large stays large, on the right side of
# zero (the sign changes left come from leaves too small for 3 fractional bits). The suggested
# precision does as well as the float trees. The precision study
# (`precision_study`) measures the accuracy against the total bits the same way, per width:

# %%
%%needs sklearn xgboost conifer hls4ml
from fastml_lab.bdt.study import precision_study

study = precision_study(bdt, ds, widths=s.bdt_widths)
print(study.table())
study.plot();

# %% [markdown]
# ## Export, C simulation and the network side by side
#
# The BDT goes to conifer's HLS with the suggested precision, for the PYNQ-Z2 (its AXI-stream
# wrapper), with the scaler and class names the overlay needs. `check_project` compiles the C++
# with g++ and compares it with the emulator, value for value, as in tutorial 4.

# %%
%%needs sklearn xgboost conifer hls4ml g++
from fastml_lab.hls.check import check_project

bdt_project = export_bdt(bdt, lab.work / "jet_bdt", precision=profile.suggested_text(), backend="pynq-z2",
                         scaler=ds.scaler, class_names=ds.class_names, feature_names=ds.feature_names,
                         overwrite=True)
check = check_project(bdt_project, ds.X_test, n_events=lab.settings.csim_events)
print(bdt_project)
print(check.describe())

# %% [markdown]
# Now the network of tutorial 1 on the same jets, exported as in tutorial 4 (`ap_fixed<16,6>`,
# reuse factor 1). Its resources come from `fit_estimate` (multiplications: DSPs, and LUTs for
# the narrow ones), its latency from the project's timing estimate; the BDT's from
# `estimate_bdt`. Both are estimates before synthesis, on the same board and clock.

# %%
%%needs tensorflow hls4ml sklearn xgboost conifer
from fastml_lab.hls import export
from fastml_lab.quantize import fit_estimate

model = lab.train_float_model(ds)
nn_project = export(model, lab.work / "jet_mlp", precision="ap_fixed<16,6>", backend="pynq-z2",
                    scaler=ds.scaler, class_names=ds.class_names, overwrite=True)
nn_fit, nn_timing = fit_estimate(nn_project), nn_project.timing
bdt_estimate = estimate_bdt(bdt_project)
nn = {"accuracy": evaluate(model, ds).accuracy, "LUT": nn_fit.lut, "FF": None, "DSP": nn_fit.dsp,
      "latency_cycles": nn_timing["latency_cycles"],
      "latency_ns": round(nn_timing["latency_cycles"] * 1000 / nn_timing["clock_mhz"], 1)}
trees = {"accuracy": bdt_evaluation.accuracy, "LUT": bdt_estimate["LUT"], "FF": bdt_estimate["FF"],
         "DSP": bdt_estimate["DSP"], "latency_cycles": bdt_estimate["latency_cycles"],
         "latency_ns": bdt_estimate["latency_ns"]}
print(f"{'':16s} {'network':>12s} {'BDT':>12s}   (estimates for the {bdt_estimate['board']}, "
      f"{bdt_estimate['clock_mhz']:g} MHz)")
for key in nn:
    row = [("-" if v is None else f"{v:.4f}" if key == "accuracy" else f"{v:,}") for v in (nn[key], trees[key])]
    print(f"{key:16s} {row[0]:>12s} {row[1]:>12s}")

# %% [markdown]
# On these jets the two reach similar accuracy, but they spend the chip differently: the network
# multiplies (thousands of DSPs at reuse factor 1, far beyond the board's 220; tutorials 2 and 3
# shrink it), the trees only compare and add (no DSP at all). The latency estimates include the
# wrapper that streams the 16 features in and the scores out, one word per cycle.
#
# ### Exercise 4: which needs fewer LUTs?
#
# Which design needs fewer LUTs by these estimates, `"nn"` or `"bdt"`?

# %%
%%needs tensorflow hls4ml sklearn xgboost conifer
fewer_luts = ...   # "nn" or "bdt"

checks.check_fewer(fewer_luts, nn, trees, "LUT")

# %% [markdown]
# ## The BDT overlay
#
# A BDT project packages like a network's (tutorial 5): the emulator's description of the trees,
# the scaler, the class names. Without a board, or without a bitstream, the software overlay runs
# the bit-exact emulator. Its outputs must equal the C simulation's, value for value:

# %%
%%needs sklearn xgboost conifer hls4ml g++
from fastml_lab import overlay
from fastml_lab.compare import count_mismatches

path = overlay.package(bdt_project, name="jet_bdt", out=lab.work / "bitstreams" / "jet_bdt", overwrite=True)
with overlay.load(path, backend="software") as ol:
    outputs = ol.predict(ds.X_test)
    print(ol, "ran on:", ol.backend)
print(count_mismatches(outputs[:check.events], check.simulated).describe(), "between the overlay and the C simulation")
print(f"overlay accuracy {np.mean(outputs.argmax(axis=1) == ds.labels_test):.4f} on {len(outputs):,} test jets")

# %% [markdown]
# ## Summary
#
# - `train_bdt(ds, rounds=..., depth=..., learning_rate=..., early_stopping=...)` grows boosted
#   trees on the jets; a score is the sum of the trees' leaves for a class.
# - A tree is a set of **comparisons** with constant thresholds and a **lookup** of the leaf; on the
#   FPGA all comparisons of all trees happen at once, with no multipliers.
# - Latency is about the **depth plus the adder tree** (`ceil(log2(rounds))` levels); LUTs and
#   flip-flops grow with the number of trees and leaves.
# - A narrow score type **wraps silently**; `profile_bdt` counts the overflows and suggests a
#   precision, `precision_study` measures accuracy against bits.
# - `export_bdt` writes conifer's HLS; `check_project` shows the C simulation and the emulator agree
#   bit for bit, and the software overlay gives the same numbers.
#
# The guided walk (tutorial 6, `fastml_lab.lab()`) offers the same path: choose "boosted decision
# trees" at Train, and step 3 becomes Precision.
