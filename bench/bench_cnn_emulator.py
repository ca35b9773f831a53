"""The CNN emulator against hls4ml's own `predict` on the same firmware: events/s and equality.

    python bench/bench_cnn_emulator.py [--events 2000] [--json out.json]

For a few convolutional networks under both I/O styles, `fastml_lab.hls.export` writes the project
and hls4ml converts the same model with the same configuration (`hls4ml_config`); hls4ml compiles its
C++ and `predict`s (one call of the compiled library per event, from Python), the project's emulator
(`Firmware.predict`, vectorised numpy) runs the same events, and the two are compared value for value.
Inputs: standard normal, a tenth of the events scaled 30 times (far outside the range).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

PRECISION = "ap_fixed<12,5,AP_RND,AP_SAT>"


def models():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(11)
    return {
        "conv2d 8x8x1 (the contract's)": keras.Sequential([
            keras.Input((8, 8, 1)), L.Conv2D(2, 3, activation="relu", name="c1"), L.MaxPooling2D(2, name="p1"),
            L.Flatten(name="f"), L.Dense(3, name="d")]),
        "conv2d 12x12x2, two convs": keras.Sequential([
            keras.Input((12, 12, 2)), L.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
            L.AveragePooling2D(2, name="p1"), L.Conv2D(4, 3, activation="relu", name="c2"),
            L.Flatten(name="f"), L.Dense(5, name="d")]),
        "conv1d 32x3": keras.Sequential([
            keras.Input((32, 3)), L.Conv1D(4, 5, activation="relu", name="c1"), L.MaxPooling1D(2, name="p1"),
            L.Conv1D(4, 3, activation="relu", name="c2"), L.GlobalAveragePooling1D(name="g"), L.Dense(3, name="d")]),
    }


def hls4ml_predictor(model, config, io_type: str, folder: Path):
    import contextlib
    import io

    import hls4ml

    with contextlib.redirect_stdout(io.StringIO()):
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, hls_config=config, output_dir=str(folder), io_type=io_type, backend="Vitis",
            part="xc7z020clg400-1", project_name="myproject")
        hls_model.compile()
    return hls_model.predict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from fastml_lab.hls import export, hls4ml_config

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models().items():
            rng = np.random.default_rng(0)
            X = rng.normal(size=(args.events, *model.input_shape[1:])).astype(np.float32)
            X[: args.events // 10] *= 30
            for io in ("parallel", "stream"):
                folder = Path(tmp) / f"{len(rows)}"
                project = export(model, folder / "prj", precision=PRECISION, io_type=io)
                config = hls4ml_config(model, precision=PRECISION, io_type=io)
                predict = hls4ml_predictor(model, config, f"io_{io}", folder / "hls4ml")
                firmware = project.firmware()
                firmware.predict(X[:10])
                start = time.perf_counter()
                emulated = firmware.predict(X)
                emulator_s = time.perf_counter() - start
                start = time.perf_counter()
                reference = np.asarray(predict(np.ascontiguousarray(X)), dtype=np.float64).reshape(emulated.shape)
                hls4ml_s = time.perf_counter() - start
                row = {"model": name, "io": io, "events": args.events,
                       "emulator_events_per_s": args.events / emulator_s,
                       "hls4ml_predict_events_per_s": args.events / hls4ml_s,
                       "ratio": hls4ml_s / emulator_s,
                       "values_differing": int(np.sum(emulated != reference)), "values": int(emulated.size)}
                rows.append(row)
                print(f"{name:32s} io_{io:8s} emulator {row['emulator_events_per_s']:>10,.0f} ev/s   hls4ml predict "
                      f"{row['hls4ml_predict_events_per_s']:>9,.0f} ev/s   {row['ratio']:5.1f}x   "
                      f"{row['values_differing']} of {row['values']:,} values differ", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(row["values_differing"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
