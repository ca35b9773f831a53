"""Gradient-boosted trees on the jets: xgboost or scikit-learn, with settings a student can reason about.

:func:`train_bdt` takes the same datasets as the neural network (a JetDataset's training part, or an
``(X, labels)`` pair; the same standardized features) and holds out the same shuffled validation
part. ``rounds`` trees per class (one per round for two classes), each at most ``depth`` splits
deep, each scaled by ``learning_rate``; xgboost stops early when the validation loss has not
improved for ``early_stopping`` rounds and keeps the best round only. The result,
:class:`BDTModel`, predicts class probabilities (so :func:`fastml_lab.evaluate.evaluate` takes it
as it takes a Keras model) and saves in xgboost's JSON (scikit-learn: conifer's JSON) with a small
sidecar of ours. xgboost and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._deps import require
from .._io import atomic_destination, read_json, write_json_atomic
from .._system import usable_cores
from ..data.prepare import dataset_part
from ..exceptions import ConfigError, DataError
from .ensemble import to_ensemble

LIBRARIES = ("xgboost", "sklearn")
SIDECAR_SUFFIX = ".bdt.json"


@dataclass
class BDTSpec:
    """How to grow the trees."""

    library: str = "xgboost"
    rounds: int = 100
    depth: int = 3
    learning_rate: float = 0.3
    #: Rounds without a better validation loss before xgboost stops (None: never stop early).
    early_stopping: int | None = 10
    validation_split: float = 0.25
    seed: int = 0

    def __post_init__(self):
        checks = [
            ("library", self.library in LIBRARIES, f"one of {', '.join(LIBRARIES)}"),
            ("rounds", isinstance(self.rounds, int) and 1 <= self.rounds <= 5000, "an integer from 1 to 5000"),
            ("depth", isinstance(self.depth, int) and 1 <= self.depth <= 12, "an integer from 1 to 12"),
            ("learning_rate", isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 1,
             "a number in (0, 1]"),
            ("early_stopping", self.early_stopping is None
             or (isinstance(self.early_stopping, int) and self.early_stopping >= 1), "None or an integer >= 1"),
            ("validation_split", isinstance(self.validation_split, (int, float)) and 0 <= self.validation_split < 1,
             "a number in [0, 1)"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise ConfigError(f"The BDT's {name} must be {valid}; got {getattr(self, name)!r}.")


@dataclass
class BDTHistory:
    """Validation loss per round (xgboost's log loss; scikit-learn: the training deviance)."""

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    rounds_run: int = 0
    best_round: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class BDTModel:
    """A trained BDT: ``predict`` gives class probabilities ``(n, n_classes)``, ``decision_function``
    the raw scores (the firmware's output: one column for two classes, else one per class)."""

    def __init__(self, estimator, spec: BDTSpec, n_classes: int, history: BDTHistory | None = None,
                 class_names=None):
        self.estimator = estimator
        self.spec = spec
        self.n_classes = int(n_classes)
        self.history = history or BDTHistory()
        self.class_names = list(class_names) if class_names is not None else None

    def decision_function(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self.spec.library == "xgboost":
            xgb = require("xgboost", "run xgboost models")
            margin = self.estimator.predict(xgb.DMatrix(X), output_margin=True)
        else:
            margin = self.estimator.decision_function(X)
        margin = np.asarray(margin, dtype=np.float64)
        return margin.reshape(len(X), -1)

    def predict(self, X) -> np.ndarray:
        return scores_to_probabilities(self.decision_function(X))

    def ensemble(self) -> dict:
        """conifer's ensemble description (what the export writes as HLS)."""
        if isinstance(self.estimator, EnsembleScores):
            return self.estimator.ensemble
        return to_ensemble(self.estimator)

    def save(self, path) -> Path:
        """Save to ``path`` (``.json``): xgboost's JSON model, or conifer's JSON for scikit-learn; the
        spec, history and class names go to ``<path stem>.bdt.json`` beside it."""
        path = Path(path)
        if path.suffix != ".json":
            raise ConfigError(f"Save a BDT as .json (xgboost's or conifer's JSON); got {path.name!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.spec.library == "xgboost":
            with atomic_destination(path) as tmp:  # xgboost writes in place; a kill must not leave half a model
                self.estimator.save_model(str(tmp))
        else:
            write_json_atomic(path, self.ensemble())
        write_json_atomic(sidecar_path(path), {
            "format": "fastml_lab.bdt", "library": self.spec.library, "n_classes": self.n_classes,
            "spec": asdict(self.spec), "history": self.history.to_dict(), "class_names": self.class_names,
        })
        return path

    def __repr__(self) -> str:
        return (f"BDTModel({self.spec.library}, {self.n_classes} classes, {self.history.rounds_run} rounds, "
                f"depth {self.spec.depth})")


def sidecar_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def scores_to_probabilities(scores: np.ndarray) -> np.ndarray:
    """Raw scores to probabilities: the logistic for one column (two classes), else the softmax."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _arrays(dataset) -> tuple:
    X, labels = dataset_part(dataset, "train")
    if labels is None:
        raise DataError(f"{type(dataset).__name__} has no training labels (labels_train or y_train).")
    X, labels = np.asarray(X, dtype=np.float32), np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if X.ndim != 2 or len(X) == 0 or len(labels) != len(X):
        raise DataError(f"Expected X (events, features) and one label per event; got X {X.shape}, "
                        f"labels {labels.shape}.")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    return X, labels.astype(np.int64)


def train_bdt(dataset, spec: BDTSpec | None = None, **settings) -> BDTModel:
    """Train a BDT on ``dataset`` (a JetDataset or ``(X, labels)``); ``settings`` override ``spec``'s
    fields (``library``, ``rounds``, ``depth``, ``learning_rate``, ``early_stopping``, ...)."""
    spec = BDTSpec(**{**(asdict(spec) if spec else {}), **settings})
    X, labels = _arrays(dataset)
    n_classes = int(max(labels.max() + 1, 2))
    order = np.random.default_rng(spec.seed).permutation(len(X))
    n_val = int(round(len(X) * spec.validation_split))
    val, fit = order[:n_val], order[n_val:]
    start = time.perf_counter()
    if spec.library == "xgboost":
        estimator, history = _train_xgboost(spec, n_classes, X[fit], labels[fit],
                                            (X[val], labels[val]) if n_val else None)
    else:
        estimator, history = _train_sklearn(spec, X[fit], labels[fit], (X[val], labels[val]) if n_val else None)
    history.seconds = time.perf_counter() - start
    return BDTModel(estimator, spec, n_classes, history, getattr(dataset, "class_names", None))


def _threads() -> int:
    """xgboost's threads: ``OMP_NUM_THREADS`` when set (a sweep's single-thread workers), else the CPUs
    this process may use."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return usable_cores()


def _train_xgboost(spec, n_classes, X, y, validation):
    xgb = require("xgboost", "train boosted decision trees")
    params = {"max_depth": spec.depth, "eta": spec.learning_rate, "seed": spec.seed, "nthread": _threads(),
              "tree_method": "hist"}
    if n_classes == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", num_class=n_classes, eval_metric="mlogloss")
    train = xgb.DMatrix(X, label=y)
    evals = [(train, "train")] + ([(xgb.DMatrix(validation[0], label=validation[1]), "val")] if validation else [])
    log: dict = {}
    stop = spec.early_stopping if validation else None
    booster = xgb.train(params, train, num_boost_round=spec.rounds, evals=evals, evals_result=log,
                        early_stopping_rounds=stop, verbose_eval=False)
    metric = params["eval_metric"]
    history = BDTHistory(loss=[float(v) for v in log["train"][metric]],
                         val_loss=[float(v) for v in log.get("val", {}).get(metric, [])])
    history.rounds_run = len(history.loss)
    if stop is not None:
        history.best_round = int(booster.best_iteration) + 1
        history.stopped_early = history.rounds_run < spec.rounds
        booster = booster[: history.best_round]  # keep the best rounds only: the export writes every tree
    return booster, history


def _train_sklearn(spec, X, y, validation):
    ensemble = require("sklearn.ensemble", "train boosted decision trees")
    model = ensemble.GradientBoostingClassifier(n_estimators=spec.rounds, max_depth=spec.depth,
                                                learning_rate=spec.learning_rate, random_state=spec.seed)
    model.fit(X, y)
    history = BDTHistory(loss=[float(v) for v in model.train_score_], rounds_run=int(model.n_estimators_))
    if validation is not None:
        metrics = require("sklearn.metrics", "score boosted decision trees")
        labels = np.arange(len(model.classes_))
        history.val_loss = [float(metrics.log_loss(validation[1], p, labels=labels))
                            for p in model.staged_predict_proba(validation[0])]
    return model, history


def load_bdt(path) -> BDTModel:
    """A BDT saved by :meth:`BDTModel.save` (an xgboost JSON/UBJ file alone also loads)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Cannot read the BDT {path}: the file does not exist.")
    side = sidecar_path(path)
    info = read_json(side, "the BDT's settings file") if side.is_file() else {}
    if not isinstance(info, dict):
        raise DataError(f"Cannot read the BDT {path}: its settings file {side} must hold a JSON object.")
    library = info.get("library", "xgboost")
    spec = BDTSpec(**info["spec"]) if "spec" in info else BDTSpec(library=library)
    history = BDTHistory(**info["history"]) if "history" in info else None
    if library == "xgboost":
        xgb = require("xgboost", "read xgboost models")
        estimator = xgb.Booster()
        try:
            estimator.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise DataError(f"Cannot read the BDT {path}: xgboost refused it ({str(exc).splitlines()[0]}).") from None
        n_classes = info.get("n_classes") or max(2, int(json.loads(estimator.save_config())["learner"]
                                                    ["learner_model_param"]["num_class"]))
    else:
        estimator = EnsembleScores(to_ensemble(path))
        n_classes = int(estimator.ensemble["n_classes"])
    return BDTModel(estimator, spec, n_classes, history, info.get("class_names"))


class EnsembleScores:
    """Float scores of conifer's ensemble description (a saved scikit-learn model), in numpy."""

    def __init__(self, ensemble: dict):
        self.ensemble = ensemble

    def decision_function(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        le = self.ensemble["splitting_convention"] == "<="
        init = np.asarray(self.ensemble["init_predict"], dtype=np.float64)
        out = np.tile(init, (len(X), 1))
        for trees in self.ensemble["trees"]:
            for c, tree in enumerate(trees):
                feature = np.asarray(tree["feature"])
                threshold = np.asarray(tree["threshold"], dtype=np.float64)
                left, right = np.asarray(tree["children_left"]), np.asarray(tree["children_right"])
                value = np.asarray(tree["value"], dtype=np.float64)
                node = np.zeros(len(X), dtype=np.int64)
                while True:
                    inner = feature[node] >= 0
                    if not inner.any():
                        break
                    x = X[np.arange(len(X)), np.where(inner, feature[node], 0)]
                    go_left = x <= threshold[node] if le else x < threshold[node]
                    node = np.where(inner, np.where(go_left, left[node], right[node]), node)
                out[:, c] += value[node]
        return out * float(self.ensemble["norm"])
