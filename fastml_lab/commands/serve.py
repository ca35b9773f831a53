"""The ``serve`` verb: overlay packages behind the Open Inference Protocol (:mod:`fastml_lab.serve`).

It imports ``fastml_lab.serve`` and ``fastml_lab.overlay`` only (numpy and the standard library), so
it runs on a board.
"""

from __future__ import annotations

from ..cli import add_verb


def _serve(args):
    from ..serve import serve

    serve(args.packages, announce=lambda line: print(line, flush=True), host=args.host, port=args.port,
          backend=args.backend, paths=args.path, max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
          timeout_s=args.timeout, max_body_mb=args.max_body_mb)


def register(sub):
    from ..serve import (DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_MB, DEFAULT_MAX_DELAY_MS, DEFAULT_PORT,
                         DEFAULT_TIMEOUT_S)

    p = add_verb(sub, "serve", _serve,
                 "serve overlay packages over the Open Inference Protocol (Triton/KServe v2 REST, "
                 "binary tensors): tritonclient.http works with its defaults; Ctrl-C stops")
    p.add_argument("packages", nargs="+", metavar="PACKAGE",
                   help="package name (shipped or local) or folder; the model's name is the package's")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default: %(default)s; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0: any free one)")
    p.add_argument("--backend", choices=("auto", "software", "board"), default="auto",
                   help="where the overlays run (default: %(default)s)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                   help="events one overlay call gathers from concurrent requests at most (default: "
                        "%(default)s; 1: no batching)")
    p.add_argument("--max-delay-ms", type=float, default=DEFAULT_MAX_DELAY_MS, metavar="T",
                   help="how long a request may wait for others to join its batch (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="seconds a request waits for its answer before a 503 (default: %(default)s)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB, metavar="MB",
                   help="largest request body (default: %(default)s)")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="also search DIR for the packages")
