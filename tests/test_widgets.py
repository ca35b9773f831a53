"""The guided walk without a browser: drive each step through its own widgets (set values, click
Run, wait for the background thread) on quick settings, and check results, files and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("keras")

from fastml_lab.widgets import DataStep, ExportStep, TrainStep, Walk  # noqa: E402
from fastml_lab.widgets.app import voila_command, write_walk_notebook  # noqa: E402
from fastml_lab.widgets.code import GIVEN, Call  # noqa: E402
from fastml_lab.widgets.runner import Runner, describe_error  # noqa: E402

pytestmark = pytest.mark.needs_tf

WAIT_S = 300
PNG = b"\x89PNG\r\n\x1a\n"


#: The walk's optional step (a sweep), which the walks here do not run (tests/test_explore_step.py does).
OPTIONAL_STEP = "explore"
#: The stepper's marks after a walk through every step but Explore.
DONE_BUT_EXPLORE = ["check", "check", "check", "", "check", "check"]


def click_and_wait(step, timeout: float = WAIT_S):
    step.run_button.click()
    assert step.wait(timeout), f"{step.name} still running after {timeout} s"
    return step


def numbers(step) -> dict:
    return dict(step.result.numbers)


def figures_shown(step) -> dict:
    """``{name: png bytes}`` of the Image widgets in the step's results area."""
    shown = {}
    for child in step.results.children:
        for cls in child._dom_classes:
            if cls.startswith("fastml-lab-figure-"):
                shown[cls[len("fastml-lab-figure-"):]] = bytes(child.value)
    return shown


def assert_figures(step, *names):
    shown = figures_shown(step)
    for name in names:
        assert name in shown, f"{step.name} shows no {name!r} figure; it shows {sorted(shown)}"
        assert shown[name].startswith(PNG)
        assert (step.state.step_dir(step.name) / f"{name}.png").read_bytes() == shown[name]


def walk_every_step(folder, family: str = "nn", before=None, skip=()):
    """A walk on quick settings in ``folder``, ``family`` chosen at Train, every step's Run clicked
    in order (but the steps named in ``skip``); ``walk.ran`` records the toolkit calls each step made
    ({step: [(Call, hook names)]}). ``before(walk)`` runs once the walk has restored, before the first click."""
    walk = Walk(folder, quick=True)
    assert walk.wait_restored(30)
    if before is not None:
        before(walk)
    walk.ran = {}
    run = Call.run

    def recorded(call, names, **hooks):
        walk.ran[current].append((call, sorted(hooks)))
        return run(call, names, **hooks)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Call, "run", recorded)
        for step in walk.steps:
            if step.name in skip:
                continue
            current = step.name
            walk.ran[current] = []
            walk.go(walk.steps.index(step))
            if step.name == "train":
                step.family.value = family
            click_and_wait(step)
            assert step.outcome == "done", f"{step.name}: {step.errors.text}\n{step.runner.error_details}"
            assert step.errors.text == ""
    return walk


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    """A walk on quick settings in a fresh project folder, every step's Run clicked in order."""
    return walk_every_step(tmp_path_factory.mktemp("walk") / "lab")


# ------------------------------------------------------------------------------ before anything
def test_the_command_line_stays_free_of_widget_libraries():
    """``fastml-lab`` (with its ``app`` verb) still starts on a board that has numpy alone."""
    code = ("import sys; from fastml_lab.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('ipywidgets', 'traitlets', 'tensorflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_app_notebook_shows_the_walk_on_the_project_folder(tmp_path):
    path = write_walk_notebook(tmp_path / "lab", quick=False)
    notebook = json.loads(path.read_text())
    assert path == tmp_path / "lab" / "fastml_lab_walk.ipynb"
    source = "".join(notebook["cells"][0]["source"])
    assert f"fastml_lab.lab(project_dir={str((tmp_path / 'lab').resolve())!r}, quick=False)" in source
    command = voila_command(path, port=9123)
    assert command[1:4] == ["-m", "voila", str(path)] and "--no-browser" in command and "--port=9123" in command


def test_walk_has_six_steps_a_stepper_and_quick_defaults(tmp_path):
    walk = Walk(tmp_path / "lab")
    assert [s.name for s in walk.steps] == ["data", "train", "quantize", "explore", "export", "deploy"]
    assert [label for label, _ in walk.stepper.options] == [s.title for s in walk.steps]
    assert walk.quick_box.value and all(s.quick_box.value for s in walk.steps)
    assert walk.step("train").epochs.value <= 3
    walk.quick_box.value = False  # one toggle sets every step's size defaults
    assert walk.step("train").epochs.value == 30 and walk.step("data").n_events.value == 0
    walk.go(3)
    assert walk.stack.selected_index == 3
    assert "fastml-lab-walk" in walk.widget._dom_classes


def test_steps_refuse_to_run_before_their_inputs_exist_and_say_so(tmp_path):
    walk = Walk(tmp_path / "lab")
    assert walk.wait_restored(30)
    expected = {"train": "run step 1 (Data) first", "quantize": "run step 1 (Data) first",
                "export": "run step 2 (Train) first", "deploy": "run step 4 (Export) first"}
    for name, text in expected.items():
        step = walk.step(name)
        step.run_button.click()
        assert not step.runner.busy and step.outcome == ""
        assert text in step.message.value and "fastml-lab-notice" in step.message.value
    alone = ExportStep(project_dir=tmp_path / "alone")
    alone.run_button.click()
    assert "ExportStep(model=...)" in alone.message.value
    assert not (tmp_path / "alone" / "hls_project").exists()


def test_a_bad_file_path_shows_a_readable_error_with_folded_details(tmp_path):
    step = DataStep(project_dir=tmp_path / "lab")
    step.source.value = "file"
    step.path.value = str(tmp_path / "no_such_jets.csv")
    click_and_wait(step, 60)
    assert step.outcome == "error"
    assert "no_such_jets.csv" in step.errors.text and "Traceback" not in step.errors.text
    assert step.errors.widget.layout.display != "none"
    assert step.errors.fold.selected_index is None  # details folded
    assert "Traceback" in step.errors.details.value
    assert step.state.dataset is None and step.results.children == ()
    assert not step.run_button.disabled and step.stop_button.disabled
    step.path.value = ""
    click_and_wait(step, 60)
    assert "Enter the path" in step.errors.text


def test_worker_output_and_errors_stay_in_the_task(capsys):
    finished = []
    runner = Runner(lambda *a: None, lambda outcome, value, task: finished.append((outcome, value, task)))

    def noisy(task):
        print("printed by the work")
        print("to stderr", file=sys.stderr)  # where warnings and log records go in a kernel
        raise ValueError("bad value\nsecond line")

    assert runner.start(noisy)
    assert runner.wait(10)
    outcome, exc, task = finished[0]
    assert outcome == "error" and describe_error(exc) == "ValueError: bad value"
    assert "ValueError: bad value" in runner.error_details
    log = "".join(task.log_lines)
    assert "printed by the work" in log and "to stderr" in log
    out, err = capsys.readouterr()
    assert "printed by the work" not in out and "to stderr" not in err


# ------------------------------------------------------------------------------ the walk, in order
@pytest.mark.slow
def test_data_step_loads_jets_and_shows_their_distributions(walked):
    step = walked.step("data")
    ds = walked.state.dataset
    assert (len(ds.X_train), len(ds.X_test)) == (16_000, 4_000)
    assert numbers(step)["jets"] == "16,000 for training, 4,000 for testing"
    assert_figures(step, "classes", "features")
    saved = json.loads((walked.state.folder / "data" / "result.json").read_text())
    assert saved["settings"]["source"] == "synthetic" and saved["settings"]["n_events"] == 20_000


@pytest.mark.slow
def test_train_step_trains_a_model_and_shows_curves_roc_and_confusion(walked):
    step = walked.step("train")
    model, evaluation = walked.state.model, walked.state.evaluation
    assert model is not None and model.count_params() == 4389  # 16-64-32-32-5
    assert 0.5 < evaluation.accuracy <= 1.0  # synthetic jets, 3 epochs: about 0.7
    assert numbers(step)["test accuracy"] == f"{evaluation.accuracy:.4f}"
    assert numbers(step)["training"].startswith("3 epochs")
    assert_figures(step, "training", "roc", "confusion")
    assert (walked.state.folder / "model.keras").is_file()
    assert len(step.live.history["loss"]) == 3 and bytes(step.live.image.value).startswith(PNG)


@pytest.mark.slow
def test_quantize_step_shows_profile_study_and_fit_or_says_what_is_missing(walked):
    step = walked.step("quantize")
    result = step.result
    assert result.notes == []
    assert_figures(step, "profile", "study", "fit", "qat_training")
    row = numbers(step)["accuracy vs bits (PTQ)"]
    assert row.startswith("4b ") and "16b " in row
    fit = {k: v for k, v in numbers(step).items() if k.startswith("fits the PYNQ-Z2 (")}
    assert list(fit.values()) in (["yes"], ["no"])  # one verdict, labelled with the estimate's kind
    assert any(kind in next(iter(fit)) for kind in ("C-synthesis estimate", "after implementation"))
    latency = numbers(step)["latency (estimate)"]
    assert " ns (" in latency and "events/s" in latency and "MHz" in latency
    assert walked.state.plan is not None or walked.state.quantized is not None
    if step.method.value == "ptq":
        assert (walked.state.folder / "quantize" / "plan.json").is_file()


@pytest.mark.slow
def test_export_step_writes_the_project_and_the_c_simulation_matches_the_emulator(walked):
    step = walked.step("export")
    project = walked.state.project
    assert project is not None and (project.path / "project.json").is_file()
    assert project.path == walked.state.folder / "hls_project" and project.backend == "pynq-z2"
    check = numbers(step)["bit-exact check"]
    assert check.startswith("0 mismatches") and "10,000 output values (2,000 jets)" in check
    assert "fixed point" in numbers(step)["accuracy"]
    assert "cycles" in numbers(step)["latency (estimate before synthesis)"]
    assert_figures(step, "roc")


@pytest.mark.slow
def test_deploy_step_runs_the_software_overlay_and_times_it(walked):
    step = walked.step("deploy")
    assert "software overlay" in numbers(step)["ran on"]
    package = walked.state.package
    assert (package / "manifest.json").is_file() and package.parent == walked.state.folder / "bitstreams"
    accuracy = numbers(step)["accuracy"]
    overlay_acc = float(accuracy.split()[1].rstrip(","))
    assert 0.2 < overlay_acc <= 1.0
    assert "events/s" in numbers(step)["measured speed"] and "events/s" in numbers(step)["modelled board"]
    assert numbers(step)["serve it"].startswith(f"fastml-lab serve {package} ")
    assert_figures(step, "throughput")
    assert walked.stepper.icons[-1] == "check"


@pytest.mark.slow
def test_show_code_gives_python_that_compiles_and_the_data_code_runs(walked):
    for step in walked.steps:
        step.code_toggle.value = True
        assert "fastml-lab-code" in step.code_view.value, step.name
        compile(step.code(step.settings()), step.name, "exec")
        step.code_toggle.value = False
        assert step.code_view.value == ""
    quantize = walked.step("quantize")
    for method in ("ptq", "qat", "hgq"):  # every method's code, with and without pruning
        for prune in (0.0, 0.5):
            settings = {**quantize.settings(), "method": method, "prune": prune}
            compile(quantize.code(settings), f"quantize {method}", "exec")
    scope = {}
    exec(walked.step("data").code(walked.step("data").settings()), scope)  # noqa: S102
    assert np.array_equal(scope["ds"].X_test, walked.state.dataset.X_test)


#: The toolkit functions each step must call through its Calls (so "Show code" shows them).
CALLED = {
    "data": {"fastml_lab.data.load_jets"},
    "train": {"fastml_lab.train.build_model", "fastml_lab.train.train_model", "fastml_lab.evaluate.evaluate",
              "fastml_lab.train.save_model"},
    "quantize": {"fastml_lab.quantize.quantize", "fastml_lab.quantize.profile", "fastml_lab.quantize.bit_width_study"},
    "export": {"fastml_lab.hls.export", "fastml_lab.hls.check.check_project",
               "fastml_lab.quantize.fit_estimate"},
    "deploy": {"fastml_lab.overlay.package", "fastml_lab.overlay.load", "ol.predict", "ol.profile"},
}


@pytest.mark.slow
def test_show_code_is_the_calls_the_panel_ran(walked):
    """Each call a step ran appears, with the same arguments, in the code it shows for its settings."""
    for step in walked.steps:
        if step.name == OPTIONAL_STEP:
            continue
        ran = walked.ran[step.name]
        code = step.code(step.result.settings)
        compile(code, step.name, "exec")
        assert CALLED[step.name] <= {call.function for call, _ in ran}, step.name
        names = set(GIVEN) | {call.assign for call, _ in ran if call.assign}
        for call, hooks in ran:
            line = call.expression(names)
            assert line in code, f"{step.name}: {line!r} is not in the code shown:\n{code}"
            for keyword in call.kwargs:
                assert f"{keyword}=" in line
            assert not set(hooks) & set(call.kwargs)  # panel-only hooks are extra, never changed arguments
            assert set(hooks) <= {"progress", "on_epoch_end", "callbacks", "on_progress"}, (step.name, hooks)
    export_check = [call for call, _ in walked.ran["export"] if call.function.endswith("check_project")][0]
    assert export_check.kwargs == {"n_events": 2000}
    assert "check_project(prj, ds.X_test, n_events=2000)" in walked.step("export").code(walked.step("export").result.settings)


@pytest.mark.slow
def test_running_the_cell_again_picks_up_the_project(walked):
    again = Walk(walked.state.folder)
    assert again.wait_restored(120)
    state = again.state
    assert state.dataset is not None and len(state.dataset.X_test) == 4000
    assert state.model is not None and state.project is not None and state.package is not None
    x = walked.state.dataset.X_test[:50]
    assert np.array_equal(state.model.predict(x, verbose=0), walked.state.model.predict(x, verbose=0))
    if walked.state.quantized is not None:  # QAT/HGQ or pruning ran
        assert np.array_equal(state.quantized.predict(x, verbose=0), walked.state.quantized.predict(x, verbose=0))
    if walked.state.plan is not None:
        assert state.plan.to_dict() == walked.state.plan.to_dict()
    for step in again.steps:
        if step.name == OPTIONAL_STEP:
            continue
        assert step.result is not None and "saved" in step.results.children[0].value, step.name
        assert figures_shown(step), step.name
    assert "Picked up from" in again.status.value
    assert list(again.stepper.icons) == DONE_BUT_EXPLORE


@pytest.mark.slow
def test_stop_ends_training_and_keeps_the_previous_state(walked, tmp_path):
    step = TrainStep(dataset=walked.state.dataset, project_dir=tmp_path / "lab")
    step.epochs.value = 500
    step.run_button.click()
    deadline = time.monotonic() + 120
    while step.progress.bar.value < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert step.runner.busy and not step.stop_button.disabled
    other = DataStep(step.state)  # a step sharing the state waits for the running one
    other.run_button.click()
    assert "2 · Train is still running" in other.message.value and not other.runner.busy
    step.stop_button.click()
    assert step.wait(60)
    assert step.outcome == "stopped" and step.errors.text == ""
    assert step.progress.bar.value < 500
    assert step.state.model is None and not (tmp_path / "lab" / "model.keras").exists()
    assert step.state.running == ""


@pytest.mark.slow
def test_export_step_alone_from_a_model(walked, tmp_path):
    step = ExportStep(model=walked.state.model, project_dir=tmp_path / "alone")
    step.csim.value = False
    step.precision.value = "ap_fixed<18,8>"
    click_and_wait(step, 120)
    assert step.outcome == "done", step.errors.text
    assert (tmp_path / "alone" / "hls_project" / "project.json").is_file()
    assert numbers(step)["precision"] == "ap_fixed<18,8> everywhere"
    agreement = numbers(step)["agreement with Keras"]
    assert float(agreement.split("%")[0]) > 50


def press_stop_when(step, text: str) -> None:
    """Press the step's Stop button from its work, right after it reports ``text`` as progress."""
    update = step.progress.update

    def update_then_stop(done, total, label=""):
        update(done, total, label)
        if label == text:
            step.stop_button.click()

    step.progress.update = update_then_stop


def assert_no_project_to_restore(folder) -> None:
    assert not [p.name for p in folder.iterdir() if "hls_project" in p.name]  # nor a temporary one
    again = Walk(folder)
    assert again.wait_restored(60)
    assert again.state.project is None and again.step("export").result is None
    again.step("deploy").run_button.click()
    assert "run step 4 (Export) first" in again.step("deploy").message.value


@pytest.mark.slow
def test_a_stopped_export_leaves_no_project_for_a_re_run_to_restore(walked, tmp_path):
    folder = tmp_path / "lab"
    step = ExportStep(model=walked.state.model, dataset=walked.state.dataset, project_dir=folder)
    step.csim.value = False
    click_and_wait(step, 120)  # an earlier, checked project
    assert step.outcome == "done" and (folder / "hls_project" / "project.json").is_file()
    step.csim.value = True
    press_stop_when(step, "running the emulator")  # the new project is written, not yet checked
    click_and_wait(step, 120)
    assert step.outcome == "stopped" and step.errors.text == ""
    assert step.state.project is None and step.results.children == ()
    assert not (folder / "export" / "result.json").exists()
    assert_no_project_to_restore(folder)


@pytest.mark.slow
def test_an_export_whose_check_fails_leaves_no_project(walked, tmp_path, monkeypatch):
    folder = tmp_path / "lab"
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    step = ExportStep(model=walked.state.model, dataset=walked.state.dataset, project_dir=folder)
    click_and_wait(step, 120)
    assert step.outcome == "error" and "g++" in step.errors.text
    assert step.state.project is None
    assert_no_project_to_restore(folder)


# ------------------------------------------------------------------------------ RTL generators
def test_export_offers_rtl_only_for_an_hgq2_model_and_vhdl_for_trees(tmp_path):
    pytest.importorskip("hgq")
    from fastml_lab.families import get_family
    from fastml_lab.hls.keras_model import has_quantizers
    from fastml_lab.quantize.qat_model import build_qat_model, resolve_bits
    from fastml_lab.train import build_model

    model = build_model("8", seed=0)
    step = ExportStep(model=model, project_dir=tmp_path / "lab")
    assert [value for _, value in step.generator.options] == ["hls", "rtl"]
    assert [label for label, _ in step.generator.options] == ["HLS (hls4ml)", "RTL (da4ml)"]
    step.generator.value = "rtl"  # a float model: RTL falls back to HLS and says why
    assert step.generator.value == "hls"
    assert "quantize" in step.generator_note.value.lower() and "HGQ" in step.generator_note.value
    assert "quantize first" in step.generator.tooltips[1]
    assert step.nn_box.layout.display == "flex" and "g++" in step.csim.description

    qmodel = build_qat_model(model, resolve_bits(None, ["fc1", "output"]))
    assert has_quantizers(qmodel)
    step.state.quantized = qmodel
    assert step.generator_note.value == "" and "quantize first" not in step.generator.tooltips[1]
    step.generator.value = "rtl"
    assert step.generator.value == "rtl"
    assert step.plan_box.layout.display == "none" and step.nn_box.layout.display == "none"
    assert "Verilator" in step.csim.description and "da4ml" in step.header.value
    settings = step.settings()
    assert settings["generator"] == "rtl" and settings["source"] == "qmodel" and "precision" not in settings
    code = step.code(settings)
    compile(code, "export rtl", "exec")
    assert "family = get_family('nn')" in code and "prj = family.export_rtl(qmodel," in code
    assert "backend='rtl'" in code and "board='pynq-z2'" in code and "fastml_lab.hls import" not in code
    step.state.quantized = None  # the HGQ2 model is gone: back to HLS
    assert step.generator.value == "hls" and step.generator_note.value != ""

    if "vhdl" in get_family("bdt").rtl_backends:
        pytest.importorskip("xgboost")
        step.state.model = make_bdt()
        assert [value for _, value in step.generator.options] == ["hls", "vhdl"]
        assert step.generator_note.value == ""
        step.generator.value = "vhdl"
        assert "GHDL" in step.csim.description and step.plan_box.layout.display == "flex"
        code = step.code(step.settings())
        assert "family = get_family('bdt')" in code and "family.export_rtl(model," in code
        assert "backend='vhdl'" in code


@pytest.mark.slow
def test_export_step_writes_da4ml_verilog_and_verilator_matches_the_emulator(tmp_path):
    """The RTL generator end to end: an HGQ2 model made by the package's quantize, exported through
    the family's export_rtl, simulated by Verilator against the emulator, estimated by da4ml."""
    pytest.importorskip("hgq")
    pytest.importorskip("da4ml")
    if shutil.which("verilator") is None:
        pytest.skip("Verilator is not installed")
    from fastml_lab.data import load_jets
    from fastml_lab.quantize import quantize
    from fastml_lab.train import build_model

    ds = load_jets("synthetic", n_events=2000, seed=0)
    model = build_model("4", seed=0)
    qmodel = quantize(model, ds, bits={"weights": 4, "activations": 6, "inputs": 8}, epochs=1,
                      progress=False).model
    step = ExportStep(model=model, quantized=qmodel, dataset=ds, project_dir=tmp_path / "lab")
    step.generator.value = "rtl"
    step.check_events.value = 300
    click_and_wait(step, 600)
    assert step.outcome == "done", f"{step.errors.text}\n{step.runner.error_details}"
    project = step.state.project
    assert project.path == tmp_path / "lab" / "hls_project"
    assert project.backend == "rtl" and project.simulator == "verilator"
    check = numbers(step)["bit-exact check"]
    assert check.startswith("0 mismatches between the RTL simulation with Verilator and the emulator"), check
    assert "1,500 output values (300 jets)" in check
    assert numbers(step)["project"].endswith("outputs logits (softmax left out))")
    assert numbers(step)["precision"] == "types from the HGQ2 quantizers"
    latency = numbers(step)["latency (RTL pipeline, exact)"]
    assert latency.startswith(f"{project.timing['latency_cycles']} cycles, II 1 cycles at 100.0 MHz")
    assert numbers(step)["resources (da4ml estimate)"].endswith(" 0 DSP, 0 BRAM18")
    assert numbers(step)["fits the PYNQ-Z2 (da4ml estimate)"] == "yes"
    fixed = float(numbers(step)["accuracy"].split()[2].rstrip(","))
    assert fixed == float(np.mean(project.firmware().predict(ds.X_test).argmax(axis=1) == ds.labels_test))
    assert_figures(step, "roc", "fit")
    code = step.code(step.result.settings)
    assert "prj = family.export_rtl(qmodel," in code and "check_project(prj, ds.X_test, n_events=300)" in code


def test_export_step_writes_conifer_vhdl_and_ghdl_matches_the_emulator(tmp_path):
    """The BDT's RTL generator through the step: conifer's VHDL, simulated by GHDL."""
    pytest.importorskip("xgboost")
    pytest.importorskip("conifer")
    from fastml_lab.families import get_family

    if "vhdl" not in get_family("bdt").rtl_backends or shutil.which("ghdl") is None:
        pytest.skip("no VHDL backend for BDTs, or GHDL is not installed")
    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.data import load_jets

    ds = load_jets("synthetic", n_events=2000, seed=0)
    step = ExportStep(model=train_bdt(ds, rounds=3, depth=2, early_stopping=None), dataset=ds,
                      project_dir=tmp_path / "lab")
    step.generator.value = "vhdl"
    step.check_events.value = 200
    click_and_wait(step, 300)
    assert step.outcome == "done", f"{step.errors.text}\n{step.runner.error_details}"
    assert step.state.project.backend == "vhdl" and step.state.project.simulator == "ghdl"
    check = numbers(step)["bit-exact check"]
    assert check.startswith("0 mismatches between the RTL simulation with GHDL and the emulator"), check
    assert "cycles, II 1 cycles" in numbers(step)["latency (RTL pipeline, exact)"]
    assert any(key.startswith("resources (") for key in numbers(step))
    assert "prj = family.export_rtl(model," in step.code(step.result.settings)


# ------------------------------------------------------------------------------ boosted decision trees
def make_bdt(n_events: int = 600):
    """A small BDT on learnable blobs (trained in a fraction of a second)."""
    from conftest import make_blobs
    from fastml_lab.bdt.train import train_bdt

    return train_bdt(make_blobs(n_events), rounds=3, depth=2, early_stopping=None)


def test_a_bdt_model_turns_step_three_into_precision_and_a_network_turns_it_back(tmp_path):
    pytest.importorskip("xgboost")
    from fastml_lab.train import build_model

    walk = Walk(tmp_path / "lab")
    assert walk.wait_restored(30)
    quantize, export, train = walk.step("quantize"), walk.step("export"), walk.step("train")
    walk.go(2)
    walk.state.model = make_bdt()
    assert walk.state.family == "bdt"
    assert [label for label, _ in walk.stepper.options][2] == "3 · Precision" == quantize.title
    assert walk.stepper.value == 2 and walk.stack.selected_index == 2  # relabelling keeps the step shown
    assert "3 · Precision" in quantize.header.value and "wraps" in quantize.header.value
    assert quantize.nn_box.layout.display == "none" and quantize.bdt_box.layout.display == "flex"
    assert [value for _, value in export.plan_source.options] == ["quantize", "uniform"]
    assert export.plan_source.value == "uniform" and export.nn_box.layout.display == "none"
    assert train.family.value == "bdt" and train.nn_box.layout.display == "none"
    walk.state.precision = "ap_fixed<12,4>"
    assert export.plan_source.value == "quantize"  # the Precision step's choice is preferred
    quantize.bdt_precision.value = "ap_fixed<6,9"
    with pytest.raises(Exception, match="ap_fixed<6,9"):
        quantize.settings()
    walk.state.model = build_model("8", seed=0)
    assert walk.state.family == "nn"
    assert [label for label, _ in walk.stepper.options][2] == "3 · Quantize" == quantize.title
    assert quantize.nn_box.layout.display == "flex" and export.nn_box.layout.display == "flex"
    assert [value for _, value in export.plan_source.options] == ["quantize", "uniform", "data"]
    assert train.family.value == "nn"


@pytest.fixture(scope="module")
def bdt_walked(tmp_path_factory):
    """A walk on quick settings that trains boosted decision trees: every step's Run clicked in
    order (step 3 is Precision), the toolkit calls each made recorded."""
    pytest.importorskip("xgboost")
    pytest.importorskip("conifer")

    def stale_network(walk):
        walk.state.folder.mkdir(parents=True)
        for stale in ("model.keras", "quantized.keras"):  # what a network trained here before left
            (walk.state.folder / stale).write_bytes(b"an earlier network")

    return walk_every_step(tmp_path_factory.mktemp("bdt_walk") / "lab", "bdt", before=stale_network)


@pytest.mark.slow
def test_bdt_train_grows_trees_at_the_quick_sizes_and_replaces_the_network(bdt_walked):
    from fastml_lab.bdt.train import BDTModel
    from fastml_lab.tutorial.sizes import settings

    quick = settings(True, "walk")
    step, state = bdt_walked.step("train"), bdt_walked.state
    model = state.model
    assert isinstance(model, BDTModel) and state.family == "bdt"
    assert (model.spec.rounds, model.spec.depth, model.spec.learning_rate, model.spec.early_stopping) == (
        quick.bdt_rounds, quick.bdt_depth, quick.bdt_learning_rate, quick.bdt_early_stopping)
    assert 0.5 < state.evaluation.accuracy <= 1.0  # synthetic jets: about 0.73
    assert numbers(step)["test accuracy"] == f"{state.evaluation.accuracy:.4f}"
    assert numbers(step)["model"].startswith("boosted decision trees (xgboost)")
    assert_figures(step, "training", "roc", "confusion")
    folder = state.folder
    assert (folder / "bdt_model.json").is_file() and (folder / "bdt_model.bdt.json").is_file()
    assert not (folder / "model.keras").exists() and not (folder / "quantized.keras").exists()
    assert [label for label, _ in bdt_walked.stepper.options][2] == "3 · Precision"


@pytest.mark.slow
def test_bdt_precision_step_profiles_studies_and_hands_the_suggestion_to_export(bdt_walked):
    from fastml_lab.bdt.profile import profile_bdt

    step, state = bdt_walked.step("quantize"), bdt_walked.state
    assert step.title == "3 · Precision"
    prof = profile_bdt(state.model, state.dataset.X_test, precision=step.bdt_precision.value)
    assert numbers(step)["suggested precision"] == prof.suggested_text() == state.precision
    assert numbers(step)["profile"].startswith(f"{prof.total_overflows:,} overflows")
    row = numbers(step)["accuracy vs bits"]
    assert row.startswith("6b ") and "16b " in row and "(float " in row
    assert_figures(step, "profile", "study")
    saved = json.loads((state.folder / "quantize" / "precision.json").read_text())
    assert saved == {"precision": state.precision}
    assert bdt_walked.stepper.icons[2] == "check"


@pytest.mark.slow
def test_bdt_precision_step_flags_a_score_type_that_wraps(bdt_walked, tmp_path):
    from fastml_lab.widgets import QuantizeStep

    state = bdt_walked.state
    step = QuantizeStep(dataset=state.dataset, model=state.model, project_dir=tmp_path / "lab")
    narrow = "input=ap_fixed<16,6> score=ap_fixed<6,2>"  # scores from -2 to 1.9375, then they wrap
    step.bdt_precision.value = narrow
    step.use_suggested.value = False
    step.widths.value = "8"
    click_and_wait(step, 120)
    assert step.outcome == "done", step.errors.text
    flipped = [note for note in step.result.notes if "sign flips" in note]
    assert flipped and "ap_fixed<6,2>" in flipped[0]
    overflows = int(numbers(step)["profile"].split("(")[1].split()[0].replace(",", ""))
    assert overflows > 0 and flipped[0].startswith(f"{overflows:,} scores")
    assert numbers(step)["precision for Export"] == narrow == step.state.precision


@pytest.mark.slow
def test_bdt_export_checks_the_c_simulation_with_0_mismatches_and_estimates_it(bdt_walked):
    step, state = bdt_walked.step("export"), bdt_walked.state
    project = state.project
    assert project.family == "bdt" and project.path == state.folder / "hls_project"
    assert " ".join(f"{part}={t}" for part, t in project.meta["precision"].items()
                    if part != "weight") == state.precision
    check = numbers(step)["bit-exact check"]
    assert check.startswith("0 mismatches") and "10,000 output values (2,000 jets)" in check
    assert "float trees" in numbers(step)["accuracy"]
    latency = numbers(step)["latency (estimate before synthesis)"]
    assert "cycles" in latency and latency.endswith(" ns")
    assert numbers(step)["resource estimate"].endswith(" 0 DSP")
    assert_figures(step, "roc", "fit")
    assert step.nn_box.layout.display == "none"


@pytest.mark.slow
def test_bdt_deploy_runs_the_software_overlay_as_the_emulator_does(bdt_walked):
    step, state = bdt_walked.step("deploy"), bdt_walked.state
    assert "software overlay" in numbers(step)["ran on"]
    assert (state.package / "manifest.json").is_file()
    overlay_acc = float(numbers(step)["accuracy"].split()[1].rstrip(","))
    fixed = float(numbers(bdt_walked.step("export"))["accuracy"].split()[2].rstrip(","))
    assert overlay_acc == fixed  # the overlay is the exported firmware
    assert "float trees" in numbers(step)["accuracy"]
    assert_figures(step, "throughput")
    assert list(bdt_walked.stepper.icons) == DONE_BUT_EXPLORE


def run_shown_code(walked, tmp_path, name: str, skip=(), called=None) -> dict:
    """Each step's Show code (which must hold every call the panel ran, and the toolkit functions
    ``called`` names for it), run in order as one script in ``tmp_path / "script"``; its scope."""
    scripts = []
    for step in walked.steps:
        if step.name in skip:
            continue
        ran = walked.ran[step.name]
        code = step.code(step.result.settings)
        if called is not None:
            assert called.get(step.name, set()) <= {call.function for call, _ in ran}, step.name
        names = set(GIVEN) | {call.assign for call, _ in ran if call.assign}
        for call, _ in ran:
            assert call.expression(names) in code, f"{step.name}: {call.expression(names)!r} not in:\n{code}"
        scripts.append(code)
    folder = str(walked.state.folder)
    script = "\n".join(scripts).replace(folder, str(tmp_path / "script"))
    scope = {}
    exec(compile(script, name, "exec"), scope)  # noqa: S102 (the walk's own code, its steps in order)
    return scope


#: The toolkit functions each step of a BDT walk must call through its Calls.
CALLED_BDT = {
    "train": {"fastml_lab.bdt.train.train_bdt", "fastml_lab.evaluate.evaluate", "model.save"},
    "quantize": {"fastml_lab.bdt.profile.profile_bdt", "fastml_lab.bdt.study.precision_study"},
    "export": {"fastml_lab.bdt.export_bdt", "fastml_lab.hls.check.check_project",
               "fastml_lab.bdt.estimate.estimate_bdt"},
    "deploy": {"fastml_lab.overlay.package", "fastml_lab.overlay.load", "ol.predict", "ol.profile"},
}


@pytest.mark.slow
def test_bdt_show_code_is_the_calls_the_panel_ran_and_runs_as_a_script(bdt_walked, tmp_path):
    assert "precision=precision" in bdt_walked.step("export").code(bdt_walked.step("export").result.settings)
    scope = run_shown_code(bdt_walked, tmp_path, "bdt walk", called=CALLED_BDT)
    assert scope["check"].mismatches == 0 and scope["check"].events == 2000
    assert scope["precision"] == bdt_walked.state.precision
    emulated = bdt_walked.state.project.firmware().predict(bdt_walked.state.dataset.X_test)
    assert np.array_equal(scope["emulated"], emulated) and np.array_equal(scope["outputs"], emulated)
    assert (tmp_path / "script" / "bitstreams" / "lab_model" / "manifest.json").is_file()


@pytest.mark.slow
def test_running_the_cell_again_picks_up_the_bdt_walk(bdt_walked):
    again = Walk(bdt_walked.state.folder)
    assert again.wait_restored(120)
    state, before = again.state, bdt_walked.state
    assert state.family == "bdt" and type(state.model).__name__ == "BDTModel"
    x = before.dataset.X_test[:200]
    assert np.array_equal(state.model.decision_function(x), before.model.decision_function(x))
    assert state.precision == before.precision
    assert state.project.family == "bdt" and state.package == before.package
    assert [label for label, _ in again.stepper.options][2] == "3 · Precision"
    assert again.step("train").family.value == "bdt" and again.step("export").plan_source.value == "quantize"
    assert "boosted decision trees" in again.status.value and "BDT precision" in again.status.value
    assert list(again.stepper.icons) == DONE_BUT_EXPLORE
    for step in again.steps:
        assert step.result is not None and figures_shown(step), step.name


# ------------------------------------------------------------------------------ jet images and a CNN
#: Jet images the CNN walk loads (few, so each step answers in seconds).
CNN_IMAGES = 3000


def cnn_quick(walk):
    """Jet images at step 1, the small CNN at Train, QAT without pruning: small and quick."""
    data, train, quantize = walk.step("data"), walk.step("train"), walk.step("quantize")
    data.source.value = "images"
    data.n_events.value = CNN_IMAGES
    train.network.value = "cnn"
    train.filters.value = "8-8"
    train.epochs.value, train.batch_size.value = 2, 256
    quantize.method.value, quantize.prune.value, quantize.epochs.value = "qat", 0.0, 1
    walk.step("export").check_events.value = 300
    walk.step("deploy").profile_events.value = 500


@pytest.fixture(scope="module")
def cnn_walked(tmp_path_factory):
    """A walk on jet images that trains the small CNN, quantizes it (QAT) and deploys it: every
    step's Run clicked in order, the toolkit calls each made recorded."""
    pytest.importorskip("hgq")
    return walk_every_step(tmp_path_factory.mktemp("cnn_walk") / "lab", before=cnn_quick, skip=(OPTIONAL_STEP,))


@pytest.mark.slow
def test_cnn_data_step_loads_jet_images_and_shows_the_average_image_per_class(cnn_walked):
    step, ds = cnn_walked.step("data"), cnn_walked.state.dataset
    assert type(ds).__name__ == "JetImageDataset" and ds.X_train.shape[1:] == (16, 16, 1)
    assert numbers(step)["images"] == "2,400 for training, 600 for testing"
    assert numbers(step)["image"].startswith("16x16x1 pixels") and "features" not in numbers(step)
    assert_figures(step, "classes", "images")
    assert "features" not in figures_shown(step)
    saved = json.loads((cnn_walked.state.folder / "data" / "result.json").read_text())["settings"]
    assert saved == {"source": "synthetic", "n_events": CNN_IMAGES, "seed": 0, "kind": "images"}
    assert "load_jet_images('synthetic', n_events=3000, seed=0)" in step.code(saved)


@pytest.mark.slow
def test_cnn_train_step_trains_the_small_cnn_on_the_images(cnn_walked):
    step, model = cnn_walked.step("train"), cnn_walked.state.model
    assert [type(layer).__name__ for layer in model.layers][:3] == ["Conv2D", "Activation", "MaxPooling2D"]
    assert numbers(step)["model"].startswith("16x16x1 conv 8-8 (3x3) -> 5, ")
    assert numbers(step)["training"].startswith("2 epochs")
    assert 0.2 < cnn_walked.state.evaluation.accuracy <= 1.0
    assert step.network.layout.display == "flex" and step.architecture.layout.display == "none"
    assert_figures(step, "training", "roc", "confusion")
    code = step.code(step.result.settings)
    assert "spec = parse_cnn_spec('8-8', input_shape=ds.image_shape, n_classes=len(ds.class_names))" in code
    assert "model = build_cnn(spec, seed=0)" in code and "flattened" not in code


@pytest.mark.slow
def test_cnn_quantize_step_trains_qat_and_profiles_the_images(cnn_walked):
    step, state = cnn_walked.step("quantize"), cnn_walked.state
    assert state.quantized is not None and "QAT accuracy" in numbers(step)
    assert numbers(step)["profile"].endswith(f"on {len(state.dataset.X_test):,} jets")
    assert_figures(step, "profile", "fit", "qat_training")
    assert any("bit_width_study" in note for note in step.result.notes)
    assert "bit_width_study" not in step.code(step.result.settings)
    assert step.study_bits.layout.display == "none"


@pytest.mark.slow
def test_cnn_export_step_offers_the_io_style_and_checks_0_mismatches(cnn_walked):
    step, project = cnn_walked.step("export"), cnn_walked.state.project
    assert step.io_type.layout.display == "flex" and step.result.settings["io_type"] == "parallel"
    assert project.meta["io_type"] == "io_parallel" and project.meta["input_shape"] == [16, 16, 1]
    check = numbers(step)["bit-exact check"]
    assert check.startswith("0 mismatches") and "(300 jets)" in check
    assert numbers(step)["project"].endswith("Latency, reuse 1, io_parallel)")
    assert numbers(step)["I/O style"].startswith("io_parallel")
    assert "cycles" in numbers(step)["latency (estimate before synthesis)"]
    assert_figures(step, "roc", "fit")
    assert "io_type='parallel'" in step.code(step.result.settings)


@pytest.mark.slow
def test_cnn_deploy_runs_the_images_on_the_software_overlay(cnn_walked):
    step = cnn_walked.step("deploy")
    assert "software overlay" in numbers(step)["ran on"]
    assert (cnn_walked.state.package / "manifest.json").is_file()
    overlay_acc = float(numbers(step)["accuracy"].split()[1].rstrip(","))
    fixed = float(numbers(cnn_walked.step("export"))["accuracy"].split()[2].rstrip(","))
    assert overlay_acc == fixed and "Keras float model" in numbers(step)["accuracy"]
    assert "same class as Keras" in numbers(step)
    assert_figures(step, "throughput")
    assert list(cnn_walked.stepper.icons) == DONE_BUT_EXPLORE


@pytest.mark.slow
def test_cnn_show_code_is_the_calls_the_panel_ran_and_runs_as_a_script(cnn_walked, tmp_path):
    scope = run_shown_code(cnn_walked, tmp_path, "cnn walk", skip=(OPTIONAL_STEP,))
    assert scope["check"].mismatches == 0 and scope["check"].events == 300
    assert scope["prj"].meta["io_type"] == "io_parallel"
    assert scope["outputs"].shape == (len(cnn_walked.state.dataset.X_test), 5)
    assert (tmp_path / "script" / "bitstreams" / "lab_model" / "manifest.json").is_file()


@pytest.mark.slow
def test_running_the_cell_again_picks_up_the_cnn_walk(cnn_walked):
    again = Walk(cnn_walked.state.folder)
    assert again.wait_restored(120)
    state, before = again.state, cnn_walked.state
    assert type(state.dataset).__name__ == "JetImageDataset"
    assert np.array_equal(state.dataset.X_test, before.dataset.X_test)
    x = before.dataset.X_test[:50]
    assert np.array_equal(state.model.predict(x, verbose=0), before.model.predict(x, verbose=0))
    assert np.array_equal(state.quantized.predict(x, verbose=0), before.quantized.predict(x, verbose=0))
    assert state.project.meta["io_type"] == "io_parallel" and state.package == before.package
    assert again.step("train").network.layout.display == "flex"
    assert again.step("export").io_type.layout.display == "flex"
    assert list(again.stepper.icons) == DONE_BUT_EXPLORE
    for step in again.steps:
        if step.name != OPTIONAL_STEP:
            assert step.result is not None and figures_shown(step), step.name


@pytest.mark.slow
def test_cnn_export_with_io_stream_checks_and_estimates_the_streamed_design(cnn_walked, tmp_path):
    """The float CNN through io_stream (one type everywhere); an HGQ2 model is refused for io_stream."""
    state = cnn_walked.state
    step = ExportStep(model=state.model, quantized=state.quantized, dataset=state.dataset,
                      project_dir=tmp_path / "lab")
    step.io_type.value = "stream"
    assert step.plan_source.value == "quantize"
    with pytest.raises(Exception, match="io_stream takes the float CNN"):
        step.settings()
    step.plan_source.value = "uniform"
    step.check_events.value = 200
    click_and_wait(step, 120)
    assert step.outcome == "done", f"{step.errors.text}\n{step.runner.error_details}"
    assert step.state.project.meta["io_type"] == "io_stream"
    assert numbers(step)["bit-exact check"].startswith("0 mismatches")
    assert "line buffers" in numbers(step)["I/O style"]
    assert any(key.startswith("fits the PYNQ-Z2") for key in numbers(step))
    assert_figures(step, "fit")
    assert "io_type='stream'" in step.code(step.result.settings)


def test_train_offers_the_mlp_on_the_pixels_and_refuses_trees_on_images(tmp_path):
    from fastml_lab.data.images import load_jet_images
    from fastml_lab.widgets.step import Step

    ds = load_jet_images("synthetic", n_events=500, seed=0)
    step = TrainStep(dataset=ds, project_dir=tmp_path / "lab")
    assert step.network.layout.display == "flex" and step.filters.layout.display == "flex"
    step.family.value = "bdt"
    with pytest.raises(Exception, match="not jet images"):
        step.settings()
    step.family.value = "nn"
    step.network.value = "mlp"
    step.architecture.value = "8"
    step.epochs.value = 1
    assert step.architecture.layout.display == "flex" and step.filters.layout.display == "none"
    code = step.code(step.settings())
    assert code.index("ds = ds.flattened()") < code.index("spec = parse_spec('8', n_inputs=ds.X_train.shape[1]")
    click_and_wait(step, 120)
    assert step.outcome == "done", f"{step.errors.text}\n{step.runner.error_details}"
    assert tuple(step.state.model.inputs[0].shape[1:]) == (256,)
    later = Step(step.state)  # a later step reads the images as the model does: rows of pixels
    assert later.names()["ds"].X_test.shape == (100, 256)
    assert TrainStep(step.state).network.value == "mlp"  # a panel on that model shows the MLP on the pixels


def test_profile_takes_images_for_a_cnn_and_says_how_to_reshape_otherwise():
    from fastml_lab.data.images import load_jet_images
    from fastml_lab.exceptions import DataError
    from fastml_lab.quantize import profile
    from fastml_lab.train import build_cnn, build_model, parse_spec

    ds = load_jet_images("synthetic", n_events=300, seed=0)
    cnn = build_cnn("4-4", seed=0)
    prof = profile(cnn, ds.X_test, sample=40)
    assert prof.events == 40
    labels = [d.label for d in prof.distributions]
    assert labels[:4] == ["input", "conv1 weight", "conv1 bias", "conv1"] and "pool2" in labels
    conv1 = next(d for d in prof.distributions if d.label == "conv1")
    assert conv1.values == 40 * 16 * 16 * 4  # every value of the feature maps
    assert profile(cnn, ds, sample=10).events == 10  # a dataset: its training images
    with pytest.raises(DataError, match=r"shape \(n, 16, 16, 1\).*X.reshape\(-1, 16, 16, 1\)"):
        profile(cnn, ds.X_test.reshape(len(ds.X_test), -1))
    mlp = build_model("8", seed=0)  # 16 features
    with pytest.raises(DataError, match=r"shape \(n, 16\) for this model; got \(60, 16, 16, 1\)"):
        profile(mlp, ds.X_test)
    on_pixels = build_model(parse_spec("8", n_inputs=256))
    with pytest.raises(DataError, match="Flatten the images first"):
        profile(on_pixels, ds.X_test)
