"""The ranges and choices of the options a user sets, defined once: the export, the estimate, the fit
estimate, the command line and the walk check them here and show the same limits.

Standard library only: this module runs on the board.
"""

from __future__ import annotations

import math

from .exceptions import ConfigError

#: hls4ml's strategies for dense layers.
STRATEGIES = ("Latency", "Resource")
#: Reuse factors hls4ml takes (each layer further restricts them: ``estimate.valid_reuse_factors``).
REUSE_FACTOR_RANGE = (1, 4096)
#: Clock periods an export targets, in ns (1 GHz down to 10 MHz).
CLOCK_PERIOD_RANGE_NS = (1.0, 100.0)


def check_reuse_factor(value, name: str = "reuse_factor", upper: bool = True) -> int:
    """``value`` if it is an integer in :data:`REUSE_FACTOR_RANGE`; ConfigError naming ``name`` otherwise.

    ``upper=False`` checks the lower bound only, for a caller whose per-layer check follows and names
    the factors each layer takes (``estimate``)."""
    low, high = REUSE_FACTOR_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= (high if upper else value):
        raise ConfigError(f"{name} must be an integer >= {low} (hls4ml takes {low} to {high}); got {value!r}.")
    return value


def check_strategy(value) -> str:
    """``value`` as one of :data:`STRATEGIES` (any case); ConfigError listing them otherwise."""
    text = str(value).capitalize()
    if text not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {value!r}; valid: {', '.join(STRATEGIES)}.")
    return text


def check_clock_period(value, name: str = "clock_period_ns") -> float:
    """``value`` if it is a number of ns in :data:`CLOCK_PERIOD_RANGE_NS`; ConfigError otherwise."""
    low, high = CLOCK_PERIOD_RANGE_NS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} ns; got {value!r}.")
    return float(value)
