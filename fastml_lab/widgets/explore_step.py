"""Explore (after Quantize): a small design-space sweep on Dask, its Pareto front, and "use this point".

The step runs :func:`fastml_lab.sweep.run_sweep` on a local Dask cluster (or the scheduler whose
address is given) over a small space built from the controls: NN sizes, bit widths, pruning and
reuse factors, BDT rounds and depths, on the jets the Data step loaded. Points appear on the plot
as they finish; the result is the front of fixed-point accuracy against LUTs and latency. "Use this
point" trains the chosen NN point again here (a point is a pure function of its settings and seed,
so it is the same model) and hands it to Export as the quantized model, as Quantize does.
"""

from __future__ import annotations

import io
import threading
import time

import ipywidgets as widgets

from ..exceptions import ConfigError
from ..families import NETWORK, get_family
from ..tutorial.sizes import settings as sizes
from .code import Call
from .panel import notice_html
from .state import QUANTIZED_FILE, TREES, StepResult
from .step import Step

#: The families a sweep here explores (each has its controls), and the choice of all of them.
SWEPT, BOTH = (NETWORK, TREES), "both"
#: The toggle's label of a family whose title is too long for it (the network's is "neural network").
SHORT_LABELS = {NETWORK: "NN"}
KINDS = (*((SHORT_LABELS.get(name, get_family(name).title), name) for name in SWEPT), ("both", BOTH))
SWEEP_DIR = "sweep"
#: Least time between two redraws of the live plot.
REDRAW_EVERY_S = 0.5
#: Jets of a sweep point when the Data step loaded all of them (a sweep trains many models).
MAX_EVENTS = 50_000


def _values(text: str, cast, name: str) -> list:
    """``"4, 6, 8"`` -> ``[4, 6, 8]``; ConfigError naming the control otherwise."""
    items = [item.strip() for item in str(text).replace(";", ",").split(",") if item.strip()]
    try:
        values = [cast(item) for item in items]
    except ValueError:
        raise ConfigError(f"{name} must be values separated by commas, e.g. 4, 6, 8; got {text!r}.") from None
    if not values:
        raise ConfigError(f"{name} needs at least one value.")
    return values


class _StopFlag:
    """The step's Stop button as the ``stop`` flag ``run_sweep`` reads."""

    def __init__(self, task):
        self.task = task

    def is_set(self) -> bool:
        return self.task.stopped


class ExploreStep(Step):
    name = "explore"
    title = "3b · Explore"
    explanation = (
        "A sweep trains, quantizes, exports and measures many small models, one per point of a "
        "<b>design space</b>, in parallel on <b>Dask</b> workers (here: a local cluster; give a "
        "scheduler address to use a cluster). Each point's fixed-point accuracy comes from the "
        "bit-exact emulator, its LUTs and latency from the hardware estimate. The <b>Pareto front</b> "
        "holds the points no other point beats on both accuracy and cost. Pick one and "
        "<b>use this point</b> to carry its model to Export.")
    needs = ("dataset",)

    def build_controls(self) -> list:
        wide = widgets.Layout(width="32%")
        self.kind = widgets.ToggleButtons(options=KINDS, value=BOTH, description="models")
        self.sizes = widgets.Text(value="8, 16-8", description="NN sizes", layout=wide)
        self.bits = widgets.Text(value="4, 6, 8", description="bits", layout=wide)
        self.prune = widgets.Text(value="0", description="pruning", layout=wide)
        self.reuse = widgets.Text(value="1", description="reuse factors", layout=wide)
        self.rounds = widgets.Text(value="10, 30", description="BDT rounds", layout=wide)
        self.depth = widgets.Text(value="2, 3", description="BDT depths", layout=wide)
        self.epochs = widgets.BoundedIntText(value=1, min=1, max=1000, description="epochs")
        # One worker by default: two TensorFlow workers need about 3 GiB, more than Binder gives.
        self.workers = widgets.BoundedIntText(value=1, min=1, max=256, description="local workers")
        self.scheduler = widgets.Text(value="", description="scheduler", placeholder="tcp://HOST:PORT (empty: local)",
                                      layout=widgets.Layout(width="40%"))
        self.live = widgets.Image(format="png").add_class("fastml-lab-live-front")
        self.live.layout.max_width = "100%"
        self.choice = widgets.Dropdown(options=[], description="point", layout=widgets.Layout(width="60%"))
        self.use_button = widgets.Button(description="Use this point", icon="check", disabled=True,
                                         tooltip="Train this point's model here and hand it to Export")
        self.use_button.on_click(lambda _: self._use_in_background())
        self.use_status = widgets.HTML("")
        self.family_controls = {NETWORK: (self.sizes, self.bits, self.prune, self.reuse, self.epochs),
                                TREES: (self.rounds, self.depth)}
        self.kind.observe(lambda _: self._show_kind(), names="value")
        self._show_kind()
        self._last_draw = 0.0
        return [self.kind, widgets.HBox([self.sizes, self.bits, self.prune]),
                widgets.HBox([self.reuse, self.rounds, self.depth]),
                widgets.HBox([self.epochs, self.workers, self.scheduler]),
                widgets.HBox([self.choice, self.use_button]), self.use_status]

    def _chosen(self) -> list:
        """The families the sweep explores."""
        return [name for name in SWEPT if self.kind.value in (name, BOTH)]

    def _show_kind(self) -> None:
        chosen = self._chosen()
        for family, controls in self.family_controls.items():
            for control in controls:
                control.layout.display = "flex" if family in chosen else "none"

    def apply_quick(self, quick: bool) -> None:
        self.epochs.value = max(1, sizes(quick, "walk").qat_epochs // 2)

    # ------------------------------------------------------------------ settings and calls
    def _data(self) -> dict:
        saved = self.state.load_result("data")
        given = saved.settings if saved is not None else {}
        n_events = given.get("n_events") or (len(self.state.dataset.labels_train) + len(self.state.dataset.labels_test)
                                             if self.state.dataset is not None else None)
        return {"source": given.get("source", "synthetic"), "n_events": min(n_events or MAX_EVENTS, MAX_EVENTS),
                "seed": given.get("seed", 0)}

    def _nn_grid(self) -> dict:
        return {"sizes": _values(self.sizes.value, str, "NN sizes"), "bits": _values(self.bits.value, int, "bits"),
                "prune": _values(self.prune.value, float, "pruning"),
                "reuse": _values(self.reuse.value, int, "reuse factors"), "epochs": [self.epochs.value]}

    def _bdt_grid(self) -> dict:
        return {"rounds": _values(self.rounds.value, int, "BDT rounds"),
                "depth": _values(self.depth.value, int, "BDT depths")}

    def settings(self) -> dict:
        grids = {NETWORK: self._nn_grid, TREES: self._bdt_grid}
        models = [{"kind": family, "grid": grids[family]()} for family in self._chosen()]
        space = {"data": self._data(), "board": "pynq-z2", "models": models}
        from ..sweep import load_space

        load_space(space)  # every value checked now, with the key named
        where = {"scheduler": self.scheduler.value.strip()} if self.scheduler.value.strip() else {
            "workers": self.workers.value}
        return {"space": space, "out": str(self.state.step_dir(self.name) / SWEEP_DIR), **where}

    def calls(self, s: dict) -> list:
        where = {k: s[k] for k in ("workers", "scheduler") if k in s}
        return [Call("fastml_lab.sweep.run_sweep", (s["space"], s["out"]), where, assign="summary",
                     show=("print(summary.describe(), summary.dashboard)",)),
                Call("fastml_lab.sweep.report", (s["out"],), assign="rep",
                     show=("print(rep.summary())", "rep.plot()"))]

    # ------------------------------------------------------------------ work
    def work(self, task, s: dict) -> StepResult:
        from ..sweep.results import mark_fronts, plot_fronts
        from ..sweep.store import table_row

        calls = {call.assign: call for call in self.calls(s)}
        names = self.names()
        self.results.children = [self.live]
        self.live.value = b""
        self.use_button.disabled = True
        planned = {}

        def on_start(summary):
            planned["n"] = summary.planned
            task.progress(0, summary.planned, f"{summary.workers} Dask workers; dashboard {summary.dashboard}")

        def on_point(record, summary, written):
            done = summary.ok + summary.errors + summary.skipped
            task.progress(done, planned.get("n", done), f"{record['label']}: {record['status']}")
            if time.perf_counter() - self._last_draw >= REDRAW_EVERY_S:
                rows = mark_fronts([table_row(r) for r in summary.records])
                self._draw(plot_fronts(rows, s["space"]["board"]))

        summary = calls["summary"].run(names, on_start=on_start, on_point=on_point, stop=_StopFlag(task))
        rep = calls["rep"].run(names, plot=False)
        task.check()
        result = StepResult()
        result.add("points", f"{len(rep.ok)} ok, {len(rep.errors)} errors ({summary.skipped} from earlier runs; "
                             f"{summary.workers} workers, {summary.seconds:.0f} s)")
        for row in rep.front():
            result.add(f"front: {row['label']}", f"accuracy {float(row['fixed_accuracy']):.4f}, {int(row['lut']):,} LUT, "
                                                 f"{float(row['latency_ns']):g} ns [{row['id']}]")
        for row in rep.errors[:3]:
            result.notes.append(f"{row['label']} failed: {str(row['error'])[:300]}")
        self.add_figure(result, "front", rep.plot())
        return result

    def _draw(self, fig) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.live.value = buf.getvalue()
        self._last_draw = time.perf_counter()

    def show(self, result: StepResult, restored: bool = False) -> None:
        super().show(result, restored)
        self._offer_front()

    def _offer_front(self) -> None:
        """The front's points in the chooser (network points first: those Export takes)."""
        from pathlib import Path

        from ..sweep.results import report

        folder = self.state.step_dir(self.name) / SWEEP_DIR
        if not Path(folder, "points").is_dir():
            return
        rows = sorted(report(folder, plot=False).front(), key=lambda r: r["kind"] != NETWORK)
        self.choice.options = [(f"{r['label']}: acc {float(r['fixed_accuracy']):.3f}, {int(r['lut']):,} LUT",
                                r["id"]) for r in rows]
        self.use_button.disabled = not rows

    # ------------------------------------------------------------------ use this point
    def use_point(self, point_id: str | None = None):
        """Train the point ``point_id`` (default: the chosen one) here and hand its model to Export."""
        import json

        from ..sweep.point import train_point
        from ..sweep.space import Point
        from ..train import save_model

        point_id = point_id or self.choice.value
        path = self.state.step_dir(self.name) / SWEEP_DIR / "points" / f"{point_id}.json"
        if not point_id or not path.is_file():
            raise ConfigError(f"No finished point {point_id!r} in {path.parent}; run the sweep and pick a point.")
        point = Point.from_dict(json.loads(path.read_text())["point"])
        if point.kind != NETWORK:  # Export takes it as the quantized network, as Quantize made it
            raise ConfigError(f"{point.label()} is a {get_family(point.kind).title}; the walk's Export takes "
                              f"{get_family(NETWORK).title}s. Export it with "
                              "fastml_lab.bdt.export_bdt(fastml_lab.sweep.train_point(point)[0], 'prj').")
        model, _ = train_point(point)
        save_model(model, self.state.folder / QUANTIZED_FILE)
        with self.state.hold_trait_notifications():
            self.state.quantized = model
            self.state.plan = None
        return model

    def _use_in_background(self) -> None:
        self.use_button.disabled = True
        self.use_status.value = notice_html("Training the chosen point...", "note")

        def work():
            try:
                self.use_point()
                self.use_status.value = notice_html(f"Export will use {self.choice.label}.", "note")
            except Exception as exc:  # shown in the panel, the walk goes on
                self.use_status.value = notice_html(f"Could not use this point: {exc}")
            finally:
                self.use_button.disabled = False

        threading.Thread(target=work, name="fastml-lab-explore-use", daemon=True).start()
