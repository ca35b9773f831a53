"""The neural network's part in sweeps: a float MLP, its quantization-aware training, its hls4ml export.

Keras, HGQ2 and hls4ml are imported when a point trains, not when a space is read.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ..families import NETWORK
from .params import Param, SweepSupport, choice, number, whole


def _model_text(value):
    from ..train import parse_spec

    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    try:
        return parse_spec(value).to_string()
    except ConfigError:
        return None


_model_text.valid = "hidden layer widths as text, e.g. \"16-8\" (see fastml_lab.train.parse_spec)"


def _bits(value):
    from ..quantize.bits import parse_bits

    if isinstance(value, bool):
        return None
    try:
        parsed = parse_bits(str(value))
    except ConfigError:
        return None
    widths = [parsed] if isinstance(parsed, int) else list(parsed.values())
    return str(value).replace(" ", "") if all(2 <= w <= 24 for w in widths) else None


_bits.valid = "widths from 2 to 24: N (weights and activations), or \"W,A\" or \"W,A,I\" as text"

#: The neural network's parameters: the float model, its quantization-aware training, its export.
NN_PARAMS = {
    "sizes": Param("16-8", _model_text, "hidden layer widths, e.g. \"16-8\""),
    "bits": Param(6, _bits, "QAT widths: N, \"W,A\" (weights, activations) or \"W,A,I\" (and inputs)"),
    "prune": Param(0.0, number(0.0, 0.95), "fraction of weights pruned to zero", numeric=True, nullable=True,
                   zero_is_null=True),
    "beta": Param(None, number(0.0, 1.0), "HGQ's EBOPs strength (null: uniform QAT)", numeric=True,
                  nullable=True),
    "reuse": Param(1, whole(1, 4096), "reuse factor of the export", numeric=True),
    "strategy": Param("latency", choice("latency", "resource"), "hls4ml strategy"),
    "epochs": Param(2, whole(1, 10_000), "epochs of quantization-aware training", numeric=True),
    "float_epochs": Param(None, whole(0, 10_000), "epochs of float training first (null: as many as epochs)",
                          numeric=True, nullable=True),
    "learning_rate": Param(3e-3, number(0.0, 1.0, low_open=True), "Adam's learning rate", numeric=True),
    "batch_size": Param(512, whole(1, 1_000_000), "events per batch", numeric=True),
}


class NetworkSweep(SweepSupport):
    """A point trains a float MLP (``float_epochs``), then quantization-aware (``bits``, ``beta``,
    ``prune``), and exports with ``reuse`` and ``strategy``; its model is the quantized Keras model."""

    family_name = NETWORK
    params = NN_PARAMS
    libraries = ("keras", "hgq", "hls4ml")

    def label(self, params: dict) -> str:
        extra = "".join(f" {k}={params[k]}" for k in ("prune", "beta") if params.get(k))
        return f"{self.family.name} {params['sizes']} bits={params['bits']}{extra} reuse={params['reuse']}"

    def train(self, point, ds):
        from ..quantize import quantize
        from ..quantize.bits import parse_bits
        from ..train import build_model, train_model

        p = point.params
        model = build_model(p["sizes"], seed=point.seed)
        float_epochs = p["epochs"] if p["float_epochs"] is None else p["float_epochs"]
        if float_epochs:
            train_model(model, ds, epochs=float_epochs, batch_size=p["batch_size"],
                        learning_rate=p["learning_rate"], patience=None, progress=False, seed=point.seed)
        result = quantize(model, ds, bits=parse_bits(str(p["bits"])), hgq_beta=p["beta"], prune=p["prune"],
                          epochs=p["epochs"], batch_size=p["batch_size"], learning_rate=p["learning_rate"],
                          seed=point.seed, progress=False)
        return result.model, {"float_model": model, "ebops": int(result.ebops),
                              "sparsity": float(np.mean(list(result.sparsity.values()))) if result.sparsity else 0.0}

    def export_options(self, params: dict) -> dict:
        return {"reuse": params["reuse"], "strategy": params["strategy"]}

    def mismatches(self, model, ds, emulated):
        """The quantization-aware model computes what its firmware computes."""
        from ..compare import count_mismatches

        keras_out = model.predict(ds.X_test, batch_size=4096, verbose=0)
        return count_mismatches(keras_out, emulated).mismatches, "quantized Keras model"
