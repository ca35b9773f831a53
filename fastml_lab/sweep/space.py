"""A search space: what to vary, read from a YAML or JSON file or a dict, and its points.

The smallest space::

    kind: nn
    data: {source: synthetic, n_events: 4000}
    board: pynq-z2
    grid:
      sizes: ["8"]
      bits: [6, 8]
      epochs: [1]

A mixed space lists its models (each with its own ``grid``; ``params`` is the same section
under a name that does not promise a grid)::

    data: {source: synthetic, n_events: 20000}
    board: pynq-z2
    models:
      - kind: nn
        grid: {sizes: ["16-8", "32-16"], bits: [4, 6, 8], prune: [0, 0.5]}
      - kind: bdt
        grid: {rounds: [10, 30], depth: [2, 3], precision: ["ap_fixed<12,5>", "ap_fixed<16,6>"]}

``kind`` names a model family (:func:`fastml_lab.families.family_names`; ``family`` is the same
key, and a model may give both only with one value); left out, it is the neural network
(:data:`fastml_lab.families.NETWORK`). Each family brings its parameters
(:data:`SUPPORT`: :data:`~fastml_lab.sweep.network.NN_PARAMS`,
:data:`~fastml_lab.sweep.trees.BDT_PARAMS`).
A parameter is one value, a list of values, or (random and optuna searches) a range
``{min: 1.0e-6, max: 1.0e-4, log: true}`` (whole numbers at both ends: an integer range).
Parameters left out take their family's defaults. ``search``
(grid, random or optuna) and ``trials`` may be given in the file too; ``budget: {latency_ns: 500}``
draws a latency budget line; ``csim: true`` also runs each point's C simulation (g++, slow).

A :class:`Point` is one setting of everything: a pure function of it (and its seed) gives the
same model, firmware and figures anywhere, so its id, a digest of the settings, names its
record in the sweep folder. numpy and the standard library only (PyYAML to read ``.yaml``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .._io import read_json
from ..boards import BOARDS, DEFAULT_BOARD
from ..exceptions import ConfigError
from ..families import NETWORK, family_names, get_family
from .network import NetworkSweep
from .params import Param
from .trees import TreeSweep

#: The families that take part in sweeps, by name: a family's sweep parameters and how a point of
#: it is labelled, trained and exported (a :class:`~fastml_lab.sweep.params.SweepSupport`).
SUPPORT = {support.family_name: support for support in (NetworkSweep, TreeSweep)}

SEARCHES = ("grid", "random", "optuna")
DATA_SOURCES = ("synthetic", "openml", "auto")
#: Random and optuna searches without ``trials``: this many points.
DEFAULT_TRIALS = 20
#: The keys that name a model's family in a space (one concept; ``kind`` is what space files say).
FAMILY_KEYS = ("kind", "family")
TOP_KEYS = (*FAMILY_KEYS, "data", "board", "grid", "params", "models", "search", "trials", "seed", "budget",
            "csim", "name")
MODEL_KEYS = (*FAMILY_KEYS, "grid", "params")
DATA_KEYS = ("source", "n_events", "seed")
DEFAULT_DATA = {"source": "synthetic", "n_events": 20_000, "seed": 0}


# ------------------------------------------------------------------------------------- points
def sweep_support(family: str, where: str = "kind"):
    """The :class:`~fastml_lab.sweep.params.SweepSupport` of the family called ``family``: ConfigError
    naming ``where`` and the families when none is called so, naming the family when it has none."""
    if family not in family_names():
        raise ConfigError(f"{where} must be one of {', '.join(family_names())}; got {family!r}.")
    if family not in SUPPORT:
        found = get_family(family)
        raise ConfigError(f"The {found.title} family ({family!r}) cannot run in a sweep.")
    return SUPPORT[family](get_family(family))


@dataclass(frozen=True)
class Point:
    """One point of a space: a model family and all its settings, the data, the board and the seed."""

    family: str  # the family's name; a space file, a record and ``to_dict`` call it ``kind``
    params: dict
    data: dict
    board: str
    seed: int = 0
    csim: bool = False

    @property
    def kind(self) -> str:
        """The family's name under the key space files and records use."""
        return self.family

    @property
    def support(self):
        """What the sweep does with a point of this family (:data:`SUPPORT`)."""
        return sweep_support(self.family)

    def to_dict(self) -> dict:
        return {"kind": self.family, "params": dict(self.params), "data": dict(self.data), "board": self.board,
                "seed": self.seed, "csim": self.csim}

    @classmethod
    def from_dict(cls, d: dict) -> "Point":
        return cls(family=d["kind"], params=dict(d["params"]), data=dict(d["data"]), board=d["board"],
                   seed=int(d.get("seed", 0)), csim=bool(d.get("csim", False)))

    @property
    def id(self) -> str:
        """12 hex digits of the sha256 of the settings: equal settings, equal id."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def label(self) -> str:
        """A short description, e.g. ``nn 16-8 bits=6 reuse=1``."""
        return self.support.label(self.params)

    def record(self, **fields) -> dict:
        """The head of the point's record in a sweep folder (id, kind, label, settings), then ``fields``."""
        return {"id": self.id, "kind": self.family, "label": self.label(), "point": self.to_dict(), **fields}


# ------------------------------------------------------------------------------------- space
@dataclass
class Model:
    """One model entry of a space: its family and, per parameter, a list of values or a range."""

    family: str
    values: dict          # name -> list of values
    ranges: dict = field(default_factory=dict)  # name -> {"min", "max", "log", "int"}
    where: str = ""

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.values.values()) if not self.ranges else 0


@dataclass
class Space:
    """A parsed search space (see the module docstring)."""

    models: list
    data: dict
    board: str
    seed: int = 0
    search: str | None = None
    trials: int | None = None
    budget: dict = field(default_factory=dict)
    csim: bool = False
    name: str = ""
    source: dict = field(default_factory=dict)  # the space as given (recorded in the sweep folder)

    @property
    def families(self) -> list:
        return sorted({m.family for m in self.models})

    def point(self, family: str, params: dict) -> Point:
        """The point of ``family`` with ``params`` (defaults filled in, values checked)."""
        table = sweep_support(family).params
        full = {}
        for name, param in table.items():
            full[name] = param.validate(params.get(name, param.default), f"{family} parameter {name!r}")
        unknown = sorted(set(params) - set(table))
        if unknown:
            raise ConfigError(f"{family} has no parameter {unknown[0]!r}; valid: {', '.join(table)}.")
        return Point(family=family, params=full, data=dict(self.data), board=self.board, seed=self.seed,
                     csim=self.csim)

    def grid(self) -> list:
        """Every combination of every model's lists, in order (ConfigError if a model has a range)."""
        points = []
        for model in self.models:
            if model.ranges:
                name = next(iter(model.ranges))
                raise ConfigError(f"{model.where}.{name} is a range; a grid needs a list of values. "
                                  "Use a list, or search: random or optuna.")
            names = list(model.values)
            for combo in itertools.product(*(model.values[n] for n in names)):
                points.append(self.point(model.family, dict(zip(names, combo))))
        return _unique(points)

    def random(self, trials: int, seed: int | None = None) -> list:
        """``trials`` points drawn at random (each model equally likely, then each parameter)."""
        import numpy as np

        rng = np.random.default_rng(self.seed if seed is None else seed)
        points = []
        for _ in range(trials):
            model = self.models[int(rng.integers(len(self.models)))]
            params = {name: values[int(rng.integers(len(values)))] for name, values in model.values.items()}
            for name, r in model.ranges.items():
                params[name] = _draw(rng, r)
            points.append(self.point(model.family, params))
        return _unique(points)

    def suggest(self, trial) -> Point:
        """The point an Optuna ``trial`` asks for (define-by-run: the model first, then its parameters)."""
        index = trial.suggest_categorical("model", list(range(len(self.models)))) if len(self.models) > 1 else 0
        model = self.models[index]
        params = {}
        for name, values in model.values.items():
            params[name] = values[0] if len(values) == 1 else trial.suggest_categorical(f"{index}.{name}", values)
        for name, r in model.ranges.items():
            suggest = trial.suggest_int if r["int"] else trial.suggest_float
            params[name] = suggest(f"{index}.{name}", r["min"], r["max"], log=r["log"])
        return self.point(model.family, params)

    def points(self, search: str | None = None, trials: int | None = None) -> list:
        """The points of a grid or random search (optuna asks for its points as it goes)."""
        search = self.resolve_search(search)
        if search == "grid":
            return self.grid()
        if search == "random":
            return self.random(self.resolve_trials(trials))
        raise ConfigError("An optuna search asks for its points as it runs; use run_sweep.")

    def resolve_search(self, search: str | None) -> str:
        search = search or self.search or ("random" if any(m.ranges for m in self.models) else "grid")
        if search not in SEARCHES:
            raise ConfigError(f"search must be one of {', '.join(SEARCHES)}; got {search!r}.")
        return search

    def resolve_trials(self, trials: int | None) -> int:
        trials = trials if trials is not None else (self.trials or DEFAULT_TRIALS)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"trials must be a whole number >= 1; got {trials!r}.")
        return trials


def _unique(points: list) -> list:
    seen, out = set(), []
    for point in points:
        if point.id not in seen:
            seen.add(point.id)
            out.append(point)
    return out


def _draw(rng, r: dict):
    low, high = r["min"], r["max"]
    if r["log"]:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return int(round(value)) if r["int"] else float(f"{value:.4g}")


# ------------------------------------------------------------------------------------- parsing
def load_space(source) -> Space:
    """A :class:`Space` from a ``.yaml``/``.yml``/``.json`` file, a dict, or a Space (returned as is)."""
    if isinstance(source, Space):
        return source
    if isinstance(source, (str, os.PathLike)):
        return parse_space(read_space_file(source), origin=str(source))
    if isinstance(source, dict):
        return parse_space(source)
    raise ConfigError(f"A space is a YAML or JSON file, or a dict; got {type(source).__name__}.")


def read_space_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The space file {path} does not exist.")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"Reading {path.name} needs PyYAML (pip install pyyaml), or write the space "
                              "as JSON.") from None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); expected a YAML space.") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply to be a space (kind, data, board, grid, ...).") from None
    elif path.suffix.lower() == ".json":
        data = read_json(path, "the space file", ConfigError)
    else:
        raise ConfigError(f"A space file ends in .yaml, .yml or .json; got {path.name!r}.")
    if data is None:
        raise ConfigError(f"{path} is empty; a space holds a mapping (kind, data, board, grid, ...).")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping (kind, data, board, grid, ...); it holds a "
                          f"{type(data).__name__}.")
    return data


def parse_space(raw: dict, origin: str = "the space") -> Space:
    """Check ``raw`` and build the :class:`Space`; every ConfigError names the key and what is valid."""
    _known(raw, TOP_KEYS, origin)
    data = _data(raw.get("data"), origin)
    board = raw.get("board", DEFAULT_BOARD)
    if board not in BOARDS:
        raise ConfigError(f"{origin}: board must be one of {', '.join(BOARDS)}; got {board!r}.")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{origin}: seed must be a whole number >= 0; got {seed!r}.")
    if "models" in raw:
        for key in MODEL_KEYS:
            if key in raw:
                raise ConfigError(f"{origin}: give either 'models' (a list) or '{key}' at the top, not both.")
        entries = raw["models"]
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{origin}: models must be a non-empty list of {{kind, grid}} entries; got {entries!r}.")
        models = [_model(entry, f"models[{i}]", origin) for i, entry in enumerate(entries)]
    else:
        models = [_model({k: raw[k] for k in MODEL_KEYS if k in raw}, "", origin)]
    search = raw.get("search")
    if search is not None and search not in SEARCHES:
        raise ConfigError(f"{origin}: search must be one of {', '.join(SEARCHES)}; got {search!r}.")
    trials = raw.get("trials")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"{origin}: trials must be a whole number >= 1; got {trials!r}.")
    budget = raw.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - {"latency_ns"} or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in budget.values()):
        raise ConfigError(f"{origin}: budget may hold latency_ns (a number of nanoseconds > 0); got {budget!r}. "
                          "The resource budget is the board's.")
    csim = raw.get("csim", False)
    if not isinstance(csim, bool):
        raise ConfigError(f"{origin}: csim must be true or false; got {csim!r}.")
    space = Space(models=models, data=data, board=board, seed=seed, search=search, trials=trials,
                  budget=dict(budget), csim=csim, name=str(raw.get("name", "")), source=json.loads(json.dumps(raw)))
    for model in space.models:  # every listed value is checked now, not when its point runs
        for name, values in model.values.items():
            for value in values:
                try:
                    space.point(model.family, {name: value})
                except ConfigError as exc:
                    raise ConfigError(f"{origin}: {model.where}.{name}: {exc}") from None
    return space


def _known(mapping: dict, keys, where: str) -> None:
    unknown = [k for k in mapping if k not in keys]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(keys)}.")


def _data(raw, origin: str) -> dict:
    if raw is None:
        return dict(DEFAULT_DATA)
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: data must be a mapping such as {{source: synthetic, n_events: 4000}}; "
                          f"got {raw!r}.")
    _known(raw, DATA_KEYS, f"{origin}: data")
    data = dict(DEFAULT_DATA, **raw)
    source = data["source"]
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{origin}: data.source must be one of {', '.join(DATA_SOURCES)} or a file path; "
                          f"got {source!r}.")
    if source not in DATA_SOURCES:
        path = Path(source).expanduser()
        if not path.exists():
            raise ConfigError(f"{origin}: data.source {source!r} is neither one of {', '.join(DATA_SOURCES)} "
                              "nor an existing file or folder.")
        data["source"] = str(path.resolve())  # workers must not depend on the client's working directory
    n = data["n_events"]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 100):
        raise ConfigError(f"{origin}: data.n_events must be a whole number >= 100 (or null: all); got {n!r}.")
    if isinstance(data["seed"], bool) or not isinstance(data["seed"], int) or data["seed"] < 0:
        raise ConfigError(f"{origin}: data.seed must be a whole number >= 0; got {data['seed']!r}.")
    return data


def _model(raw, where: str, origin: str) -> Model:
    label = f"{origin}: {where}" if where else origin
    if not isinstance(raw, dict):
        raise ConfigError(f"{label} must be a mapping {{kind, grid}}; got {raw!r}.")
    _known(raw, MODEL_KEYS, label)
    family, support = _family(raw, label)
    if "grid" in raw and "params" in raw:
        raise ConfigError(f"{label}: give its parameters under 'grid' or 'params', not both.")
    section = "grid" if "grid" in raw else "params"
    params = raw.get(section) or {}
    prefix = f"{where}.{section}" if where else section
    if not isinstance(params, dict):
        raise ConfigError(f"{origin}: {prefix} must be a mapping of parameter -> values; got {params!r}.")
    table = support.params
    model = Model(family=family, values={}, where=prefix)
    for name, value in params.items():
        if name not in table:
            raise ConfigError(f"{origin}: {prefix}.{name} is not a parameter of kind {family}; valid: "
                              f"{', '.join(table)}.")
        if isinstance(value, dict):
            model.ranges[name] = _range(value, table[name], f"{origin}: {prefix}.{name}")
        elif isinstance(value, list):
            if not value:
                raise ConfigError(f"{origin}: {prefix}.{name} is an empty list; give at least one value.")
            model.values[name] = _unique_values(value)
        else:
            model.values[name] = [value]
    if section == "grid" and model.ranges:
        name = next(iter(model.ranges))
        raise ConfigError(f"{origin}: {prefix}.{name} is a range; a grid lists values. Put ranges under "
                          "'params' and search with random or optuna.")
    return model


def _family(raw: dict, label: str):
    """``(name, support)``: the family a model entry names under ``kind`` or ``family`` (the
    neural network when it names none) and its sweep support."""
    given = [key for key in FAMILY_KEYS if key in raw]
    if len(given) > 1 and raw[given[0]] != raw[given[1]]:
        raise ConfigError(f"{label}: '{given[0]}' and '{given[1]}' name the same thing (the model family); "
                          f"got {raw[given[0]]!r} and {raw[given[1]]!r}. Give one.")
    key = given[0] if given else FAMILY_KEYS[0]
    family = raw.get(key, NETWORK)
    try:
        return family, sweep_support(family, key)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _unique_values(values: list) -> list:
    out = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _range(raw: dict, param: Param, where: str) -> dict:
    if not param.numeric:
        raise ConfigError(f"{where} takes a list of values, not a range.")
    _known(raw, ("min", "max", "log"), where)
    low, high, log = raw.get("min"), raw.get("max"), raw.get("log", False)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or low >= high or not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError(f"{where} must be a range {{min: A, max: B, log: false}} with A < B (A > 0 for "
                          f"log); got {raw!r}.")
    is_int = isinstance(low, int) and isinstance(high, int)
    for value in (low, high):
        param.validate(value, where)
    return {"min": low, "max": high, "log": log, "int": is_int}
