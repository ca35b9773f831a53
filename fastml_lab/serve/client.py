"""Clients for a served overlay, as a CPU job would call it: binary tensors on a keep-alive connection.

:func:`load_test` runs concurrent clients for a bounded time and count and reports requests/s,
events/s and the p50/p99 latency of one request, checking answers against ``predict`` value for value;
:func:`in_process` times the same overlay's ``predict`` called directly. The standard library and
numpy only (the tutorial and ``bench/bench_serve.py`` use them; so can a board).
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np

from .protocol import HEADER_LENGTH as HEADER

__all__ = ["binary_request", "decode", "in_process", "load_test", "percentile"]


def percentile(values, q: float) -> float:
    """The ``q``-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def binary_request(X: np.ndarray, input_name: str, output_name: str) -> tuple:
    """``(body, headers)`` of an infer request with ``X`` as a binary FP32 tensor, the answer asked in binary."""
    raw = np.ascontiguousarray(X, dtype="<f4").tobytes()
    head = json.dumps({"inputs": [{"name": input_name, "shape": list(X.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "outputs": [{"name": output_name, "parameters": {"binary_data": True}}]}).encode()
    return head + raw, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def decode(headers: dict, body: bytes, n_outputs: int) -> np.ndarray:
    """The binary FP64 output of an infer answer (``headers`` with lower-case names)."""
    length = int(headers[HEADER.lower()])
    return np.frombuffer(body[length:], dtype="<f8").reshape(-1, n_outputs)


def load_test(server, model: str, spec: dict, X: np.ndarray, expected: np.ndarray, clients: int,
              size: int, seconds: float, max_requests: int) -> dict:
    """Run ``clients`` threads, each on its own connection to ``server`` (with ``host`` and ``port``),
    sending requests of ``size`` events of ``X`` to ``model`` for at most ``seconds`` and ``max_requests``
    each; ``spec``: ``{"input", "output", "n_outputs"}``; ``expected``: ``predict(X)``, which the first
    answers of each client must equal. Returns requests/s, events/s, p50/p99 latency (ms)."""
    path = f"/v2/models/{model}/infer"
    latencies, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        rng = np.random.default_rng(index)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        bodies = []
        for _ in range(8):
            start = int(rng.integers(0, len(X) - size + 1))
            bodies.append((start, *binary_request(X[start:start + size], spec["input"], spec["output"])))
        mine = []
        barrier.wait()
        for i in range(max_requests):
            if time.perf_counter() >= stop_at[0]:
                break
            start, body, headers = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                errors.append(answer[:200])
                break
            if i < len(bodies):
                got = decode({k.lower(): v for k, v in response.getheaders()}, answer, spec["n_outputs"])
                if got.tobytes() != expected[start:start + size].tobytes():
                    errors.append(f"client {index}: answer differs from predict")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 60  # set properly once every client is ready
    barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{clients} clients x {size} events: {errors[0]!r}")
    n = len(latencies)
    return {"clients": clients, "events_per_request": size, "requests": n, "seconds": wall,
            "requests_per_s": n / wall, "events_per_s": n * size / wall,
            "p50_ms": 1e3 * percentile(latencies, 50), "p99_ms": 1e3 * percentile(latencies, 99)}


def in_process(ol, X: np.ndarray, size: int, seconds: float, max_requests: int) -> dict:
    """``ol.predict`` on ``size`` events at a time, back to back, for at most ``seconds`` and ``max_requests``."""
    latencies = []
    stop_at = time.perf_counter() + seconds
    for i in range(max_requests):
        if time.perf_counter() >= stop_at:
            break
        start = (i * 37) % (len(X) - size + 1)
        t0 = time.perf_counter()
        ol.predict(X[start:start + size])
        latencies.append(time.perf_counter() - t0)
    wall = sum(latencies)
    n = len(latencies)
    return {"events_per_request": size, "calls": n, "calls_per_s": n / wall, "events_per_s": n * size / wall,
            "p50_ms": 1e3 * percentile(latencies, 50), "p99_ms": 1e3 * percentile(latencies, 99)}
