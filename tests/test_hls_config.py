"""hls4ml's own configuration dict: what export would hand hls4ml, edited per layer and exported
from; the C simulation still equals the emulator; what hls4ml would accept and get wrong is refused."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

from fastml_lab.estimate import estimate  # noqa: E402
from fastml_lab.exceptions import ConfigError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402
from fastml_lab.hls import export, hls4ml_config  # noqa: E402
from fastml_lab.hls.check import check_project  # noqa: E402
from fastml_lab.project import Project  # noqa: E402

pytestmark = pytest.mark.needs_tf


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                             keras.layers.Dense(4, name="fc2"), keras.layers.Activation("softmax", name="sm")])


@pytest.fixture(scope="module")
def config(model):
    return hls4ml_config(model, precision="ap_fixed<12,4>")


def test_the_config_is_hls4mls_own_with_every_precision_set(config):
    assert config["Model"]["ReuseFactor"] == 1 and config["Model"]["Strategy"] == "Latency"
    assert set(config["LayerName"]) >= {"fc1", "fc2", "sm"}
    for name, entry in config["LayerName"].items():
        for slot, value in entry.get("Precision", {}).items():
            assert value != "auto", (name, slot)
            FixedType.parse(value)
    assert FixedType.parse(config["LayerName"]["fc1"]["Precision"]["weight"]) == FixedType.parse("ap_fixed<12,4>")
    json.dumps(config)  # plain data: it can be saved and edited as a file


def test_a_layer_edited_in_the_config_is_what_the_firmware_gets(model, config, tmp_path):
    edited = copy.deepcopy(config)
    edited["LayerName"]["fc1"]["ReuseFactor"] = 4
    edited["LayerName"]["fc2"]["Precision"]["weight"] = "fixed<6,2,RND,SAT>"
    project = export(model, tmp_path / "p", hls_config=edited)
    dense = {layer["name"]: layer for layer in project.firmware().description["layers"] if layer["op"] == "dense"}
    assert dense["fc1"]["reuse_factor"] == 4 and dense["fc2"]["reuse_factor"] == 1
    assert FixedType.from_dict(dense["fc2"]["weight_type"]) == FixedType.parse("ap_fixed<6,2,AP_RND,AP_SAT>")
    assert project.meta["precision_source"] == "hls4ml config"
    assert project.meta["reuse_factor"] == 4  # the largest a layer uses: it bounds the II
    per_layer = {cost.name: cost.ii for cost in estimate(project).layers}
    assert per_layer["fc1"] == 4 and per_layer["fc2"] == 1, "the estimate prices each layer at its own reuse"
    X = np.random.default_rng(0).normal(scale=4.0, size=(200, 6)).astype(np.float32)
    check = check_project(project, X)
    assert check.values == 800 and check.mismatches == 0, check.describe()
    assert config["LayerName"]["fc1"]["ReuseFactor"] == 1, "export does not change the caller's dict"


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["LayerName"]["fc2"]["Precision"].__setitem__("result", "auto"), ["fc2", "'auto'", "softmax"]),
    (lambda c: c["LayerName"].__setitem__("fc9", {}), ["fc9", "fc1_relu, fc2"]),
    (lambda c: c["LayerName"]["fc1"]["Precision"].__setitem__("weight", "float"), ["fc1", "weight", "float"]),
    (lambda c: c["LayerName"]["fc1"].__setitem__("ReuseFactor", 0), ["fc1", "ReuseFactor", "positive"]),
    (lambda c: c["Model"].__setitem__("Strategy", "Fastest"), ["Model", "Fastest", "Latency, Resource"]),
    (lambda c: c.pop("Model"), ["'Model'"]),
])
def test_what_hls4ml_would_get_wrong_is_refused_before_any_work(model, config, tmp_path, edit, words):
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(ConfigError) as info:
        export(model, tmp_path / "bad", hls_config=bad)
    for word in words:
        assert word in str(info.value)
    assert not (tmp_path / "bad").exists()


def test_a_reuse_factor_hls4ml_would_replace_is_refused_with_the_valid_ones(model, config, tmp_path):
    bad = copy.deepcopy(config)
    bad["Model"]["Strategy"] = "Resource"
    bad["LayerName"]["fc1"].update(Strategy="Resource", ReuseFactor=5)
    with pytest.raises(ConfigError, match=r"reuse_factor 5 is not valid for layer 'fc1'.*: 1, 2, 3, 6, 12, 24, 48"):
        export(model, tmp_path / "bad", hls_config=bad)


def test_the_config_replaces_plan_precision_and_reuse(model, config, tmp_path):
    with pytest.raises(ConfigError, match="leave out the precision, the reuse factor"):
        export(model, tmp_path / "bad", hls_config=config, precision="ap_fixed<8,3>", reuse_factor=2)


def test_the_command_line_exports_from_a_config_file(model, config, tmp_path):
    from fastml_lab.cli import main

    model.save(tmp_path / "m.keras")
    edited = copy.deepcopy(config)
    edited["LayerName"]["fc1"]["ReuseFactor"] = 2
    (tmp_path / "c.json").write_text(json.dumps(edited))
    assert main(["export", str(tmp_path / "m.keras"), "--hls-config", str(tmp_path / "c.json"),
                 "--out", str(tmp_path / "p")]) == 0
    project = Project.open(tmp_path / "p")
    assert {layer["name"]: layer["reuse_factor"] for layer in project.firmware().description["layers"]
            if layer["op"] == "dense"} == {"fc1": 2, "fc2": 1}
    (tmp_path / "bad.yml").write_text("Model: [unclosed")
    assert main(["export", str(tmp_path / "m.keras"), "--hls-config", str(tmp_path / "bad.yml"),
                 "--out", str(tmp_path / "q")]) == 2
    assert not (tmp_path / "q").exists()
