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
import math
from pathlib import Path

import numpy as np

from .._deps import require
from .._io import read_json
from ..exceptions import ConfigError, DataError, UnsupportedError

#: Suffixes of the files export accepts.
MODEL_SUFFIXES = (".json", ".ubj")
#: The name of the BDT family in records, manifests and sweep spaces (:mod:`fastml_lab.families.bdt`).
FAMILY = "bdt"
#: conifer's project name in an exported BDT's folder (its saved model is ``<name>.json`` there).
PROJECT_NAME = "myproject"
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
        head = read_json(path, "the model")
    except DataError:
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
        return from_xgboost(model)
    if module == "sklearn":
        if kind != "GradientBoostingClassifier":
            raise UnsupportedError(
                f"conifer converts scikit-learn's GradientBoostingClassifier (and random forests), not {kind}; "
                "train a GradientBoostingClassifier or an xgboost model.")
        return conifer.converters.sklearn.convert(model)
    raise UnsupportedError(
        f"Cannot export a {module}.{kind} as a BDT; give an xgboost model, a scikit-learn "
        f"GradientBoostingClassifier, or a saved model file ({', '.join(MODEL_SUFFIXES)}).")


def from_xgboost(model) -> dict:
    """conifer's ensemble from an xgboost model's own JSON (exact float32 thresholds and leaves).

    Not conifer 1.11's converter, which is wrong for xgboost 3 in two ways measured here: it reads
    the trees from ``trees_to_dataframe`` and takes a child's node ID for its row, so a tree whose
    node IDs have gaps points at the wrong nodes (0.38 off in a class score after one round on the
    jets); and it takes the logit of the base score for ``multi:`` objectives too, where xgboost's
    base score is already a raw score per class (some negative: NaN after the logit).
    Nodes are renumbered breadth-first from the root (unreachable ones dropped), so every parent
    comes before its children, as conifer's HLS requires.
    """
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    saved = json.loads(booster.save_raw("json"))
    learner = saved["learner"]
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    n_groups = max(1, int(params["num_class"]))
    n_features = int(params["num_feature"])
    gbm = learner["gradient_booster"]
    if gbm.get("name", "gbtree") != "gbtree":
        raise UnsupportedError(f"Only xgboost's tree booster (gbtree) exports; this model uses {gbm.get('name')}.")
    trees_json = gbm["model"]["trees"]
    tree_info = gbm["model"]["tree_info"]
    if len(trees_json) % n_groups:
        raise UnsupportedError(f"xgboost model with {len(trees_json)} trees for {n_groups} classes per round.")
    base = [float(v) for v in str(params["base_score"]).strip("[]").split(",")]
    base = base * n_groups if len(base) == 1 else base
    if objective == "binary:logistic":
        p = base[0]
        init = [math.log(p / (1.0 - p))]
    elif objective in ("binary:logitraw", "multi:softprob", "multi:softmax"):
        init = base[:n_groups]
    else:
        raise UnsupportedError(f"xgboost objective {objective!r} is not a classifier the export knows; "
                               "train with binary:logistic or multi:softprob.")
    rounds = []
    for start in range(0, len(trees_json), n_groups):
        group = [None] * n_groups
        for k in range(start, start + n_groups):
            group[int(tree_info[k])] = _xgboost_tree(trees_json[k], n_features)
        rounds.append(group)
    depth = int(json.loads(booster.save_config())["learner"]["gradient_booster"]
                .get("tree_train_param", {}).get("max_depth", 0) or 0)
    return {"max_depth": depth or max(_tree_depth(t) for r in rounds for t in r),
            "n_trees": len(rounds), "n_classes": 2 if n_groups == 1 else n_groups, "n_features": n_features,
            "trees": rounds, "init_predict": init, "norm": 1, "library": "xgboost",
            "splitting_convention": "<", "feature_map": {f"f{i}": i for i in range(n_features)}}


def _xgboost_tree(tree: dict, n_features: int) -> dict:
    left, right = tree["left_children"], tree["right_children"]
    order, k = [0], 0
    while k < len(order):
        node = order[k]
        if left[node] != -1:
            order += [left[node], right[node]]
        k += 1
    index = {node: i for i, node in enumerate(order)}
    # xgboost's values are float32, written in JSON as their shortest decimals: back to float32 exactly
    f32 = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64).tolist()
    out = {"feature": [], "threshold": [], "value": [], "children_left": [], "children_right": [], "weight": []}
    for node in order:
        leaf = left[node] == -1
        feature = -2 if leaf else int(tree["split_indices"][node])
        out["feature"].append(feature)
        out["threshold"].append(0.0 if leaf else f32[node])
        out["value"].append(f32[node] if leaf else 0.0)
        out["children_left"].append(-1 if leaf else index[left[node]])
        out["children_right"].append(-1 if leaf else index[right[node]])
        out["weight"].append([1 if i == feature else 0 for i in range(n_features)])
    return out


def _tree_depth(tree: dict) -> int:
    depth, level = 0, [0]
    while True:
        level = [c for n in level for c in (tree["children_left"][n], tree["children_right"][n]) if c >= 0]
        if not level:
            return depth
        depth += 1


def _from_file(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"Cannot read the BDT {path}: the file does not exist.")
    if path.suffix not in MODEL_SUFFIXES:
        raise ConfigError(f"Cannot read the BDT {path}: expected an xgboost model (.json or .ubj) or "
                          f"conifer's JSON, got a {path.suffix or 'suffix-less'} file.")
    if path.suffix == ".json":
        data = read_json(path, "the BDT")
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


def project_ensemble(project) -> dict:
    """The ensemble of an exported BDT project, from the conifer model its export saved."""
    return to_ensemble(project.hls_dir / f"{PROJECT_NAME}.json")
