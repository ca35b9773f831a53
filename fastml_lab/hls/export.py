"""Export a Keras model to an hls4ml project, with every precision set by a plan.

The project folder and its record (``project.json``) are described in :mod:`fastml_lab.project`.
The targets are the boards of :mod:`fastml_lab.boards` (hls4ml's VivadoAccelerator backend, an
AXI-stream wrapper) and ``vitis`` for a bare part. The timing estimate goes into the project's
record, not into the firmware description: timing is not firmware.

The folder appears only when everything is written: an interrupted export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from .. import __version__
from .._deps import require
from .._io import atomic_directory
from ..boards import DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, export_backends, get_board, same_part
from ..exceptions import ConfigError
from ..families import NETWORK
from ..options import check_clock_period, check_reuse_factor, check_strategy
from ..fixed import FixedType
from ..project import HLS_DIR, Project
from .config import check_hls_config, read_hls_config, requested_reuse
from .csim import nn_recipe
from .keras_model import (CONV_LAYERS, GLOBAL_POOLING_LAYERS, POOLING_LAYERS, as_model, check_io_type,
                          check_supported, check_unroll, has_quantizers, hls_layer_names, input_shape)
from .plan import ACTIVATION_TABLE, EXACT, SOFTMAX_TABLE, PrecisionPlan, as_plan, exact_accumulator, sum_type

log = logging.getLogger("fastml_lab")

#: Export targets: name -> (hls4ml backend, hls4ml board), from the board table.
BACKENDS = export_backends()
#: A bare-part (vitis) export without ``part`` or ``clock_period_ns`` takes the default board's.
DEFAULT_PART = get_board(DEFAULT_BOARD).part
DEFAULT_CLOCK_NS = get_board(DEFAULT_BOARD).clock_period_ns
#: hls4ml's name for a board's stream word type (VivadoAccelerator's input_type/output_type).
_HLS4ML_WORD = {"float32": "float"}


def export(model, out, *, plan=None, precision=None, backend: str = PART_BACKEND, reuse_factor: int = 1,
           strategy: str = "Latency", io_type: str = "parallel", clock_period_ns: float | None = None,
           part: str | None = None,
           scaler=None, class_names=None, feature_names=None, name: str | None = None,
           hls_config: dict | None = None, overwrite: bool = False, quiet: bool = False) -> Project:
    """Write the hls4ml project for ``model`` (a Keras model or ``.keras`` path) to ``out``.

    ``backend`` is a board of :data:`fastml_lab.boards.BOARDS` or ``"vitis"`` (a bare ``part``).
    ``io_type`` is ``"parallel"`` (hls4ml's io_parallel) or ``"stream"`` (io_stream: a FIFO between
    layers, line buffers in convolutions).
    ``clock_period_ns`` defaults to the board's clock. ``plan`` (a :class:`PrecisionPlan`, dict or
    JSON path) or ``precision`` (one type for everything) sets the fixed-point types. ``scaler``
    (an object with ``to_dict()`` or a dict) and ``class_names`` are recorded for the overlay,
    which scales inputs and names classes. ``quiet`` leaves out the closing log line (a temporary
    export made only to describe the model, :func:`fastml_lab.hls.describe.describe`).

    ``hls_config`` is hls4ml's own configuration dict or a JSON/YAML file of it (start from :func:`hls4ml_config` and edit a
    layer's ``Precision`` or ``ReuseFactor``); it replaces ``plan``, ``precision``, ``reuse_factor``
    and ``strategy``, and the project records the types the firmware ended up with.
    """
    backend = _check_choice("backend", backend, tuple(BACKENDS))
    hls_backend, hls_board = BACKENDS[backend]
    board = get_board(backend) if hls_board else None
    if clock_period_ns is None:
        clock_period_ns = board.clock_period_ns if board else DEFAULT_CLOCK_NS
    if board and part and not same_part(part, board.part):
        raise ConfigError(f"The {board.name} backend writes for the board's part {board.part}; got part {part!r}. "
                          f"Leave out the part, or export with backend {PART_BACKEND!r} for a bare part.")
    strategy = check_strategy(strategy)
    io_type = check_io_type(io_type)
    check_reuse_factor(reuse_factor)
    check_clock_period(clock_period_ns)
    keras_model = as_model(model)
    check_supported(keras_model, io_type)
    check_unroll(keras_model, strategy, io_type)
    quantized = has_quantizers(keras_model)
    if quantized and (plan is not None or precision is not None):
        raise ConfigError(
            "This model is quantization-aware (HGQ2): its quantizers set every precision, so it "
            "takes no plan or precision. Export it without them, or export a float model with a plan."
        )
    if isinstance(hls_config, (str, Path)):
        hls_config = read_hls_config(hls_config)
    if hls_config is not None:
        given = [what for what, value in (("the plan", plan), ("the precision", precision),
                                          ("the reuse factor", reuse_factor != 1), ("the strategy", strategy != "Latency"))
                 if value not in (None, False)]
        if given:
            raise ConfigError(f"An hls4ml configuration sets every precision, reuse factor and strategy itself; "
                              f"leave out {', '.join(given)} (or edit them in the configuration).")
        config = check_hls_config(hls_config, input_layer_names(keras_model) + hls_layer_names(keras_model))
        strategy = check_strategy(config["Model"].get("Strategy", "Latency"))
        reuse_factor = int(config["Model"].get("ReuseFactor", 1))
        plan = None
    else:
        plan = _checked_plan(keras_model, quantized, plan, precision)
        config = config_from_plan(keras_model, plan, hls_backend, reuse_factor, strategy, io_type)
    hls4ml = require("hls4ml", "export models to HLS")
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        kwargs = dict(hls_config=config, output_dir=str(tmp / HLS_DIR), io_type=io_type,
                      backend=hls_backend, clock_period=clock_period_ns, project_name="myproject")
        if board:
            word = _HLS4ML_WORD[board.word_dtype]
            kwargs.update(board=hls_board, interface=board.interface, driver="python",
                          input_type=word, output_type=word)
        else:
            kwargs.update(part=part or DEFAULT_PART)
        log.debug("hls4ml convert: backend=%s strategy=%s reuse=%s", hls_backend, strategy, reuse_factor)
        with _quantizers_as_vivado(board is not None and quantized):
            hls_model = _quiet(hls4ml.converters.convert_from_keras_model, keras_model, **kwargs)
            _quiet(hls_model.write)
        _point_config_at(tmp / HLS_DIR, out.resolve() / HLS_DIR)
        firmware = _read_firmware(tmp / HLS_DIR, board.interface if board else "parallel", input_shape(keras_model))
        _check_reuse_used(firmware, config, strategy, hls_model.config.backend)
        firmware.save(tmp)
        if plan is None:
            plan = plan_from_firmware(firmware)
        resolved_part = hls_model.config.get_config_value("Part") or part or DEFAULT_PART
        meta = {
            "name": name or out.name,
            "family": NETWORK,
            "backend": backend,
            "board": board.name if board else None,
            "part": resolved_part,
            "clock_period_ns": float(clock_period_ns),
            "reuse_factor": _recorded_reuse(firmware, reuse_factor),
            "strategy": strategy,
            "io_type": io_type,
            "interface": firmware.interface,
            "n_inputs": firmware.n_inputs,
            **({"input_shape": list(firmware.input_shape)} if len(firmware.input_shape) > 1 else {}),
            "n_outputs": firmware.n_outputs,
            "plan": plan.to_dict(),
            "precision_source": "hls4ml config" if hls_config is not None else "quantizers" if quantized else "plan",
            "scaler": _as_dict(scaler),
            "class_names": list(class_names) if class_names is not None else None,
            "feature_names": list(feature_names) if feature_names is not None else None,
            "firmware_digest": firmware.digest(),
            "timing": estimate_timing(firmware, board, resolved_part, clock_period_ns),
            "fastml_lab_version": __version__,
            "hls4ml_version": getattr(hls4ml, "__version__", "unknown"),
            "hls_dir": HLS_DIR,
            "csim": nn_recipe(tmp / HLS_DIR),
        }
        Project.write_new(tmp, meta)
        plan.save(tmp / "plan.json")
    (log.debug if quiet else log.info)("Exported %s (%s, %s) to %s", meta["name"], backend, resolved_part, out)
    return Project.open(out)


def hls4ml_config(model, *, plan=None, precision=None, backend: str = PART_BACKEND, reuse_factor: int = 1,
                  strategy: str = "Latency", io_type: str = "parallel") -> dict:
    """The configuration dict :func:`export` hands hls4ml for these settings: hls4ml's own format
    (``config_from_keras_model(model, granularity="name")``) with every precision set from the
    plan. Edit it (``config["LayerName"]["fc1"]["ReuseFactor"] = 4``) and export with
    ``export(model, out, hls_config=config)``; the same dict works with hls4ml directly."""
    backend = _check_choice("backend", backend, tuple(BACKENDS))
    keras_model = as_model(model)
    check_supported(keras_model)
    plan = _checked_plan(keras_model, has_quantizers(keras_model), plan, precision)
    check_reuse_factor(reuse_factor)
    return config_from_plan(keras_model, plan, BACKENDS[backend][0], reuse_factor, check_strategy(strategy),
                            check_io_type(io_type))


def _checked_plan(keras_model, quantized: bool, plan, precision) -> PrecisionPlan | None:
    """The precision plan for ``keras_model``, checked against its hls4ml layers (None for HGQ2)."""
    if quantized:
        return None
    plan = as_plan(plan, precision)
    plan.check_layers(hls_layer_names(keras_model))
    return plan


def config_from_plan(model, plan: PrecisionPlan | None, hls_backend: str, reuse_factor: int, strategy: str,
                     io_type: str = "io_parallel") -> dict:
    """hls4ml's per-layer configuration with every precision taken from ``plan`` (none 'auto').

    ``plan=None`` is for HGQ2 models: hls4ml derives each type from the quantizers, bit-exactly.
    A convolution's accumulator is exact over its window, an average pool's over its window (or
    the whole image); io_stream's zero padding before a convolution keeps its input's type.
    """
    hls4ml = require("hls4ml", "export models to HLS")
    default = (plan.default if plan else FixedType.parse(DEFAULT_PRECISION)).to_hls4ml()
    config = _quiet(hls4ml.utils.config_from_keras_model, model, granularity="name",
                    backend=hls_backend, default_precision=default, default_reuse_factor=reuse_factor)
    config["Model"]["Strategy"] = strategy
    config["Model"]["ReuseFactor"] = reuse_factor
    if plan is None:
        for entry in config["LayerName"].values():
            entry["ReuseFactor"] = reuse_factor
        return config
    layers = {layer.name: layer for layer in model.layers}
    inputs = set(input_layer_names(model))
    previous = plan.input_type()
    padding = {}
    for entry_name, entry in config["LayerName"].items():
        layer = layers.get(entry_name)
        kind = "input" if entry_name in inputs else _kind(layer, entry_name, layers)
        if kind == "passthrough":  # Flatten: no logic, no cast; the next layer reads the same values
            entry.setdefault("Precision", {})["result"] = previous.to_hls4ml()
            entry["Trace"] = False
            continue
        precision = entry.setdefault("Precision", {})
        result = plan.input_type() if kind == "input" else plan.type_for(entry_name, "result")
        for slot in list(precision):
            precision[slot] = _slot_type(plan, entry_name, kind, slot, layer, previous, result).to_hls4ml()
        precision["result"] = result.to_hls4ml()
        entry["ReuseFactor"] = reuse_factor
        entry["Trace"] = False
        if kind in ("dense", "conv"):
            entry["Strategy"] = strategy
        if kind == "conv" and io_type == "io_stream" and layer.get_config().get("padding") == "same":
            padding[f"zp{1 if '1D' in type(layer).__name__ else 2}d_{entry_name}"] = previous
        previous = result
    for name, t in padding.items():
        config["LayerName"][name] = {"Precision": {"result": t.to_hls4ml()}, "Trace": False}
    return config


def input_layer_names(model) -> list[str]:
    """Names of the model's input layers (a Sequential model does not list them in ``layers``)."""
    return [tensor._keras_history[0].name for tensor in model.inputs]


def _kind(layer, entry_name: str, layers: dict) -> str:
    if layer is None:  # an activation hls4ml splits off a Dense: '<dense>_<activation>'
        base, _, act = entry_name.rpartition("_")
        if base in layers:
            return "softmax" if act == "softmax" else "activation"
        return "other"
    cls = type(layer).__name__
    if cls == "InputLayer":
        return "input"
    if cls in ("Dense", "QDense"):
        return "dense"
    if cls in CONV_LAYERS:
        return "conv"
    if cls in POOLING_LAYERS or cls in GLOBAL_POOLING_LAYERS:
        return "pooling"
    if cls == "Flatten":
        return "passthrough"
    if cls == "Softmax" or getattr(getattr(layer, "activation", None), "__name__", "") == "softmax":
        return "softmax"
    if cls == "BatchNormalization":
        return "batchnorm"
    return "activation"


def _slot_type(plan, name, kind, slot, layer, previous, result) -> FixedType:
    if slot == "result":
        return result
    if slot in ("weight", "bias"):
        return plan.type_for(name, slot)
    if slot == "scale":
        return plan.type_for(name, "weight")
    if kind == "softmax" and slot in ("table", "exp_table", "inv_table", "inv_inp", "accum"):
        override = plan.layers.get(name, {}).get("table")
        return override or SOFTMAX_TABLE
    if slot == "table":
        return plan.layers.get(name, {}).get("table") or ACTIVATION_TABLE
    if slot == "accum":
        accum = plan.type_for(name, "accum")
        if accum != EXACT:
            return accum
        if kind == "pooling":
            return _pooling_accumulator(layer, previous)
        if kind not in ("dense", "conv"):
            return plan.default
        n_in = int(layer.input.shape[-1])
        if kind == "conv":
            n_in *= int(np.prod(layer.kernel_size))
        bias = plan.type_for(name, "bias") if getattr(layer, "use_bias", True) else None
        return exact_accumulator(previous, plan.type_for(name, "weight"), bias, n_in)
    return plan.default


def _pooling_accumulator(layer, previous: FixedType) -> FixedType:
    """A pooling layer's accumulator: its input type for a max; for an average, wide enough for the
    sum of its window (the whole image for a global pool) without loss."""
    cls = type(layer).__name__
    if "Max" in cls:
        return previous
    if cls in GLOBAL_POOLING_LAYERS:
        n_terms = int(np.prod(layer.input.shape[1:-1]))
    else:
        n_terms = int(np.prod(layer.pool_size))
    return sum_type(previous, n_terms)


def _read_firmware(hls_dir: Path, interface: str, shape=None):
    from ..emulator import Firmware
    from ..firmware.reader import read_project

    description, arrays = read_project(hls_dir, interface=interface, input_shape=shape)
    return Firmware(description, arrays)


def plan_from_firmware(firmware) -> PrecisionPlan:
    """The plan a quantization-aware model ended up with, read back from its firmware."""
    layers = {}
    for spec in firmware.description["layers"]:
        slots = {"result": FixedType.from_dict(spec["result_type"])}
        for slot in ("weight", "bias", "accum"):
            if f"{slot}_type" in spec and spec["op"] == "dense":
                slots[slot] = FixedType.from_dict(spec[f"{slot}_type"])
        layers[spec["name"]] = slots
    return PrecisionPlan(default=firmware.input_type, input=firmware.input_type, layers=layers)


def _check_reuse_used(firmware, config: dict, strategy: str, hls_backend) -> None:
    """hls4ml silently replaces a reuse factor that does not divide a layer evenly (Resource strategy);
    refuse instead, naming the factors valid for every layer that asked for the same one (all of
    them, unless a configuration gave layers their own)."""
    weighted = _weighted(firmware)
    changed = [layer for layer in weighted if layer["reuse_factor"] != requested_reuse(config, layer["name"])]
    if not changed:
        return
    layer = changed[0]
    asked = requested_reuse(config, layer["name"])
    alike = [other for other in weighted if requested_reuse(config, other["name"]) == asked]
    valid = sorted(set.intersection(*(set(hls_backend.get_valid_reuse_factors(other["n_in"], other["n_out"]))
                                      for other in alike)))
    scope = "that layer" if len(alike) == 1 else \
        ("every layer of this model" if len(alike) == len(weighted) else f"the layers that ask for {asked}")
    raise ConfigError(
        f"reuse_factor {asked} is not valid for layer {layer['name']!r} ({layer['n_in']} inputs x "
        f"{layer['n_out']} outputs) with the {strategy} strategy (hls4ml would use "
        f"{layer['reuse_factor']}). Reuse factors valid for {scope}: {', '.join(map(str, valid))}."
    )


def _weighted(firmware) -> list:
    """The layers that multiply by a weight matrix (dense, convolutions): they take a reuse factor."""
    from ..firmware.registry import pricing_class

    return [layer for layer in firmware.description["layers"] if pricing_class(layer).weight_matrix]


def _recorded_reuse(firmware, reuse_factor: int) -> int:
    """The project's reuse factor: the one every dense layer uses, else the largest (the II's bound)."""
    used = {int(layer["reuse_factor"]) for layer in _weighted(firmware)}
    return used.pop() if len(used) == 1 else max(used, default=reuse_factor)


def estimate_timing(firmware, board, part: str, clock_period_ns: float) -> dict:
    """The project record's timing from the one hardware estimate (:mod:`fastml_lab.estimate`):
    latency and II in cycles (the board's AXI-stream wrapper included), source "estimate".

    A board is built with Vivado HLS (hls4ml's VivadoAccelerator backend), a bare part with Vitis HLS.
    """
    from ..estimate.hardware import Target, estimate_description, flavour_for

    target = Target(board, part, float(clock_period_ns), flavour_for(board.name if board else None),
                    firmware.interface)
    return estimate_description(firmware.description, firmware.arrays, target).timing()


@contextlib.contextmanager
def _quantizers_as_vivado(active: bool):
    """Let hls4ml write HGQ2's per-element quantizers for the VivadoAccelerator (board) backend.

    hls4ml 1.3 generates them for its Vivado and Vitis backends and asserts on any other name,
    although VivadoAccelerator writes the same Vivado HLS C++ around an AXI wrapper. The C
    simulation of the board project, compared value for value with the emulator, checks the result.
    """
    if not active:
        yield
        return
    from hls4ml.backends.fpga.passes import hgq_proxy_model

    original = hgq_proxy_model.generate_mask_fn

    def as_vivado(name, shape, k, b, i, rnd, sat, backend):
        backend = "vivado" if backend.lower() == "vivadoaccelerator" else backend
        return original(name, shape, k, b, i, rnd, sat, backend)

    hgq_proxy_model.generate_mask_fn = as_vivado
    try:
        yield
    finally:
        hgq_proxy_model.generate_mask_fn = original


def _point_config_at(written: Path, final: Path) -> None:
    """hls4ml records the folder it wrote to; point its config at where the project will live."""
    config = written / "hls4ml_config.yml"
    if config.exists():
        config.write_text(config.read_text().replace(str(written), str(final)))


def _as_dict(obj):
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise ConfigError(f"scaler must be a dict or have to_dict(); got {type(obj).__name__}.")


def _check_choice(what: str, value, valid):
    if value not in valid:
        raise ConfigError(f"Unknown {what} {value!r}; valid: {', '.join(valid)}.")
    return value


def _quiet(func, *args, **kwargs):
    """Call an hls4ml function with its prints sent to the debug log instead of stdout."""
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = func(*args, **kwargs)
    for line in buf.getvalue().splitlines():
        log.debug("hls4ml: %s", line)
    return result
