"""fastml_lab's hardware estimate and rule4ml's, side by side on the published synthesis points.

Usage (from the repository root, with the project's environment)::

    .venv/bin/python bench/bench_rule4ml.py [--venv PATH] [--skip-install]

rule4ml is never a dependency of the toolkit: this script makes its own virtual environment
(default ``~/.cache/fastml_lab/rule4ml-venv``), installs CPU-only torch and rule4ml into it with pip, and runs
rule4ml there on the architecture of each published point (rule4ml reads a Keras model, a
precision, a reuse factor, a strategy and one of its boards; it cannot see pruned or per-weight
quantized weights, so a pruned point is predicted as its dense model), with its default (v2 GNN)
estimators, for hls4ml 1.1.0 and tool version 2023.1 (Vitis points) or 2020.1 (Vivado HLS points),
the nearest it was trained on. Errors as in ``test_estimate.py``:
relative for DSP/LUT/FF, cycles for latency.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastml_lab.estimate.published import load_points, predict_point  # noqa: E402

#: The rule4ml board nearest each published part (rule4ml knows pynq-z2, zcu102, alveo-u200, alveo-u250).
RULE4ML_BOARDS = {"xcu250": "alveo-u250", "xcvu13p": "alveo-u250", "xc7z020": "pynq-z2", "xczu9eg": "zcu102",
                  "xczu3eg": "zcu102"}
PRECISION = {"jet_float": "ap_fixed<16, 6>", "jet_pruned75": "ap_fixed<16, 6>",
             "jet_qat6_pruned75": "ap_fixed<6, 1>", "dense_1x2_elu": "ap_fixed<16, 6>"}
ARCH = {"jet_float": [16, 64, 32, 32, 5], "jet_pruned75": [16, 64, 32, 32, 5],
        "jet_qat6_pruned75": [16, 64, 32, 32, 5], "dense_1x2_elu": [1, 2]}

CHILD = r'''
import json, sys, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from rule4ml.models.wrappers import MultiModelWrapper  # rule4ml 0.2.0 (README examples name MultiModelEstimator)
jobs = json.load(sys.stdin)
est = MultiModelWrapper()
est.load_default_models()  # the v2 GNN estimators: BRAM, DSP, FF, LUT, CYCLES, INTERVAL
out = []
for job in jobs:
    sizes = job["arch"]
    inputs = keras.Input((sizes[0],))
    x = inputs
    for n in sizes[1:-1]:
        x = keras.layers.Dense(n, activation="relu")(x)
    # rule4ml knows no ELU: the 1-input test model ends with a sigmoid, its nearest table activation
    x = keras.layers.Dense(sizes[-1], activation="softmax" if sizes[-1] > 2 else "sigmoid")(x)
    model = keras.Model(inputs, x, name=job["id"].replace("-", "_"))
    model.build((None, sizes[0]))
    config = {"model": {"precision": job["precision"], "reuse_factor": job["reuse"], "strategy": job["strategy"]},
              "board": job["board"]}
    df = est.predict([model], hls_configs=[config], hls4ml_versions=job["hls4ml"], vivado_versions=job["tool"])
    num = df.select_dtypes("number")
    out.append({"id": job["id"], "columns": list(num.columns), "rows": num.values.tolist()})
print("RESULT" + json.dumps(out))
'''


def make_venv(path: Path, skip_install: bool) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        venv.create(path, with_pip=True)
    if not skip_install:
        for args in (["torch==2.13.0"], ["rule4ml"]):
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)
    return python


def rule4ml_predictions(python: Path, points: list) -> dict:
    jobs = []
    for p in points:
        board = next(b for prefix, b in RULE4ML_BOARDS.items() if p["part"].startswith(prefix))
        jobs.append({"id": p["id"], "arch": ARCH[p["model"]], "precision": PRECISION[p["model"]],
                     "reuse": p["reuse"], "strategy": p["strategy"], "board": board, "hls4ml": "1.1.0",
                     "tool": "2023.1" if p["flavour"] == "vitis" else "2020.1"})
    run = subprocess.run([str(python), "-c", CHILD], input=json.dumps(jobs), capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"rule4ml failed:\n{run.stderr[-3000:]}")
    found = json.loads(run.stdout.split("RESULT", 1)[1])
    result = {}
    for item in found:
        values = dict(zip(item["columns"], np.mean(item["rows"], axis=0)))

        def pick(name):
            return None if name not in values else float(values[name])

        # rule4ml 0.2.0 gives counts ("DSP") and percentages of its board ("DSP (%)")
        result[item["id"]] = {"dsp": pick("DSP"), "lut": pick("LUT"), "ff": pick("FF"), "latency": pick("CYCLES"),
                              "ii": pick("INTERVAL")}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "fastml_lab" / "rule4ml-venv",
                        help="where rule4ml's own environment lives (default: %(default)s)")
    parser.add_argument("--skip-install", action="store_true")
    args = parser.parse_args(argv)
    # rule4ml's estimators take io_parallel MLPs; the points whose model this script can rebuild for it.
    points = [p for p in load_points() if p["kind"] == "C-synthesis estimate" and p["model"] in ARCH
              and p.get("io_type", "io_parallel") == "io_parallel"]
    ours = {p["id"]: predict_point(p) for p in points}
    try:
        theirs = rule4ml_predictions(make_venv(args.venv, args.skip_install), points)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"rule4ml could not be installed or run: {exc}")
        theirs = {}
    errors = {"fastml_lab": {}, "rule4ml": {}}
    print(f"{'point':<24}{'qty':<8}{'published':>10}{'fastml_lab':>12}{'rule4ml':>12}")
    for p in points:
        for q in ("latency", "dsp", "lut", "ff"):
            if p[q] is None:
                continue
            mine, other = ours[p["id"]][q], theirs.get(p["id"], {}).get(q)
            for name, value in (("fastml_lab", mine), ("rule4ml", other)):
                if value is not None:
                    err = value - p[q] if q == "latency" else (value - p[q]) / p[q]
                    errors[name].setdefault(q, []).append(abs(err))
            other_text = "-" if other is None else f"{other:,.0f}"
            print(f"{p['id']:<24}{q:<8}{p[q]:>10,}{mine:>12,.0f}{other_text:>12}")
    print("\nmedian |error| (relative for resources, cycles for latency)")
    for q in ("latency", "dsp", "lut", "ff"):
        cells = []
        for name in ("fastml_lab", "rule4ml"):
            values = errors[name].get(q)
            cells.append("-" if not values else (f"{np.median(values):.1f}" if q == "latency" else f"{np.median(values):.0%}"))
        print(f"{q:<8} fastml_lab {cells[0]:>8}   rule4ml {cells[1]:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
