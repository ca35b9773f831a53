"""Step 4, Export: write the HLS project, compile the C simulation, check it against the emulator.

A neural network goes through hls4ml (:func:`fastml_lab.hls.export`), boosted decision trees
through conifer (:func:`fastml_lab.bdt.export_bdt`) with the precision the Precision step chose;
both are checked with the same :func:`~fastml_lab.hls.check.check_project`.
"""

from __future__ import annotations

import shutil

import ipywidgets as widgets
import numpy as np

from ..boards import BOARDS, DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, get_board
from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_budget, plot_roc_curves
from .quantize_step import add_fit_estimate
from .state import HLS_PROJECT_DIR, StepResult
from .step import Step

#: Inputs used for the check when the step has no dataset (standardized features look like this).
RANDOM_CHECK_EVENTS = 1000

PLANS = (("from the Quantize step", "quantize"), ("one type everywhere", "uniform"),
         ("from the data ranges", "data"))
#: The precision of boosted decision trees: the Precision step's choice or one type.
BDT_PRECISIONS = (("from the Precision step", "quantize"), ("one type everywhere", "uniform"))
#: Resources of a BDT estimate drawn against the board's budget.
BDT_RESOURCES = ("LUT", "FF", "DSP")

NN_EXPLANATION = (
    "hls4ml turns the network into C++ for Vitis/Vivado HLS with every number's type written "
    "out (the precision plan). The <b>reuse factor</b> lets one multiplier serve several "
    "products: fewer DSPs, more clock cycles. The C++ is compiled with g++ and run on test "
    "jets; the bit-exact emulator, which the software overlay uses, must give the same "
    "outputs value for value. Latency and resources come from the synthesis report when the "
    "vendor tools made one, otherwise from an estimate.")
BDT_EXPLANATION = (
    "conifer turns the trees into C++ for Vitis/Vivado HLS: every split becomes a comparator of "
    "one feature with a constant threshold, every tree a lookup of its leaf, and the tree scores "
    "of each class are summed by an adder tree. Inputs and thresholds share one fixed-point type, "
    "the leaf values and sums another (the score type). The C++ is compiled with g++ and run on "
    "test jets; the bit-exact emulator, which the software overlay uses, must give the same "
    "outputs value for value. Latency and resources are conifer's estimate (no multipliers: "
    "DSP 0).")


class ExportStep(Step):
    name = "export"
    title = "4 · Export"
    explanation = NN_EXPLANATION
    needs = ("model",)

    def build_controls(self) -> list:
        self.plan_source = widgets.Dropdown(options=PLANS, value="uniform", description="precision")
        self.precision = widgets.Text(value=DEFAULT_PRECISION, description="type",
                                      tooltip="e.g. ap_fixed<16,6> or ap_fixed<8,3,AP_RND,AP_SAT>")
        self.reuse = widgets.BoundedIntText(value=1, min=1, max=4096, description="reuse factor")
        self.strategy = widgets.ToggleButtons(options=["Latency", "Resource"], value="Latency",
                                              description="strategy")
        self.backend = widgets.ToggleButtons(options=backend_choices(), value=DEFAULT_BOARD, description="backend",
                                             tooltip="a board: the IP with its AXI-stream wrapper and DMA "
                                                     "design; Vitis: the IP alone, for a bare part")
        self.csim = widgets.Checkbox(value=True, description="compile and run the C simulation (g++)",
                                     indent=False)
        self.check_events = widgets.BoundedIntText(value=sizes(True, "walk").csim_events, min=1, max=10_000_000,
                                                   description="check jets")
        self.plan_source.observe(lambda _: self._show_type(), names="value")
        self.state.observe(lambda _: self._prefer_quantize_plan(), names=["quantized", "plan", "precision"])
        self.nn_box = widgets.HBox([self.reuse, self.strategy])
        return [widgets.HBox([self.plan_source, self.precision]), self.nn_box,
                self.backend, widgets.HBox([self.csim, self.check_events])]

    def family_changed(self, family: str) -> None:
        bdt = family == "bdt"
        self.retitle(self.title, BDT_EXPLANATION if bdt else NN_EXPLANATION)
        options = BDT_PRECISIONS if bdt else PLANS
        if tuple(self.plan_source.options) != options:
            self.plan_source.options = options
        self.nn_box.layout.display = "none" if bdt else "flex"
        self._prefer_quantize_plan()

    def _from_quantize(self) -> bool:
        """Whether step 3 chose something for this family (a BDT precision; a plan or a model)."""
        if self.state.family == "bdt":
            return self.state.precision is not None
        return self.state.quantized is not None or self.state.plan is not None

    def _prefer_quantize_plan(self) -> None:
        self.plan_source.value = "quantize" if self._from_quantize() else "uniform"
        self._show_type()

    def _show_type(self) -> None:
        self.precision.layout.display = "flex" if self.plan_source.value == "uniform" else "none"

    def apply_quick(self, quick: bool) -> None:
        self.check_events.value = sizes(quick, "walk").csim_events

    def settings(self) -> dict:
        from ..exceptions import NotReadyError

        source = self.plan_source.value
        if self.state.family == "bdt":
            if source == "quantize" and self.state.precision is None:
                raise NotReadyError("Precision 'from the Precision step' needs a run of step 3 (Precision); "
                                    "run it or choose 'one type everywhere'.")
            return {"family": "bdt", "plan": source, "precision": self.precision.value.strip(),
                    "backend": self.backend.value, "csim": self.csim.value, "check_events": self.check_events.value}
        if source == "quantize" and self.state.quantized is None and self.state.plan is None:
            raise NotReadyError("Precision 'from the Quantize step' needs a run of step 3 (Quantize); "
                                "run it or choose another precision.")
        return {"plan": source, "precision": self.precision.value.strip(), "reuse_factor": self.reuse.value,
                "strategy": self.strategy.value, "backend": self.backend.value, "csim": self.csim.value,
                "check_events": self.check_events.value}

    # ------------------------------------------------------------------ the calls
    def calls(self, s: dict) -> list:
        """(plan), export, firmware, emulate, (check against the C simulation), Keras, accuracy, fit."""
        from ..exceptions import NotReadyError

        if s.get("family") == "bdt":
            return self._bdt_calls(s)
        state, ds = self.state, self.state.dataset
        calls = []
        if s["plan"] == "quantize":
            source = Ref("qmodel") if state.quantized is not None else Ref("model")
            plan = Ref("plan") if state.plan is not None else None  # None: the HGQ2 quantizers' types
        else:
            source, plan = Ref("model"), Ref("plan")
            if s["plan"] == "data":
                if ds is None:
                    raise NotReadyError("A plan from the data ranges needs jets: run step 1 (Data) or "
                                        "choose 'one type everywhere'.")
                calls.append(Call("fastml_lab.hls.PrecisionPlan.from_data", (Ref("model"), Ref("ds.X_train")),
                                  assign="plan"))
            else:
                calls.append(Call("fastml_lab.hls.PrecisionPlan.uniform", (s["precision"],), assign="plan"))
        data = {"scaler": Ref("ds.scaler"), "class_names": Ref("ds.class_names"),
                "feature_names": Ref("ds.feature_names")} if ds is not None else {}
        calls.append(Call("fastml_lab.hls.export", (source, str(self.state.folder / HLS_PROJECT_DIR)),
                          {"plan": plan, "backend": s["backend"], "reuse_factor": s["reuse_factor"],
                           "strategy": s["strategy"], **data, "overwrite": True}, assign="prj",
                          show=('print(prj.timing)  # latency and II: an estimate until synthesis',)))
        if ds is not None:
            X = Ref("ds.X_test")
        else:
            n_inputs = int(self.state.model.inputs[0].shape[-1]) if self.state.model is not None else 16
            calls += [Call("numpy.random.default_rng", (0,), assign="rng"),
                      Call("rng.standard_normal", ((RANDOM_CHECK_EVENTS, n_inputs),), {"dtype": "float32"},
                           assign="X")]  # no jets: random standardized inputs
            X = Ref("X")
        calls += [Call("prj.firmware", assign="firmware"),
                  Call("firmware.predict", (X,), assign="emulated")]
        if s["csim"]:
            calls.append(Call("fastml_lab.hls.check.check_project", (Ref("prj"), X),
                              {"n_events": s["check_events"]}, assign="check",
                              show=("print(check.describe())",)))
        calls.append(Call(f"{source.expr}.predict", (X,), {"batch_size": 4096, "verbose": 0}, assign="keras_scores"))
        if ds is not None:
            calls += [Call("fastml_lab.evaluate.evaluate_scores", (Ref("emulated"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="fixed"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("keras_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="floating",
                           show=('print("fixed-point accuracy:", fixed.accuracy, "Keras:", floating.accuracy)',))]
        calls.append(Call("fastml_lab.quantize.fit_estimate", (Ref("prj"),), assign="estimate",
                          show=("print(estimate.summary())",)))
        return calls

    def _bdt_calls(self, s: dict) -> list:
        """export_bdt, firmware, emulate, (check), float trees, accuracy of both, estimate."""
        ds = self.state.dataset
        data = {"scaler": Ref("ds.scaler"), "class_names": Ref("ds.class_names"),
                "feature_names": Ref("ds.feature_names")} if ds is not None else {}
        precision = Ref("precision") if s["plan"] == "quantize" else s["precision"]
        calls = [Call("fastml_lab.bdt.export_bdt", (Ref("model"), str(self.state.folder / HLS_PROJECT_DIR)),
                      {"precision": precision, "backend": s["backend"], **data, "overwrite": True}, assign="prj",
                      show=("print(prj.meta['precision'])",))]
        if ds is not None:
            X = Ref("ds.X_test")
        else:  # no jets: random standardized inputs
            n_inputs = self._bdt_inputs()
            calls += [Call("numpy.random.default_rng", (0,), assign="rng"),
                      Call("rng.standard_normal", ((RANDOM_CHECK_EVENTS, n_inputs),), {"dtype": "float32"},
                           assign="X")]
            X = Ref("X")
        calls += [Call("prj.firmware", assign="firmware"),
                  Call("firmware.predict", (X,), assign="emulated")]
        if s["csim"]:
            calls.append(Call("fastml_lab.hls.check.check_project", (Ref("prj"), X),
                              {"n_events": s["check_events"]}, assign="check",
                              show=("print(check.describe())",)))
        calls.append(Call("model.predict", (X,), assign="float_scores"))  # probabilities of the float trees
        if ds is not None:
            calls += [Call("fastml_lab.bdt.train.scores_to_probabilities", (Ref("emulated"),), assign="fixed_scores"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("fixed_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="fixed"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("float_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="floating",
                           show=('print("fixed-point accuracy:", fixed.accuracy, "float trees:", floating.accuracy)',))]
        calls.append(Call("fastml_lab.bdt.estimate.estimate_bdt", (Ref("prj"),), assign="estimate",
                          show=('print(estimate["latency_ns"], "ns,", estimate["LUT"], "LUT,", estimate["FF"], "FF")',)))
        return calls

    def _bdt_inputs(self) -> int:
        model = self.state.model
        try:
            return int(model.ensemble()["n_features"]) if model is not None else 16
        except Exception:  # an estimator the converter does not read: the jets' 16 features
            return 16

    # ------------------------------------------------------------------ work
    def work(self, task, s: dict) -> StepResult:
        calls = self.calls(s)
        names = self.names()
        by_name = {call.assign: call for call in calls}
        stages = 4 if s["csim"] else 2
        task.progress(0, stages, "writing the HLS project")
        if "plan" in by_name:
            by_name["plan"].run(names)
        project = by_name["prj"].run(names)
        self.state.project = None  # the folder changed; the new project is handed on once checked
        self.state.forget_result(self.name)  # the saved numbers described the old folder
        try:
            check = self._check_bdt if s.get("family") == "bdt" else self._check
            result = check(task, s, by_name, names, stages)
        except BaseException:  # stopped or failed: no unchecked project for a re-run to pick up
            shutil.rmtree(project.path, ignore_errors=True)
            raise
        self.state.project = project
        task.progress(stages, stages, "done")
        return result

    def _check(self, task, s: dict, calls: dict, names: dict, stages: int) -> StepResult:
        """Emulator, Keras and (optionally) the C simulation on the same jets; timing and fit."""
        project = names["prj"]
        result = self._emulated(task, calls, names, stages)
        result.add("project", f"{project.path} ({project.backend}, {project.meta['strategy']}, "
                              f"reuse {project.meta['reuse_factor']})")
        result.add("precision", self._precision_text(s))
        self._csim_or_note(task, s, calls, names, stages, result)
        calls["keras_scores"].run(names)
        if "fixed" in calls:
            fixed, floating = calls["fixed"].run(names), calls["floating"].run(names)
            result.add("accuracy", f"fixed point {fixed.accuracy:.4f}, exported Keras model {floating.accuracy:.4f} "
                                   f"({fixed.n_events:,} test jets)")
            self.add_figure(result, "roc", plot_roc_curves(floating, compare=fixed, labels=("Keras", "firmware"),
                                                           title="Keras (solid) vs firmware (dashed)"))
        else:
            agree = float(np.mean(names["emulated"].argmax(1) == np.asarray(names["keras_scores"]).argmax(1)))
            result.add("agreement with Keras", f"{agree:.2%} of {len(names['emulated']):,} random inputs get "
                                               "the same class")
        self._timing(project, result)
        add_fit_estimate(self, result, calls["estimate"].run(names))
        return result

    def _check_bdt(self, task, s: dict, calls: dict, names: dict, stages: int) -> StepResult:
        """Emulator, the float trees and (optionally) the C simulation on the same jets; estimate."""
        project = names["prj"]
        result = self._emulated(task, calls, names, stages)
        result.add("project", f"{project.path} ({project.backend}, conifer, {project.meta['n_trees']} trees)")
        chosen = "the Precision step's choice" if s["plan"] == "quantize" else "one type everywhere"
        result.add("precision", f"{chosen}: " + ", ".join(f"{part} {t}" for part, t in project.meta["precision"].items()))
        self._csim_or_note(task, s, calls, names, stages, result)
        calls["float_scores"].run(names)
        if "fixed" in calls:
            calls["fixed_scores"].run(names)
            fixed, floating = calls["fixed"].run(names), calls["floating"].run(names)
            result.add("accuracy", f"fixed point {fixed.accuracy:.4f}, float trees {floating.accuracy:.4f} "
                                   f"({fixed.n_events:,} test jets)")
            self.add_figure(result, "roc", plot_roc_curves(floating, compare=fixed, labels=("float trees", "firmware"),
                                                           title="Float trees (solid) vs firmware (dashed)"))
        else:
            agree = float(np.mean(names["emulated"].argmax(1) == np.asarray(names["float_scores"]).argmax(1)))
            result.add("agreement with the float trees", f"{agree:.2%} of {len(names['emulated']):,} random "
                                                         "inputs get the same class")
        task.progress(stages - 1, stages, "estimating latency and resources")
        add_bdt_estimate(self, result, calls["estimate"].run(names))
        return result

    @staticmethod
    def _emulated(task, calls: dict, names: dict, stages: int) -> StepResult:
        """Run the emulator's calls (the inputs, the firmware, its outputs); a new, empty result."""
        task.check()
        task.progress(1, stages, "running the emulator")
        for name in ("rng", "X", "firmware", "emulated"):
            if name in calls:
                calls[name].run(names)
        return StepResult()

    def _csim_or_note(self, task, s: dict, calls: dict, names: dict, stages: int, result: StepResult) -> None:
        if s["csim"]:
            self._run_check(task, calls, names, stages, result)
        else:
            result.notes.append("The C simulation was skipped; the outputs come from the emulator only.")

    def _run_check(self, task, calls: dict, names: dict, stages: int, result: StepResult) -> None:
        stage = {"compiling the C simulation with g++": 2, "running the C simulation": 3}

        def progress(text):
            task.check()
            if text in stage:
                task.progress(stage[text], stages, text)

        check = calls["check"].run(names, progress=progress)
        result.add("bit-exact check", f"{check.mismatches} mismatches between the C simulation and the "
                                      f"emulator on {check.values:,} output values ({check.events:,} jets)")
        if check.mismatches:
            result.notes.append(f"The C simulation and the emulator differ on {check.mismatches} values: "
                                "please report this with the project folder.")

    def _precision_text(self, s: dict) -> str:
        if s["plan"] == "quantize":
            return "types from the HGQ2 quantizers" if self.state.plan is None else "the Quantize step's plan"
        if s["plan"] == "data":
            return "from the data ranges"
        return s["precision"] + " everywhere"

    @staticmethod
    def _timing(project, result: StepResult) -> None:
        timing = project.timing
        synthesis = timing.get("source") == "synthesis report"
        source = "synthesis report" if synthesis else "estimate before synthesis"
        clock = timing.get("clock_mhz")
        latency = timing.get("latency_cycles")
        ii = timing.get("ii_cycles")
        text = f"{latency} cycles, II {ii} cycles at {clock} MHz"
        if latency and clock:
            text += f" = {latency * 1000 / clock:,.0f} ns"
        if ii and clock:
            text += f"; {clock * 1e6 / ii:,.0f} events/s"
        result.add(f"latency ({source})", text)
        report = project.meta.get("synthesis")
        if report:
            resources = report.get("resources", {})
            result.add("resources (synthesis report)",
                       ", ".join(f"{k} {v:,}" for k, v in resources.items() if v is not None))


def backend_choices() -> list:
    """``(label, backend)`` for each board of the table, then the bare part (Vitis)."""
    return [(board.title, name) for name, board in BOARDS.items()] + [("Vitis (bare part)", PART_BACKEND)]


def add_bdt_estimate(step: Step, result: StepResult, estimate: dict) -> None:
    """A BDT estimate's latency, resources and budget bars (:func:`fastml_lab.bdt.estimate.estimate_bdt`)."""
    board = get_board(estimate["board"])
    budget = board.resources.as_dict()
    result.add("latency (estimate before synthesis)",
               f"{estimate['latency_cycles']} cycles, II {estimate['ii_cycles']} cycles at {estimate['clock_mhz']:g} MHz "
               f"= {estimate['latency_ns']:g} ns")
    result.add(f"fits the {board.title} (estimate)", "yes" if estimate["fits"] else "no")
    result.add("resource estimate", ", ".join(f"{estimate[k]:,} {k}" for k in BDT_RESOURCES))
    step.add_figure(result, "fit", plot_budget({k: estimate[k] for k in BDT_RESOURCES},
                                               {k: budget[k] for k in BDT_RESOURCES},
                                               f"Estimate against the {board.title} budget (conifer's estimate, "
                                               "not synthesis)", board=f"{board.title} ({board.part})"))
