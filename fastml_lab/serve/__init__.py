"""Acceleration as a service: overlays served over the Open Inference Protocol (KServe v2 REST, as
NVIDIA Triton speaks it, with Triton's binary-tensor extension), so ``tritonclient.http`` works with
its defaults::

    fastml-lab serve jet_mlp --backend software --port 8000

    from fastml_lab.serve import Server
    with Server(["jet_mlp"], backend="software", port=0) as server:
        server.url                       # http://127.0.0.1:PORT

Routes: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{m}[/versions/{v}]``
(metadata), ``.../ready``, ``.../config``, ``POST .../infer``, ``GET /metrics`` (Prometheus). Tensor
names, datatypes and shapes come from each package's manifest (:mod:`fastml_lab.serve.tensors`).
Concurrent requests for one model are batched into one overlay call (:mod:`fastml_lab.serve.batching`).

The standard library and numpy only, so it runs on the PYNQ-Z2's Python 3.10 beside the board.

Modules: ``server`` (lifetime), ``handler`` (HTTP routes), ``body`` (reading a body within limits),
``protocol`` (infer requests and answers), ``tensors`` (names, datatypes, shapes), ``model`` (one
served overlay), ``batching`` (dynamic batching), ``metrics`` (Prometheus text), ``errors`` (HTTP
statuses).
"""

from __future__ import annotations

from .errors import RequestError
from .server import (DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_MB, DEFAULT_MAX_DELAY_MS, DEFAULT_PORT,
                     DEFAULT_TIMEOUT_S, Server, serve)

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY_MB", "DEFAULT_MAX_DELAY_MS", "DEFAULT_PORT",
           "DEFAULT_TIMEOUT_S", "RequestError", "Server", "serve"]
