"""Step 5, Deploy: package the overlay, run it on the board or in software, and time it."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..families import NETWORK
from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_throughput
from .state import PACKAGES_DIR, TREES, StepResult
from .step import Step

RANDOM_EVENTS = 1000
#: How each family's float model is named: in the accuracy line, and in "same class as ...".
FLOAT_NAMES = {NETWORK: ("Keras float model", "Keras"), TREES: ("the float trees", "the float trees")}


class DeployStep(Step):
    name = "deploy"
    title = "5 · Deploy"
    explanation = (
        "An overlay package holds what the board needs: the bitstream (when Vivado built one), "
        "the firmware description, the input scaler and the class names. On a PYNQ-Z2 the jets "
        "travel to the FPGA through DMA; anywhere else the <b>software overlay</b> runs the "
        "bit-exact emulator behind the same API. The step shows which one ran, its accuracy "
        "against the Keras model, and its speed: measured here, and modelled for the board "
        "from the firmware's clock and initiation interval.")
    needs = ("project",)

    def build_controls(self) -> list:
        self.package_name = widgets.Text(value="lab_model", description="package")
        self.backend = widgets.ToggleButtons(options=[("auto", "auto"), ("software", "software"),
                                                      ("board", "board")], value="auto", description="run on",
                                             tooltip="auto: the board when one is present, else software")
        self.profile_events = widgets.BoundedIntText(value=sizes(True, "walk").profile_events, min=1, max=10_000_000,
                                                     description="timed jets")
        return [widgets.HBox([self.package_name, self.profile_events]), self.backend]

    def apply_quick(self, quick: bool) -> None:
        self.profile_events.value = sizes(quick, "walk").profile_events

    def settings(self) -> dict:
        from ..overlay.packaging import check_name

        return {"name": check_name(self.package_name.value.strip()), "backend": self.backend.value,
                "profile_events": self.profile_events.value}

    def calls(self, s: dict) -> list:
        """package, load, predict, profile, close."""
        project = str(self.state.project.path) if self.state.project is not None else "PROJECT"
        calls = [Call("fastml_lab.overlay.package", (project,),
                      {"name": s["name"], "out": str(self.state.folder / PACKAGES_DIR / s["name"]), "overwrite": True},
                      assign="path"),
                 Call("fastml_lab.overlay.load", (Ref("path"),), {"backend": s["backend"]}, assign="ol",
                      show=('print("running on:", ol.backend)',))]
        if self.state.dataset is not None:
            X = Ref("ds.X_test")
        else:  # no jets: random standardized inputs
            calls += [Call("numpy.random.default_rng", (0,), assign="rng"),
                      Call("rng.standard_normal", ((RANDOM_EVENTS, *self._input_shape()),), {"dtype": "float32"},
                           assign="X")]
            X = Ref("X")
        return calls + [
            Call("ol.predict", (X,), assign="outputs",
                 show=('print("accuracy:", (outputs.argmax(1) == ds.labels_test).mean())',) if X.expr != "X" else ()),
            Call("ol.profile", (Ref(f"{X.expr}[:{s['profile_events']}]"),), assign="timing",
                 show=("print(timing)",)),
            Call("ol.close"),
        ]

    def _input_shape(self) -> tuple:
        """One input of the exported design: ``(features,)``, or an image's shape for a CNN."""
        meta = self.state.project.meta if self.state.project is not None else {}
        return tuple(int(d) for d in meta.get("input_shape") or [meta.get("n_inputs", 16)])

    def work(self, task, s: dict) -> StepResult:
        calls = {call.assign or call.function: call for call in self.calls(s)}
        names = self.names()
        task.progress(0, 3, "packaging the overlay")
        path = calls["path"].run(names)
        task.check()
        task.progress(1, 3, "running the overlay")
        result = StepResult()
        overlay = calls["ol"].run(names)
        try:
            for name in ("rng", "X"):
                if name in calls:
                    calls[name].run(names)
            outputs = calls["outputs"].run(names)
            task.check()
            task.progress(2, 3, "timing the overlay")
            profile = calls["timing"].run(names)
            ran = overlay.backend
            result.add("ran on", "the PYNQ-Z2 board (FPGA)" if ran == "board" else
                       "the software overlay: the bit-exact emulator on this CPU (no board here)")
            result.add("package", str(path))
            result.add("serve it", f"fastml-lab serve {path} --port 8000: the Open Inference Protocol, so "
                                   "tritonclient or plain HTTP can query it from other jobs (tutorial 10)")
        finally:
            calls["ol.close"].run(names)
        X = names.get("X", names["ds"].X_test if names["ds"] is not None else None)
        labels = names["ds"].labels_test if names["ds"] is not None else None
        self._accuracy(X, labels, outputs, result)
        measured = profile["events_per_s"]
        result.add("measured speed", f"{measured:,.0f} events/s ({profile['us_per_event']:,.2f} µs per jet in one "
                                     f"batch of {profile['events']:,}); one jet alone {profile['latency_us']:,.0f} µs "
                                     "(median, the call's own overhead included)")
        bars = {f"measured ({ran})": measured}
        modelled = profile.get("modelled", {})
        if modelled.get("available"):
            latency = modelled.get("latency_us")
            design = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (modelled.get("design") or {}).items()
                               if k in ("reuse_factor", "strategy", "io_type", "n_trees") and v is not None)
            result.add("modelled board", f"{modelled['events_per_s']:,.0f} events/s, latency "
                                         f"{latency:.2f} µs at {modelled['clock_mhz']} MHz "
                                         f"({modelled['bound']}-bound; {modelled['source']}; IP only"
                                         + (f"; this design: {design}" if design else "") + ")")
            bars["modelled board IP"] = modelled["events_per_s"]
            resources = modelled.get("resources")
            if resources:
                figures = ", ".join(f"{key} {resources[key]:,}" for key in ("LUT", "FF", "DSP", "BRAM_18K", "CARRY4")
                                    if resources.get(key) is not None)
                result.add("recorded resources", f"{figures} ({resources['kind']})")
        self.add_figure(result, "throughput", plot_throughput(bars))
        self.state.package = path
        task.progress(3, 3, "done")
        return result

    def _accuracy(self, X, labels, outputs, result: StepResult) -> None:
        family = self.state.family
        float_classes = self._float_classes(X)
        label, name = FLOAT_NAMES.get(family, FLOAT_NAMES[NETWORK])
        classes = classes_of(outputs)
        if labels is not None:
            text = f"overlay {np.mean(classes == labels):.4f}"
            if float_classes is not None:
                text += f", {label} {np.mean(float_classes == labels):.4f}"
            result.add("accuracy", f"{text} on {len(labels):,} test jets")
        if float_classes is not None:
            result.add(f"same class as {name}", f"{np.mean(classes == float_classes):.2%} of the jets")

    def _float_classes(self, X):
        """The classes the trained float model gives ``X``, when it is what was exported (None otherwise)."""
        model, family = self.state.model, self.state.family
        if model is None or self.state.project.family != family:
            return None
        classes = {NETWORK: _network_classes, TREES: _tree_classes}.get(family)
        return classes(model, X) if classes is not None else None


def _network_classes(model, X):
    """The Keras model's classes of ``X`` (None when it takes inputs of another shape)."""
    if tuple(model.inputs[0].shape[1:]) != tuple(X.shape[1:]):
        return None
    return np.asarray(model.predict(X, batch_size=4096, verbose=0)).argmax(axis=1)


def _tree_classes(model, X):
    """The float trees' classes of ``X``."""
    return classes_of(model.predict(X))


def classes_of(scores) -> np.ndarray:
    """The class of each row of ``scores``: the argmax, or for one column (a two-class BDT's raw
    score) class 1 where the score is positive."""
    scores = np.asarray(scores)
    if scores.ndim == 2 and scores.shape[1] == 1:
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(axis=1)
