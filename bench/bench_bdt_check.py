"""Export + check of a large BDT from nothing cached, timed as a user runs it (two commands).

Trains an xgboost BDT on synthetic jets (default: 50 rounds of depth 4, 5 classes = 250 trees),
saves it, then times ``fastml-lab export MODEL --precision 'ap_fixed<16,6>' --out PRJ`` and
``fastml-lab check PRJ --input X.npy`` in fresh processes (the C simulation's g++ compile included:
the project is new, so nothing is cached), and prints each step, the total and the check's verdict.
The target on 2 cores: at most 45 s in all. The load average is printed: compare on a quiet machine.
Run by hand: `python bench/bench_bdt_check.py [--rounds 50] [--depth 4] [--events 10000] [--seed 0]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "fastml_lab.cli"]


def timed(cmd, cwd) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    print(f"  {seconds:6.1f} s  {' '.join(map(str, cmd[3:]))}")
    if proc.stdout.strip():
        print("          " + proc.stdout.strip().splitlines()[-1])
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--events", type=int, default=10_000, help="events checked")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jets and the trees")
    args = parser.parse_args(argv)

    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.data import load_jets

    data = load_jets("synthetic", n_events=60_000, seed=args.seed, progress=False)
    model = train_bdt(data, rounds=args.rounds, depth=args.depth, early_stopping=None, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_bdt_check_") as tmp:
        tmp = Path(tmp)
        model.save(tmp / "bdt.json")
        np.save(tmp / "x.npy", data.X_test[: args.events])
        print(f"xgboost BDT, {args.rounds} rounds of depth {args.depth}, {model.n_classes} classes, seed "
              f"{args.seed}; load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores")
        total = timed([*CLI, "export", "bdt.json", "--precision", "ap_fixed<16,6>", "--out", "prj"], tmp)
        total += timed([*CLI, "check", "prj", "--input", "x.npy"], tmp)
        units = len(list((tmp / "prj" / "conifer" / "csim_units").glob("trees_*.cpp")))
        print(f"export + check: {total:.1f} s in all ({units} units of trees; target <= 45 s on 2 cores); "
              f"load average after {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
