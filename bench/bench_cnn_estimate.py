"""The cost model against the published convolutional and pooling synthesis points.

Usage (from the repository root, with the project's environment)::

    .venv/bin/python bench/bench_cnn_estimate.py [--json]

Prints, for every point of ``fastml_lab/estimate/published_points.csv`` whose model is one of the
rebuilt convolutional models (:data:`fastml_lab.estimate.published.CNN_MODELS`), the published and
predicted latency, II, DSP, LUT, FF and BRAM18, then the median and worst absolute error per
quantity for the fit and the held-out points of each I/O style (relative for resources, cycles for
latency and II). numpy only; runs in about a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastml_lab.estimate.published import CNN_MODELS, compare_points, load_points  # noqa: E402

QUANTITIES = ("latency", "ii", "dsp", "lut", "ff", "bram_18k")


def summary(rows) -> dict:
    """``{(split, io_type): {quantity: {n, median, worst, worst_id}}}`` of :func:`compare_points` rows."""
    found = {}
    for split in ("fit", "held-out"):
        for io in ("io_parallel", "io_stream"):
            for key in QUANTITIES:
                errors = [r for r in rows if r["split"] == split and r["io_type"] == io and r["quantity"] == key]
                if not errors:
                    continue
                worst = max(errors, key=lambda r: abs(r["error"]))
                found.setdefault(f"{split} {io}", {})[key] = {
                    "n": len(errors), "median": float(np.median([abs(r["error"]) for r in errors])),
                    "worst": float(worst["error"]), "worst_id": worst["id"]}
    return found


def _fmt(key, value) -> str:
    return f"{value:+.0f}" if key in ("latency", "ii") else f"{100 * value:+.0f}%"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows and the summary as JSON")
    args = parser.parse_args(argv)
    points = [p for p in load_points() if p["model"] in CNN_MODELS]
    rows = compare_points(points)
    table = summary(rows)
    if args.json:
        print(json.dumps({"rows": rows, "summary": table}, indent=1))
        return 0
    for point in points:
        mine = {r["quantity"]: r for r in rows if r["id"] == point["id"]}
        cells = " ".join(f"{k} {mine[k]['published']}->{mine[k]['predicted']} ({_fmt(k, mine[k]['error'])})"
                         for k in QUANTITIES if k in mine)
        print(f"{point['id']:34s} {point['split']:8s} {cells}")
    print()
    for group, quantities in table.items():
        print(group + ": " + "; ".join(
            f"{k} n={v['n']} median {abs(v['median']) if k in ('latency', 'ii') else 100 * v['median']:.0f}"
            f"{'' if k in ('latency', 'ii') else '%'} worst {_fmt(k, v['worst'])} ({v['worst_id']})"
            for k, v in quantities.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
