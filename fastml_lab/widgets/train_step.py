"""Step 2, Train: build the MLP, train it with live curves, and judge it on the test jets."""

from __future__ import annotations

import ipywidgets as widgets

from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_confusion_matrix, plot_history, plot_roc_curves
from .live import LiveCurves
from .runner import Stopped
from .state import MODEL_FILE, StepResult
from .step import Step

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
        "A small fully connected network: 16 inputs, hidden layers (e.g. <code>64-32-32</code>) "
        "with ReLU, and a softmax over the 5 classes. A quarter of the training jets is held out "
        "to watch for over-fitting; the curves update after every epoch. The ROC curves show, "
        "for each class, how many background jets are mistaken for it at a given efficiency.")
    needs = ("dataset",)

    def build_controls(self) -> list:
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
        return [widgets.HBox([self.architecture, self.epochs, self.batch_size]),
                widgets.HBox([self.learning_rate, self.patience])]

    def apply_quick(self, quick: bool) -> None:
        values = sizes(quick, "walk")
        self.epochs.value, self.batch_size.value = values.epochs, values.batch_size
        self.patience.value = values.patience or 0  # 0: off
        self.learning_rate.value = values.learning_rate

    def settings(self) -> dict:
        from ..train import parse_spec

        spec = parse_spec(self.architecture.value)  # a typo is reported before anything runs
        return {"spec": spec.to_string(), "epochs": self.epochs.value, "batch_size": self.batch_size.value,
                "learning_rate": float(f"{self.learning_rate.value:.3g}"),
                "patience": self.patience.value or None, "seed": 0}

    def calls(self, s: dict) -> list:
        return [
            Call("fastml_lab.train.parse_spec", (s["spec"],),
                 {"n_inputs": Ref("ds.X_train.shape[1]"), "n_classes": Ref("len(ds.class_names)")}, assign="spec"),
            Call("fastml_lab.train.build_model", (Ref("spec"),), {"seed": s["seed"]}, assign="model"),
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

    def work(self, task, settings: dict) -> StepResult:
        parse, build, train, judge, save = self.calls(settings)
        names = self.names()
        spec = parse.run(names)
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
        result.add("test accuracy", f"{evaluation.accuracy:.4f}")
        result.add("AUC per class", "  ".join(f"{n} {v:.3f}" for n, v in evaluation.auc.items()))
        self.add_figure(result, "training", plot_history(history))
        self.add_figure(result, "roc", plot_roc_curves(evaluation, title="Float model, test jets"))
        self.add_figure(result, "confusion", plot_confusion_matrix(evaluation))
        with self.state.hold_trait_notifications():
            self.state.quantized = None  # made from the previous model
            self.state.plan = None
            self.state.evaluation = evaluation
            self.state.model = model
        return result
