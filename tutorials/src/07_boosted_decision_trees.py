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
# - compare a network and a BDT on the same jets: accuracy, LUT/FF/DSP and latency in ns, each
#   figure with what it is (an estimate before synthesis), which model made it and how far off
#   that model has been measured to be;
# - catch, before any synthesis, a score type that **wraps silently**, with `profile_bdt`, and
#   choose a precision that does not;
# - export the trees with conifer, compare the C simulation of its HLS C++ with the emulator value
#   for value, and run the BDT **overlay** (software backend).
#
# **conifer** ([github.com/thesps/conifer](https://github.com/thesps/conifer)) is the
# fastmachinelearning library that turns trained trees (xgboost, scikit-learn, TMVA, ONNX) into FPGA
# firmware, written by Sioni Summers and colleagues (S. Summers et al., "Fast inference of Boosted
# Decision Trees in FPGAs for particle physics", JINST 15 (2020) P05026). Its backends: **HLS**
# C++ for Vivado/Vitis HLS (`xilinxhls`, used here for the PYNQ-Z2), hand-written **VHDL** (RTL,
# no HLS step: tutorial 9 shows the RTL route for networks), and C++ and Python backends that run the
# trees in software. (HLS, RTL, LUT, FF, DSP, BRAM and II are in the [glossary](GLOSSARY.md).)
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
# The BDT trains on the same standardized jets as the network of tutorial 1. Training it is this
# tutorial's lesson, so it happens here; the network is the one tutorial 1 trained and kept.

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
# give or take a couple of cycles, and it hardly grows with the number of trees. What grows with the
# trees is the **logic**: every split node is a comparator and every leaf a constant, so LUTs and
# flip-flops grow with rounds x classes x 2**depth.
#
# ### Exercise 2: predict what four times the trees cost
#
# The next cell grows trees of depth 3 with 8 and with 32 rounds (four times the trees) and asks
# conifer's estimate for each. Before you run it, predict what happens:
#
# - `"a"`: the latency and the LUTs both grow about 4x;
# - `"b"`: the latency grows by a cycle or two, the LUTs about 4x;
# - `"c"`: the latency grows by a cycle or two, the LUTs hardly change;
# - `"d"`: the latency grows about 4x, the LUTs hardly change.
#
# Commit to your answer in the next cell **before** running the one after it, which measures and
# grades it.

# %%
growth_prediction = ...   # "a", "b", "c" or "d": commit before running the next cell

# %% [markdown]
# The figures are **conifer's performance estimates** (`estimate_bdt`): a regression that conifer
# itself calls *experimental*, fitted by conifer's developers to HLS syntheses of other ensembles,
# from the shape
# of the ensemble only (depth, trees, nodes, leaves; not the bit widths). They are estimates before
# synthesis, not a synthesis report; below we say how far off they have been measured to be.

# %%
%%needs sklearn xgboost conifer
import math

from fastml_lab.bdt.estimate import estimate_bdt

print("conifer's estimate (experimental; before synthesis) of the core, without the board wrapper")
print("depth rounds  depth+log2(rounds)  estimated cycles      LUT      FF")
growth = {}
for depth in (2, 3, 4):
    for rounds in (8, 32):
        grown = train_bdt(ds, rounds=rounds, depth=depth, early_stopping=None, seed=s.seed)
        e = estimate_bdt(grown)
        growth[depth, rounds] = {"cycles": e["core_latency_cycles"], "LUT": e["LUT"]}
        print(f"{depth:5d} {rounds:6d}  {depth + math.ceil(math.log2(rounds)):18d}  "
              f"{e['core_latency_cycles']:16d}  {e['LUT']:7,d} {e['FF']:7,d}")
growth = {"rounds 8": growth[3, 8], "rounds 32": growth[3, 32]}
checks.check_bdt_growth(growth_prediction, growth)

# %% [markdown]
# Four times the trees: a few cycles more at most, several times the LUTs (conifer's regression is
# not a count of comparators, so its LUTs need not grow exactly 4x).
#
# ### Exercise 3: levels of the adder tree
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
# ### Exercise 4: what does 4.5 become?
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
# largest one), and at the suggestion, and run each on the emulator (fastml_lab's numpy model of
# conifer's fixed-point arithmetic; below we compare it with the C simulation of conifer's C++,
# value for value):

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
# wrapper), with the scaler and class names the overlay needs. `check_project` compiles conifer's
# HLS C++ with g++ (the **C simulation**: the C++ that HLS would turn into logic, run on the CPU)
# and compares its outputs with the emulator's, value for value, as in tutorial 4. That is what
# "the same numbers" means here: emulator = C simulation, on the events compared. No RTL
# simulation of this HLS design runs in this tutorial (that needs Vivado/Vitis HLS to write the
# RTL); tutorial 9 simulates RTL with Verilator, for a network.

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
# Now the network of tutorial 1 on the same jets: the model tutorial 1 trained and kept,
# loaded here (`lab.train_float_model(ds)`), so its accuracy is the one tutorial 1 printed. It is
# exported as in tutorial 4 (`ap_fixed<16,6>`, reuse factor 1) for the same board and clock.
#
# The two columns of the comparison come from **two different estimates**, neither of them a
# synthesis:
#
# - the network's from fastml_lab's cost model (`fastml_lab.estimate`, a "C-synthesis estimate":
#   what Vivado HLS's report is expected to say), calibrated on published hls4ml syntheses listed
#   with their sources in `fastml_lab/estimate/published_points.csv`;
# - the trees' from conifer's experimental regression above, plus the board wrapper's cycles.
#
# Each has been measured against something, and the next cell says how far off: the network's
# model on the published points it was **not** fitted on (held out); conifer's only against a
# yosys technology mapping of conifer's **VHDL** for the same trees (a different implementation:
# no HLS synthesis of a BDT has been compared with it), and only for LUTs.
#
# ### Exercise 5: predict which needs fewer LUTs
#
# The network multiplies 16x64 + 64x32 + 32x32 + 32x5 weights at reuse factor 1; the trees
# compare and add. Which design will need fewer LUTs by these estimates, `"nn"` or `"bdt"`?
# Commit before running the cell after this one.

# %%
fewer_luts = ...   # "nn" or "bdt": commit before running the next cell

# %%
%%needs tensorflow hls4ml sklearn xgboost conifer
from fastml_lab.estimate import estimate
from fastml_lab.estimate.errors import describe_errors
from fastml_lab.hls import export

model = lab.train_float_model(ds)
nn_project = export(model, lab.work / "jet_mlp", precision="ap_fixed<16,6>", backend="pynq-z2",
                    scaler=ds.scaler, class_names=ds.class_names, overwrite=True)
nn_est, bdt_est = estimate(nn_project), estimate(bdt_project)


def figures(est, accuracy):
    return {"accuracy": accuracy, "LUT": est.resources["lut"], "FF": est.resources["ff"],
            "DSP": est.resources["dsp"], "latency_cycles": est.latency_cycles,
            "latency_ns": round(est.latency_ns, 1)}


nn = figures(nn_est, evaluate(model, ds).accuracy)
trees = figures(bdt_est, bdt_evaluation.accuracy)
print(f"{'':16s} {'network':>12s} {'BDT':>12s}   on the {nn_est.board.title} at {nn_est.clock_mhz:g} MHz")
for key in nn:
    row = [f"{v:.4f}" if key == "accuracy" else f"{v:,}" for v in (nn[key], trees[key])]
    print(f"{key:16s} {row[0]:>12s} {row[1]:>12s}")
print("\naccuracy: the float models on the test jets (Keras; xgboost)")
print(f"network: {nn_est.kind} by fastml_lab's cost model; its measured error (median |error|):")
print("  " + "\n  ".join(describe_errors("nn")))
print(f"BDT: {bdt_est.kind} by {bdt_est.own_model} (experimental); its measured error:")
print("  " + "\n  ".join(describe_errors("bdt")))
print("\nDoes each fit the board? What the verdict compared, used/available per resource:")
for name, est in (("network", nn_est), ("BDT", bdt_est)):
    print(f"  {name}: {est.verdict()}\n    {est.fit_detail()}")

checks.check_fewer(fewer_luts, nn, trees, "LUT")

# %% [markdown]
# The two reach similar accuracy but spend the chip differently: the network multiplies
# (thousands of DSPs at reuse factor 1, far beyond the board's 220, so it does **not** fit: tutorials
# 2 and 3 shrink it), the trees only compare and add (no DSP at all). The latency estimates include
# the wrapper that streams the 16 features in and the scores out, one word per cycle.
#
# Read the errors before reading the difference. The network's LUTs have been off by about half
# on the held-out points (printed above); conifer's LUTs came out 67% above what yosys mapped for
# the VHDL version of the same trees. A LUT gap of a few times
# survives errors like these; a gap of 20% would not. For a number you can rely on, synthesize:
# `fastml-lab synth PRJ --report` records Vivado's report, which then replaces the estimate. For
# conifer's VHDL backend the project has its own estimate (`fastml_lab/bdt/vhdl_estimate.py`),
# measured against yosys on 20 designs it was not fitted on: 3.4% median LUT error, 0.8% FF (see
# the README, "RTL").

# %% [markdown]
# ## The BDT overlay
#
# A BDT project packages like a network's (tutorial 5): the emulator's description of the trees,
# the scaler, the class names. Without a board, or without a bitstream, the software overlay runs
# the emulator. Here its outputs are compared with the C simulation's, value for value, on the
# events the C simulation ran (a board would run the synthesized design instead; no board, and no
# RTL simulation, is compared here):

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
# - `export_bdt` writes conifer's HLS; `check_project` compares the C simulation of that C++ with
#   the emulator, value for value, and the software overlay (the emulator) gives the C simulation's
#   numbers on the same events.
# - Every hardware figure here is an **estimate before synthesis**: the network's from fastml_lab's
#   cost model (its measured error on held-out published points printed beside it), the trees' from
#   conifer's experimental regression (LUT checked only against a VHDL mapping). "Fits" is a
#   verdict on those figures: read its used/available per resource, and its error, before trusting it.
#
# The guided walk (tutorial 6, `fastml_lab.lab()`) offers the same path: choose "boosted decision
# trees" at Train, and step 3 becomes Precision.
#
# Next: **tutorial 8**, "Design-space exploration" (`08_design_space_exploration.ipynb`): many
# networks and BDTs at once on a Dask cluster, and the Pareto front of accuracy against LUTs and
# latency, with the error bars of these estimates.
