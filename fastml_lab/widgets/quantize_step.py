"""Step 3, Quantize: choose the fixed-point types (or train for them) and see what they cost.

Three ways: post-training quantization (types chosen from the data, no training), quantization-
aware training at uniform bit widths, or HGQ (bit widths learned per weight and activation).
Each can prune first. The step then profiles the numbers against the chosen types, runs a
bit-width study, and estimates whether the firmware fits the PYNQ-Z2.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ipywidgets as widgets

from . import code
from .figures import plot_budget, plot_history
from .live import LiveCurves
from .state import PLAN_FILE, QUANTIZED_FILE, StepResult
from .step import Step

METHODS = (("PTQ: types only", "ptq"), ("QAT: uniform bits", "qat"), ("HGQ: learned bits", "hgq"))
QUICK = {"epochs": 2, "study_bits": "4, 6, 8, 12, 16"}
FULL = {"epochs": 20, "study_bits": "4, 6, 8, 10, 12, 14, 16"}
#: Test jets the profile and the fit estimate look at.
PROFILE_EVENTS = 5000


def quantize_api(name: str):
    """``fastml_lab.quantize.<name>``, or None while that function does not exist."""
    try:
        from .. import quantize
    except ImportError:
        return None
    return getattr(quantize, name, None)


def not_available(name: str, what: str) -> str:
    return f"quantize.{name} is not available in this installation, so {what} was skipped."


class QuantizeStep(Step):
    name = "quantize"
    title = "3 · Quantize"
    explanation = (
        "The FPGA computes with fixed-point numbers such as <code>ap_fixed&lt;6,2&gt;</code>: 6 bits, "
        "2 of them before the binary point. Fewer bits mean fewer LUTs and DSPs, until accuracy "
        "drops. <b>PTQ</b> picks types from the observed ranges; <b>QAT</b> trains the network "
        "with the rounding in the loop; <b>HGQ</b> learns a bit width for every weight (a larger "
        "strength trades accuracy for resources). Pruning sets the smallest weights to zero, and "
        "a zero weight costs no multiplier.")
    needs = ("dataset", "model")

    def build_controls(self) -> list:
        has_qat = quantize_api("quantize") is not None
        self.method = widgets.ToggleButtons(options=METHODS, value="qat" if has_qat else "ptq",
                                            description="method")
        self.weight_bits = widgets.IntSlider(value=6, min=2, max=16, description="weight bits")
        self.activation_bits = widgets.IntSlider(value=8, min=2, max=18, description="activation bits")
        self.hgq_beta = widgets.FloatLogSlider(value=1e-5, base=10, min=-7, max=-4, step=0.5,
                                               description="HGQ strength", readout_format=".0e")
        self.prune = widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="pruning",
                                         tooltip="fraction of the weights set to zero (0: none)")
        self.epochs = widgets.BoundedIntText(value=2, min=1, max=1000, description="epochs")
        self.study_bits = widgets.Text(value=QUICK["study_bits"], description="study bits")
        self.layer_bits = widgets.Text(value="", description="per layer", placeholder="e.g. fc1=8/10, output=8/12",
                                       tooltip="LAYER=WEIGHT_BITS/ACTIVATION_BITS overrides for QAT",
                                       layout=widgets.Layout(width="50%"))
        self.live = LiveCurves()
        self.method.observe(lambda _: self._show_method(), names="value")
        self._show_method()
        return [self.method, widgets.HBox([self.weight_bits, self.activation_bits]), self.layer_bits,
                widgets.HBox([self.hgq_beta, self.prune]), widgets.HBox([self.epochs, self.study_bits])]

    def _show_method(self) -> None:
        self.hgq_beta.layout.display = "flex" if self.method.value == "hgq" else "none"
        self.layer_bits.layout.display = "flex" if self.method.value == "qat" else "none"

    def apply_quick(self, quick: bool) -> None:
        values = QUICK if quick else FULL
        self.epochs.value, self.study_bits.value = values["epochs"], values["study_bits"]

    def settings(self) -> dict:
        from ..exceptions import ConfigError

        try:
            bits = [int(b) for b in self.study_bits.value.replace(",", " ").split()]
        except ValueError:
            raise ConfigError(f"study bits must be widths separated by commas, e.g. 4, 6, 8; "
                              f"got {self.study_bits.value!r}.") from None
        return {"method": self.method.value, "weight_bits": self.weight_bits.value,
                "activation_bits": self.activation_bits.value,
                "layer_bits": parse_layer_bits(self.layer_bits.value) if self.method.value == "qat" else {},
                "hgq_beta": float(f"{self.hgq_beta.value:.3g}"), "prune": round(self.prune.value, 3),
                "epochs": self.epochs.value, "study_bits": bits, "batch_size": 1024}

    def code(self, settings: dict) -> str:
        return code.quantize_code(settings)

    # ------------------------------------------------------------------ work
    def work(self, task, s: dict) -> StepResult:
        result = StepResult()
        self.live.reset()
        self.results.children = [self.live.image]
        ptq = s["method"] == "ptq"
        estimate = None
        if ptq:
            qmodel = self._prune(task, s, result)  # None: the float model is quantized as it is
            base = qmodel or self.state.model
        else:
            qmodel, estimate = self._train(task, s, result)
            base = self.state.model
        plan = self._ptq_plan(base, s)
        if ptq:
            self._ptq_accuracy(base, plan, s, result)
        task.check()
        if qmodel is not None and not ptq:  # against the types its quantizers learned
            self._profile(task, qmodel, None, "its quantizers' types", result)
        else:
            self._profile(task, base, plan, f"{s['weight_bits']}/{s['activation_bits']}-bit types", result)
        task.check()
        self._study(task, s, result)
        task.check()
        if ptq:
            estimate = self._ptq_fit(task, base, plan, result)
        if estimate is not None:
            add_fit_estimate(self, result, estimate)
        self._keep(qmodel, plan if ptq else None, result)
        return result

    def _hook(self, task, epochs: int, what: str):
        def on_epoch_end(epoch, logs):
            self.live.hook(epoch, logs)
            task.progress(epoch + 1, epochs, f"{what}: {LiveCurves.postfix(logs)}")
            task.check()
        return on_epoch_end

    def _prune(self, task, s, result):
        """PTQ with pruning: a pruned float model (None without pruning or without quantize.prune)."""
        if not s["prune"]:
            return None
        prune = quantize_api("prune")
        if prune is None:
            result.notes.append(not_available("prune", "pruning"))
            return None
        pruned = prune(self.state.model, self.state.dataset, sparsity=s["prune"], epochs=s["epochs"],
                       batch_size=s["batch_size"], on_epoch_end=self._hook(task, s["epochs"], "pruning"),
                       progress=False)
        self.live.redraw()
        result.add("pruning", _sparsity_text(pruned.sparsity))
        self.add_figure(result, "pruning", plot_history(pruned.history))
        return pruned.model

    def _train(self, task, s, result):
        """QAT or HGQ training: ``(quantized model, its fit estimate)``, Nones if unavailable."""
        quantize = quantize_api("quantize")
        if quantize is None:
            result.notes.append(not_available("quantize", "quantization-aware training"))
            return None, None
        from ..evaluate import evaluate

        trained = quantize(self.state.model, self.state.dataset, bits=qat_bits(s),
                           hgq_beta=s["hgq_beta"] if s["method"] == "hgq" else None,
                           prune=s["prune"] or None, epochs=s["epochs"], batch_size=s["batch_size"],
                           on_epoch_end=self._hook(task, s["epochs"], s["method"].upper()), seed=0,
                           progress=False)
        self.live.redraw()
        accuracy = evaluate(trained.model, self.state.dataset).accuracy
        result.add(f"{s['method'].upper()} accuracy", f"{accuracy:.4f} (float {self._float_accuracy():.4f})")
        result.add("EBOPs", f"{trained.ebops:,.0f} (bit operations: about LUT + 55 x DSP)")
        if trained.sparsity:
            result.add("sparsity", _sparsity_text(trained.sparsity))
        self.add_figure(result, "qat_training", plot_history(trained.history))
        return trained.model, trained.fit

    def _float_accuracy(self) -> float:
        if self.state.evaluation is None:
            from ..evaluate import evaluate

            self.state.evaluation = evaluate(self.state.model, self.state.dataset)
        return self.state.evaluation.accuracy

    def _ptq_plan(self, model, s):
        """Types from the observed ranges at the chosen widths (used by PTQ, shown for all)."""
        from ..hls import PrecisionPlan

        return PrecisionPlan.from_data(model, self.state.dataset.X_train, width=s["activation_bits"],
                                       weight_width=s["weight_bits"])

    def _ptq_accuracy(self, model, plan, s, result) -> None:
        from ..hls.study import ptq_study

        ds = self.state.dataset
        study = ptq_study(model, ds.X_test, ds.labels_test, plan=plan)
        result.add("PTQ accuracy", f"{study['accuracy']:.4f} (float {self._float_accuracy():.4f}) with "
                                   f"{s['weight_bits']}-bit weights, {s['activation_bits']}-bit activations")
        overflows = sum(study["overflows"].values())
        result.add("PTQ overflows", f"{overflows:,} values on {len(ds.X_test):,} test jets")

    def _profile(self, task, model, plan, against: str, result) -> None:
        """Where the model's numbers lie against ``plan`` (None: a quantized model's own types)."""
        profile = quantize_api("profile")
        if profile is None:
            result.notes.append(not_available("profile", "the numerical profile"))
            return
        task.progress(0, 1, "profiling")
        prof = profile(model, self.state.dataset.X_test, plan=plan, sample=PROFILE_EVENTS)
        result.add("profile", f"{prof.total_overflows:,} overflows, {prof.total_vanished:,} vanished values "
                              f"against {against} on {prof.events:,} jets")
        self.add_figure(result, "profile", prof.plot())

    def _study(self, task, s, result) -> None:
        study_fn = quantize_api("bit_width_study")
        if study_fn is None:
            result.notes.append(not_available("bit_width_study", "the accuracy-versus-bits study"))
            return
        bits = s["study_bits"]
        study = study_fn(self.state.model, self.state.dataset, bits=bits, mode="ptq", progress=False,
                         on_progress=lambda done, total, row: task.progress(
                             done, total, f"study: {row['bits']} bits -> {row['accuracy']:.3f}"))
        rows = study.bit_rows()
        result.add("accuracy vs bits (PTQ)", "  ".join(f"{r['bits']}b {r['accuracy']:.3f}" for r in rows))
        self.add_figure(result, "study", study.plot())

    def _ptq_fit(self, task, model, plan, result):
        """The fit estimate of the firmware these types give (exported to a scratch folder)."""
        fit_estimate = quantize_api("fit_estimate")
        if fit_estimate is None:
            result.notes.append(not_available("fit_estimate", "the resource estimate"))
            return None
        from ..hls import export

        task.progress(0, 1, "estimating resources")
        with tempfile.TemporaryDirectory(prefix="fastml_lab_fit_") as tmp:
            return fit_estimate(export(model, Path(tmp) / "fit", plan=plan).firmware())

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
    result.add("fits the PYNQ-Z2 (estimate)", "yes" if estimate.fits else "no")
    result.add("resource estimate", f"{estimate.dsp:,} DSP, {estimate.lut:,} LUT "
                                    f"({estimate.nonzero_weights:,} non-zero weights)")
    budget = {"DSP": estimate.budget.dsp, "LUT": estimate.budget.lut}
    step.add_figure(result, "fit", plot_budget({"DSP": estimate.dsp, "LUT": estimate.lut}, budget,
                                               f"Estimate against the {estimate.budget.board} budget "
                                               "(multiplications only, not synthesis)"))


def parse_layer_bits(text: str) -> dict:
    """``"fc1=8/10, output=8/12"`` -> ``{"fc1": {"weights": 8, "activations": 10}, ...}``."""
    from ..exceptions import ConfigError

    layers = {}
    for item in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
        name, _, widths = item.partition("=")
        weights, _, activations = widths.partition("/")
        if not (name.strip() and weights.strip().isdigit() and activations.strip().isdigit()):
            raise ConfigError(f"per-layer bits must read LAYER=WEIGHT_BITS/ACTIVATION_BITS, e.g. "
                              f"'fc1=8/10'; got {item!r}.")
        layers[name.strip()] = {"weights": int(weights), "activations": int(activations)}
    return layers


def qat_bits(s: dict):
    """The ``bits`` argument of quantize.quantize for these settings (None for HGQ)."""
    if s["method"] != "qat":
        return None
    uniform = {"weights": s["weight_bits"], "activations": s["activation_bits"]}
    return {**s["layer_bits"], "default": uniform} if s["layer_bits"] else uniform


def _sparsity_text(per_layer: dict) -> str:
    return ", ".join(f"{layer} {fraction:.0%}" for layer, fraction in per_layer.items()) + " zero weights"
