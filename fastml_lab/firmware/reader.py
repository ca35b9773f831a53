"""Read a written hls4ml project back into the emulator's description of the firmware.

The source of truth is the C++ that hls4ml wrote: the call sequence in ``firmware/myproject.cpp``,
the configuration structs in ``parameters.h``, the typedefs in ``defines.h`` and the weight files
the C simulation loads. Whatever the firmware computes is read from there, so the emulator cannot
drift from hls4ml's own choices (derived table sizes, fused batch norms, inferred types).

This module holds the generic parsing (plain text and regular expressions); what each call means
is read by the op class registered for it (:mod:`fastml_lab.firmware.registry`). Numpy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import UnsupportedError
from ..fixed import FixedType
from . import ops as _ops  # noqa: F401  (registers every op)
from .registry import op_for_call

_CALL_RE = re.compile(r"^\s*nnet::(?P<func>\w+)<(?P<targs>[^>]*(?:<[^>]*>[^>]*)*)>\((?P<args>[^;]*)\);\s*//\s*(?P<name>\S+)")
_TYPEDEF_RE = re.compile(r"typedef\s+(?P<type>.+?)\s+(?P<name>\w+)\s*;")
_CONST_RE = re.compile(r"static\s+(?:const|constexpr)\s+[\w:]+\s+(?P<name>\w+)\s*=\s*(?P<value>[^;]+);")
_STRUCT_RE = re.compile(r"struct\s+(?P<name>\w+)\s*:\s*[\w:]+\s*\{(?P<body>.*?)\n\};", re.S)
#: io_stream's element type: ``nnet::array<T, N>`` (a word of N values of type T).
_PACKED_RE = re.compile(r"^nnet::array<\s*(?P<type>.+)\s*,\s*(?P<size>[\d\s*]+)>$")
_ARRAY_PORT_RE = re.compile(r"(\w+)\s+(\w+)\[(?P<size>[\d\s*]+)\]")
_STREAM_PORT_RE = re.compile(r"hls::stream<\s*(\w+)\s*>\s*&\s*(\w+)")
_BRIDGE_SIZE_RE = re.compile(r"nnet::convert_data<\s*(?P<src>\w+)\s*,\s*(?P<dst>\w+)\s*,\s*(?P<size>[\d\s*]+)>")


@dataclass(frozen=True)
class Call:
    """One call of the top function: ``nnet::func<targs>(args); // name``."""

    func: str
    targs: list
    args: list
    name: str


class ReadContext:
    """What an op's :meth:`~fastml_lab.firmware.registry.Op.read` may look at in one project."""

    def __init__(self, firmware_dir: Path, typedefs: dict, configs: dict):
        self.firmware_dir = Path(firmware_dir)
        self.weights_dir = self.firmware_dir / "weights"
        self.typedefs = typedefs
        self.configs = configs
        #: The arrays being written, ``{"<layer>/<key>": stored integers}``.
        self.arrays: dict = {}
        #: Per-project memo for op readers (e.g. functions parsed from a generated header).
        self.cache: dict = {}

    def fixed(self, name: str) -> FixedType:
        """The fixed-point type a typedef name (or a spelled type) stands for."""
        seen = set()
        spelled = name
        while spelled in self.typedefs and spelled not in seen:
            seen.add(spelled)
            spelled = self.typedefs[spelled]
        packed = _PACKED_RE.match(spelled.strip())
        if packed:
            return self.fixed(packed["type"].strip())
        if spelled in ("float", "double"):
            raise UnsupportedError(f"Type {name} is floating point ({spelled}); the emulator needs fixed-point types.")
        return FixedType.parse(spelled.replace(" ", ""))

    def is_stream(self, name: str) -> bool:
        """Whether a typedef name is an io_stream word (``nnet::array<T, N>``)."""
        return bool(_PACKED_RE.match(self.typedefs.get(name, name).strip()))

    def config(self, call: Call) -> dict:
        """The config struct named by the call's last template argument."""
        return self.configs[call.targs[-1]]

    def config_type(self, call: Call, key: str) -> FixedType:
        """The type ``key`` (e.g. ``weight_t``) declared inside the call's config struct."""
        return self.fixed(self.config(call)[f"type:{key}"])

    def weights(self, file_name: str, t: FixedType) -> np.ndarray:
        """The integers the C simulation stores: each decimal token of ``weights/<file_name>.txt``
        parsed as double, then cast to ``t``."""
        tokens = (self.weights_dir / f"{file_name}.txt").read_text().strip().split(",")
        values = np.array([float(tok) for tok in tokens if tok.strip()], dtype=np.float64)
        return t.to_raw(values).astype(np.int64)

    def text(self, relative: str) -> "str | None":
        """A file of the firmware folder as text, or None if the generator did not write it."""
        path = self.firmware_dir / relative
        return path.read_text() if path.is_file() else None


def read_project(hls_dir, interface: str = "parallel", input_shape=None) -> tuple:
    """Return ``(description, arrays)`` for the firmware in the hls4ml project ``hls_dir``.

    ``input_shape`` (an event's shape, e.g. ``(8, 8, 1)`` for an image; default: flat) is recorded
    in the description: the emulator and the overlays accept events of that shape.
    """
    fw = Path(hls_dir) / "firmware"
    ctx = ReadContext(fw, read_typedefs((fw / "defines.h").read_text()),
                      read_configs((fw / "parameters.h").read_text()))
    bridge = Path(hls_dir) / "myproject_bridge.cpp"
    calls, top_in, n_in, n_out = read_top((fw / "myproject.cpp").read_text(),
                                          bridge.read_text() if bridge.is_file() else None)
    layers = [describe_call(call, ctx) for call in calls]
    input_type = ctx.fixed(top_in)
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
    shape = _input_shape(input_shape, n_in)
    if len(shape) > 1:
        description["input_shape"] = shape
    if ctx.is_stream(top_in):
        description["io_type"] = "io_stream"
    return description, ctx.arrays


def describe_call(call: Call, ctx: ReadContext) -> dict:
    """The description of one call, read by the op class registered for it."""
    cls = op_for_call(call, ctx)
    config = ctx.configs.get(call.targs[-1]) if call.targs else None
    if config and config.get("product") not in (None, "mult"):
        raise UnsupportedError(
            f"Layer {call.name!r} uses the '{config['product']}' product (binary/ternary weights), which "
            "the emulator does not implement; use weights of at least 3 bits."
        )
    spec = {"name": call.name, "op": cls.op_name(call)}
    spec.update(cls.read(call, ctx))
    return cls.encode(spec)


# ---------------------------------------------------------------------------------------- parsing
def read_typedefs(text: str) -> dict:
    return {m["name"]: m["type"].strip() for m in _TYPEDEF_RE.finditer(text)}


def read_configs(text: str) -> dict:
    """``{struct name: {constant: value, "type:<name>": type, "kernel": ..., "product": ...}}``."""
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


def _product(text: str) -> int:
    """An array size as hls4ml spells it (``8*8*1``)."""
    return math.prod(int(factor) for factor in text.split("*"))


def _input_shape(shape, n_in: int) -> list:
    if shape is None:
        return [int(n_in)]
    shape = [int(d) for d in shape]
    if math.prod(shape) != n_in:
        raise UnsupportedError(f"The input shape {tuple(shape)} does not hold the firmware's {n_in} inputs.")
    return shape


def read_top(text: str, bridge: "str | None" = None):
    """``(calls, input type name, n_inputs, n_outputs)`` of the top function ``myproject``.

    io_parallel ports are arrays (``input_t x[8*8*1]``); io_stream ports are streams, whose sizes
    are read from the C simulation's bridge (``bridge``: ``myproject_bridge.cpp``).
    """
    signature = re.search(r"void\s+myproject\s*\((?P<args>[^)]*)\)", text)
    if not signature:
        raise UnsupportedError("Could not find the top function 'myproject' in firmware/myproject.cpp.")
    ports = [(t, n, _product(size)) for t, n, size in _ARRAY_PORT_RE.findall(signature["args"])]
    if not ports:
        streams = _STREAM_PORT_RE.findall(signature["args"])
        # The bridge converts the caller's doubles into the input stream and the output stream back.
        sizes = [(m["src"], m["dst"], _product(m["size"])) for m in _BRIDGE_SIZE_RE.finditer(bridge or "")]
        into = {size for src, _, size in sizes if src in ("float", "double")}
        out_of = {size for _, dst, size in sizes if dst in ("float", "double")}
        if len(streams) == 2 and len(into) == 1 and len(out_of) == 1:
            ports = [(streams[0][0], streams[0][1], into.pop()), (streams[1][0], streams[1][1], out_of.pop())]
    if len(ports) != 2:
        raise UnsupportedError(
            f"The top function has {len(ports)} readable ports; only single-input, single-output models "
            "are supported."
        )
    (in_type, _, n_in), (_, _, n_out) = ports
    section = text.split("insert layers", 1)[-1]
    calls = []
    for line in section.splitlines():
        m = _CALL_RE.match(line)
        if m:
            calls.append(Call(m["func"], [a.strip() for a in split_top(m["targs"])],
                              [a.strip() for a in split_top(m["args"])], m["name"]))
        elif line.strip().startswith("nnet::"):
            raise UnsupportedError(f"Cannot read the firmware call {line.strip()!r}.")
    return calls, in_type, int(n_in), int(n_out)


def split_top(text: str) -> list:
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
