"""``fastml-lab demo``: the pipeline end to end on jet data, as a sequence of small steps.

``model`` picks the models: ``"nn"`` (the MLP: train, quantize, export, check, package),
``"bdt"`` (a boosted decision tree on the same jets: train, profile, export at the suggested
precision, check, estimate), ``"cnn"`` (a small CNN on jet images, exported with io_stream and
io_parallel, each checked against the C simulation and estimated: ``report["cnn"]``) or ``"both"``
(the default: the MLP and the BDT); the last step puts them side by side
(accuracy, fixed-point accuracy, mismatches, estimated resources and latency: ``report["comparison"]``).
The network's quantized model also goes to da4ml's Verilog (``report["rtl"]``): its estimate beside
the HLS export's, and, in a full run, Verilator's check and yosys' technology mapping (``--quick``
leaves those two out: they take minutes on the demo's network).

Each step is a function ``step_<name>(run)`` that reads what earlier steps left on the
:class:`DemoRun`, stores what it produces there, adds its own section to ``run.report`` and a few
lines to the printed summary (``run.add_summary``). :data:`STEPS` lists them in order. To extend
the demo:

1. write ``def step_<name>(run): ...`` (its docstring's first line is shown as progress),
2. add a field to :class:`DemoRun` for what it produces, if later steps need it,
3. add ``("<name>", step_<name>)`` to :data:`STEPS`.

:func:`run_demo` times every step (``report["timings_s"]``) and rewrites ``report.json``
atomically after each one, so a failed run still leaves the report of the steps that finished.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import platform
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._io import atomic_destination, check_destination
from .boards import DEFAULT_PRECISION as PRECISION  # a float model's export type (a quantized one brings its own)
from .bdt.ensemble import FAMILY as BDT
from .compare import count_mismatches
from .families import NETWORK

logger = logging.getLogger(__name__)

__all__ = ["DemoSettings", "DemoRun", "STEPS", "NN_STEPS", "BDT_STEPS", "CNN_STEPS", "MODELS", "steps_for", "run_demo",
           "format_summary", "comparison", "rtl_table"]


# -------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DemoSettings:
    """Knobs of one demo run; :meth:`for_mode` gives the quick and the full defaults."""

    n_events: int | None
    epochs: int
    patience: int
    learning_rate: float
    batch_size: int = 1024
    model: str = "64-32-32"
    seed: int = 0
    # Quantization-aware training: the literature's 6-bit weights, 8-bit activations, 75% pruned.
    weight_bits: int = 6
    activation_bits: int = 8
    prune: float = 0.75
    qat_epochs: int = 5

    csim_events: int | None = 20_000
    profile_events: int = 4096
    # The BDT (xgboost) on the same jets.
    bdt_rounds: int = 20
    bdt_depth: int = 3
    bdt_learning_rate: float = 0.3
    bdt_early_stopping: int | None = 5
    # The CNN on jet images.
    image_events: int = 10_000
    cnn_epochs: int = 5
    cnn_filters: str = "8-8"
    cnn_csim_events: int = 2_000

    @classmethod
    def for_mode(cls, quick: bool) -> "DemoSettings":
        """The demo's sizes from the one table of quick and full sizes (:mod:`fastml_lab.tutorial.sizes`)."""
        from .tutorial.sizes import settings

        sizes = settings(quick, purpose="demo")
        return cls(n_events=sizes.n_events, epochs=sizes.epochs, patience=sizes.patience,
                   learning_rate=sizes.learning_rate, batch_size=sizes.batch_size, seed=sizes.seed,
                   qat_epochs=sizes.qat_epochs, csim_events=sizes.csim_events,
                   profile_events=sizes.profile_events, bdt_rounds=sizes.bdt_rounds, bdt_depth=sizes.bdt_depth,
                   bdt_learning_rate=sizes.bdt_learning_rate, bdt_early_stopping=sizes.bdt_early_stopping,
                   image_events=sizes.image_events, cnn_epochs=sizes.cnn_epochs)


@dataclass
class DemoRun:
    """What the steps share: inputs, the report being built, and the objects steps produce."""

    out: Path
    data: str
    quick: bool
    settings: DemoSettings
    log: Callable[[str], Any]
    report: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)
    # Produced by the steps, in order:
    dataset: Any = None
    model: Any = None
    history: Any = None
    float_evaluation: Any = None
    quantized: Any = None  # the QuantizeResult
    project: Any = None
    emulated: Any = None  # the firmware's outputs on the test events
    rtl_project: Any = None  # da4ml's Verilog of the quantized model
    bdt: Any = None  # the BDTModel
    cnn_projects: dict = field(default_factory=dict)  # the CNN's export per I/O style
    bdt_project: Any = None

    def add_summary(self, label: str, value: str) -> None:
        """Add one row to the summary table printed at the end."""
        self.summary.append((label, value))


# ----------------------------------------------------------------------------------------- steps
def step_setup(run: DemoRun) -> None:
    """Import TensorFlow and Keras and seed them."""
    from . import __version__
    from ._deps import require
    from .train import set_seed

    tensorflow = require("tensorflow", "run the demo")
    keras = require("keras", "run the demo")
    set_seed(run.settings.seed)
    run.report["versions"] = {"fastml_lab": __version__, "tensorflow": tensorflow.__version__,
                              "keras": keras.__version__, "numpy": np.__version__,
                              "python": platform.python_version()}


def step_setup_bdt(run: DemoRun) -> None:
    """Import xgboost and conifer (no TensorFlow for the trees alone)."""
    from . import __version__
    from ._deps import require

    xgboost = require("xgboost", "train the demo's BDT")
    conifer = require("conifer", "export the demo's BDT")
    run.report["versions"] = {"fastml_lab": __version__, "xgboost": xgboost.__version__,
                              "conifer": str(getattr(conifer, "__version__", "unknown")),
                              "numpy": np.__version__, "python": platform.python_version()}


def step_data(run: DemoRun) -> None:
    """Load the jets, split and standardize them."""
    from .data import load_jets

    with _loader_messages() as held:
        ds = load_jets(source=run.data, n_events=run.settings.n_events, seed=run.settings.seed)
    held.pass_on(dropping=ds.notice)  # the summary states it, once
    run.dataset = ds
    run.report["data"] = {
        "source": ds.source, "notice": ds.notice,
        "n_train": int(len(ds.X_train)), "n_test": int(len(ds.X_test)),
        "n_features": int(ds.X_train.shape[1]),
        "class_names": list(ds.class_names), "feature_names": list(ds.feature_names),
    }
    for key, value in _jsonable(ds.summary()).items():
        run.report["data"].setdefault(key, value)
    run.add_summary("data", ds.notice)
    run.add_summary("events", f"{len(ds.X_train):,} train / {len(ds.X_test):,} test")


class _Held(logging.Filter):
    """Log records and warnings held back while the data loads, passed on later (see ``pass_on``)."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger, self.records, self.warnings = logger, [], []

    def filter(self, record) -> bool:
        self.records.append(record)
        return False

    def pass_on(self, dropping: str | None) -> None:
        """Emit what was held, except the messages equal to ``dropping``."""
        for record in self.records:
            if record.getMessage() != dropping:
                self.logger.handle(record)
        for w in self.warnings:
            if str(w.message) != dropping:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def _loader_messages():
    """Hold what the data loader logs and warns, so the demo can say its data notice once."""
    held = _Held(logging.getLogger("fastml_lab.data"))
    held.logger.addFilter(held)
    failed = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield held
            except BaseException:
                failed = True
                raise
            finally:
                held.warnings = list(caught)
    finally:
        held.logger.removeFilter(held)
        if failed:  # nothing is dropped when the loading failed
            held.pass_on(dropping=None)


def step_train(run: DemoRun) -> None:
    """Train the float MLP and save it as model.keras."""
    from .train import build_model, parse_spec, save_model, train_model

    settings = run.settings
    spec = parse_spec(settings.model, n_inputs=run.dataset.X_train.shape[1],
                      n_classes=len(run.dataset.class_names))
    run.model = build_model(spec, seed=settings.seed)
    run.history = train_model(run.model, run.dataset, epochs=settings.epochs,
                              batch_size=settings.batch_size, patience=settings.patience,
                              learning_rate=settings.learning_rate, seed=settings.seed)
    save_model(run.model, run.out / "model.keras")
    run.report["float"] = {
        "model": {"spec": spec.to_string(), "layers": spec.describe(),
                  "parameters": int(run.model.count_params())},
        "training": run.history.to_dict(),
    }
    run.report.setdefault("files", {})["model"] = "model.keras"
    run.add_summary("model", f"{spec.describe()}, {run.model.count_params():,} parameters")
    run.add_summary("training", _training_line(run.history))


def step_evaluate(run: DemoRun) -> None:
    """Evaluate the float model on the test events."""
    from .evaluate import evaluate

    run.float_evaluation = evaluation = evaluate(run.model, run.dataset)
    run.report["float"].update(evaluation.to_dict())
    run.add_summary("float accuracy", f"{evaluation.accuracy:.4f}")
    run.add_summary("float AUC", "  ".join(f"{name} {value:.3f}" for name, value in evaluation.auc.items()))


def step_plots(run: DemoRun) -> None:
    """Draw the ROC curves, training curves and confusion matrix."""
    from .plots import plot_confusion, plot_roc, plot_training, save_figure

    figures = {
        "roc": plot_roc(run.float_evaluation, title="Float model, test events"),
        "training": plot_training(run.history),
        "confusion": plot_confusion(run.float_evaluation),
    }
    files = run.report.setdefault("files", {})
    for name, figure in figures.items():
        save_figure(figure, run.out / f"{name}.png", close=True)
        files[name] = f"{name}.png"
    run.add_summary("plots", ", ".join(f"{name}.png" for name in figures))


def step_quantize(run: DemoRun) -> None:
    """Train the quantization-aware model (HGQ2), pruned, and estimate whether it fits the PYNQ-Z2."""
    from .evaluate import evaluate
    from .quantize import fit_estimate, quantize
    from .train import save_model

    s = run.settings
    run.quantized = result = quantize(
        run.model, run.dataset, bits={"weights": s.weight_bits, "activations": s.activation_bits},
        prune=s.prune, epochs=s.qat_epochs, batch_size=s.batch_size, seed=s.seed)
    evaluation = evaluate(result.model, run.dataset)
    save_model(result.model, run.out / "qat_model.keras")
    float_fit = fit_estimate(run.model, precision=PRECISION)
    float_accuracy = run.report["float"]["accuracy"]
    run.report["quantize"] = {**result.to_dict(), "accuracy": evaluation.accuracy, "auc": evaluation.auc,
                              "float_accuracy": float_accuracy, "float_fit": float_fit.to_dict()}
    run.report.setdefault("files", {})["qat_model"] = "qat_model.keras"
    input_bits = next(iter(result.bits.values()))["activations"]  # the first layer's inputs
    run.add_summary("QAT accuracy", f"{evaluation.accuracy:.4f} ({s.weight_bits}-bit weights, {s.activation_bits}-bit "
                                    f"activations, {input_bits}-bit inputs, {s.prune:.0%} pruned; "
                                    f"float {float_accuracy:.4f})")
    run.add_summary("zero weights", ", ".join(f"{name} {value:.0%}" for name, value in result.sparsity.items()))
    run.add_summary("fit estimate", _fit_line(result.fit))
    run.add_summary("float model's fit", f"{_fit_line(float_fit)} (at {PRECISION})")


def _fit_line(fit) -> str:
    verdict = "fits" if fit.fits else "does not fit"
    return (f"{fit.dsp:,}/{fit.budget.dsp} DSP, {fit.lut:,}/{fit.budget.lut:,} LUT, {fit.ebops:,} EBOPs: "
            f"{verdict} the {fit.budget.board}")


def step_hls(run: DemoRun) -> None:
    """Export the quantized model (else the float one at ap_fixed<16,6>), run the C simulation and the emulator."""
    from .evaluate import evaluate_scores
    from .hls import export
    from .hls.check import check_project

    ds = run.dataset
    quantized = run.quantized is not None
    model = run.quantized.model if quantized else run.model
    run.project = export(model, run.out / "hls_project", precision=None if quantized else PRECISION,
                         overwrite=True, scaler=ds.scaler, class_names=ds.class_names,
                         feature_names=ds.feature_names)
    X = ds.X_test
    start = time.perf_counter()
    run.emulated = emulated = run.project.firmware().predict(X)
    t_emulator = time.perf_counter() - start
    check = check_project(run.project, X, n_events=run.settings.csim_events)
    fixed = evaluate_scores(emulated, ds.labels_test, ds.class_names)
    float_accuracy = run.report["float"]["accuracy"]
    types = "from the quantizers" if quantized else PRECISION
    run.report["hls"] = {
        "project": str(run.project.path), "model": "quantized" if quantized else "float", "precision": types,
        "backend": run.project.backend, "fixed_accuracy": fixed.accuracy, "fixed_auc": fixed.auc,
        "float_accuracy": float_accuracy,
        "csim_events": check.events, "mismatches_emulator_vs_csim": check.mismatches, "csim_check": check.to_dict(),
        "emulator_events_per_s": len(X) / t_emulator, "csim_events_per_s": check.events / check.csim_seconds,
        "timing": run.project.timing,
    }
    if quantized:  # the Keras model of a quantization-aware model is what the firmware computes
        keras_outputs = model.predict(X, verbose=0, batch_size=4096)
        run.report["hls"]["mismatches_keras_vs_emulator"] = count_mismatches(keras_outputs, emulated).mismatches
    run.add_summary("fixed-point accuracy", f"{fixed.accuracy:.4f} ({'quantized model, types ' if quantized else ''}"
                                            f"{types}; float {float_accuracy:.4f})")
    if quantized:
        run.add_summary("Keras vs emulator", f"{run.report['hls']['mismatches_keras_vs_emulator']} mismatches "
                                             f"on {emulated.size:,} values")
    run.add_summary("emulator vs C sim", f"{check.mismatches} mismatches on {check.values:,} values")
    run.add_summary("speed", f"emulator {len(X) / t_emulator:,.0f} events/s, "
                             f"C sim {check.events / check.csim_seconds:,.0f} events/s")
    _headline(run, model, X)


def _headline(run: DemoRun, model, X) -> None:
    """The design on FPGAs (estimated, with the board's verdict) beside batches on this CPU (measured)."""
    from .estimate.headline import headline_table, measure_cpu, trigger_headline

    headline = trigger_headline(run.project, measure_cpu(run.project, X, model=model))
    run.report["hls"]["headline"] = headline
    run.add_summary("FPGA and CPU", "\n" + headline_table(headline))


def step_overlay(run: DemoRun) -> None:
    """Package the exported model as an overlay and run it through overlay.load (board or software)."""
    from .overlay import load, package

    ds = run.dataset
    path = package(run.project.path, name="demo_model", out=run.out / "overlay", overwrite=True)
    with load(path) as overlay:
        outputs = overlay.predict(ds.X_test)
        profile = overlay.profile(ds.X_test[:run.settings.profile_events])
        backend = overlay.backend
    identical = bool(np.array_equal(outputs, run.emulated))
    accuracy = float(np.mean(outputs.argmax(axis=1) == ds.labels_test))
    run.report["overlay"] = {"package": str(path), "backend": backend, "accuracy": accuracy,
                             "identical_to_emulator": identical, "profile": profile}
    run.add_summary("overlay", f"{backend} backend, accuracy {accuracy:.4f}, "
                               f"{'identical to' if identical else 'DIFFERS from'} the emulator")


def step_rtl(run: DemoRun) -> None:
    """Export the quantized model to da4ml's Verilog and set it beside the HLS export (Verilator, yosys: full run)."""
    import importlib.util

    section = run.report["rtl"] = {"notes": []}

    def skip(note: str) -> None:
        section["notes"].append(note)
        run.add_summary("RTL (da4ml)", note)

    if run.quantized is None or run.project is None:
        return skip("skipped: the RTL export takes the quantized model, and this run made none")
    if importlib.util.find_spec("da4ml") is None:
        return skip("skipped: da4ml is not installed (pip install 'fastml-lab[lab]')")
    from .estimate import estimate
    from .rtl.network import export_rtl

    ds = run.dataset
    run.rtl_project = project = export_rtl(run.quantized.model, run.out / "rtl_project", scaler=ds.scaler,
                                           class_names=ds.class_names, feature_names=ds.feature_names,
                                           overwrite=True)
    logits = project.firmware().predict(ds.X_test)
    accuracy = float(np.mean(logits.argmax(axis=1) == ds.labels_test))
    agreement = float(np.mean(logits.argmax(axis=1) == run.emulated.argmax(axis=1)))
    hls_estimate, rtl_estimate = estimate(run.project), estimate(project)
    section.update({"project": str(project.path), "stages": project.meta["da4ml"]["stages"],
                    "timing": project.timing, "outputs": project.meta["outputs"], "accuracy": accuracy,
                    "same_class_as_hls": agreement, "estimate": _resources_row(rtl_estimate),
                    "hls_estimate": _resources_row(hls_estimate), "check": None, "mapping": None})
    mapping = None
    if run.quick:
        section["notes"].append("--quick: Verilator's check and yosys' mapping of the Verilog were skipped "
                                "(minutes on this network); a full run makes them")
    else:
        mapping = _rtl_check_and_map(run, project, section)
    from .estimate import FLAVOURS

    hls = {**_resources_row(hls_estimate), "accuracy": run.report["hls"]["fixed_accuracy"],
           "flow": f"{FLAVOURS[hls_estimate.flavour].title}, the IP alone"}
    rtl = {**_resources_row(rtl_estimate), "accuracy": accuracy}
    side = {"hls4ml HLS (estimate)": hls, "da4ml RTL (estimate)": rtl}
    if mapping is not None:
        res = mapping["resources"]
        side["da4ml RTL (mapping)"] = {**rtl, "LUT": res["LUT"], "FF": res["FF"], "DSP": res["DSP"],
                                       "CARRY4": res["CARRY4"], "kind": mapping["source"]}
    section["side_by_side"] = side
    run.report.setdefault("files", {})["rtl_project"] = "rtl_project"
    ties = " (its quantized softmax ties on a few)" if agreement < 1 else ""
    run.add_summary("RTL (da4ml)", f"{section['stages']} pipeline stages = {rtl['latency_ns']:g} ns, "
                                   f"{rtl['LUT']:,} LUT, {rtl['FF']:,} FF, {rtl['DSP']} DSP ({rtl['kind']}); "
                                   f"accuracy {accuracy:.4f} from the logits, {agreement:.2%} of the jets get the "
                                   f"HLS firmware's class{ties}")
    for note in section["notes"]:
        run.add_summary("RTL note", note)


def _resources_row(est) -> dict:
    """LUT, FF, DSP and latency of an :class:`~fastml_lab.estimate.Estimate`, with its kind."""
    return {"LUT": int(est.resources["lut"]), "FF": int(est.resources["ff"]), "DSP": int(est.resources["dsp"]),
            "latency_cycles": int(est.latency_cycles), "latency_ns": round(est.latency_ns, 3),
            "part": est.part, "clock_mhz": round(est.clock_mhz, 3), "kind": est.kind}


def _rtl_check_and_map(run: DemoRun, project, section: dict):
    """Verilator against the emulator, then yosys' mapping (recorded in the project); each skipped
    with a note (the tool's own install hint) when its tool is missing. Returns the mapping, or None."""
    from .exceptions import ToolchainNotFoundError
    from .hls.check import check_project
    from .rtl.yosys import map_project

    try:
        check = check_project(project, run.dataset.X_test, n_events=run.settings.csim_events)
        section["check"] = check.to_dict()
        run.add_summary("RTL emulator vs Verilator", f"{check.mismatches} mismatches on {check.values:,} values")
    except ToolchainNotFoundError as exc:
        section["notes"].append(f"skipped: the Verilog was not simulated: {exc}")
    try:
        mapping = project.record_mapping(map_project(project))
    except ToolchainNotFoundError as exc:
        section["notes"].append(f"skipped: the Verilog was not mapped: {exc}")
        return None
    section["mapping"] = {key: mapping[key] for key in ("source", "tool_version", "part", "resources", "seconds")}
    return mapping


def step_bdt_train(run: DemoRun) -> None:
    """Train the BDT (xgboost) on the same jets, evaluate it and save it as bdt.json."""
    from .bdt.train import train_bdt
    from .evaluate import evaluate

    s = run.settings
    run.bdt = model = train_bdt(run.dataset, rounds=s.bdt_rounds, depth=s.bdt_depth,
                                learning_rate=s.bdt_learning_rate, early_stopping=s.bdt_early_stopping,
                                seed=s.seed)
    model.save(run.out / "bdt.json")
    evaluation = evaluate(model, run.dataset)
    history = model.history
    run.report["bdt"] = {"model": {"library": model.spec.library, "rounds": history.rounds_run,
                                   "best_round": history.best_round, "depth": model.spec.depth,
                                   "learning_rate": model.spec.learning_rate},
                         "training": history.to_dict(), "accuracy": evaluation.accuracy, "auc": evaluation.auc}
    run.report.setdefault("files", {})["bdt"] = "bdt.json"
    kept = history.best_round or history.rounds_run
    run.add_summary("BDT", f"{kept} rounds x {model.n_classes} classes, depth {model.spec.depth}, "
                           f"trained in {history.seconds:.1f} s")
    run.add_summary("BDT accuracy", f"{evaluation.accuracy:.4f}")


def step_bdt_hls(run: DemoRun) -> None:
    """Profile the BDT, export it at the suggested precision, run the C simulation and the emulator, estimate it."""
    from .bdt.estimate import estimate_bdt
    from .bdt.export import export_bdt
    from .bdt.profile import profile_bdt
    from .bdt.train import scores_to_probabilities
    from .evaluate import evaluate_scores
    from .hls.check import check_project

    ds = run.dataset
    prof = profile_bdt(run.bdt, ds, precision=PRECISION, sample=run.settings.profile_events)
    precision = prof.suggested_text()
    run.bdt_project = project = export_bdt(run.bdt, run.out / "bdt_project", precision=precision, overwrite=True,
                                           scaler=ds.scaler, class_names=ds.class_names,
                                           feature_names=ds.feature_names)
    X = ds.X_test
    start = time.perf_counter()
    emulated = project.firmware().predict(X)
    t_emulator = time.perf_counter() - start
    check = check_project(project, X, n_events=run.settings.csim_events)
    fixed = evaluate_scores(scores_to_probabilities(emulated), ds.labels_test, ds.class_names)
    estimate = estimate_bdt(project)
    run.report["bdt"].update({
        "profile": {"precision": PRECISION, "events": prof.events, "total_overflows": prof.total_overflows,
                    "rows": prof.table(), "suggested_precision": prof.suggested_precision},
        "project": str(project.path), "precision": project.meta["precision"], "backend": project.backend,
        "fixed_accuracy": fixed.accuracy, "fixed_auc": fixed.auc,
        "csim_events": check.events, "mismatches_emulator_vs_csim": check.mismatches,
        "csim_check": check.to_dict(), "emulator_events_per_s": len(X) / t_emulator,
        "csim_events_per_s": check.events / check.csim_seconds, "estimate": estimate, "timing": project.timing,
    })
    run.add_summary("BDT profile", f"{prof.total_overflows} overflow(s) at {PRECISION}; exported at {precision}")
    run.add_summary("BDT fixed-point accuracy", f"{fixed.accuracy:.4f} (float {run.report['bdt']['accuracy']:.4f})")
    run.add_summary("BDT emulator vs C sim", f"{check.mismatches} mismatches on {check.values:,} values")
    run.add_summary("BDT estimate", f"{estimate['LUT']:,} LUT, {estimate['FF']:,} FF, {estimate['DSP']} DSP, "
                                    f"{estimate['latency_cycles']} cycles = {estimate['latency_ns']:g} ns "
                                    f"(conifer's estimate, {estimate['board']})")


def step_cnn_data(run: DemoRun) -> None:
    """Load the jet images, split and scale them."""
    from .data.images import image_sources, load_jet_images

    source = image_sources(run.data) or run.data
    with _loader_messages() as held:
        ds = load_jet_images(source, n_events=run.settings.image_events, seed=run.settings.seed)
    held.pass_on(dropping=ds.notice)
    run.dataset = ds
    run.report["data"] = _jsonable(ds.summary())
    run.add_summary("data", ds.notice)
    run.add_summary("images", f"{len(ds.X_train):,} train / {len(ds.X_test):,} test, "
                              f"{'x'.join(map(str, ds.image_shape))} each; {ds.summary()['scaling']}")


def step_cnn_train(run: DemoRun) -> None:
    """Train the float CNN, evaluate it and save it as cnn.keras."""
    from .evaluate import evaluate
    from .train import build_cnn, parse_cnn_spec, save_model, train_model

    s, ds = run.settings, run.dataset
    spec = parse_cnn_spec(s.cnn_filters, input_shape=ds.image_shape, n_classes=len(ds.class_names))
    run.model = build_cnn(spec, seed=s.seed)
    run.history = train_model(run.model, ds, epochs=s.cnn_epochs, batch_size=min(s.batch_size, 256),
                              patience=s.patience, learning_rate=s.learning_rate, seed=s.seed)
    save_model(run.model, run.out / "cnn.keras")
    run.float_evaluation = evaluation = evaluate(run.model, ds)
    run.report["cnn"] = {"model": {"spec": spec.to_string(), "layers": spec.describe(),
                                   "parameters": int(run.model.count_params())},
                         "training": run.history.to_dict(), "accuracy": evaluation.accuracy, "auc": evaluation.auc,
                         "exports": {}}
    run.report.setdefault("files", {})["cnn"] = "cnn.keras"
    run.add_summary("CNN", f"{spec.describe()}, {run.model.count_params():,} parameters")
    run.add_summary("training", _training_line(run.history))
    run.add_summary("CNN accuracy", f"{evaluation.accuracy:.4f}")


def step_cnn_hls(run: DemoRun) -> None:
    """Export the CNN with io_stream and io_parallel, check each against the C simulation and estimate it."""
    from .estimate import estimate
    from .hls import export
    from .hls.check import check_project

    ds, section = run.dataset, run.report["cnn"]["exports"]
    for io in ("stream", "parallel"):
        project = run.cnn_projects[io] = export(
            run.model, run.out / f"cnn_{io}", precision=PRECISION, io_type=io, backend="pynq-z2", overwrite=True,
            scaler=ds.scaler,
            class_names=ds.class_names, feature_names=ds.feature_names)
        outputs = project.firmware().predict(ds.X_test)
        check = check_project(project, ds.X_test, n_events=run.settings.cnn_csim_events)
        hardware = estimate(project)
        totals = hardware.to_dict()["totals"]
        section[io] = {"project": str(project.path), "io_type": project.meta["io_type"], "precision": PRECISION,
                       "fixed_accuracy": float(np.mean(outputs.argmax(axis=1) == ds.labels_test)),
                       "csim_events": check.events, "mismatches_emulator_vs_csim": check.mismatches,
                       "estimate": {key: totals[key] for key in ("latency_cycles", "ii_cycles", "dsp", "lut", "ff",
                                                                 "bram_18k")},
                       "latency_ns": round(hardware.latency_ns, 3), "fits": hardware.fits,
                       "verdict": hardware.verdict()}
        row = section[io]
        run.add_summary(f"io_{io}", f"{row['mismatches_emulator_vs_csim']} mismatches on {check.values:,} values "
                                    f"(emulator vs C sim); accuracy {row['fixed_accuracy']:.4f} at {PRECISION}")
        est = row["estimate"]
        run.add_summary(f"io_{io} estimate", f"{est['latency_cycles']:,} cycles ({row['latency_ns']:,.0f} ns) per "
                                             f"image, II {est['ii_cycles']:,}; {est['dsp']:,} DSP, {est['lut']:,} LUT, "
                                             f"{est['ff']:,} FF, {est['bram_18k']} BRAM18; {row['verdict']}")


def comparison(report: dict) -> dict:
    """``{"nn": {...}, "bdt": {...}}``: accuracy, fixed-point accuracy, mismatches (emulator vs C
    simulation), estimated LUT, FF, DSP and latency of each model the report holds."""
    rows = {}
    hls, fit = report.get("hls"), (report.get("quantize") or {}).get("fit")
    if hls:
        timing = hls.get("timing") or {}
        rows[NETWORK] = {"accuracy": report["float"]["accuracy"], "fixed_accuracy": hls["fixed_accuracy"],
                      "mismatches": hls["mismatches_emulator_vs_csim"],
                      "LUT": fit["lut"] if fit else None, "FF": fit.get("ff") if fit else None,
                      "DSP": fit["dsp"] if fit else None,
                      **_latency(timing), "kind": "estimate"}
    bdt = report.get("bdt")
    if bdt and "estimate" in bdt:
        est = bdt["estimate"]
        rows[BDT] = {"accuracy": bdt["accuracy"], "fixed_accuracy": bdt["fixed_accuracy"],
                       "mismatches": bdt["mismatches_emulator_vs_csim"], "LUT": est["LUT"], "FF": est["FF"],
                       "DSP": est["DSP"], **_latency(bdt["timing"]), "kind": "estimate"}
    return rows


def _latency(timing: dict) -> dict:
    cycles, mhz = timing.get("latency_cycles"), timing.get("clock_mhz")
    return {"latency_cycles": cycles,
            "latency_ns": round(cycles * 1000.0 / mhz, 3) if cycles is not None and mhz else None}


def comparison_table(rows: dict) -> str:
    """The side-by-side table of :func:`comparison` as text."""
    fields = [("accuracy", "float accuracy", "{:.4f}"), ("fixed_accuracy", "fixed-point accuracy", "{:.4f}"),
              ("mismatches", "emulator vs C sim", "{:d} mismatches"), ("LUT", "LUT (estimate)", "{:,}"),
              ("FF", "FF (estimate)", "{:,}"), ("DSP", "DSP (estimate)", "{:,}"),
              ("latency_ns", "latency (estimate)", "{:g} ns")]
    names = {NETWORK: "NN (QAT)", BDT: "BDT"}
    width = max(len(label) for _, label, _ in fields)
    lines = [f"{'':<{width}}" + "".join(f"  {names[k]:>18}" for k in rows)]
    for key, label, fmt in fields:
        cells = ["-" if row.get(key) is None else fmt.format(row[key]) for row in rows.values()]
        lines.append(f"{label:<{width}}" + "".join(f"  {c:>18}" for c in cells))
    return "\n".join(lines)


def rtl_table(side: dict) -> str:
    """The HLS export beside the RTL export (``report["rtl"]["side_by_side"]``) as text."""
    fields = [("LUT", "LUT", "{:,}"), ("FF", "FF", "{:,}"), ("DSP", "DSP", "{:,}"), ("CARRY4", "CARRY4", "{:,}"),
              ("latency_cycles", "latency (cycles)", "{:d}"), ("latency_ns", "latency", "{:g} ns"),
              ("accuracy", "fixed-point accuracy", "{:.4f}")]
    width = max(len(label) for _, label, _ in fields)
    cell = max(24, *(len(name) + 2 for name in side))
    lines = [f"{'':<{width}}" + "".join(f"{name:>{cell}}" for name in side)]
    for key, label, fmt in fields:
        cells = ["-" if row.get(key) is None else fmt.format(row[key]) for row in side.values()]
        lines.append(f"{label:<{width}}" + "".join(f"{c:>{cell}}" for c in cells))
    kinds = "; ".join(f"{name}: {row['kind']}" + (f" ({row['flow']})" if row.get("flow") else "")
                      for name, row in side.items())
    first = next(iter(side.values()))
    lines.append(f"(on {first['part']} at {first['clock_mhz']:g} MHz; {kinds}. No place and route: Vivado's "
                 "counts can differ by tens of percent. The design alone, without a board's wrapper: the "
                 "'NN (QAT)' column above prices the model on the PYNQ-Z2 board flow, wrapper and DMA design "
                 "included.)")
    return "\n".join(lines)


def step_compare(run: DemoRun) -> None:
    """Put the models side by side: accuracy, fixed point, mismatches, estimated resources and latency."""
    run.report["comparison"] = comparison(run.report)


#: The demo's steps, in order: ``(name, function)``, for the neural network and for the BDT.
NN_STEPS: list[tuple[str, Callable[[DemoRun], None]]] = [
    ("setup", step_setup),
    ("data", step_data),
    ("train", step_train),
    ("evaluate", step_evaluate),
    ("plots", step_plots),
    ("quantize", step_quantize),
    ("hls", step_hls),
    ("overlay", step_overlay),
    ("rtl", step_rtl),
]
BDT_STEPS: list[tuple[str, Callable[[DemoRun], None]]] = [
    ("bdt_train", step_bdt_train),
    ("bdt_hls", step_bdt_hls),
]
CNN_STEPS: list[tuple[str, Callable[[DemoRun], None]]] = [
    ("setup", step_setup),
    ("cnn_data", step_cnn_data),
    ("cnn_train", step_cnn_train),
    ("cnn_hls", step_cnn_hls),
]
#: Every step of the default run (``model="both"``).
STEPS = NN_STEPS + BDT_STEPS + [("compare", step_compare)]
#: The steps of a run of one model family, by the family's name.
TRACKS = {NETWORK: NN_STEPS + [("compare", step_compare)],
          BDT: [("setup", step_setup_bdt), ("data", step_data), *BDT_STEPS, ("compare", step_compare)],
          "cnn": CNN_STEPS}
MODELS = (*TRACKS, "both")


def steps_for(model: str) -> list:
    """The steps of a run of ``model`` (one of :data:`MODELS`)."""
    from .exceptions import ConfigError

    if model not in MODELS:
        raise ConfigError(f"The demo's model must be one of {', '.join(MODELS)}; got {model!r}.")
    return list(TRACKS.get(model, STEPS))


# ------------------------------------------------------------------------------------------- run
def run_demo(out: str | Path = "demo_out", quick: bool = False, data: str = "auto", log=None,
             steps=None, settings: DemoSettings | None = None, model: str = "both") -> dict:
    """Run every step, write ``out/report.json`` and the artifacts, print a summary; return the report.

    ``model``: ``"nn"``, ``"bdt"`` or ``"both"`` (:func:`steps_for`). ``log`` is a print-like
    callable or a ``logging.Logger`` (default: this module's logger). ``steps`` and ``settings``
    replace the model's steps and :meth:`DemoSettings.for_mode`.
    """
    from .exceptions import FastMLError

    chosen = steps_for(model)
    run = DemoRun(out=check_destination(out, folder=True), data=str(data), quick=bool(quick),
                  settings=settings or DemoSettings.for_mode(quick), log=_log_function(log))
    made = not run.out.exists()
    run.out.mkdir(parents=True, exist_ok=True)
    run.report.update(_report_header(run))
    run.report["settings"]["model"] = model
    steps = list(chosen if steps is None else steps)
    started = time.perf_counter()
    try:
        for number, (name, step) in enumerate(steps, start=1):
            _run_step(run, name, step, f"[{number}/{len(steps)}]")
    except FastMLError:
        if made and "data" not in run.report:  # refused before the data loaded: leave nothing behind
            shutil.rmtree(run.out, ignore_errors=True)
        raise
    run.report["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    write_report(run.report, run.out / "report.json")
    print(format_summary(run))
    return run.report


def _run_step(run: DemoRun, name: str, step, counter: str) -> None:
    run.log(f"{counter} {_first_line(step.__doc__) or name}")
    start = time.perf_counter()
    try:
        step(run)
    finally:
        run.report["timings_s"][name] = round(time.perf_counter() - start, 3)
        write_report(run.report, run.out / "report.json")


def _report_header(run: DemoRun) -> dict:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"quick": run.quick, "data": run.data, "out": str(run.out),
                     **asdict(run.settings)},
        "timings_s": {},
    }


def write_report(report: dict, path: Path) -> Path:
    """Write ``report`` as indented JSON atomically."""
    text = json.dumps(_jsonable(report), indent=2, allow_nan=False)
    with atomic_destination(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------- summary
def format_summary(run: DemoRun) -> str:
    """The summary table: the steps' rows, then the time of each step."""
    timings = run.report.get("timings_s", {})
    rows = [*run.summary,
            ("time", "  ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())),
            ("outputs", str(run.out))]
    width = max(len(label) for label, _ in rows)
    title = f"fastml-lab demo ({'quick' if run.quick else 'full'})"
    lines = [title, "-" * len(title)]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]
    if run.report.get("comparison"):
        lines += ["", "side by side (resources and latency: estimates before synthesis)",
                  comparison_table(run.report["comparison"])]
    side = (run.report.get("rtl") or {}).get("side_by_side")
    if side:
        lines += ["", "the quantized network: hls4ml HLS (estimate) vs da4ml RTL (estimate"
                  + ("/mapping)" if len(side) > 2 else ")"), rtl_table(side)]
    return "\n".join(lines)


def _training_line(history) -> str:
    stop = f", stopped early, best epoch {history.best_epoch + 1}" if history.stopped_early else ""
    return f"{history.epochs_run} epochs in {history.seconds:.1f} s{stop}"


# ----------------------------------------------------------------------------------------- utils
def _log_function(log) -> Callable[[str], Any]:
    if log is None:
        return logger.info
    if hasattr(log, "info"):
        return log.info
    return log


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0].rstrip(".") if lines else ""


def _jsonable(value):
    """Plain Python types for JSON: numpy scalars and arrays become numbers and lists, NaN None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
