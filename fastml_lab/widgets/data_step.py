"""Step 1, Data: load the jets (synthetic, real from OpenML, or a file) or jet images, and look at them."""

from __future__ import annotations

import ipywidgets as widgets

from ..tutorial.sizes import settings as sizes
from .code import Call
from .figures import plot_class_balance, plot_class_images, plot_feature_distributions
from .state import IMAGES, StepResult
from .step import Step

#: The sources that read a path typed in the ``file`` box (for jet images an empty box means synthetic ones).
PATH_SOURCES = ("file", IMAGES)


class DataStep(Step):
    name = "data"
    title = "1 · Data"
    explanation = (
        "Jets from the LHC, each described by 16 high-level features, in five classes: gluon (g), "
        "light quark (q), top (t), W and Z. <b>synthetic</b> works offline and mimics the real "
        "dataset; <b>real</b> is the hls4ml dataset from OpenML (downloaded once, cached); "
        "<b>file</b> reads a CSV, Parquet or Zenodo HDF5 file or folder. The features are "
        "standardized with a scaler fitted on the training part, which the overlay reuses. "
        "<b>jet images</b> are the same five classes as 16x16 pictures of the transverse momentum "
        "in (eta, phi), with one, two or three prongs: synthetic ones, or the Zenodo HDF5 files "
        "when a path is given; every pixel is divided by one number, and Train offers a small CNN.")

    def build_controls(self) -> list:
        self.source = widgets.ToggleButtons(
            options=[("synthetic", "synthetic"), ("real (OpenML)", "openml"), ("file", "file"),
                     ("jet images", IMAGES)],
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
        images = self.source.value == IMAGES
        self.path.layout.display = "flex" if self.source.value in PATH_SOURCES else "none"
        self.path.placeholder = ("Zenodo jet image .h5 file or folder (empty: synthetic images)" if images
                                 else "path to a .csv, .parquet, .h5 or folder")
        self.n_events.description = "images" if images else "jets"

    def apply_quick(self, quick: bool) -> None:
        self.n_events.value = sizes(quick, "walk").n_events or 0  # 0: all of them

    def settings(self) -> dict:
        kind = self.source.value
        if kind in PATH_SOURCES:
            source = self.path.value.strip() or ("synthetic" if kind == IMAGES else "")
        else:
            source = kind
        return {"source": source, "n_events": self.n_events.value or None, "seed": self.seed.value, "kind": kind}

    def calls(self, settings: dict) -> list:
        function = "fastml_lab.data.images.load_jet_images" if settings["kind"] == IMAGES else "fastml_lab.data.load_jets"
        return [Call(function, (settings["source"],),
                     {"n_events": settings["n_events"], "seed": settings["seed"]}, assign="ds",
                     show=("print(ds.notice)", "print(ds.summary())"))]

    def work(self, task, settings: dict) -> StepResult:
        from ..exceptions import ConfigError

        if settings["kind"] == "file" and not settings["source"]:
            raise ConfigError("Enter the path of a jets file (CSV, Parquet, HDF5) or folder, "
                              "or choose the synthetic source.")
        images = settings["kind"] == IMAGES
        what = "images" if images else "jets"
        task.progress(0, 2, f"loading {what}")
        (load,) = self.calls(settings)
        ds = load.run(self.names()) if images else load.run(self.names(), progress=False)
        task.check()
        task.progress(1, 2, "drawing the average images" if images else "drawing the distributions")
        result = StepResult()
        summary = ds.summary()
        result.add("source", ds.notice)
        result.add(what, f"{summary['n_train']:,} for training, {summary['n_test']:,} for testing")
        if images:
            result.add("image", f"{'x'.join(map(str, ds.image_shape))} pixels (height x width x channels); "
                                f"{summary['scaling']}")
        else:
            result.add("features", f"{summary['n_features']}: {', '.join(summary['feature_names'])}")
        total = {name: summary["class_counts_train"][name] + summary["class_counts_test"][name]
                 for name in summary["class_names"]}
        n = sum(total.values())
        result.add("class balance", ", ".join(f"{name} {count / n:.1%}" for name, count in total.items()))
        self.add_figure(result, "classes", plot_class_balance(ds))
        if images:
            self.add_figure(result, "images", plot_class_images(ds))
        else:
            self.add_figure(result, "features", plot_feature_distributions(ds))
        self.state.dataset = ds
        task.progress(2, 2, "done")
        return result
