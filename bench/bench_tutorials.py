"""Run every tutorial in sequence, as a student would, and report time and peak memory.

    python bench/bench_tutorials.py [--full] [--online] [--only 01,04] [--json out.json]
    /usr/bin/time -v python bench/bench_tutorials.py        # adds the kernel-inclusive max RSS

Each notebook runs in a fresh kernel of this Python (offline and with the quick sizes unless
told otherwise), in a temporary working folder. Memory is sampled every 0.1 s over this process
and all its descendants (the kernel, g++), as PSS: "peak" is the largest sum seen at one moment.
GNU time's "Maximum resident set size" is the largest single process instead.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from fastml_lab.tutorial.execute import notebook_paths, run_notebook

ROOT = Path(__file__).resolve().parents[1]

MIB = 2 ** 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full sizes (default: FASTML_LAB_QUICK=1)")
    parser.add_argument("--online", action="store_true", help="allow load_jets('auto') to go online")
    parser.add_argument("--only", default="", help="comma-separated numbers, e.g. 01,04")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    paths = notebook_paths(ROOT / "tutorials")
    if args.only:
        wanted = {n.strip().zfill(2) for n in args.only.split(",")}
        paths = [p for p in paths if p.name[:2] in wanted]
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastml_tutorials_") as work:
        for path in paths:
            result = run_notebook(path, work, quick=not args.full, offline=not args.online)
            slowest = max(result.cell_seconds, key=lambda item: item[1], default=(None, 0.0))
            at_peak = sorted(result.peak_processes.items(), key=lambda item: -item[1])
            rows.append({"notebook": result.name, "seconds": round(result.seconds, 1),
                         "peak_mib": round(result.peak_bytes / MIB),
                         "peak_kernel_mib": round(result.peak_kernel_bytes / MIB),
                         "at_peak_mib": {name: round(size / MIB) for name, size in at_peak},
                         "slowest_cell": slowest[0], "slowest_cell_s": round(slowest[1], 1)})
            row = rows[-1]
            print(f"{row['notebook']:22s} {row['seconds']:7.1f} s  peak {row['peak_mib']:5d} MiB "
                  f"(kernel {row['peak_kernel_mib']} MiB)  slowest cell #{row['slowest_cell']} "
                  f"{row['slowest_cell_s']:.1f} s", flush=True)
            print(f"{'':22s} at the peak: " + ", ".join(f"{name} {mib} MiB" for name, mib in
                                                       list(row["at_peak_mib"].items())[:4]), flush=True)
    total = time.perf_counter() - started
    summary = {"mode": "full" if args.full else "quick", "offline": not args.online,
               "total_seconds": round(total, 1),
               "peak_mib": max((r["peak_mib"] for r in rows), default=0),
               "python": platform.python_version(), "machine": platform.machine(), "notebooks": rows}
    print(f"{'all':22s} {total:7.1f} s  peak {summary['peak_mib']:5d} MiB")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
