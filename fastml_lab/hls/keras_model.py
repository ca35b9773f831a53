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
    "Conv1D": "1-D convolution (valid or same padding, any stride, channels last, no dilation)",
    "Conv2D": "2-D convolution (valid or same padding, any stride, channels last, no dilation)",
    "MaxPooling1D": "1-D max pooling", "MaxPooling2D": "2-D max pooling",
    "AveragePooling1D": "1-D average pooling", "AveragePooling2D": "2-D average pooling",
    "GlobalAveragePooling1D": "global average pooling", "GlobalAveragePooling2D": "global average pooling",
    "GlobalMaxPooling1D": "global max pooling", "GlobalMaxPooling2D": "global max pooling",
    "Flatten": "flatten (the values in row-major order: no logic)",
    # HGQ2 quantization-aware layers
    "QDense": "HGQ2 quantized dense",
    "QConv1D": "HGQ2 quantized 1-D convolution", "QConv2D": "HGQ2 quantized 2-D convolution",
    "QMaxPooling1D": "HGQ2 1-D max pooling", "QMaxPooling2D": "HGQ2 2-D max pooling",
    "QAveragePooling1D": "HGQ2 1-D average pooling", "QAveragePooling2D": "HGQ2 2-D average pooling",
    "QGlobalAveragePooling1D": "HGQ2 global average pooling", "QGlobalAveragePooling2D": "HGQ2 global average pooling",
    "QGlobalMaxPooling1D": "HGQ2 global max pooling", "QGlobalMaxPooling2D": "HGQ2 global max pooling",
    "QBatchNormalization": "HGQ2 quantized batch normalization",
    "QSoftmax": "HGQ2 quantized softmax",
    "QUnaryFunctionLUT": "HGQ2 lookup-table activation",
    "Quantizer": "HGQ2 quantizer",
}
SUPPORTED_ACTIVATIONS = ("relu", "linear", "softmax", "sigmoid", "tanh")
#: I/O styles of the export: hls4ml's io_parallel (every value a wire) and io_stream (a FIFO per layer).
IO_TYPES = {"parallel": "io_parallel", "stream": "io_stream"}
#: Layer classes that compute over sliding windows or whole images (their input is an image or sequence).
#: Each Keras class with its HGQ2 twin (``Q`` + the name).
CONV_LAYERS = tuple(q + cls for q in ("", "Q") for cls in ("Conv1D", "Conv2D"))
POOLING_LAYERS = tuple(q + cls for q in ("", "Q")
                       for cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"))
GLOBAL_POOLING_LAYERS = tuple(q + cls for q in ("", "Q") for cls in (
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"))
#: Vivado and Vitis HLS refuse to unroll a loop of more than this many iterations: hls4ml's
#: Latency strategy unrolls every product of a layer (dense: n_in x n_out; a convolution: one
#: window's products, kernel x channels x filters, per output pixel computed at once).
UNROLL_LIMIT = 4096

__all__ = ["SUPPORTED_LAYERS", "SUPPORTED_ACTIVATIONS", "IO_TYPES", "UNROLL_LIMIT", "as_model", "check_io_type",
           "check_supported", "check_unroll", "has_quantizers", "hls_layer_names", "hls_layer_outputs",
           "input_shape", "load_model"]


def has_quantizers(model) -> bool:
    """True for an HGQ2 quantization-aware model: its quantizers fix every precision."""
    return any(type(layer).__module__.startswith("hgq.") for layer in model.layers)


def as_model(model_or_path):
    if isinstance(model_or_path, (str, Path)):
        return load_model(model_or_path)
    return model_or_path


def check_io_type(value) -> str:
    """hls4ml's name for an I/O style given as ``parallel``/``stream`` (or hls4ml's own name)."""
    from ..exceptions import ConfigError

    text = str(value).lower()
    text = text[3:] if text.startswith("io_") else text
    if text not in IO_TYPES:
        raise ConfigError(f"Unknown I/O style {value!r}; valid: {', '.join(IO_TYPES)} (hls4ml's "
                          f"{' and '.join(IO_TYPES.values())}).")
    return IO_TYPES[text]


def input_shape(model) -> tuple:
    """One event's shape (the model's input without the batch axis): ``(n,)``, ``(L, C)`` or ``(H, W, C)``."""
    return tuple(int(d) for d in model.inputs[0].shape[1:])


def _tuple(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def check_supported(model, io_type: str = "io_parallel") -> None:
    """Raise UnsupportedError naming the first layer or option the toolchain cannot handle
    (with ``io_type``: also what hls4ml's io_stream kernels refuse)."""
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in SUPPORTED_LAYERS:
            raise UnsupportedError(
                f"Layer {layer.name!r} is a {cls}, which the HLS export does not support. "
                f"Supported layers: {', '.join(sorted(SUPPORTED_LAYERS))}."
            )
        act = getattr(layer, "activation", None)
        if cls in ("Dense", "Activation", *CONV_LAYERS) and act is not None:
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
        _check_window_layer(layer, cls, io_type)
        if cls in ("Dense", "QDense") and len(layer.input.shape) > 2:
            raise UnsupportedError(
                f"Layer {layer.name!r} is a {cls} applied to a tensor of shape {tuple(layer.input.shape)}; the "
                "export takes Dense layers on flat inputs: put a Flatten or a global pooling layer before it."
            )
    if io_type == "io_stream" and has_quantizers(model):
        raise UnsupportedError(
            "This model is quantization-aware (HGQ2): hls4ml 1.3 writes its per-value quantizers only for "
            "io_parallel. Export it with --io parallel."
        )
    shape = model.inputs[0].shape
    if not 2 <= len(shape) <= 4:
        raise UnsupportedError(
            f"The model's input has shape {tuple(shape)}; the export supports flat inputs (batch, features), "
            "sequences (batch, length, channels) and images (batch, height, width, channels)."
        )
    if len(shape) > 2 and not any(type(layer).__name__ in (*CONV_LAYERS, *POOLING_LAYERS, *GLOBAL_POOLING_LAYERS,
                                                           "Flatten") for layer in model.layers):
        raise UnsupportedError(
            f"The model's input has shape {tuple(shape)} but no convolution, pooling or Flatten layer reads it; "
            "the export takes multi-dimensional inputs into Conv1D/Conv2D, pooling or Flatten layers."
        )


def _check_window_layer(layer, cls: str, io_type: str) -> None:
    """Options of convolution and pooling layers that hls4ml (or its io_stream kernels) does not take."""
    if cls not in (*CONV_LAYERS, *POOLING_LAYERS, *GLOBAL_POOLING_LAYERS):
        return
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedError(f"Layer {layer.name!r} ({cls}) uses data_format={cfg['data_format']!r}; the export "
                               "takes channels_last (the Keras default).")
    if cls in CONV_LAYERS:
        dims = 1 if "1D" in cls else 2
        if any(d != 1 for d in _tuple(cfg.get("dilation_rate", 1), dims)):
            raise UnsupportedError(f"Layer {layer.name!r} ({cls}) has dilation_rate {cfg['dilation_rate']}; the "
                                   "export takes dilation_rate 1.")
        if int(cfg.get("groups", 1)) != 1:
            raise UnsupportedError(f"Layer {layer.name!r} ({cls}) has groups={cfg['groups']}; the export takes "
                                   "groups=1.")
        if cfg.get("padding") not in ("valid", "same"):
            raise UnsupportedError(f"Layer {layer.name!r} ({cls}) has padding={cfg.get('padding')!r}; the export "
                                   "takes 'valid' and 'same'.")
    if cls in POOLING_LAYERS:
        dims = 1 if "1D" in cls else 2
        pool = _tuple(cfg["pool_size"], dims)
        strides = _tuple(cfg.get("strides") or cfg["pool_size"], dims)
        if io_type == "io_stream" and (pool != strides or cfg.get("padding", "valid") != "valid"):
            raise UnsupportedError(
                f"Layer {layer.name!r} ({cls}, pool_size {pool}, strides {strides}, padding "
                f"{cfg.get('padding')!r}): hls4ml's io_stream pooling takes windows that do not overlap and no "
                "padding (strides equal to pool_size, padding='valid'). Change the layer or export with "
                "--io parallel."
            )


def check_unroll(model, strategy: str, io_type: str) -> None:
    """Refuse a Latency-strategy layer whose unrolled products exceed :data:`UNROLL_LIMIT`.

    hls4ml's Latency strategy unrolls all of a layer's multiplications into one loop; Vivado and
    Vitis HLS stop at 4096 iterations. A dense layer unrolls ``n_in x n_out`` products; a
    convolution ``kernel x channels x filters`` per output pixel (in io_parallel, all of them in
    one pipeline step). The Resource strategy or a smaller layer avoids it.
    """
    if strategy != "Latency":
        return
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("Dense", "QDense"):
            products = int(layer.input.shape[-1]) * int(layer.units)
            what = f"{layer.input.shape[-1]} inputs x {layer.units} outputs"
        elif cls in CONV_LAYERS:
            kernel = 1
            for k in _tuple(layer.kernel_size, 1 if "1D" in cls else 2):
                kernel *= int(k)
            products = kernel * int(layer.input.shape[-1]) * int(layer.filters)
            what = f"kernel {layer.kernel_size} x {layer.input.shape[-1]} channels x {layer.filters} filters"
        else:
            continue
        if products > UNROLL_LIMIT:
            raise UnsupportedError(
                f"Layer {layer.name!r} ({cls}) has {products:,} products ({what}); hls4ml's Latency strategy "
                f"unrolls them all and the HLS tools refuse to unroll more than {UNROLL_LIMIT:,}. Export with "
                "--strategy Resource (and a reuse factor), or make the layer smaller."
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
    """hls4ml's name for the activation it splits off a Dense or convolution layer (``'<name>_<activation>'``).

    hls4ml applies the Dense layer's result type to the pre-activation sums and gives the split-off
    activation an entry of its own; None when the layer has no activation to split off.
    """
    if type(layer).__name__ not in ("Dense", "Conv1D", "Conv2D"):
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
        if type(layer).__name__ == "Dense":
            pre[layer.name] = np.asarray(x, np.float64) @ weights[0] + (weights[1] if len(weights) > 1 else 0.0)
        else:
            sums = keras.ops.convert_to_numpy(layer.convolution_op(np.asarray(x, np.float32), layer.kernel))
            pre[layer.name] = np.asarray(sums, np.float64) + (weights[1] if len(weights) > 1 else 0.0)
    result = {}
    for layer, out in zip(layers, outs):
        if layer.name in pre:
            result[layer.name] = pre[layer.name]
            result[fused_activation_name(layer)] = np.asarray(out)
        else:
            result[layer.name] = np.asarray(out)
    return result


def dense_like_weights(model) -> dict:
    """``{layer name: (kernel, bias or None)}`` for Dense and convolution layers."""
    found = {}
    for layer in model.layers:
        if type(layer).__name__ in ("Dense", "QDense", *CONV_LAYERS):
            weights = layer.get_weights()
            found[layer.name] = (weights[0], weights[1] if len(weights) > 1 else None)
    return found
