"""Fixed-point types as Vivado/Vitis HLS defines them (``ap_fixed``, ``ap_ufixed``, ``ap_int``).

:class:`FixedType` is the one description of a precision in fastml_lab: the precision plan, the
emulator, the overlay's packing and the manifests all read and write it. Values are held as float64
arrays of real numbers; every value of a type up to 53 bits wide is exact in float64, and
:meth:`FixedType.quantize` reproduces the C++ conversion bit for bit: first the quantization mode
(rounding of the dropped fraction bits), then the overflow mode on the rounded value.

Numpy only: this module runs on the board.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .exceptions import ConfigError, UnsupportedError

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

#: Widest type the float64 value representation holds exactly.
MAX_EXACT_WIDTH = 53

_TYPE_RE = re.compile(
    r"^\s*(?:ap_)?(?P<kind>u?fixed|u?int)\s*<\s*(?P<args>[^<>]*)>\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed<width, integer, rounding, overflow>`` type (``signed=False`` for ap_ufixed).

    ``integer`` counts the integer bits including the sign bit, as in HLS; it may be negative or
    larger than ``width``. ``fractional = width - integer``.
    """

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self):
        if not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise ConfigError(f"A fixed-point width must be a positive integer; got {self.width!r}.")
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(
                f"Unknown rounding mode {self.rounding!r} in {self}; valid: {', '.join(ROUNDING_MODES)}."
            )
        if self.overflow not in OVERFLOW_MODES:
            raise ConfigError(
                f"Unknown overflow mode {self.overflow!r}; valid: {', '.join(OVERFLOW_MODES)}."
            )

    # ------------------------------------------------------------------ parsing and printing
    @classmethod
    def parse(cls, text: "str | FixedType") -> "FixedType":
        """Parse ``ap_fixed<16,6>``, ``fixed<8,3,RND,SAT>``, ``ap_ufixed<8,0>``, ``ap_int<8>``.

        Modes may carry the ``AP_`` prefix. A fourth saturation-bits argument must be 0.
        """
        if isinstance(text, FixedType):
            return text
        match = _TYPE_RE.match(str(text))
        if not match:
            raise ConfigError(
                f"Cannot read the precision {text!r}; expected e.g. 'ap_fixed<16,6>', "
                "'ap_fixed<8,3,AP_RND,AP_SAT>', 'ap_ufixed<8,0>' or 'ap_int<8>'."
            )
        kind = match["kind"].lower()
        args = [a.strip() for a in match["args"].split(",") if a.strip()]
        signed = not kind.startswith("u")
        try:
            if kind.endswith("int"):
                if len(args) != 1:
                    raise ValueError
                width = int(args[0])
                return cls(width, width, signed)
            if len(args) < 2 or len(args) > 5:
                raise ValueError
            width, integer = int(args[0]), int(args[1])
        except ValueError:
            raise ConfigError(
                f"Cannot read the precision {text!r}: wrong number or kind of arguments; expected "
                "'ap_fixed<W,I>' with optional rounding and overflow modes, or 'ap_int<W>'."
            ) from None
        modes = [a.upper().removeprefix("AP_") for a in args[2:]]
        rounding = modes[0] if len(modes) > 0 else "TRN"
        overflow = modes[1] if len(modes) > 1 else "WRAP"
        if len(modes) > 2 and modes[2] != "0":
            raise UnsupportedError(
                f"Saturation bits other than 0 are not supported (in {text!r})."
            )
        if rounding not in ROUNDING_MODES:
            raise ConfigError(
                f"Unknown rounding mode {modes[0]!r} in {text!r}; valid: AP_" + ", AP_".join(ROUNDING_MODES) + "."
            )
        if overflow not in OVERFLOW_MODES:
            raise ConfigError(
                f"Unknown overflow mode {modes[1]!r} in {text!r}; valid: AP_" + ", AP_".join(OVERFLOW_MODES) + "."
            )
        return cls(width, integer, signed, rounding, overflow)

    def __str__(self) -> str:
        return self.to_hls()

    def to_hls(self) -> str:
        """The C++ type, e.g. ``ap_fixed<16,6,AP_RND,AP_SAT>`` (default modes are left out)."""
        name = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer)]
        if self.rounding != "TRN" or self.overflow != "WRAP":
            args += [f"AP_{self.rounding}", f"AP_{self.overflow}"]
        return f"{name}<{','.join(args)}>"

    def to_hls4ml(self) -> str:
        """The spelling hls4ml's configuration expects, e.g. ``fixed<16,6,RND,SAT>``."""
        name = "fixed" if self.signed else "ufixed"
        args = [str(self.width), str(self.integer)]
        if self.rounding != "TRN" or self.overflow != "WRAP":
            args += [self.rounding, self.overflow]
        return f"{name}<{','.join(args)}>"

    # ------------------------------------------------------------------ range
    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """The smallest step, ``2**-fractional``."""
        return float(2.0 ** -self.fractional)

    @property
    def raw_min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min(self) -> float:
        return self.raw_min * self.lsb

    @property
    def max(self) -> float:
        return self.raw_max * self.lsb

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> "FixedType":
        return FixedType(self.width, self.integer, self.signed,
                         rounding or self.rounding, overflow or self.overflow)

    # ------------------------------------------------------------------ conversion
    def quantize(self, values) -> np.ndarray:
        """Convert real values to this type exactly as the C++ assignment does; returns float64."""
        raw = self.to_raw(values)
        raw *= 2.0 ** -self.fractional  # exact: a power-of-two scaling
        raw += 0.0  # -0.0 -> +0.0, as the C++ value prints
        return raw

    def to_raw(self, values) -> np.ndarray:
        """The integers the hardware stores (value * 2**fractional), after rounding and overflow.

        Returned as float64 holding exact integers (exact for widths up to 53 bits).
        """
        if self.width > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"{self} is {self.width} bits wide; exact emulation holds at most "
                f"{MAX_EXACT_WIDTH} bits. Use a narrower type."
            )
        values = np.asarray(values, dtype=np.float64)
        # At least 1-d inside: numpy's ufuncs turn 0-d results into scalars, which cannot take out=.
        with np.errstate(over="ignore", under="ignore"):  # +-inf and underflows: handled below
            scaled = np.multiply(values, 2.0 ** self.fractional, out=np.empty(values.shape or (1,)))  # exact
        if self.fractional < 0:
            # Exact unless a subnormal underflows to 0, which would lose its sign: the C++ truncation
            # of a tiny negative value is -1 step. The smallest subnormal keeps the sign, rounds alike.
            lost = (scaled == 0) & (values.reshape(scaled.shape) != 0)
            if lost.any():
                scaled[lost] = np.copysign(5e-324, values.reshape(scaled.shape)[lost])
        return self.raw_from_scaled(scaled).reshape(values.shape)

    def raw_from_scaled(self, scaled: np.ndarray) -> np.ndarray:
        """:meth:`to_raw` of values already multiplied by ``2**fractional`` (a float64 array that
        this call may overwrite: the result reuses its memory where the modes allow)."""
        with np.errstate(invalid="ignore"):  # +-inf passes through rounding as +-inf
            raw = self._round(scaled)
            # SAT_SYM also rewrites the most negative code, which is in range.
            lowest_ok = self.raw_min + (1 if self._symmetric else 0)
            if raw.size and (raw.min() < lowest_ok or raw.max() > self.raw_max):
                raw = self._overflow(raw)
        return raw

    def round_scaled(self, scaled: np.ndarray) -> np.ndarray:
        """The rounding step alone, of values already multiplied by ``2**fractional`` (``scaled``
        may be overwritten)."""
        return self._round(scaled)

    def from_raw(self, raw) -> np.ndarray:
        """Real values of stored integers."""
        return np.multiply(raw, 2.0 ** -self.fractional, dtype=np.float64)

    def _round(self, scaled: np.ndarray) -> np.ndarray:
        mode = self.rounding
        if mode == "TRN":
            return np.floor(scaled, out=scaled)
        if mode == "TRN_ZERO":
            return np.trunc(scaled, out=scaled)
        if mode == "RND" and scaled.size and max(-scaled.min(), scaled.max()) < 2.0 ** 51:
            scaled += 0.5  # exact below 2**51, so floor(x + 0.5) is the rounded value
            return np.floor(scaled, out=scaled)
        low = np.floor(scaled)
        frac = scaled - low  # exact
        up = frac > 0.5
        tie = frac == 0.5
        if mode == "RND":
            up |= tie
        elif mode == "RND_ZERO":
            up |= tie & (scaled < 0)
        elif mode == "RND_INF":
            up |= tie & (scaled > 0)
        elif mode == "RND_CONV":
            up |= tie & (np.fmod(low, 2.0) != 0)
        return low + up

    def _overflow(self, raw: np.ndarray) -> np.ndarray:
        lo, hi = float(self.raw_min), float(self.raw_max)
        mode = self.overflow
        if mode == "WRAP":
            span = float(2.0 ** self.width)
            finite = np.isfinite(raw)
            if max(-raw.min(), raw.max()) < 2.0 ** 52:
                # raw - span * floor((raw - lo) / span): every step exact for |raw| < 2**52
                turns = np.subtract(raw, lo)
                turns *= 1.0 / span
                np.floor(turns, out=turns)
                turns *= span
                raw -= turns
            else:
                # Beyond that only fmod is exact (for every finite double); its result lies in
                # (-span, span), and one step of span brings it into [lo, hi].
                with np.errstate(invalid="ignore"):
                    np.fmod(raw, span, out=raw)
                raw -= span * (raw > hi)
                raw += span * (raw < lo)
            # +-inf (e.g. 1/0 in a table initialiser) shifts every bit out: the C++ result is 0.
            if not finite.all():
                raw[~finite] = 0.0
            return raw
        if mode == "SAT":
            return np.clip(raw, lo, hi, out=raw)
        if mode == "SAT_ZERO":
            return np.where((raw < lo) | (raw > hi), 0.0, raw)
        # SAT_SYM: signed types saturate to +-max; the most negative code is never produced.
        if self._symmetric:
            return np.clip(raw, -hi, hi, out=raw)
        return np.clip(raw, lo, hi, out=raw)

    @property
    def _symmetric(self) -> bool:
        """SAT_SYM on a signed type of 2 bits or more. ap_fixed's symmetric saturation keeps a 1-bit
        signed type's only negative code (its sign bit), so there SAT_SYM acts as SAT."""
        return self.overflow == "SAT_SYM" and self.signed and self.width > 1

    def holds(self, other: "FixedType", nonnegative_only: bool = False) -> bool:
        """True if every value of ``other`` (or of its non-negative part) is exact in this type."""
        low = 0.0 if nonnegative_only else other.min
        return (self.fractional >= other.fractional and self.max >= other.max and self.min <= low
                and not (self.overflow == "SAT_SYM" and self.signed and low <= self.min))

    def overflows(self, values) -> np.ndarray:
        """Boolean mask of values outside this type's range (after rounding)."""
        scaled = np.ldexp(np.asarray(values, dtype=np.float64), self.fractional)
        raw = self._round(scaled)
        return (raw < self.raw_min) | (raw > self.raw_max)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return {"width": self.width, "integer": self.integer, "signed": self.signed,
                "rounding": self.rounding, "overflow": self.overflow}

    @classmethod
    def from_dict(cls, d: dict) -> "FixedType":
        try:
            return cls(int(d["width"]), int(d["integer"]), bool(d.get("signed", True)),
                       d.get("rounding", "TRN"), d.get("overflow", "WRAP"))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"Not a fixed-point type description: {d!r} ({exc}).") from None


def fixed(text: "str | FixedType") -> FixedType:
    """Shorthand for :meth:`FixedType.parse`."""
    return FixedType.parse(text)
