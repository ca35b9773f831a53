"""The walk: a stepper over the five step panels, sharing one state and one project folder.

Train grows a neural network or boosted decision trees; for the trees, step 3 is "Precision"
(profile and precision study of the ensemble) instead of "Quantize", and the stepper says so.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from . import DEFAULT_PROJECT_DIR
from .data_step import DataStep
from .deploy_step import DeployStep
from .export_step import ExportStep
from .panel import notice_html
from .quantize_step import QuantizeStep
from .runner import Runner, describe_error
from .explore_step import ExploreStep
from .state import LabState
from .train_step import TrainStep

STEP_CLASSES = (DataStep, TrainStep, QuantizeStep, ExploreStep, ExportStep, DeployStep)
#: What each step leaves on the state; any of them present marks the step done.
PRODUCES = {"data": ("dataset",), "train": ("model",), "quantize": ("quantized", "plan", "precision"),
            "explore": (), "export": ("project",), "deploy": ("package",)}


class Walk:
    """Data -> Train -> Quantize (or Precision) -> Explore -> Export -> Deploy, one panel at a time.

    Explore is optional: a design-space sweep whose chosen point Export takes like a quantized model.

    ``walk.steps`` holds the step objects (``walk.step("train")`` finds one by name) and
    ``walk.state`` what they share. Display it as the last expression of a cell.
    """

    def __init__(self, project_dir=DEFAULT_PROJECT_DIR, quick: bool = True, restore: bool = True):
        self.state = LabState(project_dir, quick=quick)
        self.steps = [cls(self.state) for cls in STEP_CLASSES]
        for step in self.steps:
            step.quick_box.layout.display = "none"  # one quick toggle, at the top of the walk
        self.stepper = widgets.ToggleButtons(
            options=[(step.title, index) for index, step in enumerate(self.steps)], value=0,
            style={"button_width": "150px"}).add_class("fastml-lab-stepper")
        self.stack = widgets.Stack([step.widget for step in self.steps], selected_index=0)
        widgets.link((self.stepper, "value"), (self.stack, "selected_index"))
        self.back = widgets.Button(description="Back", icon="arrow-left").add_class("fastml-lab-back")
        self.next = widgets.Button(description="Next", icon="arrow-right").add_class("fastml-lab-next")
        self.back.on_click(lambda _: self.go(self.stepper.value - 1))
        self.next.on_click(lambda _: self.go(self.stepper.value + 1))
        self.quick_box = widgets.Checkbox(description="quick settings (small data, few epochs)", indent=False)
        widgets.link((self.state, "quick"), (self.quick_box, "value"))
        self.status = widgets.HTML("")
        header = widgets.HTML(
            "<h2 style='margin:4px 0'>fastml-lab: from jets to an FPGA overlay</h2>"
            f"<div style='color:#555'>Work is kept in <code>{html.escape(str(self.state.folder.resolve()))}"
            "</code>; running this cell again picks it up.</div>")
        self.widget = widgets.VBox([
            header, widgets.HBox([self.quick_box]), self.stepper, self.status, self.stack,
            widgets.HBox([self.back, self.next]),
        ]).add_class("fastml-lab-walk")
        self.state.observe(lambda _: self._mark_done(), names=[n for names in PRODUCES.values() for n in names])
        self.state.observe(lambda _: self._relabel(), names="family")
        self._relabel()
        self._restorer = Runner(lambda *a: None, self._restored)
        self._mark_done()
        if restore and self.state.folder.is_dir():
            self.status.value = notice_html(f"Reading {self.state.folder} ...", "note")
            self.state.restoring = True  # steps refuse to run until the folder is read
            self._restorer.start(lambda task: self.state.restore(), name="fastml-lab-restore")

    def step(self, name: str):
        """The step called ``name`` ('data', 'train', 'quantize', 'explore', 'export', 'deploy')."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; steps: {', '.join(s.name for s in self.steps)}")

    def go(self, index: int) -> None:
        """Show step ``index`` (0 to the number of steps - 1)."""
        self.stepper.value = max(0, min(len(self.steps) - 1, index))

    def wait_restored(self, timeout: float | None = None) -> bool:
        """Block until the project folder is read and the status line says what was found; False
        after ``timeout`` seconds. Steps need not call it: ``step.run()`` waits by itself."""
        return self._restorer.wait(timeout)

    def _restored(self, outcome, value, task) -> None:
        if outcome == "error":
            self.state.restoring = False
            self.status.value = notice_html(f"Could not read the project folder: {describe_error(value)}")
            return
        notes = [note for note in value if note.startswith("could not")]
        found = [note[len("restored the "):] for note in value if note.startswith("restored")]
        text = f"Picked up from {self.state.folder}: {', '.join(found)}." if found else ""
        self.status.value = (notice_html(text, "note") if text else "") + "".join(
            notice_html(note) for note in notes)

    def _relabel(self) -> None:
        """The stepper's labels from the steps' titles (step 3's follows the model family)."""
        labels = [(step.title, index) for index, step in enumerate(self.steps)]
        if list(self.stepper.options) != labels:
            shown = self.stepper.value
            with self.stepper.hold_sync():
                self.stepper.options = labels  # new options select the first: keep the step shown
                self.stepper.value = shown
            self._mark_done()

    def _mark_done(self) -> None:
        self.stepper.icons = ["check" if any(getattr(self.state, n) is not None for n in PRODUCES[step.name])
                              else "" for step in self.steps]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def lab(project_dir=DEFAULT_PROJECT_DIR, quick: bool = True, restore: bool = True) -> Walk:
    """The guided walk from data to a running overlay, as notebook widgets.

    Put it last in a cell (``fastml_lab.lab()``) to show it. ``project_dir`` keeps models,
    projects, packages and results, so running the cell again continues where it stopped;
    ``quick`` starts with small data and few epochs; ``restore=False`` ignores earlier work.

    It returns at once and reads a filled ``project_dir`` in a background thread: reading
    brings TensorFlow in, the models and the jets again, which may take tens of seconds, and a
    student should see the walk (and "Reading ...") at once rather than a silent cell. A step
    started meanwhile, by its Run button or by ``walk.step(name).run()`` in the next cell,
    waits for the reading in its own thread before it works (see :meth:`Step.run`), so
    ``step.run(); step.wait()`` gives the same result whether or not the reading has ended.
    """
    return Walk(project_dir=project_dir, quick=quick, restore=restore)
