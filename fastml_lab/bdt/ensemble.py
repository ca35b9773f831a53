"""A trained BDT as conifer's ensemble description, from whatever holds it.

Accepted: an xgboost model (``XGBClassifier`` or ``Booster``) or its file (``.json``, ``.ubj``), a
scikit-learn ``GradientBoostingClassifier``, conifer's JSON file (a saved conifer model) or its
ensemble dict. The ensemble is ``trees[round][class]`` with ``feature`` (-2 at leaves),
``threshold``, ``value``, ``children_left/right``, plus ``init_predict``, ``norm`` and the
``splitting_convention``. xgboost and conifer are imported only when needed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .._deps import require
from ..exceptions import ConfigError, DataError, UnsupportedError

#: Suffixes of the files export accepts.
MODEL_SUFFIXES = (".json", ".ubj")
ENSEMBLE_KEYS = ("trees", "n_classes", "n_features", "n_trees", "max_depth", "init_predict", "norm",
                 "splitting_convention")


def _quiet_conifer():
    """conifer warns on every xgboost >= 2 conversion; the C simulation check is our validation."""
    logging.getLogger("conifer").setLevel(logging.ERROR)


def is_bdt_file(path) -> bool:
    """Whether ``path`` looks like a saved BDT (xgboost ``.ubj``/``.json`` or conifer's JSON)."""
    path = Path(path)
    if path.suffix == ".ubj":
        return True
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        head = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and ("learner" in head or "trees" in head)


def to_ensemble(model) -> dict:
    """conifer's ensemble dict of ``model`` (see the module docstring for what is accepted)."""
    if isinstance(model, (str, Path)):
        return _from_file(Path(model))
    if isinstance(model, dict):
        return _checked(model, "the ensemble dict")
    if callable(getattr(model, "ensemble", None)):  # a trained fastml_lab.bdt.train.BDTModel
        return model.ensemble()
    kind = type(model).__name__
    module = type(model).__module__.split(".")[0]
    conifer = require("conifer", "convert boosted decision trees")
    _quiet_conifer()
    if module == "xgboost":
        return conifer.converters.xgboost.convert(model)
    if module == "sklearn":
        if kind != "GradientBoostingClassifier":
            raise UnsupportedError(
                f"conifer converts scikit-learn's GradientBoostingClassifier (and random forests), not {kind}; "
                "train a GradientBoostingClassifier or an xgboost model.")
        return conifer.converters.sklearn.convert(model)
    raise UnsupportedError(
        f"Cannot export a {module}.{kind} as a BDT; give an xgboost model, a scikit-learn "
        f"GradientBoostingClassifier, or a saved model file ({', '.join(MODEL_SUFFIXES)}).")


def _from_file(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"Cannot read the BDT {path}: the file does not exist.")
    if path.suffix not in MODEL_SUFFIXES:
        raise ConfigError(f"Cannot read the BDT {path}: expected an xgboost model (.json or .ubj) or "
                          f"conifer's JSON, got a {path.suffix or 'suffix-less'} file.")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"Cannot read the BDT {path}: it is not valid JSON ({exc}).") from None
        if isinstance(data, dict) and "trees" in data:
            return _checked(data, str(path))
        if not (isinstance(data, dict) and "learner" in data):
            raise DataError(f"Cannot read the BDT {path}: it is JSON but neither an xgboost model "
                            "(no 'learner') nor conifer's model (no 'trees').")
    xgb = require("xgboost", "read xgboost models")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise DataError(f"Cannot read the BDT {path}: xgboost refused it ({str(exc).splitlines()[0]}).") from None
    return to_ensemble(booster)


def _checked(ensemble: dict, origin: str) -> dict:
    missing = [k for k in ENSEMBLE_KEYS if k not in ensemble]
    if missing:
        raise DataError(f"Cannot read the BDT from {origin}: conifer's ensemble needs {', '.join(missing)}.")
    ensemble = {k: v for k, v in ensemble.items() if k not in ("config", "metadata")}
    ensemble.setdefault("feature_map", {f"f{i}": i for i in range(int(ensemble["n_features"]))})
    ensemble.setdefault("library", "unknown")
    return ensemble


def n_scores(ensemble: dict) -> int:
    """Scores per event: 1 for two classes, else one per class."""
    return 1 if int(ensemble["n_classes"]) == 2 else int(ensemble["n_classes"])
