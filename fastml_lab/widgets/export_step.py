"""Step 4, Export: write the project, compile its simulation, check it against the emulator.

The generator is HLS or one of the family's RTL backends (:attr:`fastml_lab.families.Family.rtl_backends`):
a neural network goes through hls4ml (:func:`fastml_lab.hls.export`) or, when step 3 made an HGQ2
model, through da4ml's Verilog (``family.export_rtl(..., backend="rtl")``); boosted decision trees
go through conifer's HLS (:func:`fastml_lab.bdt.export_bdt`) or its VHDL (``backend="vhdl"``), with
the precision the Precision step chose. Every project is checked with the same
:func:`~fastml_lab.hls.check.check_project`, which runs the project's own simulator (g++, Verilator
or GHDL).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

from ..boards import BOARDS, DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, get_board
from ..families import NETWORK
from ..options import STRATEGIES
from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_budget, plot_roc_curves
from .panel import notice_html
from .quantize_step import add_fit_estimate
from .state import HLS_PROJECT_DIR, TREES, StepResult, takes_images
from .step import Step, settings_family, show_family

#: Inputs used for the check when the step has no dataset (standardized features look like this).
RANDOM_CHECK_EVENTS = 1000
#: hls4ml's I/O styles, offered for a CNN: every layer's values at once, or streamed through FIFOs.
IO_TYPES = (("io_parallel", "parallel"), ("io_stream", "stream"))
IO_TIPS = ("every layer's whole output at once, in registers: the shortest latency, the most LUTs",
           "layers joined by FIFOs, the image read pixel by pixel through line buffers: fewer LUTs, more BRAM")
#: What each I/O style builds, in the step's results.
IO_TEXTS = {"parallel": "io_parallel: every layer computes its whole output at once (registers between layers)",
            "stream": "io_stream: layers joined by FIFOs; each convolution reads the image pixel by pixel "
                      "through line buffers (kernel - 1 rows of the image kept in BRAM)"}
#: Why an HGQ2 model is not exported with io_stream.
STREAM_NEEDS_FLOAT = ("io_stream takes the float CNN with a precision plan: hls4ml 1.3 writes the HGQ2 quantizers of "
                      "the Quantize step's model only for io_parallel. Choose io_parallel, or the precision 'one type "
                      "everywhere' or 'from the data ranges' to stream the float CNN.")

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

RTL_EXPLANATION = (
    "da4ml turns the quantization-aware (HGQ2) network into Verilog: every product with a constant "
    "weight becomes shifts and adds (no multipliers, no DSPs), and registers cut the adders into "
    "pipeline stages, so the latency is the number of stages, exactly, and one event enters per "
    "clock cycle. The final softmax is left out: the design outputs the logits. Verilator simulates "
    "the Verilog on test jets; the bit-exact emulator must give the same outputs value for value. "
    "Resources are da4ml's own estimate until a technology mapping (fastml-lab synth PRJ --tool yosys) "
    "or a synthesis report replaces it.")
VHDL_EXPLANATION = (
    "conifer writes the trees as VHDL: every split a comparator with a constant threshold, every "
    "tree a lookup of its leaf, the scores of each class summed by a pipelined adder tree, all in "
    "one fixed-point type. GHDL simulates the VHDL on test jets; the bit-exact emulator must give the "
    "same outputs value for value. The latency is the pipeline's own, exact; resources are an "
    "estimate.")

#: The generators: HLS for every family, then each RTL backend a family has (``Family.rtl_backends``).
HLS = "hls"
HLS_LABELS = {NETWORK: "HLS (hls4ml)", TREES: "HLS (conifer)"}
RTL_LABELS = {"rtl": "RTL (da4ml)", "vhdl": "VHDL (conifer)"}
GENERATOR_TIPS = {
    HLS: "C++ for Vitis/Vivado HLS, checked with the C simulation (g++)",
    "rtl": "da4ml's pipelined Verilog of an HGQ2 model (shifts and adds, no DSPs), checked with Verilator",
    "vhdl": "conifer's pipelined VHDL of the trees, checked with GHDL",
}
GENERATOR_EXPLANATIONS = {"rtl": RTL_EXPLANATION, "vhdl": VHDL_EXPLANATION}
#: The simulation each generator's project runs, as the check box names it.
SIMULATIONS = {HLS: "compile and run the C simulation (g++)", "rtl": "compile and run the RTL simulation (Verilator)",
               "vhdl": "run the RTL simulation (GHDL)"}
#: Why the RTL generator of a network is not offered, and what to do.
RTL_NEEDS_HGQ = ("RTL (da4ml) builds its adders from the types of a quantization-aware model: run step 3 "
                 "(Quantize) with QAT or HGQ first. A float or pruned model goes through HLS (hls4ml).")

#: Each family's explanation, precision choices, and the state's traits that say step 3 chose its types.
EXPLANATIONS = {NETWORK: NN_EXPLANATION, TREES: BDT_EXPLANATION}
PRECISIONS = {NETWORK: PLANS, TREES: BDT_PRECISIONS}
FROM_STEP_3 = {NETWORK: ("quantized", "plan"), TREES: ("precision",)}
#: Why precision "from step 3" cannot be had before step 3 ran, for each family.
NOT_CHOSEN = {
    NETWORK: "Precision 'from the Quantize step' needs a run of step 3 (Quantize); run it or choose another "
             "precision.",
    TREES: "Precision 'from the Precision step' needs a run of step 3 (Precision); run it or choose 'one type "
           "everywhere'.",
}


@dataclass(frozen=True)
class FloatModel:
    """How the step names a family's float model beside the firmware, and the call that scores it."""

    scores: str  # the call (by what it assigns) that gives the float model's scores
    name: str  # in the accuracy line
    legend: str  # in the ROC curves' legend and title
    agreement: str  # in the agreement line (no jets)


FLOAT_MODELS = {NETWORK: FloatModel("keras_scores", "exported Keras model", "Keras", "Keras"),
                TREES: FloatModel("float_scores", "float trees", "float trees", "the float trees")}


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
        self.strategy = widgets.ToggleButtons(options=list(STRATEGIES), value=STRATEGIES[0],
                                              description="strategy")
        self.backend = widgets.ToggleButtons(options=backend_choices(), value=DEFAULT_BOARD, description="backend",
                                             tooltip="a board: the IP with its AXI-stream wrapper and DMA "
                                                     "design; Vitis: the IP alone, for a bare part")
        self.generator = widgets.ToggleButtons(options=generator_choices(NETWORK), value=HLS, description="generator")
        self.generator_note = widgets.HTML("")
        self.csim = widgets.Checkbox(value=True, description=SIMULATIONS[HLS], indent=False)
        self.check_events = widgets.BoundedIntText(value=sizes(True, "walk").csim_events, min=1, max=10_000_000,
                                                   description="check jets")
        self.io_type = widgets.ToggleButtons(options=IO_TYPES, value="parallel", description="I/O",
                                             tooltips=list(IO_TIPS))
        self.plan_source.observe(lambda _: self._show_type(), names="value")
        self.state.observe(lambda _: self._prefer_quantize_plan(), names=["quantized", "plan", "precision"])
        self.state.observe(lambda _: self._show_generator(), names=["quantized", "model"])
        self.generator.observe(lambda _: self._show_generator(), names="value")
        self.nn_box = widgets.VBox([widgets.HBox([self.reuse, self.strategy]), self.io_type])
        self.plan_box = widgets.HBox([self.plan_source, self.precision])
        return [widgets.HBox([self.generator, self.generator_note]), self.plan_box, self.nn_box,
                self.backend, widgets.HBox([self.csim, self.check_events])]

    def family_changed(self, family: str) -> None:
        options = PRECISIONS[family]
        if tuple(self.plan_source.options) != options:
            self.plan_source.options = options
        generators = generator_choices(family)
        if list(self.generator.options) != generators:
            self.generator.options = generators
            self.generator.value = HLS
        self._prefer_quantize_plan()
        self._show_generator()

    def _rtl_source(self) -> str | None:
        """The script's variable holding the HGQ2 model a network's RTL export takes: ``qmodel``
        (step 3 made it), else ``model`` when the trained model is one itself; None without one."""
        if is_hgq_model(self.state.quantized):
            return "qmodel"
        return "model" if is_hgq_model(self.state.model) else None

    def _rtl_ready(self) -> bool:
        """Whether a network's RTL generator can run: there is an HGQ2 (quantization-aware) model."""
        return self._rtl_source() is not None

    def _show_generator(self) -> None:
        """The controls, explanation and notes of the chosen generator; the network's RTL choice
        falls back to HLS, with a note saying why, until step 3 has made an HGQ2 model."""
        family, generator = self.state.family, self.generator.value
        ready = family != NETWORK or self._rtl_ready()
        self.generator.tooltips = [GENERATOR_TIPS.get(value, "") + ("" if value != "rtl" or ready else
                                                                    " (quantize first: step 3, QAT or HGQ)")
                                   for _, value in self.generator.options]
        self.generator_note.value = "" if ready else notice_html(RTL_NEEDS_HGQ, kind="note")
        if generator == "rtl" and not ready:
            self.generator.value = HLS  # observed: this method runs again for HLS
            return
        self.retitle(self.title, GENERATOR_EXPLANATIONS.get(generator, EXPLANATIONS[family]))
        self.csim.description = SIMULATIONS.get(generator, SIMULATIONS[HLS])
        self.plan_box.layout.display = "none" if generator == "rtl" else "flex"
        show_family({NETWORK: self.nn_box}, family if generator == HLS else "")
        self.io_type.layout.display = "flex" if takes_images(self.state.model) else "none"

    def _from_quantize(self) -> bool:
        """Whether step 3 chose something for this family (a BDT precision; a plan or a model)."""
        return any(getattr(self.state, trait) is not None for trait in FROM_STEP_3[self.state.family])

    def _prefer_quantize_plan(self) -> None:
        self.plan_source.value = "quantize" if self._from_quantize() else "uniform"
        self._show_type()

    def _show_type(self) -> None:
        self.precision.layout.display = "flex" if self.plan_source.value == "uniform" else "none"

    def apply_quick(self, quick: bool) -> None:
        self.check_events.value = sizes(quick, "walk").csim_events

    def settings(self) -> dict:
        from ..exceptions import NotReadyError

        family, source, generator = self.state.family, self.plan_source.value, self.generator.value
        if generator == "rtl":
            if not self._rtl_ready():
                raise NotReadyError(RTL_NEEDS_HGQ)
            return {"generator": generator, "source": self._rtl_source(), **self._check_settings()}
        if source == "quantize" and not self._from_quantize():
            raise NotReadyError(NOT_CHOSEN[family])
        return {**{NETWORK: self._nn_settings, TREES: self._bdt_settings}[family](source), "generator": generator}

    def _nn_settings(self, source: str) -> dict:
        from ..exceptions import ConfigError

        io = {}
        if takes_images(self.state.model):  # a CNN: hls4ml's I/O style is the student's choice
            io = {"io_type": self.io_type.value}
            if io["io_type"] == "stream" and source == "quantize" and is_hgq_model(self.state.quantized):
                raise ConfigError(STREAM_NEEDS_FLOAT)
        return {"plan": source, "precision": self.precision.value.strip(), "reuse_factor": self.reuse.value,
                "strategy": self.strategy.value, **io, **self._check_settings()}

    def _bdt_settings(self, source: str) -> dict:
        return {"family": TREES, "plan": source, "precision": self.precision.value.strip(), **self._check_settings()}

    def _check_settings(self) -> dict:
        return {"backend": self.backend.value, "csim": self.csim.value, "check_events": self.check_events.value}

    # ------------------------------------------------------------------ the calls
    def calls(self, s: dict) -> list:
        """(plan), export, firmware, emulate, (check against the C simulation), the float model's
        scores, the accuracy of both, the estimate; the export and the float model are the family's."""
        if s.get("generator", HLS) != HLS:
            return self._rtl_calls(s)
        return {NETWORK: self._nn_calls, TREES: self._bdt_calls}[settings_family(s)](s)

    def _rtl_calls(self, s: dict) -> list:
        """The family's RTL export (da4ml's Verilog of the HGQ2 model, conifer's VHDL of the trees),
        firmware, emulate, (check with the project's simulator), the model's own scores, accuracy of
        both (the design's scores through a softmax), the hardware estimate."""
        family, generator = settings_family(s), s["generator"]
        if family == NETWORK:
            source, options = Ref(s["source"]), {}
        else:
            source = Ref("model")
            options = {"precision": Ref("precision") if s["plan"] == "quantize" else s["precision"]}
        calls = [Call("fastml_lab.families.get_family", (family,), assign="family"),
                 Call("family.export_rtl", (source, str(self.state.folder / HLS_PROJECT_DIR)),
                      {"backend": generator, **rtl_target_options(s["backend"]), **options, **self._data(),
                       "overwrite": True},
                      assign="prj", show=("print(prj.timing)  # the pipeline's own latency: exact",))]
        X = self._emulation_calls(s, calls, self._nn_inputs if family == NETWORK else self._bdt_inputs)
        if family == NETWORK:
            calls.append(Call(f"{source.expr}.predict", (X,), {"batch_size": 4096, "verbose": 0}, assign="keras_scores"))
        else:
            calls.append(Call("model.predict", (X,), assign="float_scores"))
        if self.state.dataset is not None:
            float_scores = FLOAT_MODELS[family].scores
            calls += [Call("fastml_lab.bdt.train.scores_to_probabilities", (Ref("emulated"),), assign="fixed_scores"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("fixed_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="fixed"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref(float_scores), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="floating",
                           show=('print("fixed-point accuracy:", fixed.accuracy, "model:", floating.accuracy)',))]
        calls.append(Call("fastml_lab.estimate.estimate", (Ref("prj"),), assign="hardware",
                          show=("print(hardware.table())",)))
        return calls

    def _nn_calls(self, s: dict) -> list:
        """(plan), hls4ml export, firmware, emulate, (check), Keras, accuracy of both, fit estimate."""
        from ..exceptions import NotReadyError

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
        calls.append(Call("fastml_lab.hls.export", (source, str(self.state.folder / HLS_PROJECT_DIR)),
                          {"plan": plan, "backend": s["backend"], "reuse_factor": s["reuse_factor"],
                           "strategy": s["strategy"], **({"io_type": s["io_type"]} if "io_type" in s else {}),
                           **self._data(), "overwrite": True}, assign="prj",
                          show=('print(prj.timing)  # latency and II: an estimate until synthesis',)))
        X = self._emulation_calls(s, calls, self._nn_inputs)
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
        precision = Ref("precision") if s["plan"] == "quantize" else s["precision"]
        calls = [Call("fastml_lab.bdt.export_bdt", (Ref("model"), str(self.state.folder / HLS_PROJECT_DIR)),
                      {"precision": precision, "backend": s["backend"], **self._data(), "overwrite": True},
                      assign="prj", show=("print(prj.meta['precision'])",))]
        X = self._emulation_calls(s, calls, self._bdt_inputs)
        calls.append(Call("model.predict", (X,), assign="float_scores"))  # probabilities of the float trees
        if self.state.dataset is not None:
            calls += [Call("fastml_lab.bdt.train.scores_to_probabilities", (Ref("emulated"),), assign="fixed_scores"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("fixed_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="fixed"),
                      Call("fastml_lab.evaluate.evaluate_scores", (Ref("float_scores"), Ref("ds.labels_test"),
                                                                   Ref("ds.class_names")), assign="floating",
                           show=('print("fixed-point accuracy:", fixed.accuracy, "float trees:", floating.accuracy)',))]
        calls.append(Call("fastml_lab.bdt.estimate.estimate_bdt", (Ref("prj"),), assign="estimate",
                          show=('print(estimate["latency_ns"], "ns,", estimate["LUT"], "LUT,", estimate["FF"], "FF")',)))
        return calls

    def _data(self) -> dict:
        """The jets' scaler and names for the project, when the Data step loaded jets."""
        return {"scaler": Ref("ds.scaler"), "class_names": Ref("ds.class_names"),
                "feature_names": Ref("ds.feature_names")} if self.state.dataset is not None else {}

    def _emulation_calls(self, s: dict, calls: list, n_inputs) -> Ref:
        """Add the emulator's calls (and the C simulation's check) to ``calls``; returns the inputs
        they run on: the test jets, or random standardized inputs (``n_inputs()`` features) without jets."""
        if self.state.dataset is not None:
            X = Ref("ds.X_test")
        else:  # no jets: random standardized inputs
            calls += [Call("numpy.random.default_rng", (0,), assign="rng"),
                      Call("rng.standard_normal", ((RANDOM_CHECK_EVENTS, *n_inputs()),), {"dtype": "float32"},
                           assign="X")]
            X = Ref("X")
        calls += [Call("prj.firmware", assign="firmware"),
                  Call("firmware.predict", (X,), assign="emulated")]
        if s["csim"]:
            calls.append(Call("fastml_lab.hls.check.check_project", (Ref("prj"), X),
                              {"n_events": s["check_events"]}, assign="check",
                              show=("print(check.describe())",)))
        return X

    def _nn_inputs(self) -> tuple:
        """The shape of one input of the network: ``(features,)``, or an image's for a CNN."""
        model = self.state.model
        return tuple(int(d) for d in model.inputs[0].shape[1:]) if model is not None else (16,)

    def _bdt_inputs(self) -> tuple:
        model = self.state.model
        try:
            return (int(model.ensemble()["n_features"]) if model is not None else 16,)
        except Exception:  # an estimator the converter does not read: the jets' 16 features
            return (16,)

    # ------------------------------------------------------------------ work
    def work(self, task, s: dict) -> StepResult:
        calls = self.calls(s)
        names = self.names()
        by_name = {call.assign: call for call in calls}
        stages = 4 if s["csim"] else 2
        task.progress(0, stages, f"writing the {'HLS' if s.get('generator', HLS) == HLS else 'RTL'} project")
        for name in ("plan", "family"):  # what the export takes: an HLS plan, the family that exports RTL
            if name in by_name:
                by_name[name].run(names)
        project = by_name["prj"].run(names)
        self.state.project = None  # the folder changed; the new project is handed on once checked
        self.state.forget_result(self.name)  # the saved numbers described the old folder
        try:
            result = self._check(settings_family(s), task, s, by_name, names, stages)
        except BaseException:  # stopped or failed: no unchecked project for a re-run to pick up
            shutil.rmtree(project.path, ignore_errors=True)
            raise
        self.state.project = project
        task.progress(stages, stages, "done")
        return result

    def _check(self, family: str, task, s: dict, calls: dict, names: dict, stages: int) -> StepResult:
        """Emulator, the float model and (optionally) the C simulation on the same jets; what the
        project is and costs."""
        project = names["prj"]
        result = self._emulated(task, calls, names, stages)
        generator = s.get("generator", HLS)
        lines = self._rtl_lines if generator == "rtl" else {NETWORK: self._nn_lines, TREES: self._bdt_lines}[family]
        project_text, precision_text = lines(s, project)
        result.add("project", f"{project.path} ({project.backend}, {project_text})")
        result.add("precision", precision_text)
        self._csim_or_note(task, s, calls, names, stages, result)
        float_model = FLOAT_MODELS[family]
        calls[float_model.scores].run(names)
        if "fixed" in calls:
            if "fixed_scores" in calls:
                calls["fixed_scores"].run(names)
            fixed, floating = calls["fixed"].run(names), calls["floating"].run(names)
            result.add("accuracy", f"fixed point {fixed.accuracy:.4f}, {float_model.name} {floating.accuracy:.4f} "
                                   f"({fixed.n_events:,} test jets)")
            legend = float_model.legend
            self.add_figure(result, "roc", plot_roc_curves(floating, compare=fixed, labels=(legend, "firmware"),
                                                           title=f"{legend[:1].upper()}{legend[1:]} (solid) vs "
                                                                 "firmware (dashed)"))
        else:
            floats = np.asarray(names[float_model.scores])
            agree = float(np.mean(names["emulated"].argmax(1) == floats.argmax(1)))
            result.add(f"agreement with {float_model.agreement}", f"{agree:.2%} of {len(names['emulated']):,} "
                                                                  "random inputs get the same class")
        cost = self._rtl_cost if generator != HLS else {NETWORK: self._nn_cost, TREES: self._bdt_cost}[family]
        estimate = calls["hardware" if "hardware" in calls else "estimate"]
        cost(project, lambda: estimate.run(names), lambda text: task.progress(stages - 1, stages, text), result)
        return result

    def _nn_lines(self, s: dict, project) -> tuple:
        """How hls4ml laid the network out, and where its types came from."""
        io = f", {project.meta.get('io_type', 'io_' + s['io_type'])}" if "io_type" in s else ""
        return f"{project.meta['strategy']}, reuse {project.meta['reuse_factor']}{io}", self._precision_text(s)

    @staticmethod
    def _rtl_lines(s: dict, project) -> tuple:
        """The pipeline da4ml wrote, and where its types came from."""
        stages = (project.meta.get("da4ml") or {}).get("stages", project.timing.get("latency_cycles"))
        outputs = "logits (softmax left out)" if project.meta.get("softmax_left_out") else "the model's outputs"
        return f"da4ml, {stages} pipeline stages, outputs {outputs}", "types from the HGQ2 quantizers"

    @staticmethod
    def _bdt_lines(s: dict, project) -> tuple:
        """The trees conifer wrote, and their types."""
        chosen = "the Precision step's choice" if s["plan"] == "quantize" else "one type everywhere"
        return (f"conifer, {project.meta['n_trees']} trees",
                f"{chosen}: " + ", ".join(f"{part} {t}" for part, t in project.meta["precision"].items()))

    def _nn_cost(self, project, estimate, progress, result: StepResult) -> None:
        """The timing (synthesis report or estimate) and the fit estimate with the board design."""
        self._timing(project, result)
        if "io_type" in project.meta and takes_images(self.state.model):
            result.add("I/O style", IO_TEXTS.get(str(project.meta["io_type"]).replace("io_", ""), project.meta["io_type"]))
        add_fit_estimate(self, result, estimate())

    def _bdt_cost(self, project, estimate, progress, result: StepResult) -> None:
        """conifer's estimate of the latency and the resources."""
        progress("estimating latency and resources")
        add_bdt_estimate(self, result, estimate())

    def _rtl_cost(self, project, estimate, progress, result: StepResult) -> None:
        """The pipeline's latency (exact) and the hardware estimate of the RTL (its kind named:
        the generator's own estimate, a recorded mapping or synthesis report), against the board."""
        progress("estimating resources")
        self._timing(project, result)
        est = estimate()
        labels = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram_18k": "BRAM18"}
        result.add(f"resources ({est.kind})", ", ".join(f"{est.resources[k]:,} {name}" for k, name in labels.items()))
        if est.board is None:
            return
        result.add(f"fits the {est.board.title} ({est.kind})", "yes" if est.fits else "no")
        self.add_figure(result, "fit", plot_budget({name: est.resources[k] for k, name in labels.items()},
                                                   {name: est.budget[k] for k, name in labels.items()},
                                                   f"Against the {est.board.title} budget ({est.kind}, no "
                                                   "place and route)", board=f"{est.board.title} ({est.part})"))

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
            simulation = "RTL" if s.get("generator", HLS) != HLS else "C"
            result.notes.append(f"The {simulation} simulation was skipped; the outputs come from the emulator only.")

    def _run_check(self, task, calls: dict, names: dict, stages: int, result: StepResult) -> None:
        def progress(text):
            task.check()
            if text.startswith("compiling"):
                task.progress(2, stages, text)
            elif text.startswith("running") and "emulator" not in text:
                task.progress(3, stages, text)

        check = calls["check"].run(names, progress=progress)
        result.add("bit-exact check", f"{check.mismatches} mismatches between {check.simulation} and the "
                                      f"emulator on {check.values:,} output values ({check.events:,} jets)")
        if check.mismatches:
            result.notes.append(f"{check.simulation[:1].upper()}{check.simulation[1:]} and the emulator differ "
                                f"on {check.mismatches} values: please report this with the project folder.")

    def _precision_text(self, s: dict) -> str:
        if s["plan"] == "quantize":
            return "types from the HGQ2 quantizers" if self.state.plan is None else "the Quantize step's plan"
        if s["plan"] == "data":
            return "from the data ranges"
        return s["precision"] + " everywhere"

    @staticmethod
    def _timing(project, result: StepResult) -> None:
        from ..project import RTL_PIPELINE

        timing = project.timing
        synthesis = timing.get("source") == "synthesis report"
        source = ("synthesis report" if synthesis else "RTL pipeline, exact" if timing.get("source") == RTL_PIPELINE
                  else "estimate before synthesis")
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


def generator_choices(family: str) -> list:
    """``(label, generator)`` for a family: HLS, then each of its RTL backends (``Family.rtl_backends``)."""
    from ..families import get_family

    rtl = [(RTL_LABELS.get(backend, f"RTL ({backend})"), backend) for backend in get_family(family).rtl_backends]
    return [(HLS_LABELS.get(family, "HLS"), HLS), *rtl]


def is_hgq_model(model) -> bool:
    """Whether ``model`` is an HGQ2 (quantization-aware) Keras model: what da4ml's RTL takes."""
    from ..hls.keras_model import has_quantizers

    return hasattr(model, "layers") and has_quantizers(model)


def rtl_target_options(backend: str) -> dict:
    """The RTL export's target for the backend control: a board of the table, else (``"vitis"``)
    the bare part of the default board, as the HLS export takes it."""
    return {"board": backend} if backend in BOARDS else {"part": BOARDS[DEFAULT_BOARD].part}


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
