"""Sweep spaces, points, fronts and the folder's table, without a cluster (fast; no TensorFlow)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from fastml_lab.cli import main
from fastml_lab.exceptions import ConfigError
from fastml_lab.sweep import load_space
from fastml_lab.sweep.results import mark_fronts, pareto_mask
from fastml_lab.sweep import space as space_module
from fastml_lab.sweep.space import Point
from fastml_lab.sweep.store import SweepFolder


def doc_example(title: str) -> str:
    """The example after ``title::`` in fastml_lab.sweep.space's docstring, so the docs stay true."""
    block = space_module.__doc__.split(f"{title}::\n\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block) + "\n"


SMALLEST = doc_example("The smallest space")


def test_the_smallest_space_reads_as_written(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SMALLEST)
    space = load_space(path)
    points = space.points()
    assert [p.params["bits"] for p in points] == ["6", "8"]
    assert all(p.kind == "nn" and p.params["sizes"] == "8" and p.params["epochs"] == 1 for p in points)
    assert points[0].data == {"source": "synthetic", "n_events": 4000, "seed": 0} and points[0].board == "pynq-z2"
    assert space.resolve_search(None) == "grid"


def test_json_files_and_dicts_give_the_same_points(tmp_path):
    import yaml

    raw = yaml.safe_load(SMALLEST)
    (tmp_path / "space.json").write_text(json.dumps(raw))
    assert [p.id for p in load_space(tmp_path / "space.json").grid()] == [p.id for p in load_space(raw).grid()]


def test_a_point_is_named_by_its_settings():
    a = load_space({"kind": "bdt", "grid": {"rounds": [10]}}).grid()[0]
    again = Point.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again.id == a.id and len(a.id) == 12
    other = load_space({"kind": "bdt", "seed": 1, "grid": {"rounds": [10]}}).grid()[0]
    assert other.id != a.id
    # prune 0 and null are one point
    zero, null = (load_space({"grid": {"prune": [v]}}).grid()[0] for v in (0, None))
    assert zero.id == null.id


def test_mixed_spaces_expand_every_model():
    space = load_space({"models": [{"kind": "nn", "grid": {"bits": [4, 6], "prune": [0, 0.5]}},
                                   {"kind": "bdt", "grid": {"depth": [2, 3, 4]}}]})
    points = space.grid()
    assert [p.kind for p in points].count("nn") == 4 and [p.kind for p in points].count("bdt") == 3
    assert len({p.id for p in points}) == 7


def test_random_search_draws_ranges_within_their_bounds():
    space = load_space({"kind": "nn", "params": {"beta": {"min": 1e-6, "max": 1e-4, "log": True},
                                                 "reuse": {"min": 1, "max": 8}, "bits": [4, 6]}})
    assert space.resolve_search(None) == "random"
    points = space.random(30)
    assert all(1e-6 <= p.params["beta"] <= 1e-4 and 1 <= p.params["reuse"] <= 8 for p in points)
    assert all(isinstance(p.params["reuse"], int) for p in points)
    assert [p.id for p in space.random(30)] == [p.id for p in points], "seeded"


@pytest.mark.parametrize("raw, words", [
    ({"kind": "cnn"}, ["kind", "nn, bdt", "'cnn'"]),
    ({"grid": {"bitz": [6]}}, ["grid.bitz", "sizes, bits"]),
    ({"grid": {"bits": [6, 40]}}, ["'bits'", "2 to 24", "40"]),
    ({"kind": "bdt", "grid": {"depth": [0]}}, ["'depth'", "1 to 12"]),
    ({"kind": "bdt", "grid": {"precision": ["float"]}}, ["'precision'", "ap_fixed<16,6>"]),
    ({"grid": {"sizes": ["8-x"]}}, ["'sizes'", "16-8"]),
    ({"grid": {"reuse": {"min": 1, "max": 4}}}, ["grid.reuse", "range", "random or optuna"]),
    ({"params": {"strategy": {"min": 1, "max": 2}}}, ["strategy", "list of values"]),
    ({"params": {"beta": {"min": 1e-4, "max": 1e-6}}}, ["beta", "A < B"]),
    ({"grid": {"bits": []}}, ["grid.bits", "empty list"]),
    ({"board": "zedboard"}, ["board", "pynq-z2"]),
    ({"data": {"source": "nowhere.h5"}}, ["data.source", "synthetic, openml, auto"]),
    ({"data": {"n_events": 10}}, ["data.n_events", ">= 100"]),
    ({"data": {"events": 4000}}, ["data", "'events'", "source, n_events, seed"]),
    ({"models": [{"kind": "bdt", "grid": {"sizes": ["8"]}}]}, ["models[0].grid.sizes", "kind bdt", "rounds"]),
    ({"models": [], }, ["models", "non-empty list"]),
    ({"kind": "nn", "models": [{"kind": "bdt"}]}, ["'models'", "'kind'", "not both"]),
    ({"search": "bayes"}, ["search", "grid, random, optuna"]),
    ({"budget": {"lut": 1000}}, ["budget", "latency_ns", "board's"]),
    ({"colour": "red"}, ["'colour'", "valid keys"]),
])
def test_errors_name_the_key_and_what_is_valid(raw, words):
    with pytest.raises(ConfigError) as info:
        load_space(raw)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_space_files_that_cannot_be_read(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: [nn\n")
    (tmp_path / "list.yaml").write_text("- nn\n")
    (tmp_path / "space.txt").write_text("kind: nn\n")
    for name, words in (("bad.yaml", "not valid YAML"), ("list.yaml", "must hold a mapping"),
                        ("space.txt", ".yaml, .yml or .json"), ("missing.yaml", "does not exist")):
        with pytest.raises(ConfigError, match=words):
            load_space(tmp_path / name)


def test_a_data_file_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "jets.h5").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert load_space({"data": {"source": "jets.h5"}}).data["source"] == str(tmp_path / "jets.h5")


def test_pareto_mask_keeps_the_undominated_points():
    acc = [0.70, 0.75, 0.72, 0.75, np.nan, 0.60]
    lut = [[100], [300], [300], [200], [50], [100]]
    assert pareto_mask(acc, lut).tolist() == [True, False, False, True, False, False]
    # equal points do not dominate each other
    assert pareto_mask([0.7, 0.7], [[1, 2], [1, 2]]).tolist() == [True, True]
    # two costs: a point cheaper in latency stays on the front
    assert pareto_mask([0.7, 0.7], [[100, 50], [90, 60]]).tolist() == [True, True]


def test_fronts_skip_failed_points():
    rows = [{"status": "ok", "fixed_accuracy": 0.7, "lut": 100, "latency_ns": 50.0},
            {"status": "error", "fixed_accuracy": None, "lut": None, "latency_ns": None},
            {"status": "ok", "fixed_accuracy": 0.6, "lut": 100, "latency_ns": 40.0}]
    marked = mark_fronts(rows)
    assert [r["front_lut"] for r in marked] == [True, False, False]
    assert [r["front_latency"] for r in marked] == [True, False, True]
    assert [r["front"] for r in marked] == [True, False, True]


def _record(point, status="ok", **metrics):
    return {"id": point.id, "kind": point.kind, "label": point.label(), "point": point.to_dict(), "status": status,
            "metrics": metrics}


def test_the_folder_writes_each_point_once(tmp_path):
    a, b = load_space({"kind": "bdt", "grid": {"rounds": [5, 10]}}).grid()
    folder = SweepFolder(tmp_path)
    assert folder.write(_record(a, fixed_accuracy=0.7, lut=10))
    assert not folder.write(_record(a, fixed_accuracy=0.1, lut=1)), "a second result for a point is ignored"
    assert folder.write(_record(b, status="error"))
    again = SweepFolder(tmp_path)
    assert again.records[a.id]["metrics"]["fixed_accuracy"] == 0.7
    assert again.finished(a.id) and again.finished(b.id) and not again.finished(b.id, retry_errors=True)
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("id,kind,label,status")
    assert not list(tmp_path.rglob("*.tmp*")), "no temporary files left"


def test_cli_refuses_half_given_arguments(tmp_path, capsys):
    assert main(["sweep", "--out", str(tmp_path)]) == 2
    assert "fastml-lab sweep SPACE --out DIR" in capsys.readouterr().err
    assert main(["sweep", "--report", str(tmp_path / "none")]) == 2
    assert "holds no sweep" in capsys.readouterr().err
    (tmp_path / "s.yaml").write_text("kind: nn\ngrid: {bits: [1]}\n")
    assert main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "'bits' must be" in capsys.readouterr().err
