"""Sweep throughput on Dask: points per hour with 1 and with 2 local workers on the same space, in one run.

The space: small jet MLPs (1 epoch of QAT after 1 float epoch, 8,000 synthetic jets) at several bit
widths, and a few BDTs; each point trains, exports, runs the emulator on the test jets and takes the
hardware estimate. Each run uses a fresh LocalCluster (one thread per worker) and a fresh folder.
The workers import TensorFlow and the trees' libraries once, together, before the first point
(``warm-up``); the points are timed from then to the last record written, and the whole call
(cluster start and warm-up included) apart. Prints points/hour for both, the speed-up of the
points (target on 2 cores: at least 1.7x) and of the whole call, the mean single-worker cost of
one point by family, the load average (other jobs on the cores slow both runs; compare on a quiet
machine), and the wall time a 500-point study of such points would take on 1, 8 and 64 workers
(one core each), from that measured cost plus one warm-up.
Run by hand: `python bench/bench_sweep.py [--events N] [--bits 3 4 5 6 7 8] [--bdt-rounds 10 20 40 80]`
(``--bdt-rounds`` with no value: networks only).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def space(events: int, bits, bdt_rounds) -> dict:
    return {"data": {"source": "synthetic", "n_events": events}, "board": "pynq-z2",
            "models": [{"kind": "nn", "grid": {"sizes": ["16-8"], "bits": list(bits), "epochs": [1],
                                                "float_epochs": [1]}},
                       {"kind": "bdt", "grid": {"rounds": list(bdt_rounds), "depth": [3]}}][:2 if bdt_rounds else 1]}


def timed_sweep(space_dict: dict, workers: int) -> dict:
    from fastml_lab.sweep import run_sweep

    marks = {}
    called = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as out:
        summary = run_sweep(space_dict, out, workers=workers,
                            on_start=lambda s: marks.setdefault("start", time.perf_counter()),
                            on_point=lambda r, s, w: marks.__setitem__("end", time.perf_counter()))
    seconds = marks["end"] - marks["start"]
    by_family = {}
    for r in summary.records:
        by_family.setdefault(r["kind"], []).append(r["seconds"])
    return {"workers": workers, "points": summary.ok, "errors": summary.errors, "seconds": seconds,
            "whole_s": marks["end"] - called, "warm_up_s": summary.warm_up_seconds,
            "per_hour": 3600.0 * summary.ok / seconds, "busy_s": sum(map(sum, by_family.values())),
            "by_family": {k: sum(v) / len(v) for k, v in by_family.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8000)
    parser.add_argument("--bits", type=int, nargs="+", default=[3, 4, 5, 6, 7, 8])
    parser.add_argument("--bdt-rounds", type=int, nargs="*", default=[10, 20, 40, 80])
    parser.add_argument("--study", type=int, default=500, help="points of the study estimated on paper")
    args = parser.parse_args(argv)
    s = space(args.events, args.bits, args.bdt_rounds)
    n = len(args.bits) + len(args.bdt_rounds)
    print(f"space: {len(args.bits)} NN + {len(args.bdt_rounds)} BDT points, {args.events:,} synthetic jets; "
          f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores")
    runs = [timed_sweep(s, 1), timed_sweep(s, 2)]
    for r in runs:
        print(f"{r['workers']} worker{'s' if r['workers'] > 1 else ' '}: {r['points']}/{n} points in "
              f"{r['seconds']:6.1f} s = {r['per_hour']:7.0f} points/hour (task time {r['busy_s']:.1f} s; "
              f"per point " + ", ".join(f"{k} {v:.1f} s" for k, v in r["by_family"].items())
              + f"); whole call {r['whole_s']:.1f} s, warm-up {r['warm_up_s']:.1f} s")
    speedup = runs[1]["per_hour"] / runs[0]["per_hour"]
    print(f"speed-up with 2 workers: {speedup:.2f}x on the points (target >= 1.7x on 2 cores), "
          f"{runs[0]['whole_s'] / runs[1]['whole_s']:.2f}x on the whole call; "
          f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    per_point = runs[0]["seconds"] / max(1, runs[0]["points"])
    warm = runs[0]["warm_up_s"]
    print(f"one point on one worker: {per_point:.1f} s on average (this mix); a worker's warm-up {warm:.1f} s")
    for workers in (1, 8, 64):
        hours = (args.study * per_point / workers + warm) / 3600.0
        print(f"  a {args.study}-point study on {workers:2d} workers: about {hours * 60:6.1f} min "
              f"({hours:.2f} h, at this per-point cost and one core per worker)")


if __name__ == "__main__":
    main()
