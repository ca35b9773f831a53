"""The boosted-decision-tree family: xgboost or scikit-learn ensembles through conifer.

xgboost, scikit-learn and conifer are imported inside the methods: this module loads with numpy alone.
"""

from __future__ import annotations

from pathlib import Path

from ..bdt.ensemble import FAMILY
from ..exceptions import ConfigError
from . import MEMORY_MAPPED, Family, register


class BoostedDecisionTrees(Family):
    name = FAMILY
    title = "BDT"
    model_suffixes = (".json", ".ubj")
    board_interface = MEMORY_MAPPED
    source_keys = ("name", "backend", "library", "n_classes", "n_rounds", "n_trees", "precision", "conifer_version")
    #: Where conifer's ZynqBuilder leaves them: ``package()`` copies both to ``package/``; Vivado's run folder.
    bitstream_globs = (("package/myproject.bit", "myproject_vivado/project_1.runs/impl_1/*.bit"),
                       ("package/myproject.hwh",
                        "myproject_vivado/project_1.gen/sources_1/bd/*/hw_handoff/*.hwh",
                        "myproject_vivado/project_1.srcs/sources_1/bd/*/hw_handoff/*.hwh"))
    export_options = ()
    options_hint = ("A BDT's types are set with --precision (one type, or e.g. "
                    "'input=ap_fixed<16,6> score=ap_fixed<18,8>').")
    priced_by_ops = False
    train_options = {
        "library": (str, "xgboost or sklearn (default: xgboost)"),
        "rounds": (int, "boosting rounds (default: 100)"),
        "depth": (int, "largest depth of a tree (default: 3)"),
        "learning_rate": (float, "each tree's share (default: 0.3)"),
        "early_stopping": (int, "rounds without a better validation loss before stopping (default: 10)"),
    }
    sweep_marker = ("^", "#d62728")
    rtl_backends = {"vhdl": "VHDL from conifer's VHDL backend"}

    def owns_file(self, path: Path) -> bool:
        """A saved BDT by its content (xgboost's or conifer's JSON, UBJ); a missing file by its suffix."""
        from ..bdt.ensemble import is_bdt_file

        path = Path(path)
        return is_bdt_file(path) if path.is_file() else super().owns_file(path)

    def owns_model(self, model) -> bool:
        return isinstance(model, dict) or type(model).__name__ == "BDTModel" or (
            hasattr(model, "get_booster") or hasattr(model, "estimators_"))

    def owns_description(self, description: dict) -> bool:
        from ..firmware.ops.bdt import OP

        return any(layer.get("op") == OP for layer in description.get("layers", ()))

    def train(self, dataset, seed: int = 0, **settings):
        """A BDT trained on ``dataset``; ``settings`` are :class:`fastml_lab.bdt.train.BDTSpec`'s fields."""
        from ..bdt.train import train_bdt

        return train_bdt(dataset, seed=seed, **settings)

    def check_train_settings(self, settings: dict) -> None:
        from ..bdt.train import BDTSpec

        BDTSpec(**settings)

    def save(self, model, path) -> Path:
        return model.save(path)

    def load(self, path):
        from ..bdt.train import load_bdt

        return load_bdt(path)

    def preflight(self, path, precision=None) -> None:
        from ..bdt.export import parse_precision

        if precision is not None:
            parse_precision(precision)

    def cpu_predictor(self, model) -> tuple:
        library = getattr(getattr(model, "spec", None), "library", None) or "the trees' library"
        return f"{library} (float trees)", f"{library}'s threads", model.decision_function

    def evaluate(self, model, dataset):
        from ..evaluate import evaluate

        return evaluate(model, dataset)

    def _with_names(self, model):
        """A model saved by fastml_lab, loaded with the class names it carries beside it; a bare
        xgboost/conifer file (or a model object) as it is."""
        from ..bdt.train import sidecar_path

        if isinstance(model, (str, Path)) and sidecar_path(model).is_file():
            return self.load(model)
        return model

    def export(self, model, out, **options):
        from ..bdt.export import export_bdt

        return export_bdt(self._with_names(model), out, **options)

    def export_rtl(self, model, out, *, backend: str, board=None, part=None, clock_period_ns=None,
                   overwrite: bool = False, **options):
        """conifer's VHDL (``backend="vhdl"``; :func:`fastml_lab.bdt.vhdl.export_vhdl`)."""
        from ..bdt.vhdl import export_vhdl

        if backend not in self.rtl_backends:
            raise ConfigError(f"A {self.title} exports RTL through {', '.join(self.rtl_backends)}; got {backend!r}.")
        return export_vhdl(self._with_names(model), out, backend=backend, board=board, part=part,
                           clock_period_ns=clock_period_ns, overwrite=overwrite, **options)

    def csim_recipe(self, hls_dir: Path) -> dict:
        from ..bdt.csim import bdt_recipe

        return bdt_recipe()

    def estimate(self, source, board=None, part=None, clock_period_ns=None):
        from ..bdt.estimate import as_estimate
        from ..bdt.vhdl import is_vhdl_project, vhdl_estimate

        if is_vhdl_project(source):
            return vhdl_estimate(source, board=board, part=part, clock_period_ns=clock_period_ns)
        return as_estimate(source, board=board, part=part, clock_period_ns=clock_period_ns)

    def profile(self, model, dataset, precision=None, **options):
        from ..bdt.profile import profile_bdt

        return profile_bdt(model, dataset, precision=precision, **options)

    def study(self, model, dataset, **options):
        from ..bdt.study import precision_study

        return precision_study(model, dataset, **options)


register(BoostedDecisionTrees())
