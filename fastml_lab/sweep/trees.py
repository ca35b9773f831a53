"""The boosted decision trees' part in sweeps: xgboost or scikit-learn ensembles exported through conifer.

xgboost, scikit-learn and conifer are imported when a point trains, not when a space is read.
"""

from __future__ import annotations

from ..bdt.ensemble import FAMILY
from ..boards import DEFAULT_PRECISION
from ..exceptions import ConfigError
from .params import Param, SweepSupport, choice, number, whole


def _precision(value):
    from ..bdt.export import parse_precision

    if not isinstance(value, str):
        return None
    try:
        parse_precision(value)
    except ConfigError:
        return None
    return value.replace(" ", "")


_precision.valid = "a fixed-point type such as \"ap_fixed<16,6>\" (or per part: \"input=... score=...\")"

#: The boosted decision trees' parameters.
BDT_PARAMS = {
    "rounds": Param(20, whole(1, 5000), "boosting rounds (trees per class)", numeric=True),
    "depth": Param(3, whole(1, 12), "largest tree depth", numeric=True),
    "learning_rate": Param(0.3, number(0.0, 1.0, low_open=True), "shrinkage of each tree", numeric=True),
    "precision": Param(DEFAULT_PRECISION, _precision, "fixed-point type of inputs, thresholds and scores"),
    "library": Param("xgboost", choice("xgboost", "sklearn"), "the library that grows the trees"),
}
#: The parameters that :meth:`~fastml_lab.families.Family.train` takes as they are.
TRAIN_SETTINGS = ("library", "rounds", "depth", "learning_rate")


class TreeSweep(SweepSupport):
    """A point trains an ensemble with the family's own training and exports it at ``precision``;
    its model (a :class:`~fastml_lab.bdt.train.BDTModel`) is its float model too."""

    family_name = FAMILY
    params = BDT_PARAMS
    libraries = ("xgboost", "conifer", "hls4ml")

    def label(self, params: dict) -> str:
        return f"{self.family.name} {params['rounds']}x{params['depth']} {params['precision']}"

    def train(self, point, ds):
        model = self.family.train(ds, seed=point.seed, **{k: point.params[k] for k in TRAIN_SETTINGS})
        return model, {"rounds_run": model.history.rounds_run}

    def export_options(self, params: dict) -> dict:
        return {"precision": params["precision"]}
