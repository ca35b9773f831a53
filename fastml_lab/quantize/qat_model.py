"""The quantization-aware twin of a float MLP or CNN, built from HGQ2 layers and its float weights.

Every ``Dense`` becomes an HGQ2 ``QDense`` of the same name with three quantizers: its inputs
(the *activations*), its weights and its biases, and every ``Conv1D``/``Conv2D`` a ``QConv1D``/
``QConv2D`` likewise; a final softmax becomes ``QSoftmax``; ReLU and linear activations, max
pooling and Flatten stay plain Keras layers (they pass their quantized inputs on unchanged). The Keras output of such a model is exactly what the
hls4ml firmware computes.

Bit widths are total widths, sign included (``6`` weights: ``ap_fixed<6, I>``). A layer's
*activations* width is the width of its inputs; the first layer's inputs are the model's input
features, which take the ``inputs`` width (default :data:`INPUT_BITS`: features need more bits than
ReLU outputs, and input bits cost little). Given as::

    6                                           6 bits for weights and activations everywhere
    {"weights": 6, "activations": 8}            the same for every layer ("inputs": 12 optional)
    {"fc2": {"weights": 8, "activations": 10},  per layer; layers not named take "default"
     "default": {"weights": 6, "activations": 8}}   (or DEFAULT_BITS)

In the ``"uniform"`` mode each layer has one weight width and one activation width, held fixed
while the integer bits adapt. In the ``"hgq"`` mode the widths are where training starts: every
weight and every input of a layer learns its own width under HGQ2's EBOPs penalty ``beta``.
Activation quantizers wrap (HGQ2's ``WRAP`` with traced ranges): :func:`trace_ranges` sets their
integer bits so that every value of the data given fits.

The HGQ mode follows HGQ2's advice for data: the inputs' quantizers are KIF (the integer bits
follow the traced range, the fractional bits learn), so a trace over more data adds integer bits
and never takes fractional ones; :func:`start_hgq_widths` sets where those start. Biases saturate,
as weights do: a wrapping KBI quantizer whose width reaches zero jumps to 32 integer bits and keeps
them for thousands of steps, its values stuck at zero until a trace revives them.
"""

from __future__ import annotations

import numpy as np

from .._deps import require
from ..exceptions import ConfigError, UnsupportedError

__all__ = ["DEFAULT_BITS", "HGQ_START_BITS", "INPUT_BITS", "MIN_BITS", "MAX_BITS", "MODES", "resolve_bits",
           "build_qat_model", "dense_layer_names", "trace_ranges", "start_hgq_widths", "is_quantized"]

MODES = ("uniform", "hgq")
SLOTS = ("weights", "activations")
#: Uniform widths when none are given: 6-bit weights, 8-bit activations (as in the QKeras studies).
DEFAULT_BITS = {"weights": 6, "activations": 8}
#: Width of the model's input features unless ``bits`` names it ("inputs", or the first layer).
INPUT_BITS = 16
#: Where HGQ training starts when no widths are given.
HGQ_START_BITS = {"weights": 8, "activations": 8}
MIN_BITS, MAX_BITS = 2, 24
#: Events per batch when tracing activation ranges.
TRACE_BATCH = 4096


# ------------------------------------------------------------------------------------------- bits
def resolve_bits(bits, layer_names, default: dict = DEFAULT_BITS) -> dict:
    """``{layer: {"weights": W, "activations": A}}`` for every Dense layer (see the module doc)."""
    layer_names = list(layer_names)
    options = dict(bits) if isinstance(bits, dict) else {"default": default if bits is None else bits}
    inputs = _width(options.pop("inputs", INPUT_BITS), "bits['inputs']")
    if options and set(options) <= set(SLOTS):
        options = {"default": options}
    unknown = sorted(set(options) - set(layer_names) - {"default"})
    if unknown:
        raise ConfigError(f"bits names {', '.join(map(repr, unknown))}, which are not Dense layers of the "
                          f"model; its Dense layers are {', '.join(layer_names)} (or use 'default').")
    fallback = _pair(options.get("default", default), default, "bits")
    widths = {name: _pair(options[name], fallback, f"bits[{name!r}]") if name in options else dict(fallback)
              for name in layer_names}
    if layer_names and layer_names[0] not in options:
        widths[layer_names[0]]["activations"] = inputs
    return widths


def _pair(value, default: dict, where: str) -> dict:
    if isinstance(value, dict):
        extra = sorted(set(value) - set(SLOTS))
        if extra:
            raise ConfigError(f"{where} has unknown keys {extra}; use 'weights' and 'activations'.")
        pair = {**default, **value}
    else:
        pair = {slot: value for slot in SLOTS}
    return {slot: _width(pair[slot], f"{where}: {slot}") for slot in SLOTS}


def _width(width, where: str) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not MIN_BITS <= width <= MAX_BITS:
        raise ConfigError(f"{where} width must be an integer from {MIN_BITS} to {MAX_BITS} "
                          f"(total bits, sign included); got {width!r}.")
    return int(width)


# ------------------------------------------------------------------------------------------ model
#: The layers with weights that get quantizers, float and HGQ2 class names.
WEIGHT_LAYERS = ("Dense", "QDense", "Conv1D", "QConv1D", "Conv2D", "QConv2D")
_CONV = {"Conv1D": "QConv1D", "Conv2D": "QConv2D"}


def dense_layer_names(model) -> list:
    """Names of the model's layers with weights (Dense, Conv1D, Conv2D or their HGQ2 twins), in order."""
    return [layer.name for layer in model.layers if type(layer).__name__ in WEIGHT_LAYERS]


def is_quantized(model) -> bool:
    """True when the model has HGQ2 layers."""
    return any(type(layer).__module__.startswith("hgq.") for layer in model.layers)


def build_qat_model(float_model, bits: dict, mode: str = "uniform", beta: float = 0.0):
    """The HGQ2 model of ``float_model``'s architecture, initialised from its weights.

    ``bits`` comes from :func:`resolve_bits`. Weight integer bits start where the float weights
    need them; activation ranges still have to be traced (:func:`trace_ranges`).
    """
    keras = require("keras", "build quantization-aware models")
    require("hgq", "build quantization-aware models")
    import hgq.layers as hgq_layers
    from hgq.layers import QDense, QSoftmax

    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    hgq = mode == "hgq"
    layers = [keras.Input(shape=tuple(float_model.inputs[0].shape[1:]), name=_input_name(float_model))]
    signed = True  # the standardized features are signed; ReLU outputs are not
    dense = []
    for index, layer in enumerate(float_model.layers):
        kind = _kind(layer, index == len(float_model.layers) - 1)
        if kind == "dense":
            layers.append(QDense(layer.units, activation=_activation_name(layer), use_bias=layer.use_bias,
                                 name=layer.name, **_quantizers(bits[layer.name], signed, hgq),
                                 beta0=float(beta), enable_ebops=hgq))
            dense.append(layer)
            signed = _activation_name(layer) != "relu"
        elif kind == "conv":
            cfg = layer.get_config()
            layers.append(getattr(hgq_layers, _CONV[type(layer).__name__])(
                layer.filters, layer.kernel_size, strides=layer.strides, padding=layer.padding,
                activation=_activation_name(layer), use_bias=layer.use_bias, name=layer.name,
                **_quantizers(bits[layer.name], signed, hgq), beta0=float(beta), enable_ebops=hgq,
                **({"data_format": cfg["data_format"]} if cfg.get("data_format") else {})))
            dense.append(layer)
            signed = _activation_name(layer) != "relu"
        elif kind == "keep":
            layers.append(type(layer).from_config(layer.get_config()))
        elif kind == "softmax":
            layers.append(QSoftmax(name=layer.name, enable_ebops=False))  # its tables are not penalised
        elif kind in ("relu", "linear"):
            layers.append(keras.layers.Activation(kind, name=layer.name))
            signed = signed and kind != "relu"
    model = keras.Sequential(layers, name=f"{float_model.name}_qat")
    for layer in dense:
        _copy_weights(layer, model.get_layer(layer.name))
    return model


def _input_name(model) -> str:
    name = model.inputs[0].name
    return name if isinstance(name, str) and name else "features"


def _activation_name(layer) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "linear")


def _kind(layer, is_last: bool) -> str:
    """What a float layer becomes: dense, conv, relu, linear, softmax, keep (max pooling, Flatten:
    the same layer) or skip (Dropout, InputLayer)."""
    cls, act = type(layer).__name__, _activation_name(layer)
    if cls in ("InputLayer", "Dropout"):
        return "skip"
    if cls in ("MaxPooling1D", "MaxPooling2D", "Flatten"):
        return "keep"
    kind = {"Dense": "dense" if act in ("linear", "relu") else None, "Activation": act,
            "ReLU": "relu" if _plain_relu(layer) else None, "Softmax": "softmax",
            **{name: "conv" if act in ("linear", "relu") else None for name in _CONV}}.get(cls)
    if kind in ("dense", "conv", "relu", "linear") or (kind == "softmax" and is_last):
        return kind
    raise UnsupportedError(
        f"Layer {layer.name!r} ({cls}, activation {act!r}) has no bit-exact quantization-aware "
        "counterpart here. Supported: Dense, Conv1D and Conv2D (linear or ReLU), ReLU and linear "
        "activations, max pooling, Flatten, a final softmax, Dropout."
        + (" Split the softmax off: Dense(..., activation='linear') followed by Activation('softmax')."
           if cls == "Dense" and act == "softmax" else "")
    )


def _plain_relu(layer) -> bool:
    cfg = layer.get_config()
    return not (cfg.get("max_value") or cfg.get("threshold") or cfg.get("negative_slope"))


def _quantizers(widths: dict, signed: bool, hgq: bool) -> dict:
    """kq/iq/bq configs: widths are totals, KBI's ``b`` excludes the sign bit ``k``.

    Uniform: KBI with fixed widths (weights saturate, inputs and biases wrap). HGQ: per weight,
    per bias and per input feature; weights and biases KBI saturating, inputs KIF wrapping (whose
    fractional bits :func:`start_hgq_widths` sets once the ranges are traced)."""
    from hgq.constraints import Constant
    from hgq.quantizer import QuantizerConfig

    w_bits, a_bits = widths["weights"], widths["activations"]
    k = int(signed)
    if hgq:
        return {"kq_conf": QuantizerConfig("kbi", "weight", k0=1, b0=w_bits - 1, homogeneous_axis=()),
                "iq_conf": QuantizerConfig("kif", "datalane", k0=k, i0=0, f0=a_bits - k, homogeneous_axis=(0,)),
                "bq_conf": QuantizerConfig("kbi", "bias", k0=1, b0=a_bits - 1, overflow_mode="SAT_SYM",
                                           homogeneous_axis=())}

    def config(place, k0, b):
        return QuantizerConfig("kbi", place, k0=k0, b0=b, bc=Constant(b), heterogeneous_axis=())

    return {"kq_conf": config("weight", 1, w_bits - 1), "iq_conf": config("datalane", k, a_bits - k),
            "bq_conf": config("bias", 1, a_bits - 1)}


def _copy_weights(float_layer, qlayer) -> None:
    qlayer.kernel.assign(float_layer.kernel)
    _hold(qlayer.kq, float_layer.kernel)
    if float_layer.use_bias:
        qlayer.bias.assign(float_layer.bias)
        _hold(qlayer.bq, float_layer.bias)


def _hold(quantizer, values) -> None:
    """Give a saturating quantizer the integer bits that hold ``values`` (wrapping ones are traced)."""
    inner = quantizer.quantizer
    if inner.overflow_mode != "WRAP":
        inner._i.assign(inner.get_minimal_i(values))


def trace_ranges(model, X) -> None:
    """Set every wrapping quantizer's integer bits (and sign) to cover ``model``'s values on ``X``."""
    require("hgq", "trace quantizer ranges")
    from hgq.utils import trace_minmax

    trace_minmax(model, np.asarray(X, dtype=np.float32), batch_size=TRACE_BATCH)


def start_hgq_widths(model, bits: dict, X) -> None:
    """Trace the ranges of an HGQ model, then give every input of each layer ``bits[layer]["activations"]``
    bits in all: sign and traced integer bits, the rest fractional."""
    ops = require("keras", "set quantizer widths").ops
    trace_ranges(model, X)
    for layer in model.layers:
        inputs = getattr(getattr(layer, "iq", None), "quantizer", None)
        if hasattr(inputs, "_f"):  # a KIF quantizer
            k, i = (ops.convert_to_numpy(v) for v in (inputs.k, inputs.i))
            inputs._f.assign((bits[layer.name]["activations"] - k - i).astype(np.float32))
    trace_ranges(model, X)  # integer bits for the new fractional ones
