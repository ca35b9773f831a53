# %% [markdown]
# # 5. Overlays: running the network on a PYNQ-Z2, or bit-exactly without one
#
# ## Learning goals
#
# After this tutorial you can
#
# - explain what an **overlay** is: a bitstream for the FPGA fabric, the description of the
#   hardware in it, and the Python driver that moves data through an AXI DMA;
# - find, load and run overlay packages with `fastml_lab.overlay`, on the board when there is
#   one and in software otherwise, and tell which one ran and why;
# - feed it raw or standardised features and read its answers;
# - measure throughput and latency, compare them with the **modelled** figures of the IP, and
#   with the Arm CPU of the board and a laptop;
# - package a model you exported yourself.
#
# Computing time: under a minute on two cores. **On a PYNQ-Z2** this notebook runs as is: the overlay
# cells need numpy and pynq only; the cells that train or export (TensorFlow, hls4ml) are skipped
# with a notice.

# %%
import numpy as np

from fastml_lab import overlay, tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("05_overlays")
lab

# %% [markdown]
# ## What an overlay is
#
# The PYNQ-Z2 carries a Zynq-7000 chip: two Arm Cortex-A9 cores (the *processing system*, PS)
# running Linux and Python, next to FPGA fabric (the *programmable logic*, PL). An **overlay** is
# a design for the PL that Python loads at run time:
#
# - `name.bit`, the **bitstream**: the configuration of every LUT, flip-flop and wire, made by
#   Vivado from the HLS IP of tutorial 4 plus the glue around it;
# - `name.hwh`, the **hardware handoff**: which IP blocks the design contains and where their
#   registers are, so the `pynq` library can bind drivers to them;
# - the **driver**: our network reads its inputs from an AXI-stream and writes its outputs to
#   another; an **AXI DMA** engine copies a buffer of input words from DDR memory into the stream
#   and the results back, while the Arm cores wait.
#
# A fastml_lab **package** adds what software needs: a manifest (sizes, types, the scaler, class
# names, checksums) and the emulator's description of the firmware. Where there is no board, or
# no bitstream yet, the **software overlay** runs that emulator behind the same API. The emulator
# equals the firmware's C simulation value for value (tutorial 4 compares them); on a board,
# `ol.verify(X)` compares it with the FPGA itself.

# %%
for info in overlay.list_overlays():
    print(f"{info.name:14s} {info.version:6s} board={info.board!s:8s} {info.status:16s} {info.path}")

# %% [markdown]
# Network packages ship with fastml_lab (see `bitstreams/README.md`): `jet_mlp`, the tutorial
# model at `ap_fixed<16,6>` and reuse factor 1 (far too large for the board, tutorial 4), and
# `jet_mlp_pynq`, pruned to 25% of its weights with 6-bit weights and reuse factor 32, sized for
# the xc7z020 by the estimate (no bitstream has been built from it; its II of 183 cycles is an
# estimate too). Both were trained on the synthetic jets.
#
# ## Loading and running
#
# `overlay.load(name)` (backend `"auto"`) uses the board when pynq finds a device and the package
# has a bitstream, and the software overlay otherwise; `backend="software"` or `"board"` forces
# the choice (the latter fails with the reason if it cannot). On a board, this notebook takes the
# first PYNQ-Z2 package that has a bitstream (yours, once built with Vivado), else `jet_mlp_pynq`.

# %%
print("board here:", overlay.on_board(), "-", overlay.device_absent_reason() or "pynq sees a device")
with_bitstream = [info.name for info in overlay.list_overlays()
                  if info.board == "pynq-z2" and info.status in ("bitstream present", "verified")]
name = with_bitstream[0] if lab.on_board and with_bitstream else "jet_mlp_pynq"
ol = overlay.load(name)
print(ol, "| package status:", ol.package.status)
ol.describe()

# %% [markdown]
# The overlay takes features **as given** (`predict(X)`, like the C simulation) or **raw**
# (`predict(X, scale=True)` applies the scaler stored in the package). Here are raw synthetic jets,
# made with numpy alone so the cell runs on the board too:

# %%
from fastml_lab.data import make_synthetic_jets

X_raw, labels = make_synthetic_jets(lab.settings.profile_events, seed=1)
scores = ol.predict(X_raw, scale=True)
predicted = ol.classify(X_raw, scale=True)
print("scores of the first jet:", np.round(scores[0], 3), "->", ol.labels(X_raw[:1], scale=True)[0])
print(f"accuracy on {len(labels):,} jets: {np.mean(predicted == labels):.4f}")

# %% [markdown]
# ## How fast? Measured and modelled
#
# `profile` measures the time of one batch (throughput) and the median time of single-event
# calls (latency, including Python and, on the board, the DMA set-up). It also reports the
# **modelled** figures of the IP alone: one event every II cycles at the fabric clock, or one
# every 16 cycles if the stream, which carries one 32-bit word per cycle, is slower than that.
#
# ### Exercise 1: predict what a batch buys
#
# Per event, how many times faster is one batch than one call per event, on the overlay you just
# loaded? Commit to an order of magnitude, `"1"`, `"10"`, `"100"`, `"1000"` or `"10000"`, before
# you run the profile.

# %%
batch_speedup = ...   # "1", "10", "100", "1000" or "10000"

# %%
profile = ol.profile(X_raw, scale=True)
print(f"measured on {profile['measured_on']}:")
print(f"  {profile['events_per_s']:,.0f} events/s in one batch of {profile['events']:,}; "
      f"single-event latency {profile['latency_us']:.0f} us (median)")
modelled = profile["modelled"]
print(f"modelled IP: {modelled['events_per_s']:,.0f} events/s, latency {modelled['latency_us']:.2f} us "
      f"({modelled['cycles_per_event']} cycles per event, bound by the {modelled['bound']}; "
      f"{modelled['source']})")
checks.check_batch_speedup(batch_speedup, profile)

# %% [markdown]
# ### Exercise 2: the stream bound
#
# Each event is 16 float32 features; the AXI stream moves one 32-bit word per clock cycle at
# 100 MHz. However fast the network, how many events per second can the stream deliver?

# %%
stream_events_per_s = ...   # a number

checks.check_stream_bound(stream_events_per_s, n_words=16, clock_mhz=100)

# %% [markdown]
# ## Board, Arm CPU and laptop
#
# A published run on a real PYNQ-Z2 of a model like `jet_mlp_pynq` (the hls4ml tutorial's 6-bit,
# 75%-pruned network, but at reuse factor **64**, not 32: II 95 cycles in the C-synthesis report,
# 0.95 us at 100 MHz; PYNQ 3.1.1): 166,000 events in one batch took 0.236 s (703,900 events/s,
# 67% of the II bound); a single event through Python and the DMA took 940 us (median); the same
# model compiled in C on the board's Cortex-A9 took 28.2 us per event. Next to them, what this
# machine measured:

# %%
from fastml_lab.estimate.published_run import BY_KEY, SOURCE

rows = [(f"{BY_KEY[key].where} (published)", 1e9 / BY_KEY[key].ns_per_event)
        for key in ("fabric", "dma_batch", "dma_one", "arm_c")]
rows += [(f"{ol.backend} overlay here, one batch (measured)", profile["events_per_s"]),
         (f"{ol.backend} overlay here, one event per call (measured)", 1e6 / profile["latency_us"])]
for label, rate in rows:
    print(f"{label:62s} {rate:>12,.0f} events/s")
print("published:", SOURCE)

# %% [markdown]
# Two lessons. The FPGA's advantage appears only with **batches**: a single call pays about a
# millisecond of Python and DMA set-up, a thousand times the IP's own latency. And on the board
# the bit-exact software overlay is a reference, not a competitor: numpy on a Cortex-A9 is far
# slower than on a laptop.
#
# ### Exercise 3: the cost of a call
#
# With 940 us of overhead per call and 1.42 us per event once a batch streams (the published batch
# rate, DMA included; the fabric's own bound is 0.95 us), how many events per second does the board
# reach with batches of 100 events?

# %%
batch_100_events_per_s = ...   # a number

checks.check_batch_rate(batch_100_events_per_s, overhead_us=940, per_event_us=1.42, batch=100)

# %% [markdown]
# ## Packaging your own model
#
# `overlay.package(project, name)` turns an exported project (tutorial 4, exported with
# `backend="pynq-z2"` for the board's AXI-stream wrapper) into a package. The emulator's files are
# copied and hashed; a Vivado bitstream is added when the project has one (see
# `bitstreams/README.md` to build it; Binder and CI have no Vivado). This part needs TensorFlow
# and hls4ml, so a board skips it.

# %%
%%needs tensorflow hls4ml
from fastml_lab.hls import export

ds = lab.load_jets()
print(ds.notice)
model = lab.train_float_model(ds)
project = export(model, lab.work / "my_project", backend="pynq-z2", precision="ap_fixed<16,6>",
                 reuse_factor=4, scaler=ds.scaler, class_names=ds.class_names, overwrite=True)
path = overlay.package(project.path, name="my_jet_mlp", out=lab.work / "bitstreams" / "my_jet_mlp",
                       overwrite=True)
print(sorted(p.name for p in path.iterdir()))

# %% [markdown]
# Load it, and check the three things that matter: it runs, it computes what the firmware
# computes (the emulator of the exported project), and how it compares with the float model.

# %%
%%needs tensorflow hls4ml
import time

with overlay.load(path) as mine:
    y_overlay = mine.predict(ds.X_test)
    print(mine, "identical to the project's emulator:",
          np.array_equal(y_overlay, project.firmware().predict(ds.X_test)))
model.predict(ds.X_test[:10], verbose=0)  # the first call builds the graph: not timed
start = time.perf_counter()
y_keras = model.predict(ds.X_test, batch_size=4096, verbose=0)
keras_rate = len(ds.X_test) / (time.perf_counter() - start)
print(f"accuracy: overlay {np.mean(y_overlay.argmax(1) == ds.labels_test):.4f}, "
      f"Keras float {np.mean(y_keras.argmax(1) == ds.labels_test):.4f}")
print(f"Keras float predict on this machine: {keras_rate:,.0f} events/s")

# %% [markdown]
# On a board with a bitstream, `ol.verify(X)` compares the FPGA with the emulator event by event
# and records a clean run in the package. Close overlays when done: on a board this releases the
# DMA buffers and the lock that keeps a second notebook off the fabric.

# %%
if ol.backend == "board":
    print(ol.verify(X_raw[:1000]))
ol.close()
ol

# %% [markdown]
# ## Summary
#
# - An overlay is a bitstream plus its hardware description and a driver; the Arm cores load it
#   and move data to the IP with an AXI DMA.
# - `overlay.load(name)` picks the board when it can and the bit-exact software overlay
#   otherwise; `ol.backend` says which ran, `predict`/`classify`/`labels` answer, `scale=True`
#   takes raw features.
# - `profile` measures throughput and latency; the modelled figures give the IP's own limits
#   (II, or the stream's one word per cycle).
# - The FPGA wins with batches; per call, Python and DMA set-up dominate. Published figures come
#   with their source (`fastml_lab.estimate.published_run`) and say what design they measured.
# - `overlay.package(project, name)` packages your own export.
#
# Next: **tutorial 6** walks through all of it with widgets, from data to a running overlay
# (the [index](README.md) lists every notebook).
