"""Export to an hls4ml project: folder contents, explicit precisions in defines.h, backends,
strategies, refused configurations and atomicity (an interrupted export leaves nothing behind)."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

from fastml_lab.exceptions import ConfigError, DataError, FastMLError, UnsupportedError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402
from fastml_lab.hls import PrecisionPlan, Project, export  # noqa: E402
from fastml_lab.hls.plan import exact_accumulator  # noqa: E402

pytestmark = pytest.mark.needs_tf

_TYPEDEF = re.compile(r"typedef\s+(.+?)\s+(\w+)\s*;")
_CALL = re.compile(r"nnet::\w+<\s*(\w+)\s*,\s*(\w+)\s*,[^;]*;\s*//\s*(\S+)")


def small_model(seed: int = 0, functional: bool = False):
    """6 -> fc1 (Dense, relu fused) -> fc2 -> act2 (separate Activation relu) -> out -> sm (softmax)."""
    keras.utils.set_random_seed(seed)
    layers = [
        keras.layers.Dense(8, activation="relu", name="fc1"),
        keras.layers.Dense(5, name="fc2"),
        keras.layers.Activation("relu", name="act2"),
        keras.layers.Dense(3, name="out"),
        keras.layers.Activation("softmax", name="sm"),
    ]
    if not functional:
        return keras.Sequential([keras.Input((6,)), *layers])
    inp = keras.Input((6,), name="inp")
    h = inp
    for layer in layers:
        h = layer(h)
    return keras.Model(inp, h)


def typedefs(project) -> dict:
    text = (project.hls_dir / "firmware" / "defines.h").read_text()
    return {name: ctype for ctype, name in _TYPEDEF.findall(text)}


def result_typedef_names(project) -> dict:
    """{hls4ml layer name: (input typedef, result typedef)} from the calls in myproject.cpp."""
    text = (project.hls_dir / "firmware" / "myproject.cpp").read_text()
    return {name: (t_in, t_out) for t_in, t_out, name in _CALL.findall(text)}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def project12(tmp_path_factory):
    return export(small_model(), tmp_path_factory.mktemp("exp") / "p12", precision="ap_fixed<12,4>")


# ------------------------------------------------------------------------------------ folder
def test_project_folder_holds_every_promised_file(project12):
    root = project12.path
    for rel in ("project.json", "plan.json", "firmware.json", "firmware.npz",
                "hls4ml/firmware/myproject.cpp", "hls4ml/firmware/defines.h", "hls4ml/firmware/parameters.h"):
        assert (root / rel).is_file(), rel
    meta = json.loads((root / "project.json").read_text())
    assert meta["backend"] == "vitis"
    assert meta["board"] is None
    assert meta["part"] == "xc7z020clg400-1"
    assert meta["clock_period_ns"] == 10.0
    assert meta["reuse_factor"] == 1
    assert meta["strategy"] == "Latency"
    assert meta["io_type"] == "io_parallel"
    assert meta["interface"] == "parallel"
    assert (meta["n_inputs"], meta["n_outputs"]) == (6, 3)
    assert meta["name"] == "p12"
    assert meta["plan"] == PrecisionPlan.uniform("ap_fixed<12,4>").to_dict()
    assert meta["plan"]["default"] == "ap_fixed<12,4>" and meta["plan"]["accum"] == "exact"
    assert meta["firmware_digest"] == project12.firmware().digest()
    assert meta["timing"]["source"] == "estimate" and meta["timing"]["clock_mhz"] == 100.0
    # plan.json is the plan as given, loadable on its own
    assert json.loads((root / "plan.json").read_text()) == meta["plan"]
    assert PrecisionPlan.load(root / "plan.json").to_dict() == meta["plan"]
    fw_desc = json.loads((root / "firmware.json").read_text())
    assert fw_desc["schema_version"] == 1 and fw_desc["n_inputs"] == 6 and fw_desc["n_outputs"] == 3
    assert "timing" not in fw_desc  # timing is the project's (an estimate until synthesis), not firmware
    with np.load(root / "firmware.npz") as npz:
        assert {"fc1/weight", "fc1/bias", "fc2/weight", "out/weight"} <= set(npz.files)
        assert npz["fc1/weight"].shape == (6, 8)
    assert "void myproject(" in (root / "hls4ml/firmware/myproject.cpp").read_text()
    # nothing else next to the project: no temp folder survived
    assert leftovers(root.parent) == ["p12"]


def test_project_open_reads_back_the_same_meta(project12):
    again = Project.open(project12.path)
    assert again.meta == project12.meta
    assert again.backend == "vitis"
    assert PrecisionPlan.from_dict(again.meta["plan"]).to_dict() == project12.meta["plan"]


def test_every_precision_in_defines_h_is_the_planned_one(project12):
    types = typedefs(project12)
    assert types, "no typedefs found in defines.h"
    assert "auto" not in (project12.hls_dir / "firmware" / "defines.h").read_text()
    q = FixedType.parse("ap_fixed<12,4>")
    assert FixedType.parse(types["input_t"]) == q
    for layer in ("fc1", "fc2", "out"):
        assert FixedType.parse(types[f"{layer}_weight_t"]) == q, layer
        assert FixedType.parse(types[f"{layer}_bias_t"]) == q, layer
    calls = result_typedef_names(project12)
    assert {"fc1", "fc1_relu", "fc2", "act2", "out", "sm"} <= set(calls)
    for layer, (_, result_t) in calls.items():
        assert FixedType.parse(types[result_t]) == q, f"{layer} result {types[result_t]}"
    # exact accumulators: <12,4> x <12,4> + <12,4> bias; 16 fractional bits,
    # integer 4+4+ceil(log2(n_in+1)): fc1 (6 in) 11, fc2 (8 in) 12, out (5 in) 11.
    expected = {"fc1": (6, FixedType(27, 11)), "fc2": (8, FixedType(28, 12)), "out": (5, FixedType(27, 11))}
    for layer, (n_in, hand) in expected.items():
        accum = FixedType.parse(types[f"{layer}_accum_t"])
        assert accum == exact_accumulator(q, q, q, n_in) == hand, layer
    # every fixed type is one the plan explains: 12-bit data, exact accumulators, 18-bit tables
    widths = {FixedType.parse(t).width for t in types.values() if t.startswith("ap_fixed")}
    assert widths <= {12, 27, 28, 18}, widths


def test_plan_overrides_reach_defines_h(tmp_path):
    plan = {"default": "ap_fixed<14,5>", "input": "ap_fixed<10,3,AP_RND,AP_SAT>", "layers": {
        "fc1": {"weight": "ap_fixed<8,2>", "bias": "ap_fixed<9,3>", "result": "ap_fixed<11,4,AP_RND,AP_SAT>"},
        "fc2": {"accum": "ap_fixed<20,8>"},
        "out": {"result": "ap_fixed<16,7>"}}}
    project = export(small_model(functional=True), tmp_path / "p", plan=plan)
    types = {k: FixedType.parse(v) for k, v in typedefs(project).items() if v.startswith("ap_fixed")}
    calls = result_typedef_names(project)
    assert types["input_t"] == FixedType(10, 3, True, "RND", "SAT")
    assert types["fc1_weight_t"] == FixedType(8, 2)
    assert types["fc1_bias_t"] == FixedType(9, 3)
    assert types[calls["fc1"][1]] == FixedType(11, 4, True, "RND", "SAT")
    # exact: frac max(7+6, 6) = 13; integer 3+2+ceil(log2 7) = 8 -> <21,8>
    assert types["fc1_accum_t"] == exact_accumulator(FixedType.parse("ap_fixed<10,3,AP_RND,AP_SAT>"),
                                                     FixedType(8, 2), FixedType(9, 3), 6) == FixedType(21, 8)
    assert types["fc2_accum_t"] == FixedType(20, 8)
    assert types["fc2_weight_t"] == FixedType(14, 5)
    assert types[calls["out"][1]] == FixedType(16, 7)
    assert project.meta["plan"] == PrecisionPlan.from_dict(plan).to_dict()
    # the emulator's description carries the same types
    desc = json.loads((project.path / "firmware.json").read_text())
    fc1 = next(layer for layer in desc["layers"] if layer["name"] == "fc1")
    assert FixedType.from_dict(fc1["weight_type"]) == FixedType(8, 2)
    assert FixedType.from_dict(fc1["accum_type"]) == FixedType(21, 8)


def test_plan_input_type_reaches_defines_h_for_a_sequential_model(tmp_path):
    plan = {"default": "ap_fixed<14,5>", "input": "ap_fixed<10,3,AP_RND,AP_SAT>"}
    project = export(small_model(), tmp_path / "p", plan=plan)
    assert FixedType.parse(typedefs(project)["input_t"]) == FixedType(10, 3, True, "RND", "SAT")


def test_fused_and_separate_relu_both_export_and_emulate(project12, tmp_path):
    fw = project12.firmware()
    ops = [layer["op"] for layer in fw.description["layers"]]
    assert ops == ["dense", "relu", "dense", "relu", "dense", "softmax"]
    assert fw.layer_names == ["fc1", "fc1_relu", "fc2", "act2", "out", "sm"]
    # and the firmware computes what the model computes (16-bit types: close, softmax tables aside)
    model = small_model()
    project = export(model, tmp_path / "p16", precision="ap_fixed<16,6>")
    X = np.random.default_rng(1).normal(size=(300, 6)).astype("float32")
    y, trace = project.firmware().predict(X, trace=True)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in ("fc1", "act2", "out", "sm")])
    fc1, act2, logits, probs = probe.predict(X, verbose=0)
    assert np.abs(trace["fc1_relu"] - fc1).max() < 0.01
    assert np.abs(trace["act2"] - act2).max() < 0.01
    assert np.abs(trace["out"] - logits).max() < 0.01
    # hls4ml's table softmax is coarse; it must still be a distribution close to Keras'
    assert np.abs(y - probs).max() < 0.15
    clear = np.diff(np.sort(probs, axis=1)[:, -2:], axis=1).ravel() > 0.1   # a clear winner
    assert clear.sum() > 10 and np.array_equal(y.argmax(axis=1)[clear], probs.argmax(axis=1)[clear])


def test_pynq_z2_backend_writes_the_axi_wrapper_and_block_design(tmp_path):
    project = export(small_model(), tmp_path / "pz", backend="pynq-z2")
    assert (project.hls_dir / "design.tcl").is_file()
    assert (project.hls_dir / "firmware" / "myproject_axi.cpp").is_file()
    meta = project.meta
    assert meta["backend"] == "pynq-z2" and meta["board"] == "pynq-z2" and meta["interface"] == "axi_stream"
    assert meta["part"] == "xc7z020clg400-1"
    fw = project.firmware()
    assert fw.interface == "axi_stream"
    # the stream wrapper reads 6 and writes 3 words and is not pipelined across events
    assert meta["timing"]["ii_cycles"] == meta["timing"]["latency_cycles"] > 6 + 3


def _reuse_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                             keras.layers.Dense(4, name="fc2")])


def test_resource_strategy_and_reuse_factor_are_recorded(tmp_path):
    # reuse 2 is valid for both dense layers (6 x 8 and 8 x 4), so hls4ml keeps it everywhere
    project = export(_reuse_model(), tmp_path / "res", strategy="resource", reuse_factor=2,
                     clock_period_ns=5.0, part="xcu250-figd2104-2L-e")
    meta = project.meta
    assert meta["strategy"] == "Resource" and meta["reuse_factor"] == 2
    assert meta["clock_period_ns"] == 5.0 and meta["part"] == "xcu250-figd2104-2L-e"
    assert meta["timing"]["ii_cycles"] == 2 and meta["timing"]["clock_mhz"] == 200.0
    params = (project.hls_dir / "firmware" / "parameters.h").read_text()
    assert "nnet::resource" in params and "nnet::latency" not in params
    reuse = re.findall(r"reuse_factor = (\d+);", params)
    assert reuse and set(reuse) == {"2"}
    dense_specs = [layer for layer in project.firmware().description["layers"] if layer["op"] == "dense"]
    assert len(dense_specs) == 2 and all(spec["strategy"] == "resource" for spec in dense_specs)


def test_recorded_reuse_factor_is_the_one_in_the_firmware(tmp_path):
    try:
        project = export(_reuse_model(), tmp_path / "res4", strategy="Resource", reuse_factor=4)
    except ConfigError:
        return  # refusing an invalid reuse factor is also acceptable
    params = (project.hls_dir / "firmware" / "parameters.h").read_text()
    used = {int(v) for v in re.findall(r"reuse_factor = (\d+);", params)}
    assert used == {project.meta["reuse_factor"]}, f"recorded {project.meta['reuse_factor']}, firmware uses {used}"


def test_export_from_a_keras_file(tmp_path):
    path = tmp_path / "m.keras"
    small_model().save(path)
    project = export(path, tmp_path / "from_file", precision="ap_fixed<12,4>")
    assert project.firmware().n_inputs == 6


# ------------------------------------------------------------------------------------ refusals
def test_separable_conv1d_model_is_unsupported(tmp_path):
    model = keras.Sequential([keras.Input((8, 2)), keras.layers.SeparableConv1D(2, 3, name="conv_a"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(2, name="d")])
    with pytest.raises(UnsupportedError) as err:
        export(model, tmp_path / "conv")
    msg = str(err.value)
    assert "conv_a" in msg and "SeparableConv1D" in msg and "Conv1D" in msg
    assert "Supported layers" in msg and "Dense" in msg and "Activation" in msg
    assert not (tmp_path / "conv").exists()


def test_unsupported_activation_layer_is_named(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="d"),
                              keras.layers.Activation("elu", name="elu_act")])
    with pytest.raises(UnsupportedError) as err:
        export(model, tmp_path / "elu")
    msg = str(err.value)
    assert "elu_act" in msg and "'elu'" in msg
    for act in ("relu", "linear", "softmax", "sigmoid", "tanh"):
        assert act in msg


def test_dense_with_unsupported_activation_is_named(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="selu", name="d_selu")])
    with pytest.raises(UnsupportedError, match="d_selu.*selu"):
        export(model, tmp_path / "selu")


def test_relu6_is_unsupported(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="d"),
                              keras.layers.ReLU(max_value=6.0, name="relu6")])
    with pytest.raises(UnsupportedError) as err:
        export(model, tmp_path / "r6")
    assert "relu6" in str(err.value) and "max_value" in str(err.value) and "LeakyReLU" in str(err.value)


@pytest.mark.parametrize("kwargs, words", [
    (dict(backend="zynq"), ["'zynq'", "vitis", "pynq-z2", "zcu102"]),
    (dict(backend="zcu102", part="xc7z020clg400-1"), ["zcu102", "xczu9eg-ffvb1156-2-e", "xc7z020clg400-1", "vitis"]),
    (dict(strategy="Fastest"), ["Fastest", "Latency", "Resource"]),
    (dict(reuse_factor=0), ["reuse_factor", "0", "1 to 4096"]),
    (dict(reuse_factor=5000), ["5000", "1 to 4096"]),
    (dict(reuse_factor=2.5), ["2.5"]),
    (dict(clock_period_ns=0.5), ["clock_period_ns", "0.5", "1 and 100"]),
    (dict(clock_period_ns=250), ["250", "1 and 100"]),
])
def test_bad_options_raise_config_error_naming_value_and_choices(tmp_path, kwargs, words):
    with pytest.raises(ConfigError) as err:
        export(small_model(), tmp_path / "bad", **kwargs)
    for word in words:
        assert word in str(err.value), (word, str(err.value))
    assert leftovers(tmp_path) == []


def test_plan_naming_a_missing_layer_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        export(small_model(), tmp_path / "p", plan={"layers": {"fc9": {"weight": "ap_fixed<8,2>"}}})
    assert "fc9" in str(err.value) and "fc1" in str(err.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("plan, word", [
    ({"layers": {"fc1": {"weights": "ap_fixed<8,2>"}}}, "weights"),
    ({"default": "ap_fixed<16,6>", "precision": "ap_fixed<8,3>"}, "precision"),
])
def test_unknown_plan_slot_or_key_is_refused(tmp_path, plan, word):
    with pytest.raises(ConfigError) as err:
        export(small_model(), tmp_path / "p", plan=plan)
    assert word in str(err.value)
    assert leftovers(tmp_path) == []


def test_plan_and_precision_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        export(small_model(), tmp_path / "p", plan={"default": "ap_fixed<8,3>"}, precision="ap_fixed<8,3>")


@pytest.mark.parametrize("plan", [
    {"default": "ap_fixed<40,20>"},                                   # exact accumulator > 53 bits
    {"default": "ap_fixed<40,20>", "accum": "ap_fixed<48,24>"},       # product 80 bits
])
def test_plan_too_wide_to_emulate_is_refused_and_leaves_nothing(tmp_path, plan):
    parent = tmp_path / "parent"
    parent.mkdir()
    with pytest.raises(FastMLError) as err:
        export(small_model(), parent / "wide", plan=plan)
    assert "53" in str(err.value)
    assert leftovers(parent) == [], "an output or .partial folder was left behind"


def test_existing_output_folder_is_refused_unless_overwrite(tmp_path, project12):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError) as err:
        export(small_model(), out)
    assert str(out.name) in str(err.value) and "already exists" in str(err.value)
    assert (out / "keep.txt").read_text() == "mine"
    assert leftovers(tmp_path) == ["exists"]
    project = export(small_model(), out, precision="ap_fixed<12,4>", overwrite=True)
    assert not (out / "keep.txt").exists()
    assert (out / "project.json").is_file()
    assert project.meta["firmware_digest"] == project12.meta["firmware_digest"]
    assert leftovers(tmp_path) == ["exists"], "temp or .old folder left behind"


def test_missing_model_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nothere.keras"):
        export(tmp_path / "nothere.keras", tmp_path / "p")


def test_corrupt_model_file_is_a_data_error(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not a keras archive")
    with pytest.raises(DataError, match="broken.keras"):
        export(bad, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_model_file_with_wrong_suffix_is_a_data_error(tmp_path):
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"\x89HDF")
    with pytest.raises(DataError, match=r"model\.h5.*\.keras"):
        export(bad, tmp_path / "p")


# ------------------------------------------------------------------------------------ atomicity
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_export_leaves_no_folder(tmp_path, monkeypatch):
    export_module = importlib.import_module("fastml_lab.hls.export")

    parent = tmp_path / "parent"
    parent.mkdir()
    monkeypatch.setattr(export_module, "_read_firmware", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(small_model(), parent / "prj")
    assert leftovers(parent) == []


def test_interrupted_overwrite_keeps_the_old_project(tmp_path, monkeypatch, project12):
    import shutil

    export_module = importlib.import_module("fastml_lab.hls.export")

    parent = tmp_path / "parent"
    parent.mkdir()
    shutil.copytree(project12.path, parent / "prj")
    before = sorted(str(p.relative_to(parent)) for p in parent.rglob("*"))
    monkeypatch.setattr(export_module, "_read_firmware", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(small_model(), parent / "prj", precision="ap_fixed<8,3>", overwrite=True)
    assert sorted(str(p.relative_to(parent)) for p in parent.rglob("*")) == before
    assert Project.open(parent / "prj").firmware().digest() == project12.meta["firmware_digest"]


def test_invalid_reuse_factor_is_refused_with_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        export(_reuse_model(), tmp_path / "res4", strategy="Resource", reuse_factor=4)
    msg = str(err.value)
    assert "reuse_factor 4" in msg and "'fc1'" in msg and "would use 3" in msg
    valid = [int(v) for v in msg.rsplit(":", 1)[1].strip(" .").split(", ")]
    assert 1 in valid and 4 not in valid
    assert not (tmp_path / "res4").exists()
    for rf in valid[:3]:   # every value offered is accepted
        export(_reuse_model(), tmp_path / f"ok{rf}", strategy="Resource", reuse_factor=rf)


def test_project_folder_gets_the_usual_mode(project12):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(project12.path.stat().st_mode) == 0o777 & ~umask


def test_describing_or_estimating_a_model_announces_no_temporary_export(caplog):
    import logging

    from fastml_lab.estimate import estimate
    from fastml_lab.hls import describe

    with caplog.at_level(logging.INFO, logger="fastml_lab"):
        firmware = describe(small_model(), precision="ap_fixed<12,4>")
        estimate(small_model(), board="pynq-z2")
    assert firmware.n_outputs > 0
    assert not [r.getMessage() for r in caplog.records if "Exported" in r.getMessage()]
