# %% [markdown]
# # 10. Acceleration as a service: an overlay behind the Open Inference Protocol
#
# ## Learning goals
#
# After this tutorial you can
#
# - say why the LHC experiments put coprocessors **behind a service** (many CPU jobs, a few
#   accelerators) and what the **Open Inference Protocol** is;
# - serve an overlay package with `fastml-lab serve` (or `fastml_lab.serve.Server`) and query it
#   with plain HTTP and with NVIDIA Triton's own client, `tritonclient`;
# - check that a served answer is the overlay's answer, bit for bit;
# - measure what the service costs against a call in the same process, and watch **dynamic
#   batching** gather requests from many clients into a few calls of the accelerator;
# - reason about when a shared accelerator pays.
#
# Computing time: under a minute on two cores. Everything here needs numpy alone, so it also runs
# on a PYNQ-Z2 (with the board behind the server when the package has a bitstream); the cell that
# uses `tritonclient` is skipped where it is not installed. Words in **bold** are in the
# [glossary](GLOSSARY.md).

# %%
import json
import re
import urllib.request

import numpy as np

from fastml_lab import overlay, tutorial
from fastml_lab.tutorial import checks

lab = tutorial.start("10_acceleration_as_a_service")
lab

# %% [markdown]
# ## Why a service?
#
# A trigger FPGA sits in the detector's data path (tutorial 4). Later stages run as thousands of CPU
# jobs, and a few of them would like an accelerator for one expensive model. Giving every job its
# own FPGA or GPU wastes them: each would sit idle most of the time. **Inference as a service** puts
# the accelerators behind a server instead: jobs send their events over the network, the server
# runs them and sends the answers back. CMS and ATLAS do this with NVIDIA Triton in the SONIC and
# SuperSONIC projects, for GPUs and FPGAs alike.
#
# Clients and servers agree on the **Open Inference Protocol** (KServe's "v2" protocol, which Triton
# speaks): `GET /v2/health/ready`, `GET /v2/models/{name}` for a model's inputs and outputs,
# `POST /v2/models/{name}/infer` with the tensors as JSON, or as raw bytes after a JSON header
# (Triton's binary-tensor extension, what `tritonclient` sends by default).
#
# ## Serving an overlay
#
# We serve the package you made in tutorial 5 if it is there, else the shipped `jet_mlp_pynq`.
# `backend="auto"` puts the board behind the server when the package has a bitstream and a board is
# present, and the bit-exact software overlay otherwise. Port 0 takes any free port.

# %%
from fastml_lab.serve import Server

mine = lab.work.parent / "05_overlays" / "bitstreams" / "my_jet_mlp"
package = str(mine) if (mine / "manifest.json").is_file() else "jet_mlp_pynq"
server = Server([package], backend="auto", port=0).start()   # batching without waiting, as Triton
name = next(iter(server.models))
print("serving", name, "at", server.url)

# %% [markdown]
# From the command line it is `fastml-lab serve jet_mlp_pynq --port 8000` (Ctrl-C stops it;
# requests in flight finish). Ask the server what it serves: the input's name, datatype and shape
# come from the package's manifest.

# %%
print("ready:", urllib.request.urlopen(server.url + "/v2/health/ready", timeout=10).status == 200)


def get(path):
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return json.load(response)


metadata = get(f"/v2/models/{name}")
metadata

# %% [markdown]
# ## A request by hand, and with Triton's client
#
# A request is JSON: the input tensor's name, shape, datatype and values in row-major order. Here
# are 100 synthetic jets, standardised by the package's own scaler (the overlay takes its inputs as
# given, like `fastml-lab run` without `--scale`).

# %%
from fastml_lab.data import make_synthetic_jets

ol = overlay.load(package, backend="software")   # the same package in this process, for comparison
X_raw, labels = make_synthetic_jets(lab.settings.profile_events, seed=10)
word = {"FP32": np.float32, "FP64": np.float64}[metadata["inputs"][0]["datatype"]]
X = ol.scale(X_raw).astype(word)
expected = ol.predict(X)

body = {"inputs": [{"name": metadata["inputs"][0]["name"], "shape": [100, X.shape[1]],
                    "datatype": metadata["inputs"][0]["datatype"], "data": X[:100].ravel().tolist()}]}
request = urllib.request.Request(f"{server.url}/v2/models/{name}/infer", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=30) as response:
    answer = json.load(response)["outputs"][0]
y_json = np.asarray(answer["data"], dtype=np.float64).reshape(answer["shape"])
print("JSON answer equals predict, bit for bit:", np.array_equal(y_json, expected[:100]))

# %% [markdown]
# `tritonclient` is the client a CMS or ATLAS job would use against Triton; it works unchanged
# against this server, sending binary tensors by default.

# %%
%%needs tritonclient
import tritonclient.http as httpclient

client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
tensor = httpclient.InferInput(metadata["inputs"][0]["name"], [100, X.shape[1]], metadata["inputs"][0]["datatype"])
tensor.set_data_from_numpy(X[:100])
y_triton = client.infer(name, [tensor]).as_numpy(metadata["outputs"][0]["name"])
print("tritonclient answer equals predict, bit for bit:", np.array_equal(y_triton, expected[:100]))
client.close()

# %% [markdown]
# A bad request gets a 4xx with a JSON error that names what is wrong, and the server goes on
# serving. Here a width the model does not take:

# %%
bad = {"inputs": [{"name": metadata["inputs"][0]["name"], "shape": [1, 3], "datatype": "FP32",
                   "data": [0.1, 0.2, 0.3]}]}
try:
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/v2/models/{name}/infer",
                                                  json.dumps(bad).encode()), timeout=10)
except urllib.error.HTTPError as error:
    print(error.code, json.load(error)["error"])
print("still ready:", urllib.request.urlopen(server.url + "/v2/health/ready", timeout=10).status == 200)

# %% [markdown]
# ## What the service costs
#
# `in_process` times the overlay's `predict` called directly; `load_test` runs clients (threads
# here, each on its own connection, sending binary tensors as `tritonclient` does) against the
# server for a bounded time, checks their answers against `predict`, and reports requests per
# second and the median (p50) and 99th-percentile (p99) time of one request.
#
# ### Exercise 1: predict the price of a request
#
# One client sends one jet per request. How many times longer will a served request take than a
# direct `predict` call of one jet (median against median)? Commit to `"1"`, `"10"`, `"100"` or
# `"1000"`.

# %%
service_overhead = ...   # "1", "10", "100" or "1000"

# %%
from fastml_lab.serve.client import in_process, load_test

seconds = 0.5 if lab.settings.quick else 2.0
spec = {"input": metadata["inputs"][0]["name"], "output": metadata["outputs"][0]["name"],
        "n_outputs": ol.n_outputs}
direct = in_process(ol, X, 1, seconds, 2_000)
served = load_test(server, name, spec, X, expected, clients=1, size=1, seconds=seconds, max_requests=2_000)
print(f"predict in this process: p50 {direct['p50_ms']:.3f} ms;  served: p50 {served['p50_ms']:.3f} ms, "
      f"{served['requests_per_s']:,.0f} requests/s")
checks.check_service_overhead(service_overhead, direct, served)

# %% [markdown]
# Most of a served request is HTTP and Python: parsing, checking, copying, the network stack.
# Against a board call that costs about a millisecond itself (tutorial 5), the service adds
# little; against a numpy call of 0.1 ms, it dominates.
#
# ## Dynamic batching
#
# Now many clients send at once. With batching off (`max_batch=1`) every request is its own call of
# the overlay. With batching on, the server's worker gathers what has queued (for up to 2 ms here)
# into one call and hands each request its own rows back. The server's `/metrics` (Prometheus
# format, Triton's names) count both: `nv_inference_request_success` (requests) and
# `nv_inference_exec_count` (overlay calls).
#
# ### Exercise 2: predict the calls
#
# 16 clients send one jet per request, with batching on. For every 100 requests, how many calls of
# the overlay will the server make? Commit to `"about 100"` (one per request), `"10 to 99"` or
# `"under 10"`.

# %%
calls_per_100_requests = ...   # "about 100", "10 to 99" or "under 10"

# %%
rows = {}


def counters(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    def total(metric):
        return sum(float(v) for v in re.findall(rf"^{metric}{{[^}}]*}} (\S+)$", text, re.MULTILINE))
    return total("nv_inference_request_success"), total("nv_inference_exec_count")


for label, options in (("batching off", {"max_batch": 1}), ("batching on, 2 ms", {"max_delay_ms": 2})):
    with Server([package], backend="auto", port=0, **options) as shared:
        before = counters(shared.url)
        cell = load_test(shared, name, spec, X, expected, clients=16, size=1, seconds=seconds, max_requests=500)
        after = counters(shared.url)
    requests, calls = after[0] - before[0], after[1] - before[1]
    rows[label] = {**cell, "requests": requests, "calls": calls}
    print(f"{label:18s} {cell['events_per_s']:8,.0f} events/s  p50 {cell['p50_ms']:6.2f} ms  "
          f"p99 {cell['p99_ms']:6.2f} ms  {requests:,.0f} requests in {calls:,.0f} overlay calls")
checks.check_batching_calls(calls_per_100_requests, rows["batching on, 2 ms"])

# %% [markdown]
# Here the clients, the server and the emulator share two cores and one Python, and a software
# overlay's call is cheap, so the gain in events per second is modest. The count of calls is what
# matters for a board: every call pays the DMA's set-up.
#
# ### Exercise 3: what batching buys a board
#
# A PYNQ-Z2 call costs about 940 us however few events it carries (the published figure of tutorial
# 5). How many seconds of board time would the requests of the batched run above take without
# batching (one call each) minus with it (its number of calls), counting 940 us per call?

# %%
board_seconds_saved = ...   # a number

checks.check_board_time_saved(board_seconds_saved, rows["batching on, 2 ms"], call_us=940)

# %% [markdown]
# ## When does a shared accelerator pay?
#
# - **Many clients, a few accelerators**: each job uses the accelerator only now and then; the
#   service keeps it busy and batching turns many small requests into few large calls.
# - **An expensive call**: when one call of the accelerator has a large fixed cost (a DMA set-up, a
#   GPU kernel launch), batching divides it among the requests.
# - **Not in a trigger's path**: a request costs a fraction of a millisecond to milliseconds of
#   network and software, against a Level-1 budget of microseconds (tutorial 4). Services belong in
#   the later, software stages.
#
# Stop the server when done (the `with` blocks above stopped theirs): requests in flight finish.

# %%
server.stop()
ol.close()
print("stopped:", server.url)

# %% [markdown]
# ## Summary
#
# - `fastml-lab serve PACKAGE` (or `fastml_lab.serve.Server`) serves any overlay package over the
#   Open Inference Protocol; names, datatypes and shapes come from the manifest, and answers equal
#   `predict` bit for bit, by JSON or by `tritonclient`'s binary tensors.
# - A served request costs HTTP and Python on top of the call; on a cheap call that overhead
#   dominates.
# - Dynamic batching gathers concurrent requests into few overlay calls (`/metrics` counts both),
#   which pays when a call has a large fixed cost, as a board's DMA does.
# - A shared accelerator pays for many clients and expensive calls, outside the trigger's
#   microsecond path.
#
# Next: **tutorial 11** (`11_convolutions.ipynb`) takes the flow to convolutional networks on jet
# images: line buffers, `io_stream` against `io_parallel`, and what fits the PYNQ-Z2.
