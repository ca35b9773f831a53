"""Fit the coefficients of the conifer-VHDL BDT estimate (:mod:`fastml_lab.bdt.vhdl_estimate`) to yosys.

    python bench/fit_vhdl_bdt_cost.py --designs 30 --jobs 2 --cache /tmp/vhdl_bdt_cal   # build, map, fit
    python bench/fit_vhdl_bdt_cost.py --designs 30 --cache /tmp/vhdl_bdt_cal --fit-only  # refit the cache

Each calibration design is a random xgboost BDT (2 or 3 classes, depth 2-6, 5-60 rounds, learning
rate 0.1-0.5, 4-16 features of random data), exported with ``export_vhdl`` at ``ap_fixed<W,I>``
(W in 8..18, I in {4, 6}) and mapped with :func:`fastml_lab.rtl.yosys.map_project`. The designs use
seeds 1000 and up: ``bench/bench_rtl_estimate.py`` draws its BDTs from seeds 0..N, which stay held
out. The firmware (``firmware.json``/``.npz``) and the mapping of each design are cached, so a refit
needs no mapping.

The fit: :func:`~fastml_lab.bdt.vhdl_estimate.vhdl_bdt_features` counts the structure as yosys
keeps it (registers, shift registers, carry cells, ANDs and adder bits: exact or within a few
percent); the coefficients of the few terms that are not exact (``LUT_TERMS``, ``FF_TERMS``,
``CARRY4_TERMS`` "fitted": the comparisons' and the multiplexers' ideal LUTs, and one scale each
for the registers and the carry cells) are fitted by least squares on the relative error (each
design weighs the same, whatever its size). It prints them (the module's ``LUT_COEF``, ``FF_COEF``,
``CARRY4_COEF``), the calibration error (median and worst of estimate / mapping - 1, for LUT, FF
and CARRY4), the leave-one-out error (each design estimated with the coefficients fitted on the
others) and the error with the module's constants.

The 30 designs of the module's fit took 3 hours of mapping (1.5 hours on two processes; the
largest, 20-33 thousand LUTs, 15-25 minutes each).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: The first calibration seed: the benchmark's designs are seeds 0..N.
FIRST_SEED = 1000


def calibration_design(seed: int) -> dict:
    rng = np.random.default_rng([seed, 2024])
    return {"seed": seed, "depth": int(rng.integers(2, 7)), "rounds": int(rng.integers(5, 61)),
            "classes": int(rng.choice([2, 3])), "bits": int(rng.choice([8, 10, 12, 14, 16, 18])),
            "integer": int(rng.choice([4, 6])), "features": int(rng.choice([4, 8, 12, 16])),
            "learning_rate": float(rng.choice([0.1, 0.3, 0.5]))}


def _train(design: dict, path: Path) -> None:
    import xgboost as xgb

    rng = np.random.default_rng(design["seed"])
    n = design["features"]
    X = rng.normal(size=(3000, n)).astype("float32")
    w = rng.normal(size=n)
    signal = X @ w + X[:, 0] * X[:, 1 % n] - 0.5 * X[:, 2 % n] ** 2 + rng.normal(scale=0.5, size=len(X))
    y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, design["classes"] + 1)[1:-1]))
    xgb.XGBClassifier(n_estimators=design["rounds"], max_depth=design["depth"], learning_rate=design["learning_rate"],
                      n_jobs=1, random_state=design["seed"]).fit(X, y).save_model(path)


def build_and_map(design: dict, cache: Path, timeout_s: float) -> dict:
    """Export and map one design; cache its firmware and mapping under ``cache/seed<k>``. A design
    whose mapping runs past ``timeout_s`` is marked ``skipped`` (and left out of the fit)."""
    from fastml_lab.bdt.vhdl import export_vhdl
    from fastml_lab.exceptions import CompileError
    from fastml_lab.rtl.yosys import map_project

    folder = cache / f"seed{design['seed']}"
    done, skipped = folder / "mapping.json", folder / "skipped.json"
    for path in (done, skipped):
        if path.is_file():
            return json.loads(path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fastml-fit-vhdl-") as tmp:
        start = time.perf_counter()
        _train(design, Path(tmp) / "bdt.json")
        project = export_vhdl(Path(tmp) / "bdt.json", Path(tmp) / "prj",
                              precision=f"ap_fixed<{design['bits']},{design['integer']}>")
        project.firmware().save(folder)
        exported = time.perf_counter()
        try:
            mapping = map_project(project, timeout_s=timeout_s)
        except CompileError as exc:
            row = {**design, "skipped": f"not mapped within {timeout_s:.0f} s: {str(exc).splitlines()[0]}"}
            skipped.write_text(json.dumps(row, indent=1))
            return row
    row = {**design, "cells": mapping["cells"], "resources": mapping["resources"],
           "latency_cycles": project.timing["latency_cycles"], "export_s": round(exported - start, 2),
           "map_s": round(time.perf_counter() - exported, 2)}
    done.write_text(json.dumps(row, indent=1))
    return row


def load_rows(cache: Path, seeds) -> list:
    from fastml_lab.emulator import Firmware

    rows = []
    for seed in seeds:
        folder = cache / f"seed{seed}"
        if (folder / "mapping.json").is_file():
            row = json.loads((folder / "mapping.json").read_text())
            firmware = Firmware.load(folder)
            row["firmware"] = (firmware.description, firmware.arrays)
            rows.append(row)
    return rows


TARGETS = ("LUT", "FF", "CARRY4")


def fit(rows: list) -> dict:
    """Least squares on the relative error of LUT, FF and CARRY4, each design weighing the same:
    the coefficients of the module's fitted terms, its exact terms counted once."""
    from fastml_lab.bdt import vhdl_estimate as ve

    feats = [ve.vhdl_bdt_features(*row["firmware"]) for row in rows]
    terms = {"LUT": ve.LUT_TERMS, "FF": ve.FF_TERMS, "CARRY4": ve.CARRY4_TERMS}
    result = {}
    for target in TARGETS:
        exact = np.array([sum(f[name] for name in terms[target]["exact"]) for f in feats], dtype=float)
        X = np.array([[f[name] for name in terms[target]["fitted"]] for f in feats], dtype=float)
        y = np.array([row["resources"][target] for row in rows], dtype=float)
        weight = 1.0 / np.maximum(y, 1.0)
        coef, *_ = np.linalg.lstsq(X * weight[:, None], (y - exact) * weight, rcond=None)
        result[target] = dict(zip(terms[target]["fitted"], (round(float(c), 4) for c in coef)))
    return result


def report(rows: list, coefficients: dict | None = None) -> dict:
    """Median and worst relative error (estimate / mapping - 1) of LUT, FF and CARRY4."""
    from fastml_lab.bdt import vhdl_estimate as ve

    errors = {}
    for target in TARGETS:
        est = np.array([ve.vhdl_bdt_resources(*row["firmware"], coefficients=coefficients)[target] for row in rows])
        got = np.array([row["resources"][target] for row in rows], dtype=float)
        err = est / np.maximum(got, 1) - 1
        worst = err[np.argmax(np.abs(err))]
        errors[target] = {"median": float(np.median(err)), "median_abs": float(np.median(np.abs(err))),
                          "worst": float(worst)}
        print(f"  {target:6}: median error {np.median(err):+.1%}, median |error| {np.median(np.abs(err)):.1%}, "
              f"worst {worst:+.1%}  (mapping {int(got.min()):,}-{int(got.max()):,})")
    return errors


def leave_one_out(rows: list) -> None:
    """Each design estimated with the coefficients fitted on the others."""
    from fastml_lab.bdt.vhdl_estimate import vhdl_bdt_resources

    errors = {target: [] for target in TARGETS}
    for i, row in enumerate(rows):
        found = vhdl_bdt_resources(*row["firmware"], coefficients=fit(rows[:i] + rows[i + 1:]))
        for target in TARGETS:
            errors[target].append(found[target] / max(row["resources"][target], 1) - 1)
    for target, err in errors.items():
        err = np.array(err)
        print(f"  {target:6}: median |error| {np.median(np.abs(err)):.1%}, worst {err[np.argmax(np.abs(err))]:+.1%}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--designs", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2, help="designs mapped at a time (at most 2 on a shared machine)")
    p.add_argument("--cache", type=Path, default=Path("vhdl_bdt_calibration"))
    p.add_argument("--fit-only", action="store_true", help="fit the designs already in the cache")
    p.add_argument("--map-timeout", type=float, default=2400.0, help="seconds one mapping may take")
    args = p.parse_args(argv)
    seeds = range(FIRST_SEED, FIRST_SEED + args.designs)
    if not args.fit_only:
        designs = [calibration_design(s) for s in seeds]
        print(f"{len(designs)} designs, {args.jobs} at a time; load average {os.getloadavg()[0]:.1f}", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(build_and_map, d, args.cache, args.map_timeout) for d in designs]
            for k, fut in enumerate(futures, start=1):
                row = fut.result()
                if "skipped" in row:
                    print(f"[{k}/{len(designs)}] seed {row['seed']}: {row['skipped']}", flush=True)
                    continue
                res = row["resources"]
                print(f"[{k}/{len(designs)}] seed {row['seed']} depth {row['depth']} rounds {row['rounds']} "
                      f"classes {row['classes']} W {row['bits']}: LUT {res['LUT']:,} FF {res['FF']:,} "
                      f"CARRY4 {res['CARRY4']:,} ({row['map_s']:.0f} s)", flush=True)
    rows = load_rows(args.cache, seeds)
    print(f"fit on {len(rows)} designs (seeds {FIRST_SEED}..{FIRST_SEED + args.designs - 1})")
    coefficients = fit(rows)
    for target, coef in coefficients.items():
        print(f"{target}: " + ", ".join(f"{k} = {v:.4f}" for k, v in coef.items()))
    print("calibration error with these coefficients:")
    report(rows, coefficients)
    print("leave-one-out error (each design with the coefficients fitted on the others):")
    leave_one_out(rows)
    print("calibration error with the module's constants:")
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
