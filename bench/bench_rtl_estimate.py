"""The RTL designs' own estimate against yosys' technology mapping, on random designs never used to fit it.

    python bench/bench_rtl_estimate.py                   # 50 networks (+ BDTs through VHDL where GHDL exists)
    python bench/bench_rtl_estimate.py --networks 10 --bdts 4 --jobs 2 --out rtl_vs_yosys.json

Each network is a random HGQ2 MLP (inputs, one to three hidden layers, widths, weight and activation
bits drawn at random; weights as initialised, quantizers calibrated on one batch), exported with
``export --backend rtl`` (da4ml: its estimate is LUTs from its adders and FFs from its pipeline
registers) and mapped with ``synth --tool yosys`` (``synth_xilinx -family xc7``, before place and
route). Each BDT is an xgboost model of random depth and size exported with ``--backend vhdl`` and
mapped the same way, beside the project's own estimate. Prints the median and worst relative error
(estimate / mapping - 1) for LUT and FF and writes every design's figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def network_design(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"kind": "network", "seed": seed, "inputs": int(rng.choice([8, 16])),
            "hidden": [int(w) for w in rng.choice([4, 8, 16, 32], size=int(rng.integers(1, 4)))],
            "outputs": int(rng.choice([2, 5])), "weight_bits": int(rng.integers(3, 9)),
            "activation_bits": int(rng.integers(4, 11))}


def bdt_design(seed: int) -> dict:
    rng = np.random.default_rng(10_000 + seed)
    return {"kind": "bdt", "seed": seed, "depth": int(rng.integers(2, 6)), "rounds": int(rng.integers(5, 41)),
            "classes": int(rng.choice([2, 3])), "bits": int(rng.choice([10, 12, 14, 16]))}


def _build_network(design: dict, folder: Path):
    import keras
    from hgq.layers import QDense
    from hgq.quantizer import QuantizerConfig

    from fastml_lab.rtl.network import export_rtl

    keras.utils.set_random_seed(design["seed"])
    w, a = design["weight_bits"], design["activation_bits"]

    def quantizers(signed):
        return {"kq_conf": QuantizerConfig("kbi", "weight", k0=1, b0=w - 1, i0=1),
                "iq_conf": QuantizerConfig("kbi", "datalane", k0=int(signed), b0=a - int(signed), i0=3)}

    layers, signed = [keras.Input((design["inputs"],))], True
    for width in design["hidden"]:
        layers.append(QDense(width, activation="relu", **quantizers(signed)))
        signed = False
    layers.append(QDense(design["outputs"], **quantizers(signed)))
    model = keras.Sequential(layers)
    model(np.random.default_rng(design["seed"]).normal(size=(512, design["inputs"])).astype("float32"), training=True)
    return export_rtl(model, folder / "prj")


def _build_bdt(design: dict, folder: Path):
    import xgboost as xgb

    from fastml_lab.bdt.vhdl import export_vhdl

    rng = np.random.default_rng(design["seed"])
    X = rng.normal(size=(3000, 8)).astype("float32")
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    if design["classes"] == 3:
        y = y + (X[:, 3] > 1)
    path = folder / "bdt.json"
    xgb.XGBClassifier(n_estimators=design["rounds"], max_depth=design["depth"], n_jobs=1).fit(X, y).save_model(path)
    return export_vhdl(path, folder / "prj", precision=f"ap_fixed<{design['bits']},6>")


def run_design(design: dict) -> dict:
    from fastml_lab.estimate import estimate
    from fastml_lab.rtl.yosys import map_project

    with tempfile.TemporaryDirectory(prefix="fastml-bench-rtl-") as tmp:
        start = time.perf_counter()
        project = (_build_network if design["kind"] == "network" else _build_bdt)(design, Path(tmp))
        exported = time.perf_counter()
        est = estimate(project)
        mapping = map_project(project)
        mapped = time.perf_counter()
    res = mapping["resources"]
    return {**design, "estimate": {"lut": est.resources["lut"], "ff": est.resources["ff"], "kind": est.kind},
            "mapping": {"lut": res["LUT"], "ff": res["FF"], "carry4": res.get("CARRY4"), "dsp": res.get("DSP")},
            "latency_cycles": project.timing["latency_cycles"],
            "export_s": round(exported - start, 2), "map_s": round(mapped - exported, 2)}


def summary(rows: list, kind: str) -> str:
    rows = [r for r in rows if r["kind"] == kind and r["mapping"]["lut"]]
    if not rows:
        return f"{kind}: no designs"
    lines = [f"{kind}s ({len(rows)} designs; estimate: {rows[0]['estimate']['kind']}):"]
    for key in ("lut", "ff"):
        err = np.array([r["estimate"][key] / r["mapping"][key] - 1 for r in rows if r["mapping"][key]])
        worst = err[np.argmax(np.abs(err))]
        lines.append(f"  {key.upper():3}: median error {np.median(err):+.0%}, median |error| {np.median(np.abs(err)):.0%}, "
                     f"worst {worst:+.0%}  (mapping {min(r['mapping'][key] for r in rows):,}-"
                     f"{max(r['mapping'][key] for r in rows):,})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", type=int, default=50)
    p.add_argument("--bdts", type=int, default=10)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("rtl_vs_yosys.json"))
    args = p.parse_args(argv)
    designs = [network_design(s) for s in range(args.networks)]
    if shutil.which("ghdl"):
        designs += [bdt_design(s) for s in range(args.bdts)]
    print(f"{len(designs)} designs, {args.jobs} at a time; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for k, row in enumerate(pool.map(run_design, designs), start=1):
            rows.append(row)
            print(f"[{k}/{len(designs)}] {row['kind']} seed {row['seed']}: estimate LUT {row['estimate']['lut']:,} "
                  f"FF {row['estimate']['ff']:,} | yosys LUT {row['mapping']['lut']:,} FF {row['mapping']['ff']:,} "
                  f"({row['map_s']:.0f} s)", flush=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(summary(rows, "network"))
    print(summary(rows, "bdt"))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
