"""BDT emulator vs conifer's compiled C++ backend vs conifer's Python backend, side by side in one run.

One xgboost BDT trained on synthetic jets (5 classes, 60 rounds of depth 3: 300 trees by default),
exported at ap_fixed<16,6>, run on 100,000 events by

* the emulator (``project.firmware().predict``: numpy, bit-exact with the HLS C++),
* conifer's ``cpp`` backend (its own C++ with ap_fixed, compiled with pybind11: ``decision_function``),
* conifer's ``py`` backend (float arithmetic in numpy: no fixed point),
* the C simulation of the exported HLS project (``hls.run_csim``: conifer's HLS C++, g++),

and prints events/s, the ratios, and the values each differs from the C simulation on (0 expected
for the emulator; conifer's cpp backend sums the trees one after the other where the HLS code uses
an adder tree, which differs only once a score saturates; the py backend is float). Compile times
are printed apart. The machine's load average is printed too: compare ratios of quiet runs.
Run by hand: `python bench/bench_bdt.py [--events N] [--rounds N] [--depth N]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from bench_emulator import timed  # the same best-of-N timer as the emulator benchmark (this folder)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--precision", default="ap_fixed<16,6>")
    args = parser.parse_args(argv)

    import logging

    from fastml_lab.bdt.export import conifer_environment, conifer_model, export_bdt
    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.compare import count_mismatches
    from fastml_lab.data import load_jets
    from fastml_lab.hls.csim import compile_csim, run_csim

    logging.getLogger("conifer").setLevel(logging.ERROR)
    data = load_jets("synthetic", n_events=max(args.events + 20_000, 60_000), progress=False)
    model = train_bdt(data, rounds=args.rounds, depth=args.depth, early_stopping=None)
    X = np.concatenate([data.X_test, data.X_train])[: args.events].astype(np.float64)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        project = export_bdt(model, Path(tmp) / "bdt", precision=args.precision)
        firmware = project.firmware()
        t_compile_csim, _ = timed(compile_csim, project)
        cpp = conifer_model(project, Path(tmp) / "cpp", "cpp")
        with conifer_environment():
            t_compile_cpp, _ = timed(cpp.compile)
        py = conifer_model(project, Path(tmp) / "py", "py")

        t_emu, y_emu = timed(firmware.predict, X, repeat=3)
        t_cpp, y_cpp = timed(cpp.decision_function, X)
        t_py, y_py = timed(py.decision_function, X)
        t_csim, y_csim = timed(run_csim, project, X)

    shape = y_emu.shape
    y_cpp, y_py = (np.asarray(y, dtype=np.float64).reshape(shape) for y in (y_cpp, y_py))
    rates = {"emulator": len(X) / t_emu, "conifer cpp": len(X) / t_cpp, "conifer py": len(X) / t_py,
             "C simulation": len(X) / t_csim}
    differs = {"emulator": count_mismatches(y_csim, y_emu).mismatches,
               "conifer cpp": count_mismatches(y_csim, y_cpp).mismatches,
               "conifer py (float)": count_mismatches(y_csim, y_py).mismatches}
    between = count_mismatches(y_cpp, y_py).mismatches
    print(f"xgboost BDT, {firmware.n_inputs} features, {model.n_classes} classes, {args.rounds} rounds of depth "
          f"{args.depth} ({project.meta['n_trees']} trees), {args.precision}, {len(X):,} events")
    for name, rate in rates.items():
        print(f"  {name:24s} {rate:14,.0f} events/s")
    for other in ("conifer cpp", "conifer py", "C simulation"):
        print(f"  emulator / {other:13s} {rates['emulator'] / rates[other]:10.2f}x")
    print(f"  compile: C simulation {t_compile_csim:.1f} s, conifer cpp {t_compile_cpp:.1f} s")
    for name, count in differs.items():
        print(f"  values differing from the C simulation, {name:19s} {count:>9,} of {y_csim.size:,}")
    print(f"  values differing, conifer cpp vs py            {between:>9,} of {y_csim.size:,}")
    print(f"  largest |conifer py - C simulation|: {np.abs(y_py - y_csim).max():.3g}")
    print(f"  load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    return 0 if differs["emulator"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
