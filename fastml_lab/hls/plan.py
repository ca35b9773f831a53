"""Precision plans: the fixed-point type of every quantity in every layer, decided before export.

A plan names a default type and, per layer, overrides for ``weight``, ``bias``, ``accum``,
``result`` (and, for table-based activations, ``table``). :meth:`PrecisionPlan.resolve` turns it
into a complete table with no ``'auto'`` left, which the export hands to hls4ml and records in the
project. The accumulator defaults to ``"exact"``: wide enough to hold the whole dot product
without rounding or overflow, as hls4ml's own precision inference would choose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .._io import read_json
from ..boards import DEFAULT_PRECISION
from ..exceptions import ConfigError
from ..fixed import MAX_EXACT_WIDTH, FixedType

#: Quantities a plan may set for a layer.
SLOTS = ("weight", "bias", "accum", "result", "table")
#: hls4ml's defaults for the softmax tables (exp and 1/x), kept explicit here.
SOFTMAX_TABLE = FixedType(18, 8, True, "RND", "SAT")
ACTIVATION_TABLE = FixedType(18, 8)
EXACT = "exact"


@dataclass
class PrecisionPlan:
    """Fixed-point types for a model's input and layers.

    ``layers`` maps a Keras layer name to ``{slot: type}``; types are ``FixedType`` or strings
    such as ``"ap_fixed<8,3,AP_RND,AP_SAT>"``. ``accum`` may be ``"exact"``.
    """

    default: FixedType = field(default_factory=lambda: FixedType.parse(DEFAULT_PRECISION))
    input: FixedType | None = None
    accum: "FixedType | str" = EXACT
    layers: dict = field(default_factory=dict)

    def __post_init__(self):
        self.default = FixedType.parse(self.default)
        self.input = FixedType.parse(self.input) if self.input is not None else None
        if self.accum != EXACT:
            self.accum = FixedType.parse(self.accum)
        clean = {}
        for name, slots in (self.layers or {}).items():
            if not isinstance(slots, dict):
                raise ConfigError(f"Plan entry for layer {name!r} must map slots to types; got {slots!r}.")
            unknown = set(slots) - set(SLOTS)
            if unknown:
                raise ConfigError(
                    f"Plan entry for layer {name!r} has unknown slot(s) {sorted(unknown)}; "
                    f"valid slots: {', '.join(SLOTS)}."
                )
            clean[name] = {k: _slot_value(name, k, v) for k, v in slots.items()}
        self.layers = clean

    # ------------------------------------------------------------------ constructors
    @classmethod
    def uniform(cls, precision=DEFAULT_PRECISION, accum=EXACT) -> "PrecisionPlan":
        """One type for inputs, weights, biases and results."""
        return cls(default=FixedType.parse(precision), accum=accum)

    @classmethod
    def from_data(cls, model, X, width: int = 16, margin_bits: int = 1, sample: int = 20000,
                  weight_width: int | None = None) -> "PrecisionPlan":
        """Choose integer bits per layer so that the observed ranges on ``X`` fit.

        Each layer's result (and the input) gets ``width`` bits, with integer bits covering the
        largest magnitude seen plus ``margin_bits``; weights and biases get ``weight_width`` bits
        (default ``width``) covering their largest magnitude.
        """
        import numpy as np

        from .keras_model import dense_like_weights, hls_layer_outputs

        X = np.asarray(X, dtype=np.float32)[:sample]
        weight_width = weight_width or width
        plan = cls(default=FixedType(width, _int_bits(np.abs(X).max(), margin_bits)))
        plan.input = FixedType(width, _int_bits(np.abs(X).max(), margin_bits))
        for name, out in hls_layer_outputs(model, X).items():
            plan.layers.setdefault(name, {})["result"] = FixedType(width, _int_bits(np.abs(out).max(), margin_bits))
        for name, (w, b) in dense_like_weights(model).items():
            slots = plan.layers.setdefault(name, {})
            slots["weight"] = FixedType(weight_width, _int_bits(np.abs(w).max(), 0))
            if b is not None:
                slots["bias"] = FixedType(weight_width, _int_bits(np.abs(b).max(), 0))
        return plan

    # ------------------------------------------------------------------ lookup
    def type_for(self, layer: str, slot: str) -> "FixedType | str":
        """The type of ``slot`` in ``layer``: its override, else the plan-wide default."""
        if slot not in SLOTS:
            raise ConfigError(f"Unknown slot {slot!r}; valid slots: {', '.join(SLOTS)}.")
        override = self.layers.get(layer, {}).get(slot)
        if override is not None:
            return override
        if slot == "accum":
            return self.accum
        return self.default

    def input_type(self) -> FixedType:
        return self.input or self.default

    def check_layers(self, names) -> None:
        """Refuse overrides for layers the model does not have (a typo would be silently ignored)."""
        unknown = sorted(set(self.layers) - set(names))
        if unknown:
            raise ConfigError(
                f"The plan names layer(s) {unknown} that the model does not have; "
                f"the model's layers are: {', '.join(names)}."
            )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        def dump(t):
            return t if t == EXACT else t.to_hls()

        return {
            "default": self.default.to_hls(),
            "input": self.input.to_hls() if self.input else None,
            "accum": dump(self.accum),
            "layers": {n: {k: dump(v) for k, v in s.items()} for n, s in self.layers.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PrecisionPlan":
        unknown = set(d) - {"default", "input", "accum", "layers"}
        if unknown:
            raise ConfigError(
                f"Unknown plan key(s) {sorted(unknown)}; valid keys: default, input, accum, layers."
            )
        return cls(default=d.get("default", DEFAULT_PRECISION), input=d.get("input"),
                   accum=d.get("accum", EXACT), layers=d.get("layers", {}))

    def save(self, path) -> None:
        from .._io import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "PrecisionPlan":
        path = Path(path)
        data = read_json(path, "the plan file", ConfigError)
        if not isinstance(data, dict):
            raise ConfigError(f"Plan file {path} must hold a JSON object.")
        return cls.from_dict(data)


def exact_accumulator(x: FixedType, w: FixedType, b: FixedType | None, n_terms: int) -> FixedType:
    """A signed type that holds ``bias + sum(x_i * w_i)`` over ``n_terms`` without loss.

    Signed and unsigned operands alike: an unsigned type's integer bits are all magnitude.
    """
    frac = x.fractional + w.fractional
    if b is not None:
        frac = max(frac, b.fractional)
    growth = math.ceil(math.log2(n_terms + 1))
    integer = _magnitude_bits(x) + _magnitude_bits(w) + 2 + growth
    if b is not None:
        integer = max(integer, _magnitude_bits(b) + 2)
    width = integer + frac
    if width > MAX_EXACT_WIDTH:
        raise ConfigError(
            f"An exact accumulator for {x} x {w} over {n_terms} terms needs {width} bits, more than "
            f"the {MAX_EXACT_WIDTH} that can be emulated exactly; narrow the input or weight types "
            "or set an explicit 'accum' type in the plan."
        )
    return FixedType(width, integer)


def sum_type(x: FixedType, n_terms: int) -> FixedType:
    """A type of ``x``'s signedness and fractional bits that holds the sum of ``n_terms`` values of ``x``."""
    growth = math.ceil(math.log2(n_terms)) if n_terms > 1 else 0
    width = x.width + growth
    if width > MAX_EXACT_WIDTH:
        raise ConfigError(f"A sum of {n_terms} values of {x} needs {width} bits, more than the {MAX_EXACT_WIDTH} "
                          "that can be emulated exactly; narrow the type or set an explicit 'accum' in the plan.")
    return FixedType(width, x.integer + growth, x.signed)


def _magnitude_bits(t: FixedType) -> int:
    """``m`` such that every value of ``t`` has magnitude at most ``2**m`` (the sign bit excluded)."""
    return t.integer - 1 if t.signed else t.integer


def _slot_value(layer: str, slot: str, value):
    if value == EXACT:
        if slot != "accum":
            raise ConfigError(
                f"Plan entry for layer {layer!r}: {slot!r} cannot be 'exact'; only 'accum' can "
                "(give a type such as 'ap_fixed<16,6>')."
            )
        return value
    return FixedType.parse(value)


def _int_bits(max_abs: float, margin: int) -> int:
    """Integer bits (sign included) that hold ``max_abs``."""
    if not math.isfinite(max_abs):
        raise ConfigError("Cannot derive a precision from non-finite values (NaN or inf in the data).")
    if max_abs <= 0:
        return 1
    return max(1, math.floor(math.log2(max_abs)) + 2 + margin)


def as_plan(plan=None, precision=None) -> PrecisionPlan:
    """Normalise the ways a plan can be given: a plan, a dict, a JSON path, or one precision."""
    if plan is not None and precision is not None:
        raise ConfigError("Give either a plan or a single precision, not both.")
    if plan is None:
        return PrecisionPlan.uniform(precision or DEFAULT_PRECISION)
    if isinstance(plan, PrecisionPlan):
        return plan
    if isinstance(plan, dict):
        return PrecisionPlan.from_dict(plan)
    if isinstance(plan, (str, Path)):
        return PrecisionPlan.load(plan)
    raise ConfigError(f"A plan must be a PrecisionPlan, a dict or a JSON file path; got {type(plan).__name__}.")
