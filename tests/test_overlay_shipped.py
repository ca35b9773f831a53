"""The packages shipped in bitstreams/ work out of the box, and `pynq get-notebooks` delivery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.overlay import list_overlays, load, open_package
from fastml_lab.overlay.catalog import shipped_dirs

SHIPPED = ("jet_mlp", "jet_mlp_pynq", "jet_bdt_pynq")
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_package_runs_in_software_from_anywhere(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = open_package(name)
    assert pkg.board == "pynq-z2" and pkg.n_inputs == 16 and pkg.n_outputs == 5
    assert pkg.class_names == ["g", "q", "t", "w", "z"]
    assert sum(p.stat().st_size for p in pkg.path.iterdir()) < 200_000
    raw = np.random.default_rng(0).normal(size=(500, 16)) * 10.0 + 50.0
    with load(name) as ol:
        assert ol.backend == "software"
        Y = ol.predict(raw, scale=True)
        assert Y.shape == (500, 5) and np.all(np.isfinite(Y))
        assert set(ol.labels(raw[:20], scale=True)) <= set(pkg.class_names)


def test_shipped_bdt_is_conifers_accelerator_and_runs_its_emulator(tmp_path, monkeypatch):
    from fastml_lab.emulator import Firmware
    from fastml_lab.overlay.packaging import CONIFER_CONTROL_BITS, CONIFER_REGISTERS

    monkeypatch.chdir(tmp_path)
    pkg = open_package("jet_bdt_pynq")
    assert pkg.family == "bdt" and pkg.manifest["source"]["n_trees"] == 40
    io = pkg.io
    assert io["interface"] == "s_axilite_m_axi" and io["word_dtype"] == "float32"
    assert io["registers"] == CONIFER_REGISTERS and io["control_bits"] == CONIFER_CONTROL_BITS
    firmware = Firmware.load(pkg.path)
    pkg.check_firmware_digest(firmware)
    assert (firmware.n_inputs, firmware.n_outputs) == (pkg.n_inputs, pkg.n_outputs)
    assert (str(firmware.input_type), str(firmware.output_type)) == (io["input_type"], io["output_type"])
    assert firmware.description["layers"][0]["op"] == "bdt"
    assert pkg.timing.get("source") in (None, "estimate", "synthesis report")
    X = np.random.default_rng(1).normal(scale=2.0, size=(400, 16)).astype(np.float32)
    with load("jet_bdt_pynq", backend="software") as ol:
        np.testing.assert_array_equal(ol.predict(X), firmware.predict(X))
        assert ol.describe()["family"] == "bdt"


def test_shipped_packages_are_listed():
    rows = {r.name: r for r in list_overlays() if Path(r.path).parent in shipped_dirs()}
    for name in SHIPPED:
        assert rows[name].status in ("software only", "bitstream present", "verified")


def test_deliver_notebooks_copies_tutorials_and_overlays(tmp_path, monkeypatch):
    from fastml_lab import notebooks

    tutorials = tmp_path / "tutorials"
    (tutorials / ".ipynb_checkpoints").mkdir(parents=True)
    (tutorials / "01_intro.ipynb").write_text(json.dumps({"cells": []}))
    (tutorials / ".ipynb_checkpoints" / "01_intro-checkpoint.ipynb").write_text("{}")
    monkeypatch.setattr(notebooks, "tutorial_dirs", lambda: [tutorials])
    target = notebooks.deliver_notebooks(None, None, tmp_path / "pynq-notebooks", "fastml-lab",
                                         folder=True, overlays_res_lookup=True)
    assert target == tmp_path / "pynq-notebooks" / "fastml-lab"
    assert (target / "01_intro.ipynb").is_file()
    assert not (target / ".ipynb_checkpoints").exists()
    for name in SHIPPED:
        assert open_package(target / "bitstreams" / name).name == name
    with pytest.raises(FileExistsError):
        notebooks.deliver_notebooks(None, None, tmp_path / "pynq-notebooks", "fastml-lab",
                                    folder=True)


def test_notebooks_entry_point_is_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points."pynq.notebooks"]' in text
    assert 'fastml-lab = "fastml_lab.notebooks"' in text
