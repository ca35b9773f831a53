# %% [markdown]
# # 6. The guided walk: from jets to a running overlay, end to end
#
# ## Learning goals
#
# After this tutorial you can
#
# - run the whole pipeline of tutorials 1-5 with the **guided walk**, one panel per step:
#   Data -> Train -> Quantize -> Export -> Deploy;
# - read each panel's results (plots and numbers) and connect them to what the earlier
#   tutorials explained;
# - see the Python behind every panel ("Show code"), and drive the walk from code;
# - predict whether a model fits the board before the estimate says so, change a setting, run one
#   step again, and judge whether the model now fits.
#
# Computing time: about a minute on two cores with the walk's quick settings. The walk needs TensorFlow
# and ipywidgets; on a PYNQ board its cells are skipped (use tutorial 5 there).

# %%
from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("06_guided_walk")
lab

# %% [markdown]
# ## The walk
#
# `fastml_lab.lab()` shows a stepper. Each step is a panel with a short explanation, controls
# with sensible defaults, a **Run** button (and **Stop**), a progress bar, and its results. A step
# that lacks its inputs says which step to run first. Everything the walk makes is kept in its
# project folder, so running this cell again picks up where you stopped.
#
# Try it: pick step 1, press Run, then Next, and so on. The "quick settings" box keeps data and
# epochs small.

# %%
%%needs tensorflow ipywidgets
import fastml_lab

walk = fastml_lab.lab(project_dir=lab.work / "walk", quick=True)
walk

# %% [markdown]
# ## Driving the walk from code
#
# Every panel is also an object: `walk.step("train")` is the Train step, `step.run()` does what
# its Run button does (the work runs in the background, so the notebook stays responsive) and
# `step.wait()` waits for it. The cell after the exercise runs all five steps in order; watch the
# panels above fill in. If a step fails, its panel shows the error, folded details included. On a
# second run of this notebook the walk first reads back its project folder ("Reading ..." above);
# a step started meanwhile waits for that, then runs again.
#
# ### Exercise 1: predict whether it fits
#
# The Quantize step's defaults are quantization-aware training with 6-bit weights and 8-bit
# activations, and 50% of the weights pruned, at **reuse factor** 1 (every product gets its own
# multiplier; see the [glossary](GLOSSARY.md)). The network has 4,256 multiplications; the PYNQ-Z2
# has 53,200 LUTs and 220 DSP slices. Will the first quantized model fit the board, by the
# estimate? Commit to `True` or `False` before you run the walk; the cell after it grades you.

# %%
fits_first = ...   # your prediction: True or False; commit before you run the next cell

# %%
%%needs tensorflow ipywidgets
for name in ("data", "train", "quantize", "export", "deploy"):
    step = walk.step(name)
    step.run()
    step.wait()
    print(f"{step.title:14s} {step.outcome}")
    if step.outcome != "done":
        raise RuntimeError(f"The {step.title} step did not finish: its panel above says why.")

# %% [markdown]
# Grade your prediction, and read the Quantize panel's 'resource estimate' row (an estimate from
# fastml_lab's cost model, not a synthesis report): which resource is the tightest, the one the
# design uses the largest share of?

# %%
%%needs tensorflow ipywidgets
tightest = ...   # b) "DSP" or "LUT"

print(checks.check_walk_fit_prediction(fits_first, walk))
print(checks.check_walk_tightest(tightest, walk))

# %% [markdown]
# ## What each step found
#
# The numbers of every panel are also in `step.result.numbers`:

# %%
%%needs tensorflow ipywidgets
for name in ("data", "train", "quantize", "export", "deploy"):
    step = walk.step(name)
    print(f"--- {step.title}")
    for label, value in step.result.numbers:
        print(f"  {label}: {value}")

# %% [markdown]
# Look for the threads of the earlier tutorials:
#
# - **Train**: the ROC curves and the confusion matrix of tutorial 1;
# - **Quantize**: QAT with pruning (tutorials 2 and 3), the profile against the chosen types, the
#   accuracy-vs-bits study (emulator, test jets) and the fit estimate for the PYNQ-Z2;
# - **Export**: the hls4ml project, and hls4ml's C simulation (the compiled HLS C++) against the
#   emulator on the same events (tutorial 4);
# - **Deploy**: the overlay package, which backend ran it (here the software emulator unless a
#   board is attached), and its measured speed against the modelled one (tutorial 5).
#
# ### Exercise 2: read the panels
#
# a) What test accuracy did the Train step reach? b) Where did the Deploy step run the overlay:
# `"board"` or `"software"`?

# %%
%%needs tensorflow ipywidgets
train_accuracy = ...   # a) a number, as shown in the Train panel
deploy_backend = ...   # b) "board" or "software"

print(checks.check_walk_accuracy(train_accuracy, walk))
print(checks.check_walk_backend(deploy_backend, walk))

# %% [markdown]
# ## The code behind a panel
#
# Each panel has a "Show code" toggle with the same step as plain Python, the API of tutorials
# 1-5. That is the way from clicking to scripting:

# %%
%%needs tensorflow ipywidgets
quantize_step = walk.step("quantize")
print(quantize_step.code(quantize_step.settings()))

# %% [markdown]
# ## Changing a setting
#
# The controls are ipywidgets, so code can set them as well as the mouse. Here the Quantize step
# runs again with 75% of the weights pruned instead of 50%; try other values (and the bit
# widths) yourself.

# %%
%%needs tensorflow ipywidgets
quantize_step.prune.value = 0.75
quantize_step.run()
quantize_step.wait()
print(quantize_step.outcome)
for label, value in quantize_step.result.numbers:
    if "fit" in label or "estimate" in label:
        print(f"{label}: {value}")

# %% [markdown]
# ### Exercise 3: does it fit now?
#
# According to the estimate, does the walk's quantized model fit the PYNQ-Z2 now? Answer `True`
# or `False`.

# %%
%%needs tensorflow ipywidgets
fits_now = ...   # True or False

checks.check_walk_fits(fits_now, walk)

# %% [markdown]
# The Export and Deploy panels still show the first model: the walk does not redo later steps
# behind your back; run them again to carry the new one through. Steps also work alone, for
# instance on a model you trained yourself:
# `fastml_lab.widgets.ExportStep(model=my_model, project_dir="my_export")`.
#
# ## Summary
#
# - `fastml_lab.lab()` walks Data -> Train -> Quantize -> Export -> Deploy, one panel per step,
#   with results as plots and numbers, and keeps its work in a project folder.
# - Each panel is an object: `step.run()`, `step.wait()`, `step.result`, and its controls.
# - "Show code" (`step.code(...)`) gives the same step in Python: the toolkit's API.
# - From data to a running overlay, every number of tutorials 1-5 appears again: accuracy and
#   ROC, bits and EBOPs, the estimated fit to the board, the C simulation against the emulator,
#   and measured against modelled speed.
#
# Next: **tutorial 7** (`07_boosted_decision_trees.ipynb`) puts boosted decision trees on the same
# board and compares them with this network; tutorial 8 explores many designs at once and draws
# their Pareto front, and tutorial 9 follows a network down to gates (Verilog, simulation, logic). Beyond the course: a bitstream for your own model
# (`bitstreams/README.md`), real data (`load_jets("openml")`), and a PYNQ-Z2 on your desk.
