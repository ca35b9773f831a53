"""The registry of firmware operations: one class per op, found by op name or by C++ function.

An op class (a subclass of :class:`Op`, registered with :func:`register_op`) is the one place
that knows an operation of the generated firmware:

* ``ops``: the op names it writes into the firmware description (``layer["op"]``);
* ``functions``: the C++ functions of the generated code it implements (hls4ml's ``nnet::``
  functions); :meth:`Op.claims` may also claim functions that the generator names itself;
* ``fields``: the description fields it writes and reads, beside the common ``name``, ``op``,
  ``data_type`` and ``result_type``, each a :class:`Field` of a kind (a fixed-point type, an
  int, a float, a string, a list of types);
* ``arrays``: its arrays in ``firmware.npz`` (``"<layer>/<key>"``), each with the type field
  that gives the stored integers their values (``None``: stored as they are);
* :meth:`Op.read`: how its fields and arrays are read from the generated code, given a
  :class:`~fastml_lab.firmware.reader.ReadContext` (typedefs, config structs, call arguments,
  weight files, the arrays being written);
* ``__init__`` (from a description and its arrays: generic, from ``fields`` and ``arrays``),
  :meth:`Op.check_exact`, :meth:`Op.compute` and :meth:`Op.cast`, and optionally
  :meth:`Op.fused_with` (one pass for this op and the next);
* what the cost model reads (:mod:`fastml_lab.estimate.model`): ``weight_matrix`` (the array of
  the weights it multiplies by, if any), :meth:`Op.output_widths` (the widths of the values it
  passes on) and :meth:`Op.price` (the hardware hls4ml builds for it, priced by the model's
  ``Pricing`` it is handed; an op without a price is refused by name).

Adding an op is one class in one module under ``fastml_lab/firmware/ops/``, decorated with
``@register_op``; the emulator's known ops and the reader's supported functions follow.

**Another model family.** A family whose firmware another generator writes (boosted decision
trees from conifer, say: one ensemble op) is added the same way: an ``Ensemble`` op class with
``ops = ("bdt_ensemble",)``, its fields (the score and threshold types, the splitting
convention) and arrays (features, thresholds, children and leaf values of every tree), whose
``read`` parses conifer's ``parameters.h`` through a ``ReadContext`` made for that project, and
whose ``compute`` walks the trees and sums the scores as conifer's HLS does. A small reader for
that family (next to :func:`fastml_lab.firmware.reader.read_project`) writes a description whose
``layers`` hold that one op; :class:`~fastml_lab.emulator.Firmware` then loads, checks, saves,
digests and runs it without a change.

Numpy only: this module runs on the board.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import UnsupportedError
from ..fixed import MAX_EXACT_WIDTH, FixedType

TYPE, TYPES, INT, FLOAT, STR = "type", "types", "int", "float", "str"
_REQUIRED = object()
#: Fields every op writes: its layer name, op name, input and result types.
COMMON_FIELDS = ("name", "op", "data_type", "result_type")

_BY_OP: dict = {}
_BY_FUNCTION: dict = {}
_CLASSES: list = []


@dataclass(frozen=True)
class Field:
    """A description field of one kind; ``default`` makes it optional when reading old files."""

    kind: str
    default: object = _REQUIRED

    def decode(self, value):
        if value is None:
            return None
        if self.kind == TYPE:
            return FixedType.from_dict(value)
        if self.kind == TYPES:
            return [FixedType.from_dict(v) for v in value]
        return {INT: int, FLOAT: float, STR: str}[self.kind](value)

    def encode(self, value):
        if value is None:
            return None
        if self.kind == TYPE:
            return FixedType.parse(value).to_dict() if not isinstance(value, dict) else dict(value)
        if self.kind == TYPES:
            return [FixedType.parse(v).to_dict() if not isinstance(v, dict) else dict(v) for v in value]
        return {INT: int, FLOAT: float, STR: str}[self.kind](value)


class Op:
    """One operation of the firmware: a layer of the emulator. See the module docstring."""

    ops: tuple = ()
    functions: tuple = ()
    fields: dict = {}
    arrays: dict = {}
    #: Words for the functions :meth:`claims` takes beyond ``functions`` (for error messages).
    also_reads: str = ""
    #: The array holding the (n_in, n_out) matrix the layer multiplies its inputs by (None: it has
    #: none). Such a layer has ``n_in``, ``n_out``, a reuse factor and a strategy, and its products
    #: are what the fit estimate counts.
    weight_matrix: str | None = None
    #: Op names the emulator does not run that the cost model prices with this class's :meth:`price`.
    also_priced: tuple = ()

    def __init__(self, spec: dict, arrays: dict):
        self.name = spec["name"]
        self.op = spec["op"]
        self.spec = spec
        self.data_type = FixedType.from_dict(spec["data_type"])
        self.result_type = FixedType.from_dict(spec["result_type"])
        for key in self.fields:
            setattr(self, key, self.decoded(spec, key))
        self.raw_arrays = {}
        for key, type_field in self.arrays.items():
            raw = np.asarray(arrays[f"{self.name}/{key}"])
            self.raw_arrays[key] = raw
            setattr(self, key, getattr(self, type_field).from_raw(raw) if type_field else raw)

    # ------------------------------------------------------------------ the description
    @classmethod
    def decoded(cls, spec: dict, key: str):
        """Field ``key`` of ``spec`` decoded (a FixedType for a type); its default when absent."""
        field = cls.fields.get(key) or (Field(TYPE) if key in ("data_type", "result_type") else None)
        if field is None:
            raise KeyError(f"{cls.__name__} has no field {key!r}.")
        if key in spec:
            return field.decode(spec[key])
        if field.default is _REQUIRED:
            raise KeyError(f"{spec.get('name')}: {key}")
        return field.default

    @classmethod
    def op_name(cls, call) -> str:
        """The op name a call of ``call.func`` gets in the description."""
        return call.func if call.func in cls.ops else cls.ops[0]

    @classmethod
    def claims(cls, call, ctx) -> bool:
        """Whether this op implements ``call``; by default, the functions it lists."""
        return call.func in cls.functions

    @classmethod
    def read(cls, call, ctx) -> dict:
        """This op's fields for ``call`` (types as FixedType or text); its arrays go to ``ctx.arrays``.

        The common fields come first: ``data_type`` is the call's first template argument and
        ``result_type`` the one before its config struct; an op may replace them.
        """
        return {"data_type": ctx.fixed(call.targs[0]), "result_type": ctx.fixed(call.targs[-2])}

    @classmethod
    def encode(cls, spec: dict) -> dict:
        """``spec`` with its values in the description's JSON form; refuses undeclared fields."""
        common = Field(TYPE)
        out = {}
        for key, value in spec.items():
            if key in ("name", "op"):
                out[key] = str(value)
            elif key in ("data_type", "result_type"):
                out[key] = common.encode(value)
            elif key in cls.fields:
                out[key] = cls.fields[key].encode(value)
            else:
                raise TypeError(f"Op {cls.__name__} wrote the field {key!r}, which it does not declare.")
        missing = [k for k in (*COMMON_FIELDS, *cls.fields) if k not in out
                   and (k in COMMON_FIELDS or cls.fields[k].default is _REQUIRED)]
        if missing:
            raise TypeError(f"Op {cls.__name__} did not write its field(s) {', '.join(missing)}.")
        return out

    def describe(self) -> tuple:
        """``(spec, arrays)`` of this layer, as :meth:`read` writes them."""
        spec = {"name": self.name, "op": self.op, "data_type": self.data_type, "result_type": self.result_type}
        spec.update({key: getattr(self, key) for key in self.fields})
        arrays = {f"{self.name}/{key}": raw for key, raw in self.raw_arrays.items()}
        return self.encode(spec), arrays

    # ------------------------------------------------------------------ running
    def check_exact(self, x_type: FixedType) -> None:
        """Refuse the layer if float64 cannot follow its arithmetic exactly for inputs of ``x_type``."""
        require_width(self.name, "result", self.result_type)

    def compute(self, x: np.ndarray) -> np.ndarray:
        """The layer's values before the cast to its result type."""
        raise NotImplementedError

    def cast(self, values: np.ndarray) -> np.ndarray:
        return self.result_type.quantize(values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.cast(self.compute(x))

    def counting(self, x: np.ndarray):
        """``(output, number of values that overflowed the result type)``."""
        values = self.compute(x)
        return self.cast(values), int(self.result_type.overflows(values).sum())

    def fused_with(self, following: "Op"):
        """A function computing ``following(self(x))`` in one pass, or None (run one after the other)."""
        return None

    # ------------------------------------------------------------------ pricing
    @classmethod
    def weights(cls, spec: dict, arrays: dict):
        """The ``weight_matrix`` as exact values, float64 (n_in, n_out); None for an op without one."""
        if cls.weight_matrix is None:
            return None
        raw = np.asarray(arrays[f"{spec['name']}/{cls.weight_matrix}"])
        return np.asarray(cls.decoded(spec, cls.arrays[cls.weight_matrix]).from_raw(raw), dtype=np.float64)

    @classmethod
    def output_widths(cls, spec: dict, arrays: dict, widths: np.ndarray) -> np.ndarray:
        """The width in bits of each value the layer passes on, given those of its inputs: by
        default one value per input, as wide as the result type."""
        return np.full(len(widths), cls.decoded(spec, "result_type").width)

    @classmethod
    def price(cls, spec: dict, arrays: dict, cost):
        """The layer's :class:`~fastml_lab.estimate.model.LayerCost`. ``cost`` is the cost model at
        one target for this layer (:class:`~fastml_lab.estimate.model.Pricing`); the op says which
        hardware hls4ml builds for it and hands over its facts. An op without a price is refused."""
        raise UnsupportedError(f"Layer {spec['name']!r} has op {spec['op']!r}, which the cost model cannot price: "
                               f"{cls.__name__} has no price.")


def register_op(cls):
    """Class decorator: register ``cls`` under its op names and functions."""
    if not cls.ops:
        raise TypeError(f"{cls.__name__} names no op.")
    for name in cls.ops:
        if name in _BY_OP and _BY_OP[name] is not cls:
            raise TypeError(f"Op {name!r} is already registered by {_BY_OP[name].__name__}.")
        _BY_OP[name] = cls
    for func in cls.functions:
        if func in _BY_FUNCTION and _BY_FUNCTION[func] is not cls:
            raise TypeError(f"Function {func!r} is already registered by {_BY_FUNCTION[func].__name__}.")
        _BY_FUNCTION[func] = cls
    if cls not in _CLASSES:
        _CLASSES.append(cls)
    return cls


def unregister_op(cls) -> None:
    """Remove an op class added with :func:`register_op` (for tests and notebooks that add their own)."""
    for table in (_BY_OP, _BY_FUNCTION):
        for key in [key for key, value in table.items() if value is cls]:
            del table[key]
    if cls in _CLASSES:
        _CLASSES.remove(cls)


def known_ops() -> tuple:
    """Op names the emulator runs, sorted."""
    return tuple(sorted(_BY_OP))


def supported_functions() -> tuple:
    """C++ functions the registered ops implement, in registration order."""
    return tuple(_BY_FUNCTION)


def op_classes() -> tuple:
    """Every registered op class, in registration order."""
    return tuple(_CLASSES)


def op_class(op: str):
    """The class registered for op name ``op`` (KeyError if none)."""
    return _BY_OP[op]


def pricing_class(spec: dict):
    """The class whose :meth:`Op.price` prices layer ``spec``: its op's, or the one that lists the op
    in ``also_priced``; UnsupportedError naming the layer and the op otherwise."""
    op = spec.get("op")
    cls = _BY_OP.get(op) or next((c for c in _CLASSES if op in c.also_priced), None)
    if cls is None:
        raise UnsupportedError(f"Layer {spec.get('name')!r} has op {op!r}, which the cost model cannot price; "
                               f"known: {', '.join(known_ops())}.")
    return cls


def op_for_call(call, ctx):
    """The class that implements ``call``, or UnsupportedError naming the supported functions."""
    cls = _BY_FUNCTION.get(call.func)
    if cls is None:
        cls = next((c for c in _CLASSES if c.claims(call, ctx)), None)
    if cls is None:
        extra = "".join(f"; also {c.also_reads}" for c in _CLASSES if c.also_reads)
        raise UnsupportedError(
            f"Layer {call.name!r} compiles to nnet::{call.func}, which the emulator does not implement; "
            f"supported: {', '.join(supported_functions())}{extra}."
        )
    return cls


def build_layer(spec: dict, arrays: dict) -> Op:
    """The layer for one entry of the description's ``layers``."""
    cls = _BY_OP.get(spec.get("op"))
    if cls is None:
        raise UnsupportedError(
            f"Layer {spec.get('name')!r} has operation {spec.get('op')!r}, which this emulator does not "
            f"know; known: {', '.join(known_ops())}."
        )
    return cls(spec, arrays)


def require_width(layer: str, slot: str, t: FixedType) -> None:
    if t.width > MAX_EXACT_WIDTH:
        raise UnsupportedError(
            f"Layer {layer!r}: the {slot} type {t} is {t.width} bits wide; exact emulation holds at most "
            f"{MAX_EXACT_WIDTH} bits. Choose a narrower type in the precision plan."
        )
