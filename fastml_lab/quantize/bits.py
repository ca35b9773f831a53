"""Bit widths written as text, for the ``quantize`` verb and the walk's Quantize step.

Both read widths with these functions and hand :func:`bits_argument`'s result to
:func:`fastml_lab.quantize.quantize` (its ``bits``; see :mod:`fastml_lab.quantize.qat_model`).
"""

from __future__ import annotations

from ..exceptions import ConfigError

__all__ = ["bits_argument", "parse_bits", "parse_layer_bits"]


def parse_bits(text: str):
    """``"N"`` (weights and activations), ``"W,A"`` or ``"W,A,I"`` (I: the input features' width).

    ``"6"`` -> ``6``; ``"6,8"`` -> ``{"weights": 6, "activations": 8}``; ``"6,8,12"`` adds
    ``"inputs": 12``.
    """
    parts = str(text).split(",")
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"bits must read N, W,A or W,A,I (whole numbers of bits), e.g. 6,8; got {text!r}.")
    widths = [int(p) for p in parts]
    if len(widths) == 1:
        return widths[0]
    return dict(zip(("weights", "activations", "inputs"), widths))


def parse_layer_bits(text: str) -> dict:
    """``"fc1=8/10, output=8/12"`` -> ``{"fc1": {"weights": 8, "activations": 10}, ...}`` ('' -> {})."""
    layers = {}
    for item in filter(None, (part.strip() for part in str(text).replace(";", ",").split(","))):
        name, _, widths = item.partition("=")
        weights, _, activations = widths.partition("/")
        if not (name.strip() and weights.strip().isdigit() and activations.strip().isdigit()):
            raise ConfigError(f"per-layer bits must read LAYER=WEIGHT_BITS/ACTIVATION_BITS, e.g. "
                              f"'fc1=8/10'; got {item!r}.")
        if name.strip() in layers:
            raise ConfigError(f"per-layer bits name layer {name.strip()!r} twice; give each layer once.")
        layers[name.strip()] = {"weights": int(weights), "activations": int(activations)}
    return layers


def bits_argument(uniform=None, layers: dict | None = None):
    """``quantize``'s ``bits`` from uniform widths (``parse_bits``' result, or None for the default)
    and per-layer overrides (``parse_layer_bits``' result): layers not named take the uniform widths."""
    if not layers:
        return uniform
    if uniform is None or not isinstance(uniform, dict):
        default = uniform
        inputs = {}
    else:
        inputs = {"inputs": uniform["inputs"]} if "inputs" in uniform else {}
        default = {k: v for k, v in uniform.items() if k != "inputs"}
    return {**layers, **({"default": default} if default is not None else {}), **inputs}
