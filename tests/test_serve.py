"""``fastml-lab serve``: the real server on a free local port, queried with tritonclient.http (binary and
JSON tensors) and with plain HTTP. Answers equal the overlay's ``predict`` bit for bit; concurrent
requests are batched; every bad request gets its 4xx and a JSON error while the server keeps serving; a
board that stops answering gives a 503 by its deadline; Ctrl-C lets requests in flight finish."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fastml_lab import overlay
from fastml_lab.exceptions import DataError
from fastml_lab.inputs import check_events
from fastml_lab.overlay import manifest as mf
from fastml_lab.overlay.software import SoftwareOverlay
from fastml_lab.serve import Server

th = pytest.importorskip("tritonclient.http")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("jet_mlp", "jet_bdt_pynq")
HEADER = "Inference-Header-Content-Length"
MAX_BODY_MB = 1.0


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def software_only_package(tmp_path_factory):
    """A software-only copy of jet_mlp (float64 values, no board) whose manifest names its tensors and
    records an event as 4 x 4 values."""
    path = tmp_path_factory.mktemp("serve_pkg") / "jet_mlp_sw"
    shutil.copytree(ROOT / "bitstreams" / "jet_mlp", path)
    manifest = mf.read(path)
    manifest.update(name="jet_mlp_sw", board=None)
    manifest.pop("bitstream", None)
    manifest["io"].update(interface=mf.PARALLEL, word_dtype=mf.PARALLEL_WORD, packing=mf.PARALLEL_PACKING,
                          input_name="features", output_name="scores", input_shape=[4, 4])
    mf.write(path, manifest)
    return path


@pytest.fixture(scope="module")
def server(software_only_package):
    with Server([*SHIPPED, software_only_package], backend="software", port=0, max_batch=256,
                max_delay_ms=3, timeout_s=20, max_body_mb=MAX_BODY_MB) as srv:
        yield srv


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(23)
    X = rng.normal(0.0, 3.0, size=(400, 16)).astype(np.float32)
    X[:10] *= 1000.0  # beyond the fixed-point range: saturated or wrapped, the same everywhere
    X[10:15] = 0.0
    return X


@pytest.fixture(scope="module")
def reference(events, software_only_package):
    """Each model's outputs on ``events`` from ``overlay.load(...).predict`` in this process."""
    out = {}
    for source in (*SHIPPED, software_only_package):
        with overlay.load(source, backend="software") as ol:
            out[ol.name] = ol.predict(events)
    return out


def client(srv):
    return th.InferenceServerClient(srv.url.removeprefix("http://"))


def request(srv, method, path, body=b"", headers=None, conn=None):
    """(status, headers, body) of one request on ``conn`` (a new connection if None)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        if own:
            conn.close()


def json_infer_body(X, name="input", datatype="FP32", **extra):
    body = {"inputs": [{"name": name, "shape": list(X.shape), "datatype": datatype,
                        "data": np.asarray(X, dtype=np.float64).reshape(-1).tolist()}], **extra}
    return json.dumps(body).encode()


def binary_infer_body(X, name="input", datatype="FP32", dtype="<f4", binary_output=True):
    raw = np.ascontiguousarray(X, dtype=dtype).tobytes()
    head = json.dumps({"inputs": [{"name": name, "shape": list(X.shape), "datatype": datatype,
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "outputs": [{"name": "output", "parameters": {"binary_data": binary_output}}]}).encode()
    return head + raw, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def decode_answer(headers, body, name="output"):
    """The output tensor of an infer answer, JSON or binary."""
    length = int(headers.get(HEADER.lower(), len(body)))
    reply = json.loads(body[:length])
    (tensor,) = [t for t in reply["outputs"] if t["name"] == name]
    assert tensor["datatype"] == "FP64"
    if "data" in tensor:
        return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    assert tensor["parameters"]["binary_data_size"] == len(body) - length
    return np.frombuffer(body[length:], dtype="<f8").reshape(tensor["shape"])


def metric(srv, name, model, **labels):
    """A counter's value from /metrics, or a histogram's (count, sum)."""
    status, _, body = request(srv, "GET", "/metrics")
    assert status == 200
    want = {"model": model, "version": "1.0.0", **labels}
    found = {}
    for line in body.decode().splitlines():
        m = re.fullmatch(rf"({name}(?:_count|_sum)?)\{{(.*)\}} (\S+)", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))) == want:
            found[m.group(1)] = float(m.group(3))
    if f"{name}_count" in found:
        return found[f"{name}_count"], found[f"{name}_sum"]
    return found[name]


def assert_live(srv):
    status, _, body = request(srv, "GET", "/v2/health/live")
    assert status == 200 and json.loads(body) == {"live": True}


# ------------------------------------------------------------------ the protocol
def test_server_metadata_health_and_readiness(server):
    status, headers, body = request(server, "GET", "/v2")
    meta = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert meta["name"] == "fastml-lab" and "binary_tensor_data" in meta["extensions"]
    assert_live(server)
    assert request(server, "GET", "/v2/health/ready")[0] == 200
    c = client(server)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("jet_mlp") and c.is_model_ready("jet_bdt_pynq", "1.0.0")
    assert not c.is_model_ready("no_such_model")


@pytest.mark.parametrize("name", [*SHIPPED, "jet_mlp_sw"])
def test_model_metadata_comes_from_the_manifest(server, name):
    package = server.models[name].package
    meta = client(server).get_model_metadata(name)
    words = {"float32": "FP32", "float64": "FP64"}[package.io["word_dtype"]]
    assert meta["name"] == name and meta["versions"] == [package.version]
    assert meta["inputs"] == [{"name": package.input_name, "datatype": words, "shape": [-1, *package.io["input_shape"]]}]
    assert meta["outputs"] == [{"name": package.output_name, "datatype": "FP64", "shape": [-1, package.n_outputs]}]
    assert meta["parameters"]["class_names"] == package.class_names
    status, _, body = request(server, "GET", f"/v2/models/{name}/versions/{package.version}")
    assert status == 200 and json.loads(body) == meta


def test_tensor_names_default_where_the_manifest_names_none(server):
    assert mf.tensor_names(server.models["jet_mlp"].package.manifest) == ("input", "output")
    assert mf.tensor_names(server.models["jet_mlp_sw"].package.manifest) == ("features", "scores")
    assert server.models["jet_mlp_sw"].input.datatype == "FP64"


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("binary_in,binary_out", [(True, None), (True, True), (False, False), (True, False),
                                                  (False, True)])
def test_tritonclient_answers_equal_predict_bit_for_bit(server, events, reference, name, binary_in, binary_out):
    c = client(server)
    tensor = th.InferInput("input", list(events.shape), "FP32")
    tensor.set_data_from_numpy(events, binary_data=binary_in)
    outputs = None if binary_out is None else [th.InferRequestedOutput("output", binary_data=binary_out)]
    result = c.infer(name, [tensor], outputs=outputs, request_id="r1")
    y = result.as_numpy("output")
    assert y.dtype == np.float64 and y.shape == reference[name].shape
    assert y.tobytes() == reference[name].tobytes()
    assert result.get_response()["id"] == "r1"
    assert result.get_response()["model_version"] == "1.0.0"


def test_a_software_only_package_takes_fp64_under_its_own_names_and_shape(server, events):
    X = events.astype(np.float64) * 1.0001  # values a float32 word could not hold
    assert client(server).get_model_metadata("jet_mlp_sw")["inputs"][0]["shape"] == [-1, 4, 4]
    tensor = th.InferInput("features", [len(X), 4, 4], "FP64")
    tensor.set_data_from_numpy(X.reshape(-1, 4, 4))
    y = client(server).infer("jet_mlp_sw", [tensor]).as_numpy("scores")
    flat = th.InferInput("features", list(X.shape), "FP64")
    flat.set_data_from_numpy(X)
    with pytest.raises(th.InferenceServerException, match=r"has shape \[n_events, 4, 4\].*gives shape \[400, 16\]"):
        client(server).infer("jet_mlp_sw", [flat])
    with overlay.load(server.models["jet_mlp_sw"].package.path, backend="software") as ol:
        assert y.tobytes() == ol.predict(X).tobytes()


@pytest.mark.parametrize("name", SHIPPED)
def test_plain_http_json_and_binary(server, events, reference, name):
    X = events[:37]
    status, headers, body = request(server, "POST", f"/v2/models/{name}/infer", json_infer_body(X, id="a"),
                                    {"Content-Type": "application/json"})
    assert status == 200 and HEADER.lower() not in headers
    assert json.loads(body)["id"] == "a"
    assert decode_answer(headers, body).tobytes() == reference[name][:37].tobytes()
    payload, extra = binary_infer_body(X)
    status, headers, body = request(server, "POST", f"/v2/models/{name}/versions/1.0.0/infer", payload, extra)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert decode_answer(headers, body).tobytes() == reference[name][:37].tobytes()


def test_json_tensors_may_be_nested_and_compressed(server, events, reference):
    X = events[:5]
    body = {"inputs": [{"name": "input", "shape": [5, 16], "datatype": "FP32",
                        "data": X.astype(np.float64).tolist()}]}
    status, headers, answer = request(server, "POST", "/v2/models/jet_mlp/infer", gzip.compress(json.dumps(body).encode()),
                                      {"Content-Encoding": "gzip"})
    assert status == 200 and decode_answer(headers, answer).tobytes() == reference["jet_mlp"][:5].tobytes()


def test_a_request_larger_than_max_batch_is_answered(server, events, reference):
    X = np.concatenate([events, events])  # 800 events; the server gathers at most 256
    tensor = th.InferInput("input", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)
    y = client(server).infer("jet_bdt_pynq", [tensor]).as_numpy("output")
    expected = np.concatenate([reference["jet_bdt_pynq"]] * 2)
    assert y.tobytes() == expected.tobytes()


def test_concurrent_clients_are_batched_and_each_gets_its_own_rows(server, events, reference):
    name, n_threads, per_thread = "jet_mlp", 16, 15
    before_exec = metric(server, "nv_inference_exec_count", name)
    before_ok = metric(server, "nv_inference_request_success", name)
    before_batches = metric(server, "nv_inference_batch_requests", name)
    failures, barrier = [], threading.Barrier(n_threads)

    def work(seed):
        rng = np.random.default_rng(seed)
        c = client(server)  # a tritonclient per thread (it runs on gevent)
        barrier.wait()
        for i in range(per_thread):
            start = int(rng.integers(0, len(events) - 20))
            n = int(rng.integers(1, 20))
            tensor = th.InferInput("input", [n, 16], "FP32")
            tensor.set_data_from_numpy(events[start:start + n], binary_data=bool(i % 2))
            outputs = [th.InferRequestedOutput("output", binary_data=bool(i % 3))]
            y = c.infer(name, [tensor], outputs=outputs).as_numpy("output")
            if y.tobytes() != reference[name][start:start + n].tobytes():
                failures.append((seed, i))
        c.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    requests = n_threads * per_thread
    assert metric(server, "nv_inference_request_success", name) - before_ok == requests
    executions = metric(server, "nv_inference_exec_count", name) - before_exec
    count, total = metric(server, "nv_inference_batch_requests", name)
    assert count - before_batches[0] == executions and total - before_batches[1] == requests
    assert executions < requests, "no two requests were ever batched together"


def test_metrics_and_request_log(server, events, caplog):
    caplog.set_level("INFO", logger="fastml_lab.serve.requests")
    before = metric(server, "nv_inference_count", "jet_bdt_pynq")
    payload, extra = binary_infer_body(events[:9])
    assert request(server, "POST", "/v2/models/jet_bdt_pynq/infer", payload, extra)[0] == 200
    assert metric(server, "nv_inference_count", "jet_bdt_pynq") - before == 9
    status, headers, body = request(server, "GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    for family, kind in (("nv_inference_request_success", "counter"), ("nv_inference_request_failure", "counter"),
                         ("nv_inference_count", "counter"), ("nv_inference_exec_count", "counter"),
                         ("nv_inference_batch_size", "histogram"), ("nv_inference_request_latency_ms", "histogram")):
        assert f"# TYPE {family} {kind}" in text
    assert 'nv_inference_batch_size_bucket{model="jet_bdt_pynq",version="1.0.0",le="+Inf"}' in text
    latency_count, latency_sum = metric(server, "nv_inference_request_latency_ms", "jet_bdt_pynq")
    assert latency_count == metric(server, "nv_inference_request_success", "jet_bdt_pynq") and latency_sum > 0
    lines = [r.getMessage() for r in caplog.records if "/v2/models/jet_bdt_pynq/infer" in r.getMessage()]
    assert lines and re.search(r'"POST /v2/models/jet_bdt_pynq/infer" 200 \d+ \d+\.\d+ ms$', lines[-1])


# ------------------------------------------------------------------ bad requests
def _nan_events():
    X = np.ones((3, 16), dtype=np.float32)
    X[1, 4] = np.nan
    return X


def _inf_body():
    X = np.ones((2, 16), dtype=np.float32)
    X[0, 2] = np.inf
    return binary_infer_body(X)


def _the_overlay_s_message(X):
    with pytest.raises(DataError) as refused:
        check_events(X, 16, allow_single_row=False, name="input")
    return str(refused.value)


def _binary(tensor: dict, tail: bytes):
    """(body, headers) of a binary request whose one input is ``tensor`` (shape, size, data?)."""
    spec = {"name": "input", "shape": tensor["shape"], "datatype": "FP32",
            "parameters": {"binary_data_size": tensor["size"]}}
    if "data" in tensor:
        spec["data"] = tensor["data"]
    head = json.dumps({"inputs": [spec]}).encode()
    return head + tail, {HEADER: str(len(head))}


INFER = "/v2/models/jet_mlp/infer"
ONE = np.ones((2, 16), dtype=np.float32)
BAD = {
    "unknown model": ("POST", "/v2/models/nope/infer", json_infer_body(ONE), {}, 404, "Unknown model 'nope'"),
    "unknown version": ("POST", "/v2/models/jet_mlp/versions/7/infer", json_infer_body(ONE), {}, 404,
                        "has no version '7'"),
    "unknown endpoint": ("GET", "/v3/models", b"", {}, 404, "No endpoint"),
    "malformed JSON": ("POST", INFER, b'{"inputs": [', {}, 400, "not valid JSON"),
    "JSON that is not an object": ("POST", INFER, b"[1, 2]", {}, 400, "must be a JSON object"),
    "no inputs": ("POST", INFER, b'{"outputs": []}', {}, 400, "needs 'inputs'"),
    "wrong tensor name": ("POST", INFER, json_infer_body(ONE, name="x"), {}, 400, "has no input 'x'"),
    "wrong width": ("POST", INFER, json_infer_body(np.ones((2, 15))), {}, 400, "gives 15 values per event"),
    "wrong rank": ("POST", INFER, json.dumps({"inputs": [{"name": "input", "shape": [32], "datatype": "FP32",
                                                          "data": [1.0] * 32}]}).encode(), {}, 400,
                   "[n_events, 16]"),
    "wrong datatype": ("POST", INFER, json_infer_body(ONE, datatype="FP64"), {}, 400,
                       "is FP32; the request sends 'FP64'"),
    "shape disagrees with the data": ("POST", INFER, json.dumps({"inputs": [{
        "name": "input", "shape": [3, 16], "datatype": "FP32", "data": [0.5] * 32}]}).encode(), {}, 400,
        "shape [3, 16] holds 48 values; 'data' has 32"),
    "data that are not numbers": ("POST", INFER, json.dumps({"inputs": [{
        "name": "input", "shape": [1, 16], "datatype": "FP32", "data": ["a"] * 16}]}).encode(), {}, 400,
        "must hold numbers"),
    "NaN the overlay refuses": ("POST", INFER, json_infer_body(_nan_events()), {}, 400,
                                _the_overlay_s_message(_nan_events())),
    "inf the overlay refuses (binary)": ("POST", INFER, *_inf_body(), 400, "every value must be a finite number"),
    "a value FP32 cannot hold": ("POST", INFER, json_infer_body(np.full((1, 16), 1e39)), {}, 400,
                                 "does not fit FP32"),
    "unknown output": ("POST", INFER, json_infer_body(ONE, outputs=[{"name": "y"}]), {}, 400, "has no output 'y'"),
    "binary size disagrees with the shape": ("POST", INFER, *_binary({"shape": [2, 16], "size": 64}, bytes(64)),
                                             400, "binary_data_size is 64 bytes, but shape [2, 16]"),
    "binary data shorter than declared": ("POST", INFER, *_binary({"shape": [1, 16], "size": 64}, bytes(10)),
                                          400, "the body has 10 left"),
    "bytes no input accounts for": ("POST", INFER, *_binary({"shape": [1, 16], "size": 64}, bytes(66)), 400,
                                    "2 bytes after the JSON header"),
    "header length beyond the body": ("POST", INFER, b"{}", {HEADER: "99"}, 400,
                                      "Inference-Header-Content-Length is 99, but the body has 2 bytes"),
    "header length not a number": ("POST", INFER, b"{}", {HEADER: "ten"}, 400, "must be a number of bytes"),
    "data and binary at once": ("POST", INFER, *_binary({"shape": [1, 16], "size": 64, "data": [0.0] * 16},
                                                        bytes(64)), 400, "send one"),
    "wrong method on infer": ("GET", INFER, b"", {}, 405, "GET is not allowed"),
    "wrong method on health": ("PUT", "/v2/health/live", b"{}", {}, 405, "use GET"),
    "DELETE a model": ("DELETE", "/v2/models/jet_mlp", b"", {}, 405, "DELETE is not allowed"),
    "a body larger than the limit (gzip)": ("POST", INFER, gzip.compress(bytes(int(MAX_BODY_MB * 2**20) + 10)),
                                            {"Content-Encoding": "gzip"}, 413, "larger than this server takes"),
    "an unknown content encoding": ("POST", INFER, b"{}", {"Content-Encoding": "br"}, 415,
                                    "Content-Encoding 'br' is not supported"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_a_4xx_naming_the_fault_and_the_server_keeps_serving(server, events, reference, case):
    method, path, body, headers, status, message = BAD[case]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    got, got_headers, answer = request(server, method, path, body, headers, conn=conn)
    error = json.loads(answer)["error"]
    assert got == status, error
    assert got_headers["content-type"] == "application/json"
    assert message in error
    if status == 405:
        assert got_headers["allow"] in ("GET", "POST")
    assert_live(server)
    if got_headers.get("connection") != "close":  # the same connection goes on serving
        ok, ok_headers, ok_body = request(server, "POST", INFER, json_infer_body(events[:3]), conn=conn)
        assert ok == 200 and decode_answer(ok_headers, ok_body).tobytes() == reference["jet_mlp"][:3].tobytes()
    conn.close()


def _raw(server, data: bytes, timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"}' in chunks[-1]:
                break
        return b"".join(chunks)


def test_a_declared_length_beyond_the_limit_is_refused_before_the_body_is_read(server):
    started = time.perf_counter()
    answer = _raw(server, f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"Connection: close" in answer and b"at most 1,048,576" in answer
    assert time.perf_counter() - started < 3
    answer = _raw(server, f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n"
                          "Expect: 100-continue\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    assert_live(server)


def test_a_chunked_body_growing_past_the_limit_is_refused(server):
    chunk = b"x" * 65536
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    body = b"".join(b"10000\r\n" + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    answer = _raw(server, head + body)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"The chunked body" in answer
    assert_live(server)


def test_a_malformed_request_line_gets_a_json_error(server):
    answer = _raw(server, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b'{"error":' in answer
    assert_live(server)


# ------------------------------------------------------------------ a board that stops answering
class _FaultyOverlay(SoftwareOverlay):
    """The software overlay of a package, whose transfer hangs until released or raises ``error``."""

    def __init__(self, package, error=None, hang=None):
        super().__init__(package)
        self.error, self.hang = error, hang

    def _transfer(self, words, n_events):
        if self.hang is not None:
            self.hang.wait()
        if self.error is not None:
            raise self.error
        return super()._transfer(words, n_events)


@pytest.fixture
def board_package(tmp_path):
    from board_checks import with_stand_in_bitstream

    return overlay.open_package(with_stand_in_bitstream(ROOT / "bitstreams" / "jet_mlp_pynq", tmp_path))


def _infer_status(srv, name, X):
    status, _, body = request(srv, "POST", f"/v2/models/{name}/infer", json_infer_body(X))
    return status, json.loads(body)


def test_a_stalled_board_gives_503_by_the_driver_s_deadline(board_package, tmp_path, events):
    from software_dma import make_fake_pynq

    from fastml_lab.overlay.board import BoardOverlay
    from fastml_lab.overlay.software import load_firmware

    pynq = make_fake_pynq(load_firmware(board_package), stall=True)
    with BoardOverlay(board_package, timeout_s=0.3, lock_dir=tmp_path, pynq=pynq) as board, \
            Server([board], port=0, timeout_s=10) as srv:
        started = time.perf_counter()
        status, answer = _infer_status(srv, "jet_mlp_pynq", events[:4])
        assert status == 503 and "did not finish a transfer" in answer["error"]
        assert time.perf_counter() - started < 0.3 + 2.0
        assert_live(srv)
        status, _, body = request(srv, "GET", "/v2/models/jet_mlp_pynq/ready")
        assert status == 400 and "the board failed" in json.loads(body)["error"]
        assert request(srv, "GET", "/v2/health/ready")[0] == 400
        assert _infer_status(srv, "jet_mlp_pynq", events[:4])[0] == 503  # refused at once from now on


@pytest.mark.parametrize("error", [TimeoutError("the DMA did not answer"), None])
def test_a_hung_or_timed_out_transfer_gives_503_within_the_request_deadline(error, events):
    hang = threading.Event() if error is None else None
    ol = _FaultyOverlay(overlay.open_package("jet_mlp"), error=error, hang=hang)
    try:
        with Server([ol], port=0, timeout_s=0.5, drain_timeout_s=1) as srv:
            started = time.perf_counter()
            status, answer = _infer_status(srv, "jet_mlp", events[:4])
            assert status == 503
            assert ("did not answer within 0.5 s" if hang else "the DMA did not answer") in answer["error"]
            assert time.perf_counter() - started < 2.5
            assert_live(srv)
            if hang:
                time.sleep(0.6)  # the worker has now been in one call for longer than the deadline
            assert request(srv, "GET", "/v2/models/jet_mlp/ready")[0] == 400
    finally:
        if hang:
            hang.set()
        ol.close()


def test_an_unexpected_error_is_a_500_and_the_server_stays_up(events):
    with _FaultyOverlay(overlay.open_package("jet_bdt_pynq"), error=RuntimeError("wires crossed")) as ol, \
            Server([ol], port=0) as srv:
        status, answer = _infer_status(srv, "jet_bdt_pynq", events[:2])
        assert status == 500 and answer["error"] == "RuntimeError: wires crossed"
        assert_live(srv)
        assert metric(srv, "nv_inference_request_failure", "jet_bdt_pynq", reason="BACKEND") == 1


def test_one_bad_request_in_a_batch_leaves_the_others_answered(events):
    """A batch the overlay refuses (here a float64 value beyond the float32 stream word) is run again
    request by request, so only the request at fault gets the error."""
    with Server(["jet_mlp_pynq"], backend="software", port=0, max_delay_ms=200) as srv:
        big = np.ones((1, 16))
        big[0, 3] = 1e300
        results = {}

        def send(key, X):
            results[key] = srv.models["jet_mlp_pynq"].infer(X)

        def refused(X):
            try:
                send("bad", X)
            except DataError as exc:
                results["bad"] = exc

        threads = [threading.Thread(target=send, args=("good", events[:6].astype(np.float64))),
                   threading.Thread(target=refused, args=(big,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert "does not fit a float32 stream word" in str(results["bad"])
        with overlay.load("jet_mlp_pynq", backend="software") as ol:
            assert results["good"][0].tobytes() == ol.predict(events[:6]).tobytes()


# ------------------------------------------------------------------ the command
def test_serve_refuses_an_unknown_package_at_once(capsys):
    from fastml_lab.cli import main

    assert main(["serve", "no_such_package_anywhere", "--port", "0"]) == 2
    assert "no_such_package_anywhere" in capsys.readouterr().err


def test_ctrl_c_lets_requests_in_flight_finish_and_stops_within_seconds(events, reference):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fastml_lab.cli", "serve", "jet_mlp", "--backend", "software",
                             "--port", "0", "--max-delay-ms", "1500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line + proc.stderr.read()
        port = int(match.group(1))
        answers = {}

        def send(i):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("POST", INFER, body=json_infer_body(events[i:i + 3]))
            response = conn.getresponse()
            answers[i] = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        pending, deadline = 0, time.monotonic() + 10
        while pending < 8 and time.monotonic() < deadline:  # all eight wait for their batch (1.5 s)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            pending = float(re.search(r"nv_inference_pending_request_count\{[^}]*\} (\S+)", text).group(1))
        assert pending == 8
        proc.send_signal(signal.SIGINT)
        stopped = time.perf_counter()
        for t in threads:
            t.join(20)
        assert sorted(answers) == list(range(8))
        for i, (status, headers, body) in answers.items():
            assert status == 200, body
            assert decode_answer(headers, body).tobytes() == reference["jet_mlp"][i:i + 3].tobytes()
        assert proc.wait(timeout=10) == 0
        assert time.perf_counter() - stopped < 5
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert "Stopping" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_stops_a_server_started_as_a_background_job():
    """A shell's background job (``fastml-lab serve ... &``) starts with SIGINT ignored; ``kill -INT``
    must stop it all the same."""
    proc = subprocess.Popen([sys.executable, "-m", "fastml_lab.cli", "serve", "jet_bdt_pynq", "--backend", "software",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert "http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
