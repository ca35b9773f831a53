"""Step 4, Export: write the HLS project, compile the C simulation, check it against the emulator."""

from __future__ import annotations

import shutil

import ipywidgets as widgets
import numpy as np

from . import code
from .figures import plot_roc_curves
from .quantize_step import add_fit_estimate, quantize_api
from .state import HLS_PROJECT_DIR, StepResult
from .step import Step

#: Test jets run through the C simulation on quick settings (the emulator runs them all).
QUICK_CHECK_EVENTS = 2000
FULL_CHECK_EVENTS = 20_000
#: Inputs used for the check when the step has no dataset (standardized features look like this).
RANDOM_CHECK_EVENTS = 1000

PLANS = (("from the Quantize step", "quantize"), ("one type everywhere", "uniform"),
         ("from the data ranges", "data"))


class ExportStep(Step):
    name = "export"
    title = "4 · Export"
    explanation = (
        "hls4ml turns the network into C++ for Vitis/Vivado HLS with every number's type written "
        "out (the precision plan). The <b>reuse factor</b> lets one multiplier serve several "
        "products: fewer DSPs, more clock cycles. The C++ is compiled with g++ and run on test "
        "jets; the bit-exact emulator, which the software overlay uses, must give the same "
        "outputs value for value. Latency and resources come from the synthesis report when the "
        "vendor tools made one, otherwise from an estimate.")
    needs = ("model",)

    def build_controls(self) -> list:
        self.plan_source = widgets.Dropdown(options=PLANS, value="uniform", description="precision")
        self.precision = widgets.Text(value="ap_fixed<16,6>", description="type",
                                      tooltip="e.g. ap_fixed<16,6> or ap_fixed<8,3,AP_RND,AP_SAT>")
        self.reuse = widgets.BoundedIntText(value=1, min=1, max=4096, description="reuse factor")
        self.strategy = widgets.ToggleButtons(options=["Latency", "Resource"], value="Latency",
                                              description="strategy")
        self.backend = widgets.ToggleButtons(options=[("PYNQ-Z2", "pynq-z2"), ("Vitis", "vitis")],
                                             value="pynq-z2", description="backend",
                                             tooltip="PYNQ-Z2: AXI-stream wrapper for the board; Vitis: the IP alone")
        self.csim = widgets.Checkbox(value=True, description="compile and run the C simulation (g++)",
                                     indent=False)
        self.check_events = widgets.BoundedIntText(value=QUICK_CHECK_EVENTS, min=1, max=10_000_000,
                                                   description="check jets")
        self.plan_source.observe(lambda _: self._show_type(), names="value")
        self.state.observe(lambda _: self._prefer_quantize_plan(), names=["quantized", "plan"])
        self._prefer_quantize_plan()
        return [widgets.HBox([self.plan_source, self.precision]), widgets.HBox([self.reuse, self.strategy]),
                self.backend, widgets.HBox([self.csim, self.check_events])]

    def _prefer_quantize_plan(self) -> None:
        has = self.state.quantized is not None or self.state.plan is not None
        self.plan_source.value = "quantize" if has else "uniform"

    def _show_type(self) -> None:
        self.precision.layout.display = "flex" if self.plan_source.value == "uniform" else "none"

    def apply_quick(self, quick: bool) -> None:
        self.check_events.value = QUICK_CHECK_EVENTS if quick else FULL_CHECK_EVENTS

    def settings(self) -> dict:
        from ..exceptions import NotReadyError

        source = self.plan_source.value
        if source == "quantize" and self.state.quantized is None and self.state.plan is None:
            raise NotReadyError("Precision 'from the Quantize step' needs a run of step 3 (Quantize); "
                                "run it or choose another precision.")
        return {"plan": source, "precision": self.precision.value.strip(), "reuse_factor": self.reuse.value,
                "strategy": self.strategy.value, "backend": self.backend.value, "csim": self.csim.value,
                "check_events": self.check_events.value}

    def code(self, settings: dict) -> str:
        return code.export_code(settings, self.state.folder / HLS_PROJECT_DIR,
                                quantized=self.state.quantized is not None, planned=self.state.plan is not None)

    # ------------------------------------------------------------------ work
    def _model_and_plan(self, s):
        """``(model, plan, description)``; plan None takes the types from the HGQ2 quantizers."""
        from ..exceptions import NotReadyError
        from ..hls import PrecisionPlan

        state = self.state
        if s["plan"] == "quantize":
            model = state.quantized if state.quantized is not None else state.model
            text = "types from the HGQ2 quantizers" if state.plan is None else "the Quantize step's plan"
            return model, state.plan, text
        if s["plan"] == "data":
            if state.dataset is None:
                raise NotReadyError("A plan from the data ranges needs jets: run step 1 (Data) or "
                                    "choose 'one type everywhere'.")
            return state.model, PrecisionPlan.from_data(state.model, state.dataset.X_train), "from the data ranges"
        return state.model, PrecisionPlan.uniform(s["precision"]), s["precision"] + " everywhere"

    def _check_inputs(self):
        """``(X, labels or None)``: test jets, or random standardized inputs without a dataset."""
        ds = self.state.dataset
        if ds is not None:
            return ds.X_test, ds.labels_test
        X = np.random.default_rng(0).normal(size=(RANDOM_CHECK_EVENTS, self.state.model.inputs[0].shape[-1]))
        return X.astype(np.float32), None

    def work(self, task, s: dict) -> StepResult:
        from ..hls import export

        ds = self.state.dataset
        stages = 4 if s["csim"] else 2
        task.progress(0, stages, "writing the HLS project")
        model, plan, plan_text = self._model_and_plan(s)
        project = export(model, self.state.folder / HLS_PROJECT_DIR, plan=plan, backend=s["backend"],
                         reuse_factor=s["reuse_factor"], strategy=s["strategy"],
                         scaler=ds.scaler if ds is not None else None,
                         class_names=ds.class_names if ds is not None else None,
                         feature_names=ds.feature_names if ds is not None else None, overwrite=True)
        self.state.project = None  # the folder changed; the new project is handed on once checked
        self.state.forget_result(self.name)  # the saved numbers described the old folder
        try:
            result = self._check(task, s, project, model, plan_text, stages)
        except BaseException:  # stopped or failed: no unchecked project for a re-run to pick up
            shutil.rmtree(project.path, ignore_errors=True)
            raise
        self.state.project = project
        task.progress(stages, stages, "done")
        return result

    def _check(self, task, s: dict, project, model, plan_text: str, stages: int) -> StepResult:
        """Emulator, Keras and (optionally) the C simulation on the same jets; timing and fit."""
        from ..evaluate import evaluate_scores

        ds = self.state.dataset
        task.check()
        task.progress(1, stages, "running the emulator")
        X, labels = self._check_inputs()
        firmware = project.firmware()
        emulated = firmware.predict(X)
        float_scores = np.asarray(model.predict(X, batch_size=4096, verbose=0), dtype=np.float64)
        result = StepResult()
        result.add("project", f"{project.path} ({project.backend}, {project.meta['strategy']}, "
                              f"reuse {project.meta['reuse_factor']})")
        result.add("precision", plan_text)
        if s["csim"]:
            task.check()
            task.progress(2, stages, "compiling the C simulation with g++")
            from ..hls import compile_csim, run_csim

            compile_csim(project)
            task.check()
            task.progress(3, stages, "running the C simulation")
            n = min(len(X), s["check_events"])
            simulated = run_csim(project, X[:n])
            mismatches = int((simulated != emulated[:n]).sum())
            result.add("bit-exact check", f"{mismatches} mismatches between the C simulation and the "
                                          f"emulator on {simulated.size:,} output values ({n:,} jets)")
            if mismatches:
                result.notes.append(f"The C simulation and the emulator differ on {mismatches} values: "
                                    "please report this with the project folder.")
        else:
            result.notes.append("The C simulation was skipped; the outputs come from the emulator only.")
        if labels is not None:
            fixed = evaluate_scores(emulated, labels, ds.class_names)
            floating = evaluate_scores(float_scores, labels, ds.class_names)
            result.add("accuracy", f"fixed point {fixed.accuracy:.4f}, exported Keras model {floating.accuracy:.4f} "
                                   f"({len(labels):,} test jets)")
            self.add_figure(result, "roc", plot_roc_curves(floating, compare=fixed, labels=("Keras", "firmware"),
                                                           title="Keras (solid) vs firmware (dashed)"))
        else:
            agree = float(np.mean(emulated.argmax(1) == float_scores.argmax(1)))
            result.add("agreement with Keras", f"{agree:.2%} of {len(X):,} random inputs get the same class")
        self._timing(project, firmware, result)
        fit_estimate = quantize_api("fit_estimate")
        if fit_estimate is not None:
            add_fit_estimate(self, result, fit_estimate(project))
        return result

    @staticmethod
    def _timing(project, firmware, result: StepResult) -> None:
        synthesis = project.meta.get("synthesis")
        timing = project.meta.get("timing") or firmware.timing
        source = "synthesis report" if synthesis else "estimate before synthesis"
        clock = timing.get("clock_mhz")
        latency = timing.get("latency_cycles")
        text = f"{latency} cycles, II {timing.get('ii_cycles')} cycles at {clock} MHz"
        if latency and clock:
            text += f" = {latency / clock:.2f} µs"
        result.add(f"latency ({source})", text)
        if synthesis:
            resources = synthesis.get("resources", {})
            result.add("resources (synthesis report)",
                       ", ".join(f"{k} {v:,}" for k, v in resources.items() if v is not None))
