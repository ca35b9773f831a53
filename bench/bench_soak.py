"""Soak: the software overlay serving 1,000,000 events in batches of random sizes, against one big call.

For each package (default: the shipped ``bitstreams/jet_mlp_pynq`` network and ``bitstreams/jet_bdt_pynq``
BDT), seeded random events are served in batches of random sizes between 1 and ``--max-batch``
(log-uniform by default, so single events and 100,000-event batches both occur; ``--sizes uniform``
draws them uniformly), each batch's outputs written in order into one array; then the same events go
through one call. Printed per package: events, batches, whether the two are identical
(``np.array_equal``), the resident set size (``/proc/self/statm``) when serving starts (inputs and
the output array already allocated), once half the events are served, when it ends and its largest
value between batches (growth from start to half-way is the allocator warming up to the largest
batch's temporaries; from half-way to the end it would be a leak), the
process's peak (``ru_maxrss``, which includes the one big call), and events/s of both. ``--passes``
(default 2) serves the same events again in the same process: the first pass's growth is the
allocator warming up, a second pass that grows would be a leak.
Run by hand: ``python bench/bench_soak.py [--events N] [--max-batch N] [--seed N] [--sizes log|uniform]
[--passes N] [--packages PATH ...]``. tests/test_board_faults.py runs a 50,000-event slice of :func:`soak`.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGES = (ROOT / "bitstreams" / "jet_mlp_pynq", ROOT / "bitstreams" / "jet_bdt_pynq")
MIB = 1 << 20


def rss_bytes() -> int:
    """The resident set size now (Linux: the second field of ``/proc/self/statm``, in pages)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best there is
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The process's largest resident set size so far (``ru_maxrss``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def batch_sizes(n_events: int, max_batch: int, rng, kind: str = "log") -> np.ndarray:
    """Random batch sizes in [1, max_batch] that add up to ``n_events`` (the last one cut short)."""
    sizes, total = [], 0
    while total < n_events:
        if kind == "log":
            size = int(np.exp(rng.uniform(0.0, np.log(max_batch + 1))))
        elif kind == "uniform":
            size = int(rng.integers(1, max_batch + 1))
        else:
            raise ValueError(f"kind must be 'log' or 'uniform'; got {kind!r}")
        size = max(1, min(size, max_batch, n_events - total))
        sizes.append(size)
        total += size
    return np.asarray(sizes, dtype=np.int64)


def soak(overlay, n_events: int = 1_000_000, max_batch: int = 100_000, seed: int = 0,
         sizes: str = "log") -> dict:
    """Serve ``n_events`` seeded events through ``overlay`` in random batches, then in one call."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 2.0, size=(n_events, overlay.n_inputs))
    batches = batch_sizes(n_events, max_batch, rng, sizes)
    out = np.full((n_events, overlay.n_outputs), np.nan)
    gc.collect()
    rss_start = rss_peak = rss_bytes()
    start = time.perf_counter()
    pos, rss_half = 0, None
    for size in batches:
        out[pos:pos + size] = overlay.predict(X[pos:pos + size])
        pos += size
        rss_peak = max(rss_peak, rss_bytes())
        if rss_half is None and 2 * pos >= n_events:
            rss_half = rss_bytes()
    served_s = time.perf_counter() - start
    gc.collect()
    rss_end = rss_bytes()
    start = time.perf_counter()
    whole = overlay.predict(X)
    one_call_s = time.perf_counter() - start
    return {
        "package": overlay.name,
        "events": int(n_events),
        "batches": int(batches.size),
        "smallest_batch": int(batches.min()),
        "largest_batch": int(batches.max()),
        "identical": bool(np.array_equal(out, whole)),
        "rss_start": rss_start,
        "rss_half": rss_half,
        "rss_end": rss_end,
        "rss_peak": rss_peak,
        "maxrss": peak_rss_bytes(),
        "served_s": served_s,
        "events_per_s": n_events / served_s,
        "one_call_events_per_s": n_events / one_call_s,
    }


def summary(r: dict) -> str:
    return (f"{r['package']}: {r['events']:,} events in {r['batches']} batches ({r['smallest_batch']:,}.."
            f"{r['largest_batch']:,}), identical to one call: {r['identical']}; RSS start "
            f"{r['rss_start'] / MIB:.1f} MiB, half-way {r['rss_half'] / MIB:.1f} MiB, end "
            f"{r['rss_end'] / MIB:.1f} MiB, peak while serving "
            f"{r['rss_peak'] / MIB:.1f} MiB (process peak {r['maxrss'] / MIB:.1f} MiB); "
            f"{r['events_per_s']:,.0f} events/s in batches, {r['one_call_events_per_s']:,.0f} in one call")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-batch", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", choices=("log", "uniform"), default="log")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--packages", nargs="+", default=[str(p) for p in DEFAULT_PACKAGES])
    args = parser.parse_args(argv)

    from fastml_lab.overlay import load

    failed = False
    for path in args.packages:
        with load(path, backend="software") as overlay:
            for n in range(1, args.passes + 1):
                result = soak(overlay, args.events, args.max_batch, args.seed, args.sizes)
                print(f"pass {n}, {summary(result)}", flush=True)
                failed |= not result["identical"]
    print(f"load average {os.getloadavg()[0]:.2f}; seed {args.seed}, sizes {args.sizes}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
