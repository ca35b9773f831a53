"""Running the walk's cell again on a filled project folder: ``lab()`` reads the folder in the
background, and a step started meanwhile (from code or by its Run button) waits for that reading
instead of refusing, so ``step.run(); step.wait()`` right after ``lab()`` works whatever the timing
(a notebook's Restart & Run All). The reading is held back by a gate here, so every test sees
the step start while the folder is still being read."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("keras")

import fastml_lab  # noqa: E402
from fastml_lab.widgets import Walk, step as step_module  # noqa: E402
from fastml_lab.widgets.state import LabState  # noqa: E402

pytestmark = pytest.mark.needs_tf

WAIT_S = 300
#: Jets the filled folder's Data step loaded (few, so reading them again is quick).
N_EVENTS = 2000
#: A step started while the folder is read returns at once; this is far more than "at once".
RETURNS_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A project folder where the Data step ran once (its result and settings saved)."""
    walk = Walk(tmp_path_factory.mktemp("filled") / "lab", quick=True)
    assert walk.wait_restored(30)
    data = walk.step("data")
    data.n_events.value = N_EVENTS
    data.run()
    assert data.wait(WAIT_S) and data.outcome == "done", data.errors.text
    return walk.state.folder


@pytest.fixture
def folder(filled, tmp_path):
    """A copy of the filled folder, so each test reads (and may write) its own."""
    return shutil.copytree(filled, tmp_path / "lab")


@pytest.fixture
def gate(monkeypatch):
    """Holds the restore of the data until ``gate.set()`` (set at the end of the test at the latest)."""
    gate = threading.Event()
    load = LabState._load_dataset

    def held_load(self, result_file):
        assert gate.wait(WAIT_S), "the test never opened the gate"
        return load(self, result_file)

    monkeypatch.setattr(LabState, "_load_dataset", held_load)
    yield gate
    gate.set()


def until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` (a widget the worker thread updates) until it holds or ``timeout`` passes."""
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            return False
        time.sleep(0.02)
    return True


def start_timed(start) -> float:
    began = time.perf_counter()
    start()
    return time.perf_counter() - began


def test_a_step_run_from_code_right_after_lab_waits_for_the_folder(folder, gate):
    walk = fastml_lab.lab(project_dir=folder, quick=True)
    assert walk.state.restoring, "the gate holds the reading of the folder"
    data = walk.step("data")
    data.n_events.value = N_EVENTS
    started = []
    assert start_timed(lambda: started.append(data.run())) < RETURNS_WITHIN_S
    assert started == [True], f"the step refused to start: {data.message.value}"
    assert walk.state.restoring and data.runner.busy, "the step waits, it does not run yet"
    gate.set()
    assert data.wait(WAIT_S)
    assert data.outcome == "done", f"{data.message.value} {data.errors.text}\n{data.runner.error_details}"
    assert walk.wait_restored(WAIT_S)  # the status line is written once the reading ended
    assert "Picked up from" in walk.status.value and "data" in walk.status.value, \
        "the folder was read before the step ran"
    assert len(walk.state.dataset.X_train) + len(walk.state.dataset.X_test) == N_EVENTS


def test_the_run_button_does_not_freeze_and_the_needs_are_checked_after_the_reading(folder, gate):
    walk = Walk(folder, quick=True)
    train = walk.step("train")
    train.epochs.value = 1
    assert start_timed(train.run_button.click) < RETURNS_WITHIN_S
    assert train.runner.busy
    assert until(lambda: "project folder" in train.progress.label.value), train.progress.label.value
    assert walk.state.dataset is None, "the jets train needs are not read yet"
    gate.set()
    assert train.wait(WAIT_S)
    assert train.outcome == "done", f"{train.message.value} {train.errors.text}\n{train.runner.error_details}"
    assert walk.state.model is not None


def test_a_step_started_while_reading_still_says_what_it_needs(folder, gate):
    walk = Walk(folder, quick=True)
    export = walk.step("export")
    assert export.run() is True
    gate.set()
    assert export.wait(WAIT_S)
    assert export.outcome == "error"
    assert "needs a trained model: run step 2 (Train) first" in export.errors.text
    assert not (folder / "hls_project").exists()


def test_a_reading_that_never_ends_fails_the_step_with_a_clear_error(folder, gate, monkeypatch):
    monkeypatch.setattr(step_module, "RESTORE_TIMEOUT_S", 0.5)
    walk = Walk(folder, quick=True)
    data = walk.step("data")
    assert data.run() is True
    assert data.wait(30)
    assert data.outcome == "error"
    text = data.errors.text
    assert "still reading its project folder" in text and str(folder) in text and "0.5 s" in text
    assert "restore=False" in text, "the message says how to go on"
    gate.set()
    assert walk.wait_restored(WAIT_S)


def test_stop_while_waiting_for_the_folder_stops_the_step(folder, gate):
    walk = Walk(folder, quick=True)
    data = walk.step("data")
    assert data.run() is True
    data.stop()
    assert data.wait(30)
    assert data.outcome == "stopped"
    assert walk.state.restoring, "the reading goes on"
    gate.set()
    assert walk.wait_restored(WAIT_S) and walk.state.dataset is not None


def test_a_folder_of_jet_images_is_read_back_as_images_and_a_cnn_trains_on_them(tmp_path, gate):
    """The Data step's jet images (kind "images") are loaded again from its saved settings."""
    first = Walk(tmp_path / "lab", quick=True)
    data = first.step("data")
    data.source.value = "images"
    data.n_events.value = 600
    assert first.wait_restored(30) and data.run() and data.wait(WAIT_S)  # a fresh folder: nothing to read
    assert data.outcome == "done", data.errors.text
    walk = fastml_lab.lab(project_dir=tmp_path / "lab", quick=True)
    train = walk.step("train")
    train.filters.value, train.epochs.value = "4", 1
    assert train.run() is True
    assert walk.state.restoring and walk.state.dataset is None, "the gate holds the reading of the images"
    gate.set()
    assert train.wait(WAIT_S)
    assert train.outcome == "done", f"{train.errors.text}\n{train.runner.error_details}"
    restored = walk.state.dataset
    assert type(restored).__name__ == "JetImageDataset"
    assert restored.X_test.shape == (120, 16, 16, 1)
    assert (restored.X_test == first.state.dataset.X_test).all()
    assert walk.state.model.inputs[0].shape[1:] == (16, 16, 1)  # the CNN, as the images ask
    assert train.network.layout.display == "flex"
