"""Served vs in-process: an overlay behind `fastml-lab serve`, queried on loopback, beside `predict` in process.

The server runs as `fastml-lab serve` in its own process (with its one log line per request, sent to
/dev/null); the clients are threads of this process, each on its own keep-alive connection, sending
binary tensors as tritonclient does by default (JSON header, raw float32 events, binary float64
answers). For 1, 8 and 32 concurrent clients and 1, 10, 100 and 1,000 events per request, without
dynamic batching (--max-batch 1), with it but no wait (--max-delay-ms 0: a call gathers what queued
while the previous one ran) and with a 2 ms wait, each cell runs for at most --seconds or --requests
per client and reports requests/s, events/s and the p50/p99 latency of one request.
The same overlay's `predict` is timed in this process on the same events (one caller, back to back),
and the ratios compare the two. Every cell checks its first answer against `predict`, value for value.

    python bench/bench_serve.py [--package jet_mlp] [--seconds 2] [--requests 2000] [--quick] [--json out.json]

Both the server and the clients share this machine's cores: on a two-core machine the clients' own
Python costs as much as the server's, so the served figures are a floor; the ratios show what the
protocol, the network stack and the batching add or buy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

# One BLAS thread in this process and in the server: the emulator's matrix products on two threads stall
# whenever another process holds a core, which would hide what serving costs.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from fastml_lab.serve.client import in_process, load_test  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = (1, 8, 32)
SIZES = (1, 10, 100, 1000)
#: How the server batches: not at all, only what queued while the overlay was busy (no wait), or also
#: waiting up to 2 ms for more.
MODES = {"off": ("--max-batch", "1"), "0 ms": ("--max-delay-ms", "0"), "2 ms": ("--max-delay-ms", "2")}


class ServerProcess:
    """`fastml-lab serve` in a subprocess, on a free port."""

    def __init__(self, package: str, backend: str, extra=()):
        command = [sys.executable, "-m", "fastml_lab.cli", "serve", package, "--backend", backend,
                   "--port", "0", *extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.proc.stdout.readline()
        match = re.search(r"http://([\d.]+):(\d+)", line)
        if not match:
            self.stop()
            raise SystemExit(f"the server did not start: {line!r}")
        self.host, self.port = match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # a clean stop
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _joined(cells: list, key: str, spec: str) -> str:
    return " / ".join(format(cell[key], spec) for cell in cells)


def markdown(results: dict) -> str:
    """The figures as two Markdown tables: in-process ``predict``, then served, one row per cell."""
    local = {row["events_per_request"]: row for row in results["in_process"]}
    modes = list(results["served"])
    lines = [f"{results['package']} ({results['backend']}), fastml-lab {results['fastml_lab']}, {results['cpus']} CPUs, "
             f"load average {results['load_average_before']} -> {results['load_average_after']}", "",
             "| events/request | in-process predict: calls/s | events/s | p50 ms | p99 ms |", "|---:|---:|---:|---:|---:|"]
    for row in local.values():
        lines.append(f"| {row['events_per_request']:,} | {row['calls_per_s']:,.0f} | {row['events_per_s']:,.0f} | "
                     f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    slash = " / ".join(modes)
    lines += ["", f"| clients | events/request | served events/s ({slash}) | requests/s ({slash}) | "
                  f"p50 ms ({slash}) | p99 ms ({slash}) | best served / in-process events/s |",
              "|---:|---:|---|---|---|---|---:|"]
    for clients in CLIENTS:
        for size in SIZES:
            cells = [next(c for c in results["served"][mode] if c["clients"] == clients
                          and c["events_per_request"] == size) for mode in modes]
            best = max(c["events_per_s"] for c in cells) / local[size]["events_per_s"]
            lines.append(f"| {clients} | {size:,} | {_joined(cells, 'events_per_s', ',.0f')} | "
                         f"{_joined(cells, 'requests_per_s', ',.0f')} | {_joined(cells, 'p50_ms', '.2f')} | "
                         f"{_joined(cells, 'p99_ms', '.1f')} | {best:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="jet_mlp", help="overlay package (default: %(default)s)")
    parser.add_argument("--backend", default="software", choices=("software", "board", "auto"))
    parser.add_argument("--seconds", type=float, default=2.0, help="longest run of one cell (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="most requests of one client in one cell (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="0.5 s and 300 requests per cell")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.requests = 0.5, 300

    from fastml_lab import __version__, overlay
    from fastml_lab.serve.tensors import input_spec, output_spec

    X = np.random.default_rng(0).normal(0.0, 3.0, size=(5000, 16)).astype(np.float32)
    with overlay.load(args.package, backend=args.backend) as ol:
        X = X[:, :ol.n_inputs]
        expected = ol.predict(X)
        spec = {"input": input_spec(ol.package).name, "output": output_spec(ol.package).name,
                "n_outputs": ol.n_outputs}
        model, backend = ol.name, ol.backend
        local = {size: in_process(ol, X, size, args.seconds, args.requests) for size in SIZES}

    results = {"package": model, "backend": backend, "fastml_lab": __version__, "cpus": os.cpu_count(),
               "load_average_before": load_average(), "in_process": list(local.values()), "served": {}}
    for mode, extra in MODES.items():
        server = ServerProcess(args.package, args.backend, extra)
        try:
            cells = []
            for clients in CLIENTS:
                for size in SIZES:
                    cell = load_test(server, model, spec, X, expected, clients, size, args.seconds, args.requests)
                    cell["events_per_s_vs_in_process"] = cell["events_per_s"] / local[size]["events_per_s"]
                    cell["p50_vs_in_process"] = cell["p50_ms"] / local[size]["p50_ms"]
                    cells.append(cell)
                    print(f"{mode:>11} {clients:>2} clients x {size:>4} events: {cell['requests_per_s']:8.0f} req/s "
                          f"{cell['events_per_s']:10.0f} events/s  p50 {cell['p50_ms']:7.2f} ms  "
                          f"p99 {cell['p99_ms']:7.2f} ms", flush=True)
            results["served"][mode] = cells
        finally:
            server.stop()
    results["load_average_after"] = load_average()

    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
