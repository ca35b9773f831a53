"""The family interface changed how the code is organised, not what it computes: the shipped packages'
outputs, the exported projects (records, firmware digests, timing), the emulator's outputs and the
estimates equal the snapshot taken before it (``tests/behaviour_snapshot.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviour_snapshot import snapshot

pytest.importorskip("hls4ml")
pytest.importorskip("xgboost")

SNAPSHOT = Path(__file__).parent / "data" / "behaviour_snapshot.json"


def test_the_code_computes_what_it_computed_before():
    before = json.loads(SNAPSHOT.read_text())
    now = snapshot()
    assert now["packages"] == before["packages"]
    for name, figures in before["models"].items():
        differing = {f"{part}.{key}": (now["models"][name][part].get(key), value)
                     for part, values in figures.items() if isinstance(values, dict)
                     for key, value in values.items() if now["models"][name][part].get(key) != value}
        assert now["models"][name] == figures, f"{name}: (now, before) {differing}"
