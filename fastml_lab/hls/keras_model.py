"""What the export needs to know about a Keras model: loading it, checking its layers, reading ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._deps import require
from ..exceptions import UnsupportedError
from ..train import load_model  # the one loader; here for the export's callers

#: Keras layer classes the export and the emulator support, with what they map to.
SUPPORTED_LAYERS = {
    "InputLayer": "input",
    "Dense": "dense (optionally with a supported activation)",
    "Activation": "relu, linear, softmax, sigmoid, tanh",
    "ReLU": "relu (no max_value, no threshold, negative_slope 0)",
    "LeakyReLU": "leaky ReLU",
    "Softmax": "softmax over the last axis",
    "BatchNormalization": "batch normalization (inference)",
    "Dropout": "removed at export (inference)",
    # HGQ2 quantization-aware layers
    "QDense": "HGQ2 quantized dense",
    "QBatchNormalization": "HGQ2 quantized batch normalization",
    "QSoftmax": "HGQ2 quantized softmax",
    "QUnaryFunctionLUT": "HGQ2 lookup-table activation",
    "Quantizer": "HGQ2 quantizer",
}
SUPPORTED_ACTIVATIONS = ("relu", "linear", "softmax", "sigmoid", "tanh")

__all__ = ["SUPPORTED_LAYERS", "SUPPORTED_ACTIVATIONS", "as_model", "check_supported", "has_quantizers",
           "hls_layer_names", "hls_layer_outputs", "load_model"]


def has_quantizers(model) -> bool:
    """True for an HGQ2 quantization-aware model: its quantizers fix every precision."""
    return any(type(layer).__module__.startswith("hgq.") for layer in model.layers)


def as_model(model_or_path):
    if isinstance(model_or_path, (str, Path)):
        return load_model(model_or_path)
    return model_or_path


def check_supported(model) -> None:
    """Raise UnsupportedError naming the first layer or option the toolchain cannot handle."""
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in SUPPORTED_LAYERS:
            raise UnsupportedError(
                f"Layer {layer.name!r} is a {cls}, which the HLS export does not support. "
                f"Supported layers: {', '.join(sorted(SUPPORTED_LAYERS))}."
            )
        act = getattr(layer, "activation", None)
        if cls in ("Dense", "Activation") and act is not None:
            name = getattr(act, "__name__", str(act))
            if name not in SUPPORTED_ACTIVATIONS:
                raise UnsupportedError(
                    f"Layer {layer.name!r} uses the activation {name!r}; supported activations: "
                    f"{', '.join(SUPPORTED_ACTIVATIONS)}."
                )
        if cls == "ReLU":
            cfg = layer.get_config()
            if cfg.get("max_value") is not None or cfg.get("threshold", 0) or cfg.get("negative_slope", 0):
                raise UnsupportedError(
                    f"Layer {layer.name!r}: ReLU with max_value, threshold or negative_slope is not "
                    "supported; use a plain ReLU or LeakyReLU."
                )
    shape = model.inputs[0].shape
    if len(shape) != 2:
        raise UnsupportedError(
            f"The model's input has shape {tuple(shape)}; the export supports flat inputs (batch, features)."
        )


def layer_outputs(model, X) -> dict:
    """Each layer's output on ``X`` (float), keyed by layer name, in model order."""
    keras = require("keras", "inspect Keras models")
    layers = [lay for lay in model.layers if type(lay).__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [lay.output for lay in layers])
    outs = probe.predict(np.asarray(X, dtype=np.float32), verbose=0, batch_size=4096)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {lay.name: np.asarray(o) for lay, o in zip(layers, outs)}


def fused_activation_name(layer) -> str | None:
    """hls4ml's name for the activation it splits off a Dense layer (``'<name>_<activation>'``).

    hls4ml applies the Dense layer's result type to the pre-activation sums and gives the split-off
    activation an entry of its own; None when the layer has no activation to split off.
    """
    if type(layer).__name__ != "Dense":
        return None
    act = getattr(layer.activation, "__name__", "linear")
    return None if act == "linear" else f"{layer.name}_{act}"


def hls_layer_names(model) -> list[str]:
    """The layer names hls4ml's configuration uses: Keras layers plus split-off activations."""
    names = []
    for layer in model.layers:
        names.append(layer.name)
        fused = fused_activation_name(layer)
        if fused:
            names.append(fused)
    return names


def hls_layer_outputs(model, X) -> dict:
    """Each hls4ml layer's float output on ``X``: a Dense layer with a fused activation appears
    twice, its pre-activation sums under its own name, the activated values under the split name."""
    keras = require("keras", "inspect Keras models")
    layers = [lay for lay in model.layers if type(lay).__name__ != "InputLayer"]
    fused = [lay for lay in layers if fused_activation_name(lay)]
    # one pass over X: every layer's output, plus the inputs of the fused-activation layers
    probe = keras.Model(model.inputs, [lay.output for lay in layers] + [lay.input for lay in fused])
    outs = probe.predict(np.asarray(X, dtype=np.float32), verbose=0, batch_size=4096)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    pre = {}
    for layer, x in zip(fused, outs[len(layers):]):
        weights = layer.get_weights()
        pre[layer.name] = np.asarray(x, np.float64) @ weights[0] + (weights[1] if len(weights) > 1 else 0.0)
    result = {}
    for layer, out in zip(layers, outs):
        if layer.name in pre:
            result[layer.name] = pre[layer.name]
            result[fused_activation_name(layer)] = np.asarray(out)
        else:
            result[layer.name] = np.asarray(out)
    return result


def dense_like_weights(model) -> dict:
    """``{layer name: (kernel, bias or None)}`` for Dense layers."""
    found = {}
    for layer in model.layers:
        if type(layer).__name__ in ("Dense", "QDense"):
            weights = layer.get_weights()
            found[layer.name] = (weights[0], weights[1] if len(weights) > 1 else None)
    return found
