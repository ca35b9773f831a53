"""The frame every step shares: explanation, controls, Run/Stop, progress, errors, results, code.

A step subclass declares ``name``, ``title``, ``explanation`` and ``needs`` and implements
``build_controls()``, ``settings()``, ``apply_quick(quick)``, ``calls(settings)`` (the toolkit calls
the step makes, see :mod:`fastml_lab.widgets.code`) and ``work(task, settings) -> StepResult`` (in
a background thread; it runs those calls and stores what they produce on the state). "Show code"
renders the same calls as Python. Results are shown from the saved result, so a re-run
of the cell shows the same panel. A step whose work depends on the model family (a neural network
or boosted decision trees) implements ``family_changed(family)``, called with ``state.family``
when the step is built and whenever it changes, and may :meth:`retitle` itself; it keys what
differs by the family's name (:mod:`fastml_lab.families`; :func:`show_family` shows the controls
of one, :func:`settings_family` says which family a run's settings are for).
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets

from ..exceptions import NotReadyError
from ..families import NETWORK
from . import DEFAULT_PROJECT_DIR
from .figures import save_png
from .panel import ErrorPanel, ProgressBar, code_html, figure_widget, notice_html, numbers_html
from .runner import Runner, describe_error
from .state import LabState, StepResult, dataset_for

#: How long a step started while the walk reads its project folder waits for that (seconds).
RESTORE_TIMEOUT_S = 300.0

#: What a missing input is called and which step makes it.
NEEDS = {
    "dataset": ("jets or jet images", "1 (Data)", "dataset"),
    "model": ("a trained model", "2 (Train)", "model"),
    "project": ("an exported HLS project", "4 (Export)", "project"),
}


def _leaves(children):
    """The widgets inside ``children``, boxes opened."""
    for child in children:
        if isinstance(child, widgets.Box):
            yield from _leaves(child.children)
        else:
            yield child


def settings_family(settings: dict) -> str:
    """The family a step's ``settings`` are for: their ``"family"``, which a network's leave out."""
    return settings.get("family", NETWORK)


def show_family(boxes: dict, family: str) -> None:
    """Show the box of ``family`` in ``{family name: box}`` and hide the others'."""
    for name, box in boxes.items():
        box.layout.display = "flex" if name == family else "none"


class Step:
    """Base class of the step panels. ``Step(state)`` in a walk, ``Step(model=..., ...)`` alone."""

    name = "step"
    title = "Step"
    explanation = ""
    needs: tuple = ()

    def __init__(self, state: LabState | None = None, *, project_dir=None, quick: bool | None = None,
                 **inputs):
        if state is None:
            state = LabState(project_dir or DEFAULT_PROJECT_DIR, quick=True if quick is None else quick)
        elif project_dir is not None:
            state.project_dir = str(project_dir)
        if quick is not None:
            state.quick = bool(quick)
        state.give(**inputs)
        self.state = state
        self.result: StepResult | None = None
        self.outcome = ""  # "done", "stopped" or "error" after a run
        self.runner = Runner(self._on_progress, self._on_finish)
        self._build()
        self.apply_quick(state.quick)
        state.observe(lambda change: self.apply_quick(change["new"]), names="quick")
        state.observe(lambda change: self._show_needs(), names=[*self.needs, "restoring", "running"])
        self.family_changed(state.family)
        state.observe(lambda change: self.family_changed(change["new"]), names="family")
        self._show_needs()
        saved = state.load_result(self.name)
        if saved is not None:
            self.show(saved, restored=True)

    # ------------------------------------------------------------------ subclass interface
    def build_controls(self) -> list:
        return []

    def settings(self) -> dict:
        return {}

    def apply_quick(self, quick: bool) -> None:
        """Set the size controls to the quick or the full defaults."""

    def family_changed(self, family: str) -> None:
        """Show the controls (and title) for a model of ``family`` (a name in ``state.FAMILIES``)."""

    def work(self, task, settings: dict) -> StepResult:
        raise NotImplementedError

    def calls(self, settings: dict) -> list:
        """The toolkit calls ``work`` makes for ``settings`` (:class:`~fastml_lab.widgets.code.Call`)."""
        return []

    def code(self, settings: dict) -> str:
        """The same step in Python: :meth:`calls` rendered, so it cannot drift from what ``work`` runs."""
        from .code import render

        return render(self.calls(settings))

    def names(self) -> dict:
        """The script's variables the earlier steps made, for the calls' references (``ds`` as
        the trained model reads it: jet images flattened for a network on the pixels)."""
        state = self.state
        return {"ds": dataset_for(state.dataset, state.model), "model": state.model, "qmodel": state.quantized, "plan": state.plan,
                "precision": state.precision, "prj": state.project}

    def missing(self) -> str:
        """Why the step cannot run yet ('' when it can)."""
        if self.state.restoring:
            return "The walk is still reading the project folder; a step run now starts once it is read."
        for need in self.needs:
            if getattr(self.state, need) is None:
                what, step, keyword = NEEDS[need]
                return (f"{self.title} needs {what}: run step {step} first, or pass it: "
                        f"{type(self).__name__}({keyword}=...).")
        return ""

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.quick_box = widgets.Checkbox(description="quick settings", indent=False,
                                          layout=widgets.Layout(width="auto"))
        widgets.link((self.state, "quick"), (self.quick_box, "value"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play",
                                         tooltip=f"Run {self.title}").add_class("fastml-lab-run")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop after the current piece of work").add_class("fastml-lab-stop")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.progress = ProgressBar()
        self.status = widgets.HTML("").add_class("fastml-lab-status")
        self.message = widgets.HTML("")
        self.errors = ErrorPanel()
        self.results = widgets.VBox([]).add_class("fastml-lab-results")
        self.code_toggle = widgets.ToggleButton(description="Show code", icon="code", value=False,
                                                tooltip="The same step in Python").add_class("fastml-lab-show-code")
        self.code_view = widgets.HTML("")
        self.code_toggle.observe(lambda _: self._update_code(), names="value")
        self.controls = self.build_controls()
        for control in _leaves(self.controls):
            if "description_width" in getattr(getattr(control, "style", None), "keys", ()):
                control.style.description_width = "initial"  # labels in full, not cut to 'learning r...'
            if "value" in control.keys:
                control.observe(lambda _: self._update_code(), names="value")
        self.header = widgets.HTML("")
        self.retitle(self.title, self.explanation)
        buttons = widgets.HBox([self.run_button, self.stop_button, self.quick_box, self.code_toggle])
        self.widget = widgets.VBox([
            self.header, widgets.VBox(self.controls), buttons, self.progress.widget, self.status,
            self.message, self.errors.widget, self.code_view, self.results,
        ]).add_class("fastml-lab-step").add_class(f"fastml-lab-step-{self.name}")

    def retitle(self, title: str, explanation: str) -> None:
        """Set the step's title (the walk's stepper follows it) and the explanation under it."""
        self.title, self.explanation = title, explanation
        self.header.value = (f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>"
                             f"<div style='color:#444;max-width:900px'>{explanation}</div>")
        self.run_button.tooltip = f"Run {title}"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ running
    def run(self) -> bool:
        """What the Run button does; False when the step cannot start (the panel says why).

        It returns at once and the work runs in a background thread (``wait()`` waits for it).
        While the walk is still reading its project folder (``lab()`` reads it in the
        background, so the walk shows at once), the step is accepted all the same: its thread
        first waits for the reading to end, then checks its inputs and reads its settings (both
        may come from the folder), and only then works. So ``step.run(); step.wait()`` right
        after ``lab()`` does not depend on timing, and the Run button never freezes the page:
        one path for code and clicks, no blocking in the kernel's main thread. A reading that
        has not ended after ``RESTORE_TIMEOUT_S`` fails the step with an error saying so.
        """
        if self.runner.busy:
            return False
        self.errors.clear()
        if self.state.running:  # steps share the state: one at a time
            self.message.value = notice_html(f"{self.state.running} is still running; wait for it to "
                                             "finish or press its Stop button.")
            return False
        settings = None  # read after the project folder, when the walk is still reading it
        if not self.state.restoring:
            why = self.missing()
            if why:
                self.message.value = notice_html(why)
                return False
            try:
                settings = self.settings()
            except Exception as exc:  # a control holds something the step cannot use
                self.errors.show(describe_error(exc))
                return False
        self.message.value = ""
        self.status.value = ""
        self.outcome = ""
        self.results.children = ()
        self.progress.start()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.state.running = self.title
        return self.runner.start(lambda task: self._work(task, settings), name=f"fastml-lab-{self.name}")

    def _work(self, task, settings: dict | None) -> StepResult:
        if settings is None:
            settings = self._settings_once_restored(task)
        result = self.work(task, settings)
        result.settings = settings
        self.state.save_result(self.name, result)
        return result

    def _settings_once_restored(self, task) -> dict:
        """Wait (Stop works) until the walk has read its project folder; then the step's inputs
        are checked and its settings read, as :meth:`run` does otherwise."""
        task.progress(0, 1, "waiting for the walk to read its project folder")
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        while not self.state.wait_restored(min(0.2, RESTORE_TIMEOUT_S)):
            task.check()
            if time.monotonic() >= deadline:
                raise NotReadyError(
                    f"The walk was still reading its project folder {self.state.folder} after "
                    f"{RESTORE_TIMEOUT_S:g} s, so {self.title} did not start. The walk's status line says "
                    "what it is reading; run the step again once it is done, or start afresh with "
                    "fastml_lab.lab(..., restore=False).")
        task.check()
        why = self.missing()
        if why:
            raise NotReadyError(why)
        return self.settings()

    def stop(self) -> None:
        self.runner.stop()
        self.stop_button.disabled = True
        self.status.value = notice_html("Stopping after the current piece of work...", "note")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a run to finish (tests, scripts); True when it finished within ``timeout``."""
        return self.runner.wait(timeout)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.update(done, total, text)

    def _on_finish(self, outcome: str, value, task) -> None:
        self.state.running = ""
        self.outcome = outcome
        self.progress.finish(outcome)
        self.run_button.disabled, self.stop_button.disabled = False, True
        if outcome == "done":
            self.show(value)
            self.status.value = (f"<span class='fastml-lab-outcome-done' style='color:#1b5e20'>"
                                 f"Done in {self.runner.seconds:.1f} s.</span>")
        elif outcome == "stopped":
            self.status.value = notice_html("Stopped before the end. The results below, if any, are "
                                            "from the last run that finished.", "note")
            saved = self.state.load_result(self.name)
            if saved is not None:
                self.show(saved, restored=True)
        else:
            log = "".join(task.log_lines)
            details = self.runner.error_details + (f"\nOutput of the step:\n{log}" if log else "")
            self.errors.show(describe_error(value), details)
            self.status.value = ""

    # ------------------------------------------------------------------ results
    def add_figure(self, result: StepResult, name: str, fig) -> None:
        """Save ``fig`` in the step's folder and list it in ``result`` (called from ``work``)."""
        path = self.state.step_dir(self.name) / f"{name}.png"
        save_png(fig, path)
        result.figures[name] = path

    def show(self, result: StepResult, restored: bool = False) -> None:
        """Display ``result``: notes, the numbers table, then the figures."""
        self.result = result
        children = []
        if restored:
            children.append(widgets.HTML(notice_html(
                f"Results of the run saved {result.saved or 'earlier'} in {self.state.step_dir(self.name)}.",
                "note")))
        children += [widgets.HTML(notice_html(note)) for note in result.notes]
        if result.numbers:
            children.append(widgets.HTML(numbers_html(result.numbers)))
        for name, path in result.figures.items():
            children.append(figure_widget(path.read_bytes(), name))
        self.results.children = children

    def _update_code(self) -> None:
        if not self.code_toggle.value:
            self.code_view.value = ""
            return
        try:
            self.code_view.value = code_html(self.code(self.settings()))
        except Exception as exc:  # e.g. a half-typed value
            self.code_view.value = notice_html(f"No code for these settings: {describe_error(exc)}")

    def _show_needs(self) -> None:
        if self.runner.busy or self.outcome:
            return
        why = self.missing()
        self.message.value = notice_html(why, "note") if why else ""
