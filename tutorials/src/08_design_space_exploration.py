# %% [markdown]
# # 8. Design-space exploration: many models at once, on Dask, and the Pareto front
#
# ## Learning goals
#
# After this tutorial you can
#
# - describe a **design space** (network sizes, bit widths, pruning, reuse factors; BDT rounds and
#   depths) as a small file or a dict, and say how many points a grid of it has;
# - run it with `fastml_lab.sweep.run_sweep` on a local **Dask** cluster, each point trained,
#   quantized, exported, run on the emulator (fixed-point accuracy) and priced by the hardware
#   estimate;
# - read the **Pareto front** of fixed-point accuracy against LUTs and latency, the board's budget
#   line and the **error bars** of the estimates, and say what "fits" compared;
# - run the same call on a cluster: an HPC batch system through `dask-jobqueue`, or a
#   dask-gateway, by giving it a different address.
#
# Computing time: one to three minutes on two cores (each neural-network point trains two small
# models). A sweep folder keeps every finished point, so running the notebook again finds them.
# (LUT, FF, DSP, BRAM, II and HLS are in the [glossary](GLOSSARY.md).)

# %%
from fastml_lab import tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("08_design_space_exploration")
lab

# %% [markdown]
# ## Why a search
#
# Tutorials 2 to 4 moved one knob at a time: fewer bits, more pruning, a larger reuse factor. A
# trigger design needs a model that is accurate **and** small **and** fast, and the knobs interact:
# a wider network at 4 bits can beat a narrow one at 8 bits for fewer LUTs, and a boosted decision
# tree (BDT) may beat both on latency. Each candidate costs a quantization-aware training, an
# export and an emulator run, so a real study has hundreds of points: more than a laptop should
# do in an afternoon, and exactly what a cluster is for.
#
# A **space** lists the values to try. One key per knob; a list means "try each". The points of a
# grid are every combination of the lists, for each model kind.

# %%
events = lab.settings.n_events // 5        # each point trains on its own: keep the jets few
space = {
    "data": {"source": "synthetic", "n_events": events},
    "board": "pynq-z2",
    "models": [
        {"kind": "nn", "grid": {"sizes": ["8", "16-8"], "bits": [4, 8],
                                "epochs": [max(1, lab.settings.qat_epochs // 3)]}},
        {"kind": "bdt", "grid": {"rounds": [10, 30], "depth": [2, 3]}},
    ],
}
space

# %% [markdown]
# The same space as a YAML file reads as plainly (`fastml-lab sweep space.yaml --out DIR` runs it):
#
# ```yaml
# data: {source: synthetic, n_events: 4000}
# board: pynq-z2
# models:
#   - kind: nn
#     grid: {sizes: ["8", "16-8"], bits: [4, 8], epochs: [1]}
#   - kind: bdt
#     grid: {rounds: [10, 30], depth: [2, 3]}
# ```
#
# Knobs left out take their defaults (`fastml_lab.sweep.NN_PARAMS`, `BDT_PARAMS`); a misspelled
# key or a value out of range is refused with the key named.
#
# ### Exercise 1: how many points?
#
# How many points does this grid have (both model kinds together)?

# %%
%%needs tensorflow hls4ml
from fastml_lab.sweep import load_space

n_points = ...   # an integer

checks.check_number(n_points, len(load_space(space).grid()),
                    why="a grid is every combination of each model's lists: 2 x 2 NN points plus 2 x 2 BDT points",
                    hint="multiply the lengths of the lists of each model, then add the models")

# %% [markdown]
# ## Running the sweep on a local cluster
#
# `run_sweep` starts a Dask `LocalCluster`: worker **processes** with one thread each (TensorFlow
# gets one thread too), as many as asked. Each point is a task: a pure function of its settings and
# seed that trains, exports to a temporary folder, runs the emulator on the test jets and takes the
# hardware estimate (an estimate before synthesis: nothing is synthesized), then returns plain
# numbers. Every finished point is written to the sweep
# folder at once, so a sweep stopped halfway (Ctrl-C, a closed laptop) keeps what it finished and
# the same call resumes it. The Dask **dashboard** link shows the workers at work.
#
# Each worker holds its own TensorFlow (about 1.5 GB at its peak), so this notebook uses one
# worker, which fits a 2 GB Binder session; on a laptop with more memory, `workers=2` or more runs
# points side by side.

# %%
%%needs tensorflow hls4ml distributed
from fastml_lab.sweep import report, run_sweep

summary = run_sweep(space, lab.work / "sweep", workers=1,
                    on_start=lambda s: print(f"{s.workers} workers, dashboard: {s.dashboard}"))
print(summary.describe())

# %% [markdown]
# Run the cell again: every point is already in the folder, so nothing runs. The folder also
# records the space, the code version, the library versions and the data that produced it
# (`sweep.json`), one JSON record per point (`points/`), and the table (`results.csv`).

# %% [markdown]
# ## Reading the front
#
# `report` reads the folder (finished or not) and marks the **Pareto front**: the points that no
# other point beats on fixed-point accuracy *and* cost at once. Everything off the front is worse
# than some point on it, whatever you care about more.

# %% [markdown]
# ### Exercise 2: predict the fastest kind of model
#
# Each point's latency is the hardware estimate's, on the PYNQ-Z2 at 100 MHz, including the
# AXI-stream wrapper that brings the features in and the scores out one word per cycle. Tutorial 7
# showed what a BDT's latency is made of; tutorial 4 a network's. Before the next cell shows any
# latency, predict: will the lowest-latency point be a network (`"nn"`) or a BDT (`"bdt"`)?

# %%
fastest_kind = ...   # "nn" or "bdt": commit before running the next cell, which grades it

# %%
%%needs tensorflow hls4ml
rep = report(lab.work / "sweep")
print(rep.summary())
checks.check_fastest_kind(fastest_kind, rep.rows)
rep.table[["label", "fixed_accuracy", "mismatches", "lut", "dsp", "latency_ns", "fits", "fit_detail", "front"]]

# %% [markdown]
# What each column is:
#
# - `fixed_accuracy`: the exported design's accuracy on the test jets, computed by the **emulator**
#   (fastml_lab's model of the fixed-point arithmetic; tutorials 4 and 7 compare it with the C
#   simulation of the HLS C++, value for value). No C simulation, RTL simulation or board ran here.
# - `mismatches`: for a **network**, the output values on the test jets where the quantized Keras
#   model and the emulator differ (compared exactly, value for value): 0 means those two agree on
#   every value compared. For a **BDT** the column is **empty**: nothing was compared in this sweep
#   (an empty cell is not "zero mismatches"; tutorial 7 compares a BDT's emulator with its C
#   simulation). `csim: true` in the space adds an emulator-against-C-simulation count for every
#   point (slow).
# - `lut`, `dsp`, `latency_ns`: **estimates before synthesis**, of the IP alone: the network's from
#   fastml_lab's cost model, the BDT's from conifer's experimental regression (tutorial 7).
# - `fits`: the estimate's verdict against the board, and `fit_detail` what it compared: each
#   resource as used/available and the kind of figure. For a network on the PYNQ-Z2 that is the
#   estimate **after implementation** (the IP's C-synthesis figures times the factors of a published
#   PYNQ-Z2 run, plus the AXI DMA design), for a BDT conifer's figures plus the DMA design's margin.
#   A verdict at 90% of a resource is not the verdict at 20%: with errors like those below, read the
#   margin, not the word.
#
# The plot shows the two trade-offs, NN and BDT points together, the front as a staircase and the
# PYNQ-Z2's LUT count as a dashed line (the x axis is the IP's C-synthesis LUTs, so the line is a
# guide, not the verdict). Each point carries the **error bar** of its estimate, from the one table
# of measured errors, `fastml_lab.estimate.errors`: for a network, a factor `1 + r` either way, `r`
# the cost model's median error on the published synthesis points it was not fitted on
# (`fastml_lab/estimate/published_points.csv`, each with its `source`); for a BDT, the 67% by which
# conifer's LUT estimate exceeded yosys' mapping of conifer's VHDL for the same trees. Where no error
# was measured (conifer's latency) the legend says "no bar": unknown, not exact.

# %%
%%needs tensorflow hls4ml
from fastml_lab.estimate.errors import describe_errors

for family in ("nn", "bdt"):
    print(f"{family.upper()} estimate, measured error:\n  " + "\n  ".join(describe_errors(family, ("lut", "latency"))))
rep.plot();

# %% [markdown]
# ### Exercise 3: the best point within half the board
#
# A trigger rarely gets the whole FPGA. Among the points on the front (`rep.front()`), which is the
# most accurate one whose estimated IP uses at most half of the PYNQ-Z2's 53,200 LUTs (the `lut`
# column)? Give its `id`. Then look at its error bar: would it still be within half if the estimate
# were off by its median error?

# %%
%%needs tensorflow hls4ml
chosen = ...   # a point id, e.g. "3e0c63882f3d"

within = [r for r in rep.front() if float(r["lut"]) <= 53_200 / 2]
checks.check_choice(chosen, expected=max(within, key=lambda r: float(r["fixed_accuracy"]))["id"],
                    valid=[r["id"] for r in rep.rows],
                    why="filter the front by LUTs, then take the highest fixed-point accuracy",
                    hint="[r for r in rep.front() if float(r['lut']) <= 26_600], then the most accurate")

# %% [markdown]
# The chosen point's model is one call away: a point is a pure function of its settings, so
# `fastml_lab.sweep.train_point(point)` trains the same model again, ready for `hls.export` (the
# walk's Explore step does this with "use this point").
#
# ## Searching instead of gridding
#
# A grid grows as the product of its lists. For large spaces give ranges and let the sweep pick:
#
# ```python
# space = {"kind": "nn", "params": {"sizes": ["16-8", "32-16", "64-32-32"],
#                                   "bits": [3, 4, 5, 6, 8],
#                                   "prune": {"min": 0.0, "max": 0.9},
#                                   "beta": {"min": 1e-7, "max": 1e-4, "log": True}}}
# run_sweep(space, "sweeps/hgq", search="random", trials=200)    # uniform random points
# run_sweep(space, "sweeps/hgq", search="optuna", trials=200)    # NSGA-II: accuracy up, LUT and latency down
# ```
#
# The Optuna search (NSGA-II, a genetic algorithm for several objectives) asks for new points as
# results arrive, so it keeps every worker busy, and a resumed search starts from what the folder
# already holds.
#
# ## The same call on a cluster
#
# Nothing in a point depends on the machine that asked for it, so only the address changes. On an
# HPC system with SLURM, `dask-jobqueue` submits the workers as batch jobs:
#
# ```python
# from dask_jobqueue import SLURMCluster
# from fastml_lab.sweep import run_sweep
#
# cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00",
#                        job_script_prologue=["source ~/venvs/fastml/bin/activate"])
# cluster.scale(jobs=64)                       # 64 one-core workers
# run_sweep("space.yaml", "sweeps/study", scheduler=cluster, search="optuna", trials=500)
# ```
#
# With a dask-gateway (Kubernetes, many analysis facilities):
#
# ```python
# from dask_gateway import Gateway
#
# gateway = Gateway()                          # the facility's address and login
# cluster = gateway.new_cluster()
# cluster.scale(32)
# run_sweep("space.yaml", "sweeps/study", scheduler=cluster)
# ```
#
# From a shell, with a scheduler already running (`dask scheduler` and `dask worker` on the
# nodes, or a batch job that writes a scheduler file):
#
# ```bash
# fastml-lab sweep space.yaml --out sweeps/study --scheduler tcp://10.0.0.5:8786
# fastml-lab sweep space.yaml --out sweeps/study --scheduler-file ~/scheduler.json
# fastml-lab sweep --report sweeps/study      # the table, the fronts and front.png, at any time
# ```
#
# The workers need fastml-lab installed (the same version: `sweep.json` records the client's) and
# the data the space names: a file path must be readable by every worker.
#
# ## Summary
#
# - A **space** (a dict, or a YAML/JSON file) lists the knobs of NN and BDT models; a grid is every
#   combination, a random or Optuna (NSGA-II) search picks points from ranges.
# - `run_sweep(space, folder, workers=N)` runs the points on a local Dask cluster; `scheduler=`
#   (an address, a scheduler file, a `SLURMCluster`, a gateway cluster) runs the same call on a
#   cluster. Each point trains, exports, runs the emulator and takes the hardware estimate.
# - The folder keeps every finished point at once: a stopped sweep resumes, a failing point
#   records its error and the others go on.
# - `report(folder)` gives the table, the **Pareto front** of fixed-point accuracy against LUTs
#   and latency, and the plot with the board's budget.
# - Every hardware figure in the table is an **estimate before synthesis**, with an error bar from
#   its measured error (`fastml_lab.estimate.errors`); `fits` is a verdict on those figures, and
#   `fit_detail` gives its margin per resource. An empty `mismatches` cell means nothing was compared.
#
# The walk (`fastml_lab.lab()`) has an Explore step with the same sweep.
#
# Next: **tutorial 9**, "From network to gates" (`09_from_network_to_gates.ipynb`): a quantized
# network written as Verilog by da4ml, simulated with Verilator and mapped by yosys: RTL without an
# HLS step, and a technology mapping set beside the estimates of this tutorial.
