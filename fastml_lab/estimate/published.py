"""Published synthesis points (``published_points.csv``) and the model's prediction for each.

Each row of the CSV is one published figure set with its source (repository and file, or the
tutorial commit), tool, part, clock, model, strategy, reuse factor and interface. The published
models' weights are not available, so each model is rebuilt from its architecture and a few
stated assumptions (:data:`ASSUMPTIONS`), with a fixed seed:

* ``jet_float``: the jet MLP 16-64-32-32-5 (ReLU, softmax), weights drawn from Keras's default
  initializer (Glorot-uniform, limit ``sqrt(6 / (n_in + n_out))``) and rounded to ``ap_fixed<16,6>``;
  inputs, results and accumulators ``ap_fixed<16,6>`` (hls4ml's default for those tutorials);
* ``jet_pruned75``: the same, each layer pruned to its 25% largest weights, the survivors doubled
  (retraining restores each output's variance with a quarter of the terms: ``1/sqrt(0.25)``);
* ``jet_qat6_pruned75``: the pruned weights on QKeras ``quantized_bits(6, 0)``'s grid
  (``ap_fixed<6,1>``), activations ``quantized_relu(6)`` (``ap_ufixed<6,0>``) into layers 2-4,
  the first layer's inputs ``ap_fixed<16,6>``;
* ``dense_1x2_elu``: hls4ml's ``test_dense`` (Dense(2) on one input, kernel uniform in [1, 10],
  ELU as a 1024-entry table);
* ``dense_1x64_<activation>``: hls4ml's ``test_activations`` (Dense(64) on one input, Keras's
  ``lecun_uniform`` kernel, limit ``sqrt(3 / n_in)``, zero bias), then ReLU, leaky ReLU, or the
  sigmoid or ELU table (1024 entries of ``ap_fixed<18,8>``).
* ``conv2d_28x28x3_k4s4_f32``: hls4ml's ``test_conv2d`` (Conv2D(32, 4x4, strides 4, 'same', which
  pads nothing here) on a 28x28x3 image, Keras's ``'normal'`` kernel (standard deviation 0.05), no bias);
* ``{max,avg}pool{1,2}d_{same,valid}``: hls4ml's ``test_pooling``, one pooling layer (pool 2, stride 2)
  on a (121, 3) sequence or an 18x15x3 image; 'same' pads the last column (the average divides by
  the values inside the image);
* ``svhn_cnn_pruned50``: the hls4ml tutorial's part 6 CNN (32x32x3 -> three blocks of Conv2D 3x3
  (16, 16, 24 filters) + batch norm + ReLU + MaxPooling 2x2 -> Dense 42, 64 (each + batch norm +
  ReLU) -> Dense 10 -> softmax), 50% pruned, float: batch norm folded into the convolution or dense
  layer before it (as hls4ml did), weights at the scale of ``lecun_uniform``, the kept half doubled
  by ``1/sqrt(0.5)``, rounded to ``ap_fixed<16,6>``; the output layer unpruned with Glorot weights;
* ``svhn_cnn_qat6_pruned50``: the same network in QKeras: fused Conv2D + batch norm with 6-bit
  weights and biases (``ap_fixed<6,1>``), ``quantized_relu(6)`` (``ap_ufixed<6,0>``) after each
  block, dense layers with 6-bit weights followed by their batch norm (kept: a scale and shift of
  ``ap_fixed<16,6>``), the output layer float.

Each point also says its I/O type (``io_parallel`` or ``io_stream``) and its ``split``: ``fit``
(the constants of :mod:`.model` were calibrated on it) or ``held-out`` (never used to set a constant:
:func:`split_errors` reports the model's error on it separately). The held-out points were chosen
before the model was run on them: every point of the sigmoid and the leaky-ReLU test models, and
the only published Resource-strategy point of a dense network; of the convolutional points (chosen
before the convolution and pooling prices were fitted): the Vitis HLS Conv2D, the QKeras SVHN CNN,
and per tool half of the pooling tests (Vivado HLS: MaxPooling1D valid, MaxPooling2D same,
AveragePooling2D same; Vitis HLS: MaxPooling1D valid, MaxPooling2D same, AveragePooling2D same).

numpy only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..boards import board_for_part
from ..fixed import FixedType

__all__ = ["POINTS_FILE", "ASSUMPTIONS", "SPLITS", "CNN_MODELS", "load_points", "point_firmware", "predict_point",
           "compare_points", "split_errors"]

POINTS_FILE = Path(__file__).with_name("published_points.csv")
ASSUMPTIONS = (
    "Float-trained weights keep the scale of Keras's initializer (Glorot-uniform; lecun_uniform for the tutorial's "
    "CNN, batch norm folded in) and are rounded to ap_fixed<16,6>.",
    "A pruned model keeps each layer's largest weights (25% or 50%), scaled by 1/sqrt(kept fraction) by the "
    "retraining.",
    "A 6-bit QKeras model's weights lie on ap_fixed<6,1>'s grid, its activations are ap_ufixed<6,0>.",
    "Inputs, layer results and accumulators of the tutorials' models are ap_fixed<16,6>.",
    "hls4ml's test models keep their Keras initializers' weights (uniform in [1, 10]; lecun_uniform; "
    "normal with standard deviation 0.05), rounded to ap_fixed<16,6>.",
)
#: ``fit``: the model's constants were calibrated on the point; ``held-out``: never used to set one.
SPLITS = ("fit", "held-out")
SEED = 2024
JET = (16, 64, 32, 32, 5)
_NUMBERS = ("latency", "ii", "dsp", "lut", "ff", "bram_18k")


def load_points(path=POINTS_FILE, split: str | None = None) -> list:
    """The published points as dicts (numbers as int, absent figures as None); only the ``split``
    (``"fit"`` or ``"held-out"``) when given."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if split is None or row["split"] == split]
    for row in rows:
        for key in _NUMBERS + ("reuse",):
            row[key] = int(row[key]) if row[key] not in ("", None) else None
        row["clock_ns"] = float(row["clock_ns"])
    return rows


def _t(text: str) -> dict:
    return FixedType.parse(text).to_dict()


def _glorot(rng, n_in, n_out):
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def _lecun(rng, n_in, n_out):
    limit = np.sqrt(3.0 / n_in)
    return rng.uniform(-limit, limit, size=(n_in, n_out))


#: The activations of hls4ml's ``test_activations`` model (each its op's name), and those that are tables.
_ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid")
_TABLES = ("elu", "sigmoid")
_DENSE_1X64 = "dense_1x64_"


def _prune(w, keep=0.25):
    threshold = np.quantile(np.abs(w), 1.0 - keep)
    return np.where(np.abs(w) >= threshold, w / np.sqrt(keep), 0.0)


def point_firmware(model: str, seed: int = SEED, io_type: str = "io_parallel") -> tuple:
    """``(description, arrays)`` of one of the rebuilt published models (see the module docstring);
    ``io_type`` sets the convolutional models' I/O style."""
    rng = np.random.default_rng(seed)
    if model in CNN_MODELS:
        return _cnn_firmware(model, rng, "stream" if io_type == "io_stream" else "parallel")
    if model == "dense_1x2_elu":
        sizes, weights = (1, 2), [rng.uniform(1.0, 10.0, size=(1, 2))]
        wtype, acts, final = "ap_fixed<16,6>", [], "elu"
    elif model.startswith(_DENSE_1X64) and model.removeprefix(_DENSE_1X64) in _ACTIVATIONS:
        sizes, weights = (1, 64), [_lecun(rng, 1, 64)]
        wtype, acts, final = "ap_fixed<16,6>", [], model.removeprefix(_DENSE_1X64)
    else:
        sizes = JET
        weights = [_glorot(rng, a, b) for a, b in zip(JET[:-1], JET[1:])]
        if model in ("jet_pruned75", "jet_qat6_pruned75"):
            weights = [_prune(w) for w in weights]
        elif model != "jet_float":
            raise KeyError(f"unknown published model {model!r}")
        wtype = "ap_fixed<6,1>" if model == "jet_qat6_pruned75" else "ap_fixed<16,6>"
        act_type = "ap_ufixed<6,0>" if model == "jet_qat6_pruned75" else "ap_fixed<16,6>"
        acts, final = [act_type] * (len(sizes) - 2), "softmax"
    default = "ap_fixed<16,6>"
    layers, arrays = [], {}
    for i, w in enumerate(weights):
        name = f"fc{i + 1}"
        wt = FixedType.parse(wtype)
        arrays[f"{name}/weight"] = wt.to_raw(wt.quantize(w)).astype(np.int64)
        arrays[f"{name}/bias"] = np.zeros(w.shape[1], dtype=np.int64)
        layers.append({"name": name, "op": "dense", "data_type": _t(default), "result_type": _t(default),
                       "n_in": int(w.shape[0]), "n_out": int(w.shape[1]), "weight_type": _t(wtype),
                       "bias_type": _t(default), "accum_type": _t(default), "strategy": "latency",
                       "reuse_factor": 1})
        if i < len(acts):
            layers.append({"name": f"{name}_relu", "op": "relu", "data_type": _t(default),
                           "result_type": _t(acts[i])})
    if final == "softmax":
        t18 = _t("ap_fixed<18,8,AP_RND,AP_SAT>")
        layers.append({"name": "softmax", "op": "softmax", "data_type": _t(default), "result_type": _t(default),
                       "implementation": "stable", "exp_table_size": 1024, "inv_table_size": 1024,
                       "exp_table_type": t18, "inv_table_type": t18, "inv_inp_type": t18, "accum_type": t18,
                       "index_type": _t("ap_ufixed<15,5>")})
    elif final in _TABLES:
        layers.append({"name": final, "op": final, "data_type": _t(default), "result_type": _t(default),
                       "table_size": 1024, "table_type": _t("ap_fixed<18,8>")})
    elif final == "leaky_relu":
        layers.append({"name": final, "op": final, "data_type": _t(default), "result_type": _t(default),
                       "param": 1.0, "param_type": _t(default)})  # the slope: the cost model does not read it
    else:
        layers.append({"name": final, "op": final, "data_type": _t(default), "result_type": _t(default)})
    description = {"schema_version": 1, "interface": "parallel", "n_inputs": sizes[0], "n_outputs": sizes[-1],
                   "input_type": _t(default), "output_type": _t(default), "layers": layers}
    return description, arrays


#: The convolutional models (see the module docstring).
_POOLS = tuple(f"{op}pool{d}d_{pad}" for op in ("max", "avg") for d in (1, 2) for pad in ("same", "valid"))
CNN_MODELS = ("conv2d_28x28x3_k4s4_f32", "svhn_cnn_pruned50", "svhn_cnn_qat6_pruned50") + _POOLS


def _pad(size: int, pool: int, stride: int, same: bool) -> tuple:
    """(out, pad before, pad after) of one axis, as Keras computes them."""
    if not same:
        return (size - pool) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return out, total // 2, total - total // 2


class _Builder:
    """Appends layers of a channels-last network to a firmware description, tracking the shape."""

    def __init__(self, shape, io: str, input_type: str = "ap_fixed<16,6>"):
        self.shape, self.io, self.layers, self.arrays = tuple(shape), io, [], {}
        self.input_shape, self.type = list(shape), input_type

    def _geometry(self, kernel, stride, same):
        h, w, c = self.shape if len(self.shape) == 3 else (1, *self.shape)
        kh, kw = (kernel if len(self.shape) == 3 else (1, kernel[-1]))
        sh, sw = (stride if len(self.shape) == 3 else (1, stride[-1]))
        oh, pt, pb = _pad(h, kh, sh, same)
        ow, pl, pr = _pad(w, kw, sw, same)
        return {"in_height": h, "in_width": w, "n_chan": c, "filt_height": kh, "filt_width": kw,
                "stride_height": sh, "stride_width": sw, "pad_top": pt, "pad_bottom": pb, "pad_left": pl,
                "pad_right": pr, "out_height": oh, "out_width": ow}

    def _out_shape(self, g, channels):
        return (g["out_height"], g["out_width"], channels) if len(self.shape) == 3 else (g["out_width"], channels)

    def conv(self, name, weights, kernel, stride=(1, 1), same=False, wtype="ap_fixed<16,6>", btype=None,
             result="ap_fixed<16,6>", strategy="latency"):
        g = self._geometry(kernel, stride, same)
        n_in, n_filt = weights.shape
        self._weights(name, weights, wtype, btype or "ap_fixed<16,6>")
        self.layers.append({"name": name, "op": "conv2d" if len(self.shape) == 3 else "conv1d",
                            "data_type": _t(self.type), "result_type": _t(result), **g, "n_filt": n_filt,
                            "n_in": n_in, "n_out": n_filt, "weight_type": _t(wtype),
                            "bias_type": _t(btype or "ap_fixed<16,6>"), "accum_type": _t("ap_fixed<16,6>"),
                            "strategy": strategy, "reuse_factor": 1, "io": self.io})
        self.shape, self.type = self._out_shape(g, n_filt), result

    def pool(self, name, op, same=False, size=2):
        g = self._geometry((size, size), (size, size), same)
        self.layers.append({"name": name, "op": "pooling2d" if len(self.shape) == 3 else "pooling1d",
                            "data_type": _t(self.type), "result_type": _t(self.type), **g,
                            "pool_op": op, "count_pad": 0, "accum_type": _t(self.type), "io": self.io})
        self.shape = self._out_shape(g, self.shape[-1])

    def dense(self, name, weights, wtype="ap_fixed<16,6>", result="ap_fixed<16,6>"):
        self._weights(name, weights, wtype, "ap_fixed<16,6>")
        self.layers.append({"name": name, "op": "dense", "data_type": _t(self.type), "result_type": _t(result),
                            "n_in": int(weights.shape[0]), "n_out": int(weights.shape[1]), "weight_type": _t(wtype),
                            "bias_type": _t("ap_fixed<16,6>"), "accum_type": _t("ap_fixed<16,6>"),
                            "strategy": "latency", "reuse_factor": 1})
        self.shape, self.type = (int(weights.shape[1]),), result

    def unary(self, name, op, result=None, **extra):
        self.layers.append({"name": name, "op": op, "data_type": _t(self.type), "result_type": _t(result or self.type),
                            **extra})
        self.type = result or self.type

    def normalize(self, name, rng):
        n = self.shape[-1]
        t = FixedType.parse("ap_fixed<16,6>")
        self.arrays[f"{name}/scale"] = t.to_raw(t.quantize(rng.uniform(0.5, 2.0, n))).astype(np.int64)
        self.arrays[f"{name}/bias"] = t.to_raw(t.quantize(rng.normal(0.0, 0.5, n))).astype(np.int64)
        self.unary(name, "normalize", scale_type=_t("ap_fixed<16,6>"), bias_type=_t("ap_fixed<16,6>"))

    def _weights(self, name, weights, wtype, btype):
        wt = FixedType.parse(wtype)
        self.arrays[f"{name}/weight"] = wt.to_raw(wt.quantize(weights)).astype(np.int64)
        self.arrays[f"{name}/bias"] = np.zeros(weights.shape[1], dtype=np.int64)

    def description(self) -> tuple:
        n_in = int(np.prod(self.input_shape))
        n_out = int(np.prod(self.shape))
        return ({"schema_version": 1, "interface": "parallel", "n_inputs": n_in, "n_outputs": n_out,
                 "input_type": _t("ap_fixed<16,6>"), "output_type": _t(self.type), "layers": self.layers,
                 "input_shape": self.input_shape}, self.arrays)


_SOFTMAX = {"implementation": "stable", "exp_table_size": 1024, "inv_table_size": 1024,
            "exp_table_type": _t("ap_fixed<18,8,AP_RND,AP_SAT>"), "inv_table_type": _t("ap_fixed<18,8,AP_RND,AP_SAT>"),
            "inv_inp_type": _t("ap_fixed<18,8,AP_RND,AP_SAT>"), "accum_type": _t("ap_fixed<18,8,AP_RND,AP_SAT>"),
            "index_type": _t("ap_ufixed<15,5>")}


def _cnn_firmware(model: str, rng, io: str) -> tuple:
    if model == "conv2d_28x28x3_k4s4_f32":
        b = _Builder((28, 28, 3), io)
        b.conv("conv2d", rng.normal(0.0, 0.05, size=(4 * 4 * 3, 32)), (4, 4), (4, 4), same=True,
               strategy="resource")
        return b.description()
    if model in _POOLS:
        op = "max" if model.startswith("max") else "average"
        b = _Builder((18, 15, 3) if "2d" in model else (121, 3), io)
        b.pool("pooling", op, same=model.endswith("same"))
        return b.description()
    qat = model == "svhn_cnn_qat6_pruned50"
    if not qat and model != "svhn_cnn_pruned50":
        raise KeyError(f"unknown published model {model!r}")
    wtype = "ap_fixed<6,1>" if qat else "ap_fixed<16,6>"
    act = "ap_ufixed<6,0>" if qat else "ap_fixed<16,6>"
    b = _Builder((32, 32, 3), io)
    for i, filters in enumerate((16, 16, 24)):
        fan_in = 9 * b.shape[-1]
        b.conv(f"conv_{i}", _prune(_lecun(rng, fan_in, filters), keep=0.5), (3, 3), wtype=wtype,
               btype=wtype if qat else None)
        b.unary(f"conv_act_{i}", "relu", result=act)
        b.pool(f"pool_{i}", "max")
    for i, n in enumerate((42, 64)):
        fan_in = int(np.prod(b.shape))
        b.shape = (fan_in,)
        b.dense(f"dense_{i}", _prune(_lecun(rng, fan_in, n), keep=0.5), wtype=wtype)
        if qat:
            b.normalize(f"bn_dense_{i}", rng)
        b.unary(f"dense_act_{i}", "relu", result=act)
    b.dense("output_dense", _glorot(rng, b.shape[-1], 10))
    b.unary("output_softmax", "softmax", **_SOFTMAX)
    return b.description()


def predict_point(point: dict) -> dict:
    """The model's figures for one published point: ``{latency, ii, dsp, lut, ff, bram_18k}``."""
    from .hardware import IMPLEMENTATION, Target, estimate_description

    description, arrays = point_firmware(point["model"], io_type=point.get("io_type") or "io_parallel")
    description["io_type"] = point.get("io_type") or "io_parallel"
    board = board_for_part(point["part"]) if point["interface"] == "axi_stream" else None
    target = Target(board, point["part"], point["clock_ns"], point["flavour"], point["interface"])
    if board is None and point["interface"] == "axi_stream":
        raise ValueError(f"point {point['id']}: an AXI-stream point needs a board's part")
    result = estimate_description(description, arrays, target, source_name=point["id"],
                                  reuse_factor=point["reuse"], strategy=point["strategy"])
    figures = dict(result.resources)
    if point["kind"] == IMPLEMENTATION:
        figures = dict(result.implementation)
    figures.update(latency=result.latency_cycles, ii=result.ii_cycles)
    return figures


def compare_points(points=None) -> list:
    """Per point and figure: published, predicted, error (relative for resources, cycles for
    latency and II). Rows: ``{id, split, flavour, strategy, io_type, kind, interface, quantity, published,
    predicted, error}``."""
    rows = []
    for point in points if points is not None else load_points():
        predicted = predict_point(point)
        for key in _NUMBERS:
            if point[key] is None:
                continue
            published, value = point[key], predicted[key]
            if key in ("latency", "ii"):
                error = value - published
            else:  # relative; a published 0 (no BRAM) counts each predicted unit as 100%
                error = (value - published) / max(published, 1)
            rows.append({"id": point["id"], "split": point["split"], "flavour": point["flavour"],
                         "strategy": point["strategy"], "io_type": point["io_type"], "kind": point["kind"],
                         "interface": point["interface"], "quantity": key, "published": published,
                         "predicted": value, "error": error})
    return rows


def split_errors(rows=None) -> dict:
    """The model's error on the fit and on the held-out points, per quantity:
    ``{split: {quantity: {n, median, worst, worst_id}}}``; ``median`` is the median absolute error
    (relative for resources, cycles for latency and II), ``worst`` the signed error of largest size.

    ``rows`` are :func:`compare_points` rows; when None, those of the dense networks' points (the
    convolutional models' points, :data:`CNN_MODELS`, are reported per I/O style by
    ``bench/bench_cnn_estimate.py``). A quantity no point of a split publishes is absent from that split."""
    if rows is None:
        rows = compare_points([p for p in load_points() if p["model"] not in CNN_MODELS])
    report = {split: {} for split in SPLITS}
    for split in SPLITS:
        for key in _NUMBERS:
            errors = [r for r in rows if r["split"] == split and r["quantity"] == key]
            if not errors:
                continue
            worst = max(errors, key=lambda r: abs(r["error"]))
            report[split][key] = {"n": len(errors), "median": float(np.median([abs(r["error"]) for r in errors])),
                                  "worst": float(worst["error"]), "worst_id": worst["id"]}
    return report
