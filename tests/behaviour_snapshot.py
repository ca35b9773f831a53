"""What the toolkit computes for fixed inputs, as one JSON-able dict: the exported projects' firmware
digests and records, the emulator's outputs and the hardware estimates, for the shipped packages and a
few models made here. ``tests/data/behaviour_snapshot.json`` holds the snapshot taken before the family
interface; ``tests/test_behaviour_snapshot.py`` checks that the code still computes it.

    python tests/behaviour_snapshot.py OUT.json   # write the snapshot of the code on the path
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD_KEYS = ("backend", "board", "part", "clock_period_ns", "reuse_factor", "strategy", "interface",
               "n_inputs", "n_outputs", "plan", "precision", "timing", "firmware_digest", "n_trees")
ESTIMATE_KEYS = ("totals", "after_implementation", "fits", "compared")


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()[:16]


def _inputs(n_inputs: int) -> np.ndarray:
    X = np.random.default_rng(11).normal(scale=2.0, size=(500, n_inputs))
    X[:20] *= 50
    return X


def _estimate(source, **options) -> dict:
    from fastml_lab.estimate import estimate

    figures = estimate(source, **options).to_dict()
    return {key: figures[key] for key in ESTIMATE_KEYS}


def _project(project) -> dict:
    firmware = project.firmware()
    return {"record": {k: project.meta.get(k) for k in RECORD_KEYS if k in project.meta},
            "outputs": _digest(firmware.predict(_inputs(firmware.n_inputs))),
            "estimate": _estimate(project.path)}


def _keras_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    # Named as a fresh process names them: Keras numbers unnamed layers by how many came before, and
    # the names are part of the firmware (and of its digest).
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(10, activation="relu", name="dense"),
                             keras.layers.Dense(8, activation="relu", name="dense_1"),
                             keras.layers.Dense(4, activation="softmax", name="dense_2")])


def _bdt_model(path: Path) -> Path:
    import xgboost as xgb

    rng = np.random.default_rng(4)
    X = rng.normal(size=(1500, 5)).astype("float32")
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    xgb.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1, random_state=0).fit(X, y).save_model(path)
    return path


def snapshot() -> dict:
    from fastml_lab.hls import export
    from fastml_lab.bdt import export_bdt
    from fastml_lab.overlay import load

    out = {"packages": {}, "models": {}}
    for name in ("jet_mlp", "jet_mlp_pynq", "jet_bdt_pynq"):
        with load(ROOT / "bitstreams" / name, backend="software") as overlay:
            out["packages"][name] = _digest(overlay.predict(_inputs(overlay.n_inputs)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = _keras_model(3)
        for label, options in (("nn_vitis", {"precision": "ap_fixed<12,4,AP_RND,AP_SAT>"}),
                               ("nn_pynq", {"precision": "ap_fixed<14,5>", "backend": "pynq-z2"}),
                               ("nn_resource", {"precision": "ap_fixed<16,6>", "backend": "pynq-z2",
                                                "strategy": "Resource", "reuse_factor": 2})):
            out["models"][label] = _project(export(model, tmp / label, **options))
        out["models"]["nn_keras_estimate"] = _estimate(model, board="pynq-z2")
        bdt = _bdt_model(tmp / "bdt.json")
        out["models"]["bdt_vitis"] = _project(export_bdt(bdt, tmp / "bdt_vitis", precision="ap_fixed<14,6>"))
        out["models"]["bdt_pynq"] = _project(export_bdt(bdt, tmp / "bdt_pynq", precision="ap_fixed<16,6>",
                                                        backend="pynq-z2"))
        out["models"]["bdt_file_estimate"] = _estimate(bdt)
    return json.loads(json.dumps(out))


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")
