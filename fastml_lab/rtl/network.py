"""An HGQ2 network to register-transfer level: da4ml's pipelined Verilog, read back for the emulator.

``export_rtl`` traces the quantization-aware model with HGQ2's da4ml tracer into a program of
adder-level operations, lets da4ml cut it into pipeline stages and write the Verilog project
(``PRJ/rtl``: ``src/`` the modules, ``model/pipeline.json`` the program, ``sim/`` the binder), and
reads that ``pipeline.json`` into the firmware description (one ``dais_stage`` layer per stage,
:mod:`fastml_lab.firmware.ops.dais`): the emulator runs what the Verilog computes, and ``check``
compares the two through Verilator.

What the RTL backend accepts (:func:`check_rtl_model`, before any work): a Keras model of HGQ2
layers -- ``QDense`` (linear or ReLU activation), ``QBatchNormalization`` -- with ReLU and linear
activations (``Activation`` or ``ReLU`` layers) and ``Dropout`` between them; a final softmax
(``QSoftmax``, ``Softmax`` or ``Activation("softmax")``) is left out: the design outputs the logits,
whose largest names the same class, and the record says so. A float model has no quantizers to
build adders from (quantize it first: ``fastml-lab quantize``); other layers are refused by name.

Every constant product becomes shifts and adds (no DSPs); the pipeline takes one event per clock
(II = 1) and its latency is its number of stages, exact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .. import __version__
from .._deps import require
from .._io import atomic_directory
from ..boards import rtl_target
from ..exceptions import ConfigError, DataError, UnsupportedError
from ..families import NETWORK
from ..project import RTL_PIPELINE, VERILATOR, Project
from .verilator import CXXFLAGS, batch_source, verilate_entry

log = logging.getLogger("fastml_lab")

#: The project's generator folder and the Verilog top module.
RTL_DIR = "rtl"
TOP = "fastml_top"
#: da4ml's delay unit is one adder level. Stages are cut every ``clock period / NS_PER_LEVEL``
#: levels: a modelling choice for 7-series carry chains (about 2 ns per add of ~16 bits), not a
#: timing closure -- only place and route can say whether a clock is met.
NS_PER_LEVEL = 2.0
#: Static helper modules of da4ml's Verilog that a design without lookup tables does not use.
_UNUSED_STATIC = ("lookup_table.v",)
_PROBE_EVENTS = 256


def _layer_kinds():
    keras = require("keras", "export RTL")
    require("hgq", "export RTL")
    from hgq.layers import QBatchNormalization, QDense, QSoftmax

    return keras, QDense, QBatchNormalization, QSoftmax


def _activation(layer) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act)) if act is not None else "linear"


def check_rtl_model(model) -> bool:
    """Refuse (UnsupportedError naming the layer) a model the RTL backend cannot build; return
    whether its final softmax will be left out."""
    from ..hls.keras_model import has_quantizers

    keras, QDense, QBatchNormalization, QSoftmax = _layer_kinds()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not has_quantizers(model):
        raise UnsupportedError(
            f"Model {model.name!r} has no HGQ2 quantizers: the RTL backend builds adders from a "
            "quantization-aware model's fixed-point types. Quantize it first (`fastml-lab quantize MODEL "
            "--out Q.keras`, or HGQ2 layers of your own) and export that, or use an HLS backend.")
    softmax_last = bool(layers) and _is_softmax(layers[-1], keras, QSoftmax)
    for index, layer in enumerate(layers):
        if index == len(layers) - 1 and softmax_last:
            break
        name, cls = layer.name, type(layer).__name__
        if isinstance(layer, QDense):
            if _activation(layer) not in ("linear", "relu"):
                raise UnsupportedError(f"Layer {name!r} (QDense) has activation {_activation(layer)!r}; the RTL "
                                       "backend builds linear and ReLU activations (no lookup tables).")
        elif isinstance(layer, QBatchNormalization) or isinstance(layer, keras.layers.Dropout):
            continue
        elif isinstance(layer, keras.layers.Activation) and _activation(layer) in ("linear", "relu"):
            continue
        elif isinstance(layer, keras.layers.ReLU):
            cfg = layer.get_config()
            if cfg.get("max_value") or cfg.get("threshold") or cfg.get("negative_slope"):
                raise UnsupportedError(f"Layer {name!r} is a clipped or leaky ReLU; the RTL backend builds the "
                                       "plain ReLU only.")
        elif _is_softmax(layer, keras, QSoftmax):
            raise UnsupportedError(f"Layer {name!r} is a softmax before the last layer; the RTL backend leaves "
                                   "out a final softmax only.")
        else:
            raise UnsupportedError(
                f"Layer {name!r} ({cls}) has no RTL here. The RTL backend takes HGQ2 QDense (linear or ReLU), "
                "QBatchNormalization, ReLU and linear activations, Dropout, and a final softmax (left out).")
    return softmax_last


def _is_softmax(layer, keras, QSoftmax) -> bool:
    return (isinstance(layer, (QSoftmax, keras.layers.Softmax))
            or (isinstance(layer, keras.layers.Activation) and _activation(layer) == "softmax"))


def _without_softmax(model, drop: bool):
    keras = require("keras", "export RTL")
    if not drop:
        return model
    last = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)][-2]
    return keras.Model(model.inputs, last.output, name=model.name)


def _register_activation_tracer() -> None:
    """Let HGQ2's tracer follow plain ``Activation("relu"/"linear")`` layers (those ``quantize``
    puts between its QDense layers); it traces ``ReLU`` layers but not these."""
    keras = require("keras", "export RTL")
    from da4ml.trace.ops import relu
    from hgq._dais_tracer.layers import _base

    if keras.layers.Activation in _base._registry:
        return

    class ReplayActivation(_base.ReplayOperationBase):
        handles = (keras.layers.Activation,)

        def call(self, inputs):
            name = _activation(self.op)
            if name == "relu":
                return relu(inputs)
            if name == "linear":
                return inputs
            raise UnsupportedError(f"Layer {self.op.name!r}: activation {name!r} has no RTL here.")


def trace(model):
    """da4ml's combinational program of ``model`` (checked: :func:`check_rtl_model`) and whether a
    final softmax was left out."""
    drop = check_rtl_model(model)
    require("da4ml", "export RTL")
    _register_activation_tracer()
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace

    inputs, outputs = trace_model(_without_softmax(model, drop))
    return comb_trace(inputs, outputs), drop


def describe_pipeline(pipeline) -> tuple:
    """``(description, arrays)`` of the emulator for a da4ml ``Pipeline`` (as ``pipeline.json`` holds it)."""
    from da4ml.types import minimal_kif

    from ..firmware.ops.dais import CODE_COLUMNS, SUPPORTED_OPCODES, container_type

    layers, arrays = [], {}
    register_bits = sum(sum(minimal_kif(q)) for q in pipeline.inp_qint)
    for index, stage in enumerate(pipeline.solutions):
        rows = []
        for op in stage.ops:
            if op.opcode not in SUPPORTED_OPCODES:
                raise UnsupportedError(
                    f"da4ml traced an operation with opcode {op.opcode} (a lookup table or bitwise op), which the "
                    "RTL export does not build; keep to QDense, ReLU and linear activations.")
            k, i, f = minimal_kif(op.qint)
            data = int(op.data)
            data = data - (1 << 64) if data >= 1 << 63 else data
            rows.append((op.opcode, op.id0, op.id1, data, int(k), int(i), int(f),
                         int(round(np.log2(op.qint.step))) if op.qint.step > 0 else 0))
        inp_kifs = [minimal_kif(q) for q in stage.inp_qint]
        out_kifs = [minimal_kif(q) for q in stage.out_qint]
        out_bits = sum(sum(kif) for kif in out_kifs)
        name = f"stage{index}"
        layers.append({"name": name, "op": "dais_stage", "data_type": container_type(inp_kifs).to_dict(),
                       "result_type": container_type(out_kifs).to_dict(), "lut_cost": float(stage.cost),
                       "register_bits": int(out_bits + (register_bits if index == 0 else 0))})
        arrays[f"{name}/code"] = np.array(rows, dtype=np.int64).reshape(-1, len(CODE_COLUMNS))
        arrays[f"{name}/inp_shifts"] = np.asarray(stage.inp_shifts, dtype=np.int64)
        arrays[f"{name}/out_idxs"] = np.asarray(stage.out_idxs, dtype=np.int64)
        arrays[f"{name}/out_shifts"] = np.asarray(stage.out_shifts, dtype=np.int64)
        arrays[f"{name}/out_negs"] = np.asarray(stage.out_negs, dtype=np.int64)
    n_in, n_out = pipeline.shape
    description = {
        "schema_version": 1, "family": NETWORK, "generator": "da4ml", "interface": "parallel",
        "cost_model": "da4ml's own estimate (LUTs from its adders, FFs from its pipeline registers)",
        "latency_kind": RTL_PIPELINE,
        "n_inputs": int(n_in), "n_outputs": int(n_out),
        "input_type": container_type([minimal_kif(q) for q in pipeline.inp_qint]).to_dict(),
        "output_type": container_type([minimal_kif(q) for q in pipeline.out_qint]).to_dict(),
        "layers": layers,
    }
    return description, arrays


def export_rtl(model, out, *, board=None, part=None, clock_period_ns=None, scaler=None, class_names=None,
               feature_names=None, name: str | None = None, overwrite: bool = False) -> Project:
    """Write the da4ml Verilog project and the emulator's description of ``model`` (an HGQ2 Keras
    model or ``.keras`` file) to the folder ``out``, for ``board`` or a bare ``part``."""
    from ..emulator import Firmware
    from ..hls.keras_model import as_model

    board, part, clock_period_ns = rtl_target(board, part, clock_period_ns)
    keras_model = as_model(model)
    comb, dropped = trace(keras_model)
    from da4ml import __version__ as da4ml_version
    from da4ml.codegen import RTLModel
    from da4ml.types import Pipeline

    cutoff = max(1.0, clock_period_ns / NS_PER_LEVEL)
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        rtl_dir = tmp / RTL_DIR
        RTLModel(comb, TOP, rtl_dir, flavor="verilog", latency_cutoff=cutoff, print_latency=False,
                 part_name=part, clock_period=clock_period_ns).write()
        pipeline = Pipeline.load(str(rtl_dir / "model" / "pipeline.json"))
        written = json.loads((rtl_dir / "metadata.json").read_text())
        if any(int(s) for s in pipeline.solutions[0].inp_shifts):
            raise UnsupportedError("da4ml shifted this network's inputs; the RTL export takes inputs as they are.")
        description, arrays = describe_pipeline(pipeline)
        firmware = Firmware(description, arrays)
        for what, port in (("input", firmware.input_type), ("output", firmware.output_type)):
            if port.width > 32:
                raise UnsupportedError(f"An {what} of this network is {port.width} bits wide; the RTL simulation's "
                                       "ports carry at most 32 bits per value. Quantize to narrower types.")
        _self_check(firmware, comb, keras_model.input_shape[-1])
        firmware.save(tmp)
        stages = [f"src/{TOP}_stage{k}.v" for k in range(len(pipeline.solutions))]
        static = sorted(f"src/static/{p.name}" for p in (rtl_dir / "src" / "static").glob("*.v")
                        if p.name not in _UNUSED_STATIC)
        verilog = [*static, *stages, f"src/{TOP}.v"]
        sim_sources = [f"sim/{TOP}_wrapper_binder.cc"]
        recipe = {"simulator": VERILATOR, "stem": "libvrtl", "flags": list(CXXFLAGS), "include_dirs": ["sim"],
                  "path_defines": {}, "sources": sim_sources,
                  "batch_source": batch_source(firmware.input_type, firmware.output_type),
                  "key_files": [*verilog, f"src/{TOP}_wrapper.v", *sim_sources, "sim/binder_util.hh", "sim/ioutil.hh"],
                  "verilate": verilate_entry(f"{TOP}_wrapper", [*verilog, f"src/{TOP}_wrapper.v"], ["src", "src/static"])}
        meta = {
            "name": name or out.name,
            "family": NETWORK,
            "backend": "rtl",
            "board": board.name if board else None,
            "part": part,
            "clock_period_ns": float(clock_period_ns),
            "io_type": "io_parallel",
            "interface": firmware.interface,
            "n_inputs": firmware.n_inputs,
            "n_outputs": firmware.n_outputs,
            "precision_source": "quantizers",
            "outputs": ("logits: the model's final softmax is left out (the largest logit names the same class)"
                        if dropped else "the model's outputs"),
            "softmax_left_out": dropped,
            "scaler": scaler.to_dict() if hasattr(scaler, "to_dict") else scaler,
            "class_names": list(class_names) if class_names is not None else None,
            "feature_names": list(feature_names) if feature_names is not None else None,
            "firmware_digest": firmware.digest(),
            "timing": {"latency_cycles": len(pipeline.solutions), "ii_cycles": 1,
                       "clock_mhz": round(1000.0 / clock_period_ns, 3), "source": RTL_PIPELINE},
            "da4ml": {"version": da4ml_version, "stages": len(pipeline.solutions), "latency_cutoff": cutoff,
                      "lut_estimate": float(written.get("cost", comb.cost)), "ff_estimate": int(written.get("reg_bits", 0))},
            "fastml_lab_version": __version__,
            "hls_dir": RTL_DIR,
            "csim": recipe,
            "rtl": {"language": "verilog", "top": TOP, "sources": verilog, "include_dirs": ["src", "src/static"]},
        }
        Project.write_new(tmp, meta)
    log.info("Exported %s to Verilog (%d pipeline stages, %s) in %s", meta["name"], len(pipeline.solutions), part, out)
    return Project.open(out)


def _self_check(firmware, comb, n_inputs: int) -> None:
    """The description read back must compute what da4ml's own interpreter computes (a probe of
    random and extreme inputs); a difference is a fault of this export, reported as such."""
    rng = np.random.default_rng(0)
    X = rng.normal(scale=4.0, size=(_PROBE_EVENTS, n_inputs))
    X[: _PROBE_EVENTS // 8] *= 1000.0
    ours = firmware.predict(X)
    theirs = np.asarray(comb.predict(np.ascontiguousarray(firmware.cast_input(X))), dtype=np.float64)
    if not np.array_equal(ours, theirs.reshape(ours.shape)):
        bad = int((ours != theirs.reshape(ours.shape)).sum())
        raise DataError(f"The RTL export's description differs from da4ml's interpreter on {bad} of {ours.size} "
                        "probe values; this is a fault of fastml_lab's reader, not of the model.")


def rtl_model_summary(project) -> str:
    """One line: stages, ports and da4ml's own estimate of an RTL project."""
    meta = project.meta
    d = meta.get("da4ml") or {}
    if not d:
        raise ConfigError(f"{project.path} is not a da4ml RTL project.")
    return (f"{d['stages']} pipeline stages (II 1) at {meta['clock_period_ns']:g} ns; da4ml's estimate "
            f"{d['lut_estimate']:,.0f} LUT, {d['ff_estimate']:,} FF")
