"""Step 1, Data: load the jets (synthetic, real from OpenML, or a file) and look at them."""

from __future__ import annotations

import ipywidgets as widgets

from ..tutorial.sizes import settings as sizes
from .code import Call
from .figures import plot_class_balance, plot_feature_distributions
from .state import StepResult
from .step import Step

class DataStep(Step):
    name = "data"
    title = "1 · Data"
    explanation = (
        "Jets from the LHC, each described by 16 high-level features, in five classes: gluon (g), "
        "light quark (q), top (t), W and Z. <b>synthetic</b> works offline and mimics the real "
        "dataset; <b>real</b> is the hls4ml dataset from OpenML (downloaded once, cached); "
        "<b>file</b> reads a CSV, Parquet or Zenodo HDF5 file or folder. The features are "
        "standardized with a scaler fitted on the training part, which the overlay reuses.")

    def build_controls(self) -> list:
        self.source = widgets.ToggleButtons(
            options=[("synthetic", "synthetic"), ("real (OpenML)", "openml"), ("file", "file")],
            value="synthetic", description="source")
        self.path = widgets.Text(description="file", placeholder="path to a .csv, .parquet, .h5 or folder",
                                 layout=widgets.Layout(width="60%"))
        self.n_events = widgets.BoundedIntText(value=sizes(True, "walk").n_events, min=0, max=10_000_000, step=1000,
                                               description="jets", tooltip="0: all of them")
        self.seed = widgets.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed")
        self.source.observe(lambda _: self._show_path(), names="value")
        self._show_path()
        return [self.source, self.path, widgets.HBox([self.n_events, self.seed])]

    def _show_path(self) -> None:
        self.path.layout.display = "flex" if self.source.value == "file" else "none"

    def apply_quick(self, quick: bool) -> None:
        self.n_events.value = sizes(quick, "walk").n_events or 0  # 0: all of them

    def settings(self) -> dict:
        source = self.path.value.strip() if self.source.value == "file" else self.source.value
        return {"source": source, "n_events": self.n_events.value or None, "seed": self.seed.value,
                "kind": self.source.value}

    def calls(self, settings: dict) -> list:
        return [Call("fastml_lab.data.load_jets", (settings["source"],),
                     {"n_events": settings["n_events"], "seed": settings["seed"]}, assign="ds",
                     show=("print(ds.notice)", "print(ds.summary())"))]

    def work(self, task, settings: dict) -> StepResult:
        from ..exceptions import ConfigError

        if settings["kind"] == "file" and not settings["source"]:
            raise ConfigError("Enter the path of a jets file (CSV, Parquet, HDF5) or folder, "
                              "or choose the synthetic source.")
        task.progress(0, 2, "loading jets")
        (load,) = self.calls(settings)
        ds = load.run(self.names(), progress=False)
        task.check()
        task.progress(1, 2, "drawing the distributions")
        result = StepResult()
        summary = ds.summary()
        result.add("source", ds.notice)
        result.add("jets", f"{summary['n_train']:,} for training, {summary['n_test']:,} for testing")
        result.add("features", f"{summary['n_features']}: {', '.join(summary['feature_names'])}")
        total = {name: summary["class_counts_train"][name] + summary["class_counts_test"][name]
                 for name in summary["class_names"]}
        n = sum(total.values())
        result.add("class balance", ", ".join(f"{name} {count / n:.1%}" for name, count in total.items()))
        self.add_figure(result, "classes", plot_class_balance(ds))
        self.add_figure(result, "features", plot_feature_distributions(ds))
        self.state.dataset = ds
        task.progress(2, 2, "done")
        return result
