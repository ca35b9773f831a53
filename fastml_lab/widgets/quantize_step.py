"""Step 3, Quantize: choose the fixed-point types (or train for them) and see what they cost.

Three ways: post-training quantization (types chosen from the data, no training), quantization-
aware training at uniform bit widths, or HGQ (bit widths learned per weight and activation).
Each can prune first. The step then profiles the numbers against the chosen types, runs a
bit-width study, and estimates whether the firmware fits the PYNQ-Z2.

For boosted decision trees the step is "Precision": nothing is trained, the trees' thresholds,
leaf values and sums are profiled against a precision (overflows, vanished values, the suggested
precision; :func:`fastml_lab.bdt.profile.profile_bdt`), a precision study measures the accuracy
against the total bits (:func:`fastml_lab.bdt.study.precision_study`), and the chosen precision
goes to Export.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..boards import DEFAULT_PRECISION
from ..families import NETWORK
from ..quantize.bits import bits_argument, parse_layer_bits
from ..tutorial.sizes import settings as sizes
from .code import Call, Ref
from .figures import plot_budget, plot_history
from .live import LiveCurves
from .state import PLAN_FILE, QUANTIZED_FILE, TREES, StepResult, precision_text, takes_images
from .step import Step, settings_family, show_family

METHODS = (("PTQ: types only", "ptq"), ("QAT: uniform bits", "qat"), ("HGQ: learned bits", "hgq"))
#: Test jets the profile looks at.
PROFILE_EVENTS = 5000
#: Why a CNN's Quantize step runs no accuracy-vs-bits study.
NO_IMAGE_STUDY = ("The accuracy-vs-bits study (fastml_lab.quantize.bit_width_study) takes rows of features, not "
                  "images, so it is not run for a CNN; compare bit widths by running QAT again at other widths.")


def _bits_text(bits) -> str:
    return ", ".join(str(b) for b in bits)


NN_TITLE, BDT_TITLE = "3 · Quantize", "3 · Precision"
NN_EXPLANATION = (
    "The FPGA computes with fixed-point numbers such as <code>ap_fixed&lt;6,2&gt;</code>: 6 bits, "
    "2 of them before the binary point. Fewer bits mean fewer LUTs and DSPs, until accuracy "
    "drops. <b>PTQ</b> picks types from the observed ranges; <b>QAT</b> trains the network "
    "with the rounding in the loop; <b>HGQ</b> learns a bit width for every weight (a larger "
    "strength trades accuracy for resources). Pruning sets the smallest weights to zero, and "
    "a zero weight costs no multiplier.")
BDT_EXPLANATION = (
    "Trees need no multipliers, but their numbers still have fixed-point types: the inputs and "
    "thresholds one (a comparison is only as fine as its type), the leaf values and their sums the "
    "<b>score</b> type. A score type too narrow for the sums <b>wraps</b> silently "
    "(<code>ap_fixed&lt;6,3&gt;</code> holds -4 to 3.875: 4.5 becomes -3.5) and flips the "
    "answer. The profile counts, on test jets, the values each type cannot hold (overflows) or "
    "rounds to zero (vanished) and suggests the narrowest safe precision; the study measures the "
    "accuracy against the total bits on the bit-exact emulator.")
#: The step's title and explanation for each family.
TITLES = {NETWORK: (NN_TITLE, NN_EXPLANATION), TREES: (BDT_TITLE, BDT_EXPLANATION)}


class QuantizeStep(Step):
    name = "quantize"
    title = NN_TITLE
    explanation = NN_EXPLANATION
    needs = ("dataset", "model")

    def build_controls(self) -> list:
        self.nn_box = widgets.VBox(self._nn_controls())
        self.bdt_box = widgets.VBox(self._bdt_controls())
        self.boxes = {NETWORK: self.nn_box, TREES: self.bdt_box}
        return [self.nn_box, self.bdt_box]

    def _bdt_controls(self) -> list:
        self.bdt_precision = widgets.Text(value=DEFAULT_PRECISION, description="profile against",
                                          tooltip="one type for every part, e.g. ap_fixed<6,3>, or parts: "
                                                  "input=ap_fixed<12,4> score=ap_fixed<12,5>",
                                          layout=widgets.Layout(width="60%"))
        self.use_suggested = widgets.Checkbox(value=True, indent=False, layout=widgets.Layout(width="auto"),
                                              description="export with the profile's suggested precision")
        self.widths = widgets.Text(value=_bits_text(sizes(True, "walk").bdt_widths), description="study bits")
        return [self.bdt_precision, widgets.HBox([self.use_suggested, self.widths])]

    def family_changed(self, family: str) -> None:
        self.retitle(*TITLES[family])
        show_family(self.boxes, family)

    def _nn_controls(self) -> list:
        self.method = widgets.ToggleButtons(options=METHODS, value="qat", description="method")
        self.weight_bits = widgets.IntSlider(value=6, min=2, max=16, description="weight bits")
        self.activation_bits = widgets.IntSlider(value=8, min=2, max=18, description="activation bits")
        self.hgq_beta = widgets.FloatLogSlider(value=1e-5, base=10, min=-7, max=-4, step=0.5,
                                               description="HGQ strength", readout_format=".0e")
        self.prune = widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="pruning",
                                         tooltip="fraction of the weights set to zero (0: none)")
        self.epochs = widgets.BoundedIntText(value=2, min=1, max=1000, description="epochs")
        self.study_bits = widgets.Text(value=_bits_text(sizes(True, "walk").study_bits), description="study bits")
        self.layer_bits = widgets.Text(value="", description="per layer", placeholder="e.g. fc1=8/10, output=8/12",
                                       tooltip="LAYER=WEIGHT_BITS/ACTIVATION_BITS overrides for QAT",
                                       layout=widgets.Layout(width="50%"))
        self.live = LiveCurves()
        self.method.observe(lambda _: self._show_method(), names="value")
        self.state.observe(lambda _: self._show_method(), names="model")
        self._show_method()
        return [self.method, widgets.HBox([self.weight_bits, self.activation_bits]), self.layer_bits,
                widgets.HBox([self.hgq_beta, self.prune]), widgets.HBox([self.epochs, self.study_bits])]

    def _show_method(self) -> None:
        self.hgq_beta.layout.display = "flex" if self.method.value == "hgq" else "none"
        self.layer_bits.layout.display = "flex" if self.method.value == "qat" else "none"
        self.study_bits.layout.display = "none" if takes_images(self.state.model) else "flex"  # no study for a CNN

    def apply_quick(self, quick: bool) -> None:
        values = sizes(quick, "walk")
        self.epochs.value, self.study_bits.value = values.qat_epochs, _bits_text(values.study_bits)
        self.widths.value = _bits_text(values.bdt_widths)

    def settings(self) -> dict:
        return {NETWORK: self._nn_settings, TREES: self._bdt_settings}[self.state.family]()

    def _bdt_settings(self) -> dict:
        from ..bdt.export import parse_precision

        text = self.bdt_precision.value.strip()
        parse_precision(text)  # a typo is reported before anything runs
        return {"family": TREES, "precision": text, "use_suggested": self.use_suggested.value,
                "widths": _widths(self.widths.value)}

    def _nn_settings(self) -> dict:
        bits = [] if takes_images(self.state.model) else _widths(self.study_bits.value)
        return {"method": self.method.value, "weight_bits": self.weight_bits.value,
                "activation_bits": self.activation_bits.value,
                "layer_bits": parse_layer_bits(self.layer_bits.value) if self.method.value == "qat" else {},
                "hgq_beta": float(f"{self.hgq_beta.value:.3g}"), "prune": round(self.prune.value, 3),
                "epochs": self.epochs.value, "study_bits": bits, "batch_size": 1024}

    # ------------------------------------------------------------------ the calls
    def calls(self, s: dict) -> list:
        """PTQ: (prune), plan, PTQ study, profile, bit-width study, describe, fit estimate.
        QAT/HGQ: quantize, evaluate, profile, bit-width study (the fit estimate comes with the result).
        Boosted decision trees: profile, precision study."""
        return {NETWORK: self._nn_calls, TREES: self._bdt_calls}[settings_family(s)](s)

    @staticmethod
    def _bdt_calls(s: dict) -> list:
        chosen = ("precision = prof.suggested_text()  # for the Export step" if s["use_suggested"]
                  else f"precision = {s['precision']!r}  # for the Export step")
        return [
            Call("fastml_lab.bdt.profile.profile_bdt", (Ref("model"), Ref("ds.X_test")),
                 {"precision": s["precision"], "sample": PROFILE_EVENTS}, assign="prof",
                 show=("print(prof.summary())", "prof.plot()", chosen)),
            Call("fastml_lab.bdt.study.precision_study", (Ref("model"), Ref("ds")),
                 {"widths": tuple(s["widths"])}, assign="study",
                 show=("print(study.table())", "study.plot()")),
        ]

    @staticmethod
    def _nn_calls(s: dict) -> list:
        ptq = s["method"] == "ptq"
        base = Ref("pruned.model") if ptq and s["prune"] else Ref("model")
        calls = []
        if ptq and s["prune"]:
            calls.append(Call("fastml_lab.quantize.prune", (Ref("model"), Ref("ds")),
                              {"sparsity": s["prune"], "epochs": s["epochs"], "batch_size": s["batch_size"]},
                              assign="pruned",
                              show=("qmodel = pruned.model  # for the Export step", "print(pruned.sparsity)")))
        if ptq:
            calls += [
                Call("fastml_lab.hls.PrecisionPlan.from_data", (base, Ref("ds.X_train")),
                     {"width": s["activation_bits"], "weight_width": s["weight_bits"]}, assign="plan"),
                Call("fastml_lab.hls.study.ptq_study", (base, Ref("ds.X_test"), Ref("ds.labels_test")),
                     {"plan": Ref("plan")}, assign="ptq", show=('print(ptq["accuracy"], ptq["overflows"])',)),
                Call("fastml_lab.quantize.profile", (base, Ref("ds.X_test")),
                     {"plan": Ref("plan"), "sample": PROFILE_EVENTS}, assign="prof", show=("prof.plot()",)),
            ]
        else:
            beta = s["hgq_beta"] if s["method"] == "hgq" else None
            bits = bits_argument({"weights": s["weight_bits"], "activations": s["activation_bits"]},
                                 s["layer_bits"]) if s["method"] == "qat" else None
            calls += [
                Call("fastml_lab.quantize.quantize", (Ref("model"), Ref("ds")),
                     {"bits": bits, "hgq_beta": beta, "prune": s["prune"] or None, "epochs": s["epochs"],
                      "batch_size": s["batch_size"], "seed": 0}, assign="result",
                     show=("qmodel = result.model  # for the Export step",
                           "print(result.mode, result.ebops, result.sparsity)", "print(result.fit.summary())")),
                Call("fastml_lab.evaluate.evaluate", (Ref("result.model"), Ref("ds")), assign="evaluation",
                     show=("print(evaluation.accuracy)",)),
                Call("fastml_lab.quantize.profile", (Ref("result.model"), Ref("ds.X_test")),
                     {"sample": PROFILE_EVENTS}, assign="prof",
                     show=("prof.plot()  # against the types its quantizers learned",)),
            ]
        if s["study_bits"]:  # none for a CNN: the study takes rows of features
            calls.append(Call("fastml_lab.quantize.bit_width_study", (Ref("model"), Ref("ds")),
                              {"bits": tuple(s["study_bits"]), "mode": "ptq"}, assign="study",
                              show=("print(study.table())", "study.plot()")))
        if ptq:
            calls += [Call("fastml_lab.hls.describe.describe", (base,), {"plan": Ref("plan")}, assign="firmware"),
                      Call("fastml_lab.quantize.fit_estimate", (Ref("firmware"),), assign="estimate",
                           show=("print(estimate.summary())",))]
        return calls

    # ------------------------------------------------------------------ work
    def work(self, task, s: dict) -> StepResult:
        return {NETWORK: self._work_nn, TREES: self._work_bdt}[settings_family(s)](task, s)

    def _work_nn(self, task, s: dict) -> StepResult:
        result = StepResult()
        self.live.reset()
        self.results.children = [self.live.image]
        names = self.names()
        calls = {call.assign: call for call in self.calls(s)}
        hook = self._hook(task, s["epochs"], "pruning" if s["method"] == "ptq" else s["method"].upper())
        qmodel = plan = estimate = None
        if "pruned" in calls:
            pruned = calls["pruned"].run(names, on_epoch_end=hook, progress=False)
            qmodel = pruned.model
            self.live.redraw()
            result.add("pruning", _sparsity_text(pruned.sparsity))
            self.add_figure(result, "pruning", plot_history(pruned.history))
        if "result" in calls:
            trained = calls["result"].run(names, on_epoch_end=hook, progress=False)
            qmodel, estimate = trained.model, trained.fit
            self.live.redraw()
            accuracy = calls["evaluation"].run(names).accuracy
            result.add(f"{s['method'].upper()} accuracy", f"{accuracy:.4f} (float {self._float_accuracy():.4f})")
            result.add("EBOPs", f"{trained.ebops:,.0f} (bit operations: about LUT + 55 x DSP)")
            if trained.sparsity:
                result.add("sparsity", _sparsity_text(trained.sparsity))
            self.add_figure(result, "qat_training", plot_history(trained.history))
        if "plan" in calls:
            plan = calls["plan"].run(names)
            study = calls["ptq"].run(names)
            result.add("PTQ accuracy", f"{study['accuracy']:.4f} (float {self._float_accuracy():.4f}) with "
                                       f"{s['weight_bits']}-bit weights, {s['activation_bits']}-bit activations")
            result.add("PTQ overflows", f"{sum(study['overflows'].values()):,} values on "
                                        f"{study['events']:,} test jets")
        task.check()
        task.progress(0, 1, "profiling")
        prof = calls["prof"].run(names)
        against = "its quantizers' types" if "result" in calls else f"{s['weight_bits']}/{s['activation_bits']}-bit types"
        result.add("profile", f"{prof.total_overflows:,} overflows, {prof.total_vanished:,} vanished values "
                              f"against {against} on {prof.events:,} jets")
        self.add_figure(result, "profile", prof.plot())
        task.check()
        if "study" in calls:
            study = calls["study"].run(names, progress=False, on_progress=lambda done, total, row: task.progress(
                done, total, f"study: {row['bits']} bits -> {row['accuracy']:.3f}"))
            result.add("accuracy vs bits (PTQ)",
                       "  ".join(f"{r['bits']}b {r['accuracy']:.3f}" for r in study.bit_rows()))
            self.add_figure(result, "study", study.plot())
        else:
            result.notes.append(NO_IMAGE_STUDY)
        task.check()
        if "estimate" in calls:
            task.progress(0, 1, "estimating resources")
            calls["firmware"].run(names)
            estimate = calls["estimate"].run(names)
        add_fit_estimate(self, result, estimate)
        self._keep(qmodel, plan, result)
        return result

    def _work_bdt(self, task, s: dict) -> StepResult:
        result = StepResult()
        names = self.names()
        prof_call, study_call = self.calls(s)
        task.progress(0, 1, "profiling the trees' numbers")
        prof = prof_call.run(names)
        merged = prof.quantities[1].merged
        result.add("profile", f"{prof.total_overflows:,} overflows ({prof.score_overflows:,} of them scores), "
                              f"{sum(prof.vanished.values()):,} vanished values, {merged:,} thresholds merged, "
                              f"against {precision_text(prof.precision)} on {prof.events:,} jets")
        if prof.score_overflows:
            result.notes.append(f"{prof.score_overflows:,} scores do not fit the score type "
                                f"{prof.precision['score'].to_hls()}: with wrap-around their sign flips and "
                                "the jets get another class. Export with the suggested precision.")
        result.add("suggested precision", prof.suggested_text())
        self.add_figure(result, "profile", prof.plot())
        task.check()
        study = study_call.run(names, on_progress=lambda done, total, row: task.progress(
            done, total, f"study: {row['total_bits']} bits -> {row['accuracy']:.3f}"))
        result.add("accuracy vs bits", "  ".join(f"{r['total_bits']}b {r['accuracy']:.3f}"
                                                 for r in sorted(study, key=lambda r: r["total_bits"]))
                   + f" (float {study.float_accuracy:.3f})")
        self.add_figure(result, "study", study.plot())
        chosen = prof.suggested_text() if s["use_suggested"] else precision_text(s["precision"])
        result.add("precision for Export", chosen)
        self.state.save_precision(chosen)
        self.state.precision = chosen
        return result

    def _hook(self, task, epochs: int, what: str):
        def on_epoch_end(epoch, logs):
            self.live.hook(epoch, logs)
            task.progress(epoch + 1, epochs, f"{what}: {LiveCurves.postfix(logs)}")
            task.check()
        return on_epoch_end

    def _float_accuracy(self) -> float:
        if self.state.evaluation is None:
            from ..evaluate import evaluate

            self.state.evaluation = evaluate(self.state.model, self.names()["ds"])
        return self.state.evaluation.accuracy

    def _keep(self, qmodel, plan, result) -> None:
        """Save and hand on what Export uses: the quantized/pruned model and the PTQ plan."""
        from ..train import save_model

        folder = self.state.folder
        (folder / QUANTIZED_FILE).unlink(missing_ok=True)
        (self.state.step_dir(self.name) / PLAN_FILE).unlink(missing_ok=True)
        if qmodel is not None:
            try:
                save_model(qmodel, folder / QUANTIZED_FILE)
            except Exception as exc:  # the walk goes on; only a re-run of the cell loses it
                result.notes.append(f"The quantized model could not be saved ({exc}); "
                                    "a re-run of the cell will not restore it.")
        if plan is not None:
            plan.save(self.state.step_dir(self.name) / PLAN_FILE)
        with self.state.hold_trait_notifications():
            self.state.quantized = qmodel
            self.state.plan = plan


def add_fit_estimate(step: Step, result: StepResult, estimate) -> None:
    """The fit estimate's numbers and budget bars (shared by Quantize and Export)."""
    budget = estimate.budget
    hw = estimate.hardware
    result.add(f"fits the {budget.board} ({estimate.kind})", "yes" if estimate.fits else "no")
    if hw is None or hw.budget is None:  # no hardware model behind it: multiplications only
        result.add("resource estimate", f"{estimate.dsp:,} DSP, {estimate.lut:,} LUT "
                                        f"({estimate.nonzero_weights:,} non-zero weights)")
        used, caps = {"DSP": estimate.dsp, "LUT": estimate.lut}, {"DSP": budget.dsp, "LUT": budget.lut}
    else:
        figures, kind = hw.compared()
        labels = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram_18k": "BRAM18"}
        used = {labels[k]: figures[k] for k in labels}
        caps = {labels[k]: hw.budget[k] for k in labels}
        result.add("resource estimate", ", ".join(f"{v:,} {k}" for k, v in used.items())
                   + f" ({kind}, with the board design; {estimate.nonzero_weights:,} non-zero weights)")
        result.add("latency (estimate)", f"{hw.latency_ns:,.0f} ns ({hw.latency_cycles} cycles at "
                                         f"{hw.clock_mhz:g} MHz), II {hw.ii_cycles}: "
                                         f"{hw.events_per_s:,.0f} events/s")
    step.add_figure(result, "fit", plot_budget(used, caps, f"Estimate against the {budget.board} budget "
                                                           f"({estimate.kind})",
                                               board=f"{budget.board} ({budget.part})"))


def _widths(text: str) -> list:
    """Bit widths typed as ``4, 6, 8``."""
    from ..exceptions import ConfigError

    try:
        return [int(b) for b in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"study bits must be widths separated by commas, e.g. 4, 6, 8; got {text!r}.") from None


def _sparsity_text(per_layer: dict) -> str:
    return ", ".join(f"{layer} {fraction:.0%}" for layer, fraction in per_layer.items()) + " zero weights"
