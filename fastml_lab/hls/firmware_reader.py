"""Read a written hls4ml project back into the emulator's description of the firmware.

The source of truth is the C++ that hls4ml wrote: the call sequence in ``firmware/myproject.cpp``,
the configuration structs in ``parameters.h``, the typedefs in ``defines.h`` and the weight files
the C simulation loads. Whatever the firmware computes is read from there, so the emulator cannot
drift from hls4ml's own choices (derived table sizes, fused batch norms, inferred types).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..exceptions import UnsupportedError
from ..fixed import FixedType
from . import tables

_CALL_RE = re.compile(r"^\s*nnet::(?P<func>\w+)<(?P<targs>[^>]*(?:<[^>]*>[^>]*)*)>\((?P<args>[^;]*)\);\s*//\s*(?P<name>\S+)")
_TYPEDEF_RE = re.compile(r"typedef\s+(?P<type>.+?)\s+(?P<name>\w+)\s*;")
_CONST_RE = re.compile(r"static\s+(?:const|constexpr)\s+[\w:]+\s+(?P<name>\w+)\s*=\s*(?P<value>[^;]+);")
_MASK_FN_RE = re.compile(r"void\s+(?P<name>\w+)\s*\(\s*input_t\s*\*\s*inp\s*,\s*output_t\s*\*\s*out\s*\)\s*\{(?P<body>.*?)\n\}", re.S)
_MASK_LINE_RE = re.compile(r"out\[(?P<out>\d+)\]\s*=\s*(?:(?P<type>ap_u?fixed<[^>]*>)\(inp\[(?P<inp>\d+)\]\)|0)\s*;")
_STRUCT_RE = re.compile(r"struct\s+(?P<name>\w+)\s*:\s*[\w:]+\s*\{(?P<body>.*?)\n\};", re.S)

#: Functions of hls4ml's nnet library the emulator implements.
SUPPORTED_FUNCTIONS = ("dense", "relu", "linear", "leaky_relu", "thresholded_relu", "normalize",
                       "softmax", "sigmoid", "tanh")


def read_project(hls_dir, interface: str = "parallel") -> tuple[dict, dict]:
    """Return ``(description, arrays)`` for the firmware in the hls4ml project ``hls_dir``."""
    hls_dir = Path(hls_dir)
    fw = hls_dir / "firmware"
    types = _read_typedefs((fw / "defines.h").read_text())
    configs = _read_configs((fw / "parameters.h").read_text())
    calls, top_in, n_in, n_out = _read_top((fw / "myproject.cpp").read_text())
    masks = _read_mask_functions(fw / "nnet_utils" / "nnet_code_gen.h")
    arrays: dict = {}
    layers = []
    for call in calls:
        if call["func"] in masks:
            layers.append(_describe_mask(call, masks[call["func"]], types, arrays))
        else:
            layers.append(_describe(call, types, configs, fw / "weights", arrays))
    input_type = _fixed(types, top_in)
    output_type = FixedType.from_dict(layers[-1]["result_type"]) if layers else input_type
    description = {
        "schema_version": 1,
        "interface": interface,
        "n_inputs": n_in,
        "n_outputs": n_out,
        "input_type": input_type.to_dict(),
        "output_type": output_type.to_dict(),
        "layers": layers,
    }
    return description, arrays


# ---------------------------------------------------------------------------------------- parsing
def _read_typedefs(text: str) -> dict:
    return {m["name"]: m["type"].strip() for m in _TYPEDEF_RE.finditer(text)}


def _read_configs(text: str) -> dict:
    configs = {}
    for m in _STRUCT_RE.finditer(text):
        body = m["body"]
        entry = {c["name"]: c["value"].strip() for c in _CONST_RE.finditer(body)}
        entry.update({f"type:{t['name']}": t["type"].strip() for t in _TYPEDEF_RE.finditer(body)})
        kernel = re.search(r"using\s+kernel\s*=\s*nnet::(\w+)<", body)
        product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)<", body)
        entry["kernel"] = kernel.group(1) if kernel else None
        entry["product"] = product.group(1) if product else None
        configs[m["name"]] = entry
    return configs


def _read_mask_functions(path: Path) -> dict:
    """Per-element quantizers that hls4ml generates for HGQ2 models: ``{function: [(type or None)]}``.

    Each line is ``out[i] = ap_fixed<...>(inp[i]);`` or, for an element quantized to zero bits,
    ``out[i] = 0;``.
    """
    if not path.is_file():
        return {}
    functions = {}
    for m in _MASK_FN_RE.finditer(path.read_text()):
        elements = {}
        for line in m["body"].splitlines():
            line = line.strip()
            if not line.startswith("out["):
                continue
            parsed = _MASK_LINE_RE.fullmatch(line)
            if not parsed or (parsed["inp"] is not None and parsed["inp"] != parsed["out"]):
                raise UnsupportedError(f"Cannot read the quantizer line {line!r} in {path}.")
            elements[int(parsed["out"])] = parsed["type"]
        if sorted(elements) != list(range(len(elements))):
            raise UnsupportedError(f"The quantizer {m['name']!r} in {path} does not set every element once.")
        functions[m["name"]] = [elements[i] for i in range(len(elements))]
    return functions


def _read_top(text: str):
    signature = re.search(r"void\s+myproject\s*\((?P<args>[^)]*)\)", text)
    if not signature:
        raise UnsupportedError("Could not find the top function 'myproject' in firmware/myproject.cpp.")
    ports = re.findall(r"(\w+)\s+(\w+)\[(\d+)\]", signature["args"])
    if len(ports) != 2:
        raise UnsupportedError(
            f"The top function has {len(ports)} array ports; only single-input, single-output models "
            "are supported."
        )
    (in_type, _, n_in), (_, _, n_out) = ports
    section = text.split("insert layers", 1)[-1]
    calls = []
    for line in section.splitlines():
        m = _CALL_RE.match(line)
        if m:
            calls.append({
                "func": m["func"],
                "targs": [a.strip() for a in _split_top(m["targs"])],
                "args": [a.strip() for a in _split_top(m["args"])],
                "name": m["name"],
            })
        elif line.strip().startswith("nnet::"):
            raise UnsupportedError(f"Cannot read the firmware call {line.strip()!r}.")
    return calls, in_type, int(n_in), int(n_out)


def _split_top(text: str):
    """Split on commas that are not inside <...>."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _fixed(types: dict, name: str) -> FixedType:
    seen = set()
    spelled = name
    while spelled in types and spelled not in seen:
        seen.add(spelled)
        spelled = types[spelled]
    if spelled in ("float", "double"):
        raise UnsupportedError(f"Type {name} is floating point ({spelled}); the emulator needs fixed-point types.")
    return FixedType.parse(spelled.replace(" ", ""))


def _config_type(types, config, key) -> FixedType:
    return _fixed(types, config[f"type:{key}"])


def _read_weights(weights_dir: Path, name: str, wtype: FixedType) -> np.ndarray:
    """The values the C simulation loads: each decimal token parsed as double, then cast."""
    path = weights_dir / f"{name}.txt"
    tokens = path.read_text().strip().split(",")
    values = np.array([float(t) for t in tokens if t.strip()], dtype=np.float64)
    return wtype.to_raw(values).astype(np.int64)


# ---------------------------------------------------------------------------------------- layers
def _describe_mask(call, elements: list, types: dict, arrays: dict) -> dict:
    """A per-element quantizer: each element cast to its own type (or to zero), then to the result."""
    name = call["name"]
    kinds = sorted({t for t in elements if t is not None})
    index = {t: k for k, t in enumerate(kinds)}
    arrays[f"{name}/type_index"] = np.array([index[t] if t else -1 for t in elements], dtype=np.int64)
    return {
        "name": name, "op": "quantize",
        "element_types": [FixedType.parse(t.replace(" ", "")).to_dict() for t in kinds],
        "data_type": _fixed(types, call["targs"][0]).to_dict(),
        "result_type": _fixed(types, call["targs"][1]).to_dict(),
    }


def _describe(call, types, configs, weights_dir, arrays) -> dict:
    func, targs, args, name = call["func"], call["targs"], call["args"], call["name"]
    if func not in SUPPORTED_FUNCTIONS:
        raise UnsupportedError(
            f"Layer {name!r} compiles to nnet::{func}, which the emulator does not implement; "
            f"supported: {', '.join(SUPPORTED_FUNCTIONS)}."
        )
    config = configs[targs[-1]]
    data_t, res_t = targs[0], targs[-2]
    layer = {"op": func, "name": name, "data_type": data_t, "result_type": res_t}
    if config.get("product") not in (None, "mult"):
        raise UnsupportedError(
            f"Layer {name!r} uses the '{config['product']}' product (binary/ternary weights), which "
            "the emulator does not implement; use weights of at least 3 bits."
        )
    if func == "dense":
        wtype, btype = _config_type(types, config, "weight_t"), _config_type(types, config, "bias_t")
        n_in, n_out = int(config["n_in"]), int(config["n_out"])
        w_name, b_name = args[2], args[3]
        strategy = config["strategy"].replace("nnet::", "")
        if strategy not in ("latency", "resource"):
            raise UnsupportedError(
                f"Layer {name!r} uses the '{strategy}' dense strategy; the emulator supports "
                "'latency' and 'resource'."
            )
        weights = _read_weights(weights_dir, w_name, wtype)
        # The Resource kernel reads a transposed (n_out, n_in) weight array.
        weights = weights.reshape(n_out, n_in).T if strategy == "resource" else weights.reshape(n_in, n_out)
        arrays[f"{name}/weight"] = np.ascontiguousarray(weights)
        arrays[f"{name}/bias"] = _read_weights(weights_dir, b_name, btype)
        layer.update(n_in=n_in, n_out=n_out, weight_type=wtype.to_dict(), bias_type=btype.to_dict(),
                     accum_type=_config_type(types, config, "accum_t").to_dict(),
                     strategy=strategy, reuse_factor=int(config["reuse_factor"]),
                     kernel=config.get("kernel"))
    elif func == "normalize":
        stype, btype = _config_type(types, config, "scale_t"), _config_type(types, config, "bias_t")
        n_scale = int(config["n_in"]) if int(config["n_filt"]) in (-1, 4294967295) else int(config["n_filt"])
        arrays[f"{name}/scale"] = _read_weights(weights_dir, args[2], stype)[:n_scale]
        arrays[f"{name}/bias"] = _read_weights(weights_dir, args[3], btype)[:n_scale]
        layer.update(scale_type=stype.to_dict(), bias_type=btype.to_dict())
    elif func in ("leaky_relu", "thresholded_relu"):
        param_t = _fixed(types, targs[1])
        layer["param"] = float(param_t.quantize(float(args[1])))
        layer["param_type"] = param_t.to_dict()
        layer["data_type"], layer["result_type"] = targs[0], targs[2]
    elif func in ("sigmoid", "tanh"):
        size = int(config["table_size"])
        if size & (size - 1):
            raise UnsupportedError(
                f"Layer {name!r}: table_size {size} is not a power of two; use e.g. 1024."
            )
        ttype = _config_type(types, config, "table_t")
        arrays[f"{name}/table"] = ttype.to_raw(tables.activation_table(func, size)).astype(np.int64)
        layer.update(table_size=size, table_type=ttype.to_dict())
    elif func == "softmax":
        _describe_softmax(layer, config, types, arrays)
    layer["data_type"] = _fixed(types, layer["data_type"]).to_dict()
    layer["result_type"] = _fixed(types, layer["result_type"]).to_dict()
    return layer


def _describe_softmax(layer, config, types, arrays) -> None:
    impl = config["implementation"].split("::")[-1]
    if impl not in ("stable", "latency"):
        raise UnsupportedError(
            f"Softmax layer {layer['name']!r} uses the '{impl}' implementation; the emulator supports "
            "'stable' and 'latency'."
        )
    if int(config.get("n_outer", 1)) != 1 or int(config.get("n_inner", 1)) != 1:
        raise UnsupportedError(f"Softmax layer {layer['name']!r} over a non-last axis is not supported.")
    exp_size, inv_size = int(config["exp_table_size"]), int(config["inv_table_size"])
    exp_t = _config_type(types, config, "exp_table_t")
    inv_t = _config_type(types, config, "inv_table_t")
    inv_inp_t = _config_type(types, config, "inv_inp_t")
    accum_t = _config_type(types, config, "accum_t")
    data_t = _fixed(types, layer["data_type"])
    index_t = _config_type(types, config, "inp_norm_t") if impl == "stable" else data_t
    exp_scale = float(config.get("exp_scale", "1.0").rstrip("f"))
    arrays[f"{layer['name']}/exp_table"] = exp_t.to_raw(
        tables.softmax_exp_table(index_t, exp_size, exp_scale, negate=impl == "stable")).astype(np.int64)
    arrays[f"{layer['name']}/inv_table"] = inv_t.to_raw(
        tables.softmax_inv_table(inv_inp_t, inv_size)).astype(np.int64)
    layer.update(implementation=impl, exp_table_size=exp_size, inv_table_size=inv_size,
                 exp_table_type=exp_t.to_dict(), inv_table_type=inv_t.to_dict(),
                 inv_inp_type=inv_inp_t.to_dict(), accum_type=accum_t.to_dict(),
                 index_type=index_t.to_dict(), exp_scale=exp_scale)
