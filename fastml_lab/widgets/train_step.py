"""Step 2, Train: a neural network (the MLP, with live curves; on jet images a small CNN or the MLP
on the flattened pixels) or boosted decision trees, judged on the test jets. Training one family
removes the other's model file from the project folder."""

from __future__ import annotations

import ipywidgets as widgets

from ..families import NETWORK, get_family
from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_bdt_history, plot_confusion_matrix, plot_history, plot_roc_curves
from .live import LiveCurves
from .runner import Stopped
from .state import (BDT_MODEL_FILE, FAMILIES, MODEL_FILE, PLAN_FILE, PRECISION_FILE, QUANTIZED_FILE, TREES,
                    StepResult, is_image_data, takes_images)
from .step import Step, settings_family, show_family

#: The model toggle's label of a family whose title is too short for it (the trees' title is "BDT").
LABELS = {TREES: "boosted decision trees"}
#: The title of each family's ROC curves on the test jets.
ROC_TITLES = {NETWORK: "Float model, test jets", TREES: "Boosted decision trees, test jets"}
#: The networks offered on jet images: a small CNN, or the MLP on the flattened pixels.
CNN, MLP = "cnn", "mlp"
NETWORKS = (("small CNN", CNN), ("MLP on the pixels", MLP))


def family_options() -> list:
    """``(label, name)`` of each family the walk trains, for the model toggle."""
    return [(LABELS.get(name, get_family(name).title), name) for name in FAMILIES]


def family_files(family: str) -> tuple:
    """What ``family``'s walk keeps in the project folder: its model and what step 3 made of it."""
    return {NETWORK: (MODEL_FILE, QUANTIZED_FILE, f"quantize/{PLAN_FILE}"),
            TREES: (BDT_MODEL_FILE, sidecar_name(BDT_MODEL_FILE), f"quantize/{PRECISION_FILE}")}[family]


def stop_callback(task):
    """A Keras callback that ends training after the current batch once Stop was pressed."""
    from .._deps import require

    keras = require("keras", "train models")

    class StopOnRequest(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if task.stopped:
                self.model.stop_training = True

    return StopOnRequest()


class TrainStep(Step):
    name = "train"
    title = "2 · Train"
    explanation = (
        "A <b>neural network</b>: a small fully connected network, 16 inputs, hidden layers (e.g. "
        "<code>64-32-32</code>) with ReLU, and a softmax over the 5 classes; the curves update after "
        "every epoch. Or <b>boosted decision trees</b> (xgboost): each round adds one small tree per "
        "class that corrects the ensemble so far, scaled by the learning rate; a tree asks at most "
        "<i>depth</i> yes/no questions about the features. Either way a quarter of the training jets "
        "is held out to watch for over-fitting (early stopping keeps the best epoch or round). The "
        "ROC curves show, for each class, how many background jets are mistaken for it at a given "
        "efficiency. On <b>jet images</b> the network is a <b>small CNN</b>: each conv block (e.g. "
        "<code>8-8</code>: two blocks of 8 filters) slides 3x3 filters over the image, keeps the "
        "positive part and halves the image by 2x2 max pooling, then one Dense layer gives the 5 "
        "classes; or the MLP on the flattened pixels, which has to learn the same shapes pixel by pixel.")
    needs = ("dataset",)

    def build_controls(self) -> list:
        self.family = widgets.ToggleButtons(options=family_options(), value=NETWORK, description="model",
                                            style={"button_width": "180px"}).add_class("fastml-lab-family")
        self.nn_box = widgets.VBox(self._nn_controls())
        self.bdt_box = widgets.VBox(self._bdt_controls())
        self.boxes = {NETWORK: self.nn_box, TREES: self.bdt_box}
        self.family.observe(lambda _: self._show_family(), names="value")
        self.network.observe(lambda _: self._show_network(), names="value")
        self.state.observe(lambda _: self._show_network(), names="dataset")
        self.state.observe(lambda _: self._follow_model(), names="model")
        self._show_family()
        self._follow_model()
        self._show_network()
        return [self.family, self.nn_box, self.bdt_box]

    def _bdt_controls(self) -> list:
        self.rounds = widgets.BoundedIntText(value=20, min=1, max=5000, description="rounds",
                                             tooltip="boosting rounds: trees added per class")
        self.depth = widgets.IntSlider(value=3, min=1, max=8, description="depth",
                                       tooltip="largest depth of a tree: comparisons on the way to a leaf")
        self.bdt_learning_rate = widgets.FloatSlider(value=0.3, min=0.05, max=1.0, step=0.05,
                                                     description="learning rate",
                                                     tooltip="how much of each new tree's correction is added")
        self.early_stopping = widgets.BoundedIntText(value=5, min=0, max=1000, description="early stopping",
                                                     tooltip="stop after this many rounds without a better "
                                                             "validation loss, keep the best (0: off)")
        return [widgets.HBox([self.rounds, self.depth]), widgets.HBox([self.bdt_learning_rate, self.early_stopping])]

    def _show_family(self) -> None:
        show_family(self.boxes, self.family.value)

    def family_changed(self, family: str) -> None:
        self.family.value = family  # a restored or given model shows its own settings

    def _follow_model(self) -> None:
        """A restored or given network on jet images shows its own kind: the CNN or the MLP on the pixels."""
        model = self.state.model
        if is_image_data(self.state.dataset) and getattr(model, "inputs", None):
            self.network.value = CNN if takes_images(model) else MLP

    def _show_network(self) -> None:
        """On jet images, the network choice (CNN filters, or the MLP's hidden layers); else the MLP."""
        images = is_image_data(self.state.dataset)
        cnn = images and self.network.value == CNN
        self.network.layout.display = "flex" if images else "none"
        self.filters.layout.display = "flex" if cnn else "none"
        self.architecture.layout.display = "none" if cnn else "flex"

    def _nn_controls(self) -> list:
        self.network = widgets.ToggleButtons(options=NETWORKS, value=CNN, description="network",
                                             tooltip="on jet images: a small CNN, or the MLP on the flattened pixels")
        self.filters = widgets.Text(value="8-8", description="conv filters",
                                    tooltip="filters of each conv block (3x3 conv, ReLU, 2x2 max pooling), "
                                            "e.g. 8-8, 4-8:fc=16 (a Dense layer after Flatten) or 8:k=5")
        self.architecture = widgets.Text(value="64-32-32", description="hidden",
                                         tooltip="hidden layer widths, e.g. 64-32-32 or 32-16:bn")
        self.epochs = widgets.BoundedIntText(value=3, min=1, max=1000, description="epochs")
        self.batch_size = widgets.Dropdown(options=[128, 256, 512, 1024, 2048], value=512,
                                           description="batch size")
        self.learning_rate = widgets.FloatLogSlider(value=3e-3, base=10, min=-4, max=-1, step=0.25,
                                                    description="learning rate", readout_format=".0e")
        self.patience = widgets.BoundedIntText(value=0, min=0, max=100, description="patience",
                                               tooltip="early stopping after this many epochs without "
                                                       "improvement (0: off)")
        self.live = LiveCurves()
        return [self.network, widgets.HBox([self.architecture, self.filters, self.epochs, self.batch_size]),
                widgets.HBox([self.learning_rate, self.patience])]

    def apply_quick(self, quick: bool) -> None:
        values = sizes(quick, "walk")
        self.epochs.value, self.batch_size.value = values.epochs, values.batch_size
        self.patience.value = values.patience or 0  # 0: off
        self.learning_rate.value = values.learning_rate
        self.rounds.value, self.depth.value = values.bdt_rounds, values.bdt_depth
        self.bdt_learning_rate.value = values.bdt_learning_rate
        self.early_stopping.value = values.bdt_early_stopping or 0  # 0: off

    def settings(self) -> dict:
        return {NETWORK: self._nn_settings, TREES: self._bdt_settings}[self.family.value]()

    def names(self) -> dict:
        """The script's variables; ``ds`` is the Data step's own (a network on the pixels flattens it itself)."""
        return {**super().names(), "ds": self.state.dataset}

    def _bdt_settings(self) -> dict:
        from ..exceptions import ConfigError

        if is_image_data(self.state.dataset):
            raise ConfigError("Boosted decision trees take the jets' features, not jet images: choose the "
                              "neural network (a small CNN or the MLP on the pixels), or load jets at step 1 (Data).")
        return {"family": TREES, "rounds": self.rounds.value, "depth": self.depth.value,
                "learning_rate": round(float(self.bdt_learning_rate.value), 3),
                "early_stopping": self.early_stopping.value or None, "seed": 0}

    def _nn_settings(self) -> dict:
        from ..train import parse_cnn_spec, parse_spec

        training = {"epochs": self.epochs.value, "batch_size": self.batch_size.value,
                    "learning_rate": float(f"{self.learning_rate.value:.3g}"),
                    "patience": self.patience.value or None, "seed": 0}
        if not is_image_data(self.state.dataset):
            spec = parse_spec(self.architecture.value)  # a typo is reported before anything runs
            return {"spec": spec.to_string(), **training}
        if self.network.value == CNN:
            return {"network": CNN, "spec": parse_cnn_spec(self.filters.value).to_string(), **training}
        return {"network": MLP, "spec": parse_spec(self.architecture.value).to_string(), **training}

    def calls(self, s: dict) -> list:
        return {NETWORK: self._nn_calls, TREES: self._bdt_calls}[settings_family(s)](s)

    def _nn_calls(self, s: dict) -> list:
        """(flatten the images), spec, build, train, evaluate, save; a CNN from its own spec."""
        network = s.get("network")
        if network == CNN:
            build = [Call("fastml_lab.train.parse_cnn_spec", (s["spec"],),
                          {"input_shape": Ref("ds.image_shape"), "n_classes": Ref("len(ds.class_names)")},
                          assign="spec"),
                     Call("fastml_lab.train.build_cnn", (Ref("spec"),), {"seed": s["seed"]}, assign="model")]
        else:
            build = [Call("ds.flattened", assign="ds")] if network == MLP else []
            build += [Call("fastml_lab.train.parse_spec", (s["spec"],),
                           {"n_inputs": Ref("ds.X_train.shape[1]"), "n_classes": Ref("len(ds.class_names)")},
                           assign="spec"),
                      Call("fastml_lab.train.build_model", (Ref("spec"),), {"seed": s["seed"]}, assign="model")]
        return build + [
            Call("fastml_lab.train.train_model", (Ref("model"), Ref("ds")),
                 {"epochs": s["epochs"], "batch_size": s["batch_size"], "patience": s["patience"],
                  "learning_rate": s["learning_rate"], "seed": s["seed"]}, assign="history",
                 show=("plot_training(history)",), show_imports=("from fastml_lab.plots import plot_training",)),
            Call("fastml_lab.evaluate.evaluate", (Ref("model"), Ref("ds")), assign="evaluation",
                 show=('print("test accuracy", evaluation.accuracy, evaluation.auc)', "plot_roc(evaluation)",
                       "plot_confusion(evaluation)"),
                 show_imports=("from fastml_lab.plots import plot_roc", "from fastml_lab.plots import plot_confusion")),
            Call("fastml_lab.train.save_model", (Ref("model"), str(self.state.folder / MODEL_FILE))),
        ]

    def _bdt_calls(self, s: dict) -> list:
        return [
            Call("fastml_lab.bdt.train.train_bdt", (Ref("ds"),),
                 {"rounds": s["rounds"], "depth": s["depth"], "learning_rate": s["learning_rate"],
                  "early_stopping": s["early_stopping"], "seed": s["seed"]}, assign="model",
                 show=("print(model, model.history.best_round)",)),
            Call("fastml_lab.evaluate.evaluate", (Ref("model"), Ref("ds")), assign="evaluation",
                 show=('print("test accuracy", evaluation.accuracy, evaluation.auc)', "plot_roc(evaluation)",
                       "plot_confusion(evaluation)"),
                 show_imports=("from fastml_lab.plots import plot_roc", "from fastml_lab.plots import plot_confusion")),
            Call("model.save", (str(self.state.folder / BDT_MODEL_FILE),)),
        ]

    def work(self, task, settings: dict) -> StepResult:
        return {NETWORK: self._work_nn, TREES: self._work_bdt}[settings_family(settings)](task, settings)

    def _work_nn(self, task, settings: dict) -> StepResult:
        *prepare, build, train, judge, save = self.calls(settings)
        names = self.names()
        for call in prepare:  # (flatten the images,) the spec
            call.run(names)
        spec = names["spec"]
        self.live.reset()
        self.results.children = [self.live.image]
        epochs = settings["epochs"]
        task.progress(0, epochs, "building the model")
        model = build.run(names)

        def on_epoch_end(epoch, logs):
            self.live.hook(epoch, logs)
            task.progress(epoch + 1, epochs, LiveCurves.postfix(logs))

        history = train.run(names, progress=False, on_epoch_end=on_epoch_end, callbacks=[stop_callback(task)])
        self.live.redraw()
        if task.stopped:
            raise Stopped()
        evaluation = judge.run(names)
        save.run(names)
        result = StepResult()
        result.add("model", f"{spec.describe()}, {model.count_params():,} parameters")
        stop = f", stopped early (best epoch {history.best_epoch + 1})" if history.stopped_early else ""
        result.add("training", f"{history.epochs_run} epochs in {history.seconds:.1f} s{stop}")
        return self._judged(NETWORK, result, model, evaluation, lambda: plot_history(history))

    def _work_bdt(self, task, settings: dict) -> StepResult:
        train, judge, save = self.calls(settings)
        names = self.names()
        self.results.children = ()
        task.progress(0, 2, f"growing up to {settings['rounds']} rounds of trees")
        model = train.run(names)
        task.check()
        task.progress(1, 2, "judging the trees on the test jets")
        evaluation = judge.run(names)
        save.run(names)
        history = model.history
        kept = history.best_round or history.rounds_run
        result = StepResult()
        per_round = f"{model.n_classes} trees per round" if model.n_classes > 2 else "1 tree per round"
        result.add("model", f"boosted decision trees ({model.spec.library}): {kept} rounds x {per_round}, "
                            f"depth up to {model.spec.depth}, learning rate {model.spec.learning_rate:g}")
        stop = (f", stopped early (kept the best {kept} rounds)" if history.stopped_early
                else f" (kept the best {kept})" if history.best_round and kept < history.rounds_run else "")
        result.add("training", f"{history.rounds_run} rounds in {history.seconds:.1f} s{stop}")
        return self._judged(TREES, result, model, evaluation, lambda: plot_bdt_history(history))

    def _judged(self, family: str, result: StepResult, model, evaluation, plot_training) -> StepResult:
        """The test numbers and figures of ``family``'s trained ``model`` (``plot_training()``: its
        training curves) added to ``result``; the model is handed on."""
        result.add("test accuracy", f"{evaluation.accuracy:.4f}")
        result.add("AUC per class", "  ".join(f"{n} {v:.3f}" for n, v in evaluation.auc.items()))
        self.add_figure(result, "training", plot_training())
        self.add_figure(result, "roc", plot_roc_curves(evaluation, title=ROC_TITLES[family]))
        self.add_figure(result, "confusion", plot_confusion_matrix(evaluation))
        self._keep(family, model, evaluation)
        return result

    def _keep(self, family: str, model, evaluation) -> None:
        """Hand on the new model; what the other families and the previous model left is dropped."""
        for other in self.boxes:
            if other != family:
                for name in family_files(other):
                    (self.state.folder / name).unlink(missing_ok=True)
        with self.state.hold_trait_notifications():
            self.state.quantized = None  # made from the previous model
            self.state.plan = None
            self.state.precision = None
            self.state.evaluation = evaluation
            self.state.model = model


def sidecar_name(name: str) -> str:
    """The BDT sidecar's file name beside the model file ``name``."""
    from ..bdt.train import sidecar_path

    return sidecar_path(name).name
