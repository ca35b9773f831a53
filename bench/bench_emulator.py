"""Emulator vs hls4ml's C-simulation predict vs Keras float predict, side by side in one run.

The jet MLP (16-64-32-32-5, ReLU, softmax) exported at ap_fixed<16,6>, on 166,000 synthetic jets
(the size of the reference test set). Prints events/s for each and the ratios, and checks that the
emulator's outputs equal hls4ml's on every value, and the machine's load average: other jobs on the
cores slow the emulator's two-thread matrix products far more than hls4ml's one-thread loop, so
compare ratios of runs on a quiet machine. Where threadpoolctl is installed (scikit-learn brings it)
the emulator is also timed with its matrix products on one thread, which keeps its speed under load.
Run by hand: `make bench` or
`python bench/bench_emulator.py [--events N] [--hls4ml-events N]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def timed(fn, *args, repeat=1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def _one_blas_thread(fn):
    """``fn()`` with the matrix products on one thread (threadpoolctl, if installed), else None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    with threadpool_limits(limits=1, user_api="blas"):
        return fn()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=166_000)
    parser.add_argument("--hls4ml-events", type=int, default=20_000,
                        help="events for hls4ml's per-event predict loop (its rate is per event)")
    args = parser.parse_args(argv)

    import hls4ml

    from fastml_lab.data import load_jets
    from fastml_lab.hls import export
    from fastml_lab.train import build_model, train_model

    data = load_jets("synthetic", n_events=max(args.events * 5 + 10, 20000), progress=False)
    X = data.X_test[: args.events]
    model = build_model("64-32-32", seed=0)
    train_model(model, data, epochs=3, progress=False)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        project = export(model, Path(tmp) / "jet", precision="ap_fixed<16,6>")
        firmware = project.firmware()
        hls_model = hls4ml.converters.link_existing_project(str(project.hls_dir))
        hls_model.compile()

        t_emu, y_emu = timed(firmware.predict, X, repeat=3)
        t_emu_1 = _one_blas_thread(lambda: timed(firmware.predict, X, repeat=3)[0])
        n_h = min(args.hls4ml_events, len(X))
        t_hls, y_hls = timed(hls_model.predict, np.ascontiguousarray(X[:n_h], dtype=np.float64))
        t_keras, _ = timed(lambda x: model.predict(x, batch_size=4096, verbose=0), X, repeat=2)

    y_hls = np.asarray(y_hls).reshape(n_h, -1)
    mismatches = int((y_emu[:n_h] != y_hls).sum())
    rates = {"emulator": len(X) / t_emu, "hls4ml predict (C sim)": n_h / t_hls, "keras float": len(X) / t_keras}
    if t_emu_1:
        rates["emulator, 1 BLAS thread"] = len(X) / t_emu_1
    print(f"jet MLP 16-64-32-32-5, ap_fixed<16,6>, {len(X)} events ({n_h} through hls4ml predict)")
    for name, rate in rates.items():
        print(f"  {name:26s} {rate:14,.0f} events/s")
    print(f"  emulator / hls4ml predict  {rates['emulator'] / rates['hls4ml predict (C sim)']:8.0f}x")
    if t_emu_1:
        print(f"  same, 1 BLAS thread        {rates['emulator, 1 BLAS thread'] / rates['hls4ml predict (C sim)']:8.0f}x")
    print(f"  emulator / keras float     {rates['emulator'] / rates['keras float']:8.2f}x")
    print(f"  mismatches emulator vs hls4ml on {y_hls.size} values: {mismatches}")
    print(f"  load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
