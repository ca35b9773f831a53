"""What each dense layer multiplies: its weights as exact values and the width of each of its inputs.

The same description comes from a Keras model (float or HGQ2), from an exported project or from
an emulator :class:`~fastml_lab.emulator.Firmware` (read through the op registry and the cost
model's walk along the layers), so sparsity and the fit estimate are computed the same way from
all three. numpy only, except for reading a Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boards import DEFAULT_PRECISION
from ..estimate.model import layer_inputs
from ..exceptions import ConfigError
from ..fixed import FixedType
from .qat_model import WEIGHT_LAYERS


@dataclass(frozen=True)
class DenseOperands:
    """One dense layer: ``weights`` (n_in, n_out), exact; ``input_bits`` (n_in,), 0 for an input
    quantized away."""

    name: str
    weights: np.ndarray
    input_bits: np.ndarray

    @property
    def zero_fraction(self) -> float:
        return float(np.mean(self.weights == 0)) if self.weights.size else 0.0


@dataclass(frozen=True)
class Operands:
    """Every dense layer of one model, where they came from, and the reuse factor if known."""

    layers: list
    source: str
    reuse_factor: int | None = None


def operands_of(source, precision: str = DEFAULT_PRECISION) -> Operands:
    """Read a Keras model, a ``.keras`` path, a project (object or folder) or a Firmware.

    ``precision`` applies to float Keras models only: their weights are rounded to it and their
    inputs take its width, as an export with that one type would do.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            from ..project import Project

            source = Project.open(path)
        else:
            from ..train import load_model

            source = load_model(path)
    if hasattr(source, "firmware") and hasattr(source, "meta"):  # an exported Project
        found = from_firmware(source.firmware())
        return Operands(found.layers, f"project {source.path}", int(source.meta.get("reuse_factor", 1)))
    if hasattr(source, "description") and hasattr(source, "arrays"):
        return from_firmware(source)
    if hasattr(source, "layers") and hasattr(source, "inputs"):
        return from_keras(source, precision)
    raise ConfigError(f"expected a Keras model, a .keras file, an exported project or a Firmware; "
                      f"got {type(source).__name__}.")


def from_firmware(firmware) -> Operands:
    """The layers of an emulator Firmware that multiply by a weight matrix, with the widths of their
    inputs as the cost model follows them along the chain (:func:`~fastml_lab.estimate.model.layer_inputs`);
    a convolution counts as its kernel (one output pixel's products)."""
    arrays = firmware.arrays
    layers = []
    for cls, spec, widths in layer_inputs(firmware.description, arrays):
        if cls.weight_matrix:
            weights = cls.weights(spec, arrays)
            if len(widths) != weights.shape[0]:  # a convolution: one window's values, all of the input's width
                widths = np.full(weights.shape[0], int(widths.max()) if len(widths) else 0)
            layers.append(DenseOperands(spec["name"], weights, widths))
    return Operands(layers, "firmware")


def keras_kernels(model) -> dict:
    """``{name: (layer, kernel)}`` for Dense, Conv1D, Conv2D and their HGQ2 twins; an HGQ2 layer gives
    its quantized kernel, the values the firmware multiplies by. A convolution's kernel comes as
    ``(window values, filters)``: one output pixel's products, as a dense layer's would be."""
    from .._deps import require

    ops = require("keras", "read Keras models").ops
    found = {}
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in WEIGHT_LAYERS:
            kernel = np.asarray(ops.convert_to_numpy(layer.qkernel if cls.startswith("Q") else layer.kernel),
                                dtype=np.float64)
            found[layer.name] = (layer, kernel.reshape(-1, kernel.shape[-1]))
    return found


def from_keras(model, precision: str = DEFAULT_PRECISION) -> Operands:
    """Dense layers of a Keras model: an HGQ2 QDense brings its own types, a float Dense takes
    ``precision`` for its weights and inputs."""
    from .._deps import require

    ops = require("keras", "read Keras models").ops
    fallback = FixedType.parse(precision)
    layers, quantized = [], False
    for name, (layer, kernel) in keras_kernels(model).items():
        if type(layer).__name__.startswith("Q"):
            quantized = True
            layers.append(DenseOperands(name, kernel, _input_bits(ops, layer, kernel.shape[0], fallback.width)))
        else:
            layers.append(DenseOperands(name, fallback.quantize(kernel), np.full(kernel.shape[0], fallback.width)))
    return Operands(layers, f"Keras model {model.name!r}" + ("" if quantized else f" at {fallback}"))


def _input_bits(ops, layer, n_in: int, fallback: int) -> np.ndarray:
    """Total width (sign, integer and fraction bits) of each input of an HGQ2 layer; 0 if dropped."""
    if not layer.enable_iq:
        return np.full(n_in, fallback)
    k, i, f = (np.asarray(ops.convert_to_numpy(x), dtype=np.float64) for x in layer.iq.quantizer.kif)
    total = np.maximum(k + i + f, 0).astype(np.int64)
    if total.size > 1 and total.size != n_in:  # a convolution's per-pixel inputs: the widest
        total = np.asarray(total.max())
    return np.broadcast_to(total.reshape(-1) if total.size > 1 else total.reshape(()), (n_in,)).copy()
