"""The walk's Explore step, headless: a tiny NN + BDT sweep on a local Dask cluster, the front offered,
Show code, bad settings refused, and "use this point" handing the NN point's model to Export."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("keras")
pytest.importorskip("distributed")

from fastml_lab.data import load_jets  # noqa: E402
from fastml_lab.exceptions import ConfigError  # noqa: E402
from fastml_lab.widgets.explore_step import SWEEP_DIR, ExploreStep  # noqa: E402

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]

WAIT_S = 400
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walk")
    step = ExploreStep(dataset=load_jets("synthetic", n_events=2000, progress=False), project_dir=folder, quick=True)
    step.sizes.value, step.bits.value, step.prune.value, step.reuse.value = "4", "6", "0", "1"
    step.rounds.value, step.depth.value, step.epochs.value, step.workers.value = "5, 10", "2", 1, 1
    step.run_button.click()
    assert step.wait(WAIT_S), "the sweep did not finish"
    return step


def test_the_sweep_runs_and_offers_its_front(explored):
    step = explored
    assert step.outcome == "done", step.errors.widget.children
    numbers = dict(step.result.numbers)
    assert numbers["points"].startswith("3 ok, 0 errors")
    records = [json.loads(p.read_text()) for p in (step.state.step_dir("explore") / SWEEP_DIR / "points").glob("*.json")]
    assert sorted(r["kind"] for r in records) == ["bdt", "bdt", "nn"]
    shown = [bytes(c.value) for c in step.results.children if "fastml-lab-figure-front" in c._dom_classes]
    assert shown and shown[0].startswith(PNG)
    assert bytes(step.live.value).startswith(PNG), "points were drawn as they finished"
    front_ids = [value for _, value in step.choice.options]
    assert front_ids and set(front_ids) <= {r["id"] for r in records} and not step.use_button.disabled
    for label, text in numbers.items():
        if label.startswith("front: "):
            assert any(r["id"] in text for r in records)


def test_show_code_is_the_sweep_it_ran(explored):
    code = explored.code(explored.settings())
    assert "from fastml_lab.sweep import report, run_sweep" in code
    assert "summary = run_sweep(" in code and "'workers': 1" not in code and "workers=1" in code
    assert "rep = report(" in code and "rep.plot()" in code


def test_bad_settings_name_the_control(explored, tmp_path):
    step = ExploreStep(dataset=explored.state.dataset, project_dir=tmp_path, quick=True)
    step.bits.value = "6, eight"
    assert step.run() is False
    assert "bits must be values separated by commas" in step.errors.widget.children[0].value
    step.bits.value, step.sizes.value = "6", "8-x"
    assert step.run() is False
    assert "nn parameter &#x27;sizes&#x27; must be" in step.errors.widget.children[0].value


def test_use_this_point_hands_the_model_to_export(explored):
    step = explored
    folder = step.state.step_dir("explore") / SWEEP_DIR / "points"
    records = {r["kind"]: r for r in (json.loads(p.read_text()) for p in folder.glob("*.json"))}
    with pytest.raises(ConfigError, match="BDT"):
        step.use_point(records["bdt"]["id"])
    model = step.use_point(records["nn"]["id"])
    assert step.state.quantized is model and step.state.plan is None
    assert (step.state.folder / "quantized.keras").is_file()
    from fastml_lab.evaluate import evaluate
    from fastml_lab.sweep.point import dataset
    from fastml_lab.sweep.space import Point

    # the same settings and seed give the same model: its accuracy is the one the worker measured
    ds = dataset(Point.from_dict(records["nn"]["point"]).data)
    assert evaluate(model, ds).accuracy == records["nn"]["metrics"]["accuracy"]
