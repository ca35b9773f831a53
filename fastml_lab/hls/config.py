"""hls4ml's own configuration dict, checked before hls4ml sees it.

:func:`fastml_lab.hls.hls4ml_config` gives the dict :func:`~fastml_lab.hls.export` would hand to
``hls4ml.converters.convert_from_keras_model`` (what ``hls4ml.utils.config_from_keras_model(model,
granularity="name")`` makes, with every precision set); a student edits a layer's ``Precision`` or
``ReuseFactor`` in it and exports from it with ``export(model, out, hls_config=config)``. This
module refuses, before any work, what hls4ml would accept silently and get wrong: a precision left
at ``"auto"``, a layer the model does not have, a type it cannot read, a reuse factor that is not a
positive integer.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ..exceptions import ConfigError
from ..fixed import FixedType
from ..options import STRATEGIES

#: A precision hls4ml would infer: with granularity "name" it can give a last layer 38 bits that
#: break the softmax table, so every slot is set explicitly.
AUTO = "auto"


def read_hls_config(path) -> dict:
    """hls4ml's configuration dict from a JSON or YAML file (DataError naming the file otherwise)."""
    from ..exceptions import DataError

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"Cannot read the hls4ml configuration {path}: {exc.strerror or exc}.") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            config = yaml.safe_load(text)
        else:
            config = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise DataError(f"{path} is not valid {'YAML' if path.suffix.lower() in ('.yml', '.yaml') else 'JSON'}: "
                        f"{exc}") from None
    if not isinstance(config, dict):
        raise DataError(f"{path} holds {type(config).__name__}, not hls4ml's configuration dict.")
    return config


def check_hls_config(config, layer_names) -> dict:
    """A deep copy of ``config`` if it is a valid hls4ml configuration for a model whose hls4ml
    layers are ``layer_names``; ConfigError naming the layer and slot otherwise."""
    if not isinstance(config, dict) or not isinstance(config.get("Model"), dict):
        raise ConfigError("hls_config must be hls4ml's configuration dict, with a 'Model' entry (and "
                          "'LayerName' per layer), as fastml_lab.hls.hls4ml_config(model) gives it.")
    config = copy.deepcopy(config)
    layers = config.get("LayerName", {})
    if not isinstance(layers, dict):
        raise ConfigError("hls_config['LayerName'] must map layer names to their settings.")
    unknown = sorted(set(layers) - set(layer_names))
    if unknown:
        raise ConfigError(f"hls_config names layer(s) {', '.join(map(repr, unknown))} that the model does not "
                          f"have; its layers are {', '.join(layer_names)}.")
    _check_entry("Model", config["Model"])
    for name, entry in layers.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"hls_config['LayerName'][{name!r}] must be a dict of settings; got {entry!r}.")
        _check_entry(f"layer {name!r}", entry)
    return config


def _check_entry(where: str, entry: dict) -> None:
    precision = entry.get("Precision", {})
    slots = precision if isinstance(precision, dict) else {"default": precision}
    for slot, value in slots.items():
        if isinstance(value, str) and value.strip().lower() == AUTO:
            raise ConfigError(
                f"{where}: Precision {slot!r} is 'auto'. hls4ml would then infer it, and with per-layer "
                "configuration an inferred last-layer result can be 38 bits wide, too wide for the softmax "
                "table. Set it to a type such as 'fixed<16,6>'.")
        try:
            FixedType.parse(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: Precision {slot!r} = {value!r} is not a fixed-point type: {exc}") from None
    if "ReuseFactor" in entry:
        reuse = entry["ReuseFactor"]
        if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
            raise ConfigError(f"{where}: ReuseFactor must be a positive integer; got {reuse!r}.")
    if "Strategy" in entry and str(entry["Strategy"]).capitalize() not in STRATEGIES:
        raise ConfigError(f"{where}: Strategy {entry['Strategy']!r} is not one of {', '.join(STRATEGIES)}.")


def requested_reuse(config: dict, layer: str) -> int:
    """The reuse factor ``config`` asks of ``layer`` (its own, else the model's)."""
    entry = config.get("LayerName", {}).get(layer, {})
    return int(entry.get("ReuseFactor", config["Model"].get("ReuseFactor", 1)))
