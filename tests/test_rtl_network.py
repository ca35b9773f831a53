"""export --backend rtl: an HGQ2 network to da4ml's Verilog, its emulator against Verilator and Keras."""

import json
import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hgq")
pytest.importorskip("da4ml")

from hgq.layers import QDense  # noqa: E402

from fastml_lab.cli import main  # noqa: E402
from fastml_lab.exceptions import UnsupportedError  # noqa: E402
from fastml_lab.hls.check import check_project  # noqa: E402
from fastml_lab.project import Project  # noqa: E402
from fastml_lab.rtl.network import RTL_PIPELINE, check_rtl_model, export_rtl  # noqa: E402

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="Verilator is not installed")


def _hgq_model(widths=(8, 4), n_inputs=6, seed=4, final=None, between=None):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((n_inputs,))]
    for k, width in enumerate(widths):
        last = k == len(widths) - 1
        if between == "activation" and not last:
            layers += [QDense(width), keras.layers.Activation("relu")]
        else:
            layers.append(QDense(width, activation=None if last else "relu"))
    if final is not None:
        layers.append(final)
    model = keras.Sequential(layers)
    model(np.random.default_rng(seed).normal(size=(256, n_inputs)).astype("float32"), training=True)
    return model


def _inputs(n_inputs=6, n=2000, seed=2):
    X = np.random.default_rng(seed).normal(scale=3, size=(n, n_inputs))
    X[:40] *= 300.0  # far outside any traced range: the input port wraps
    return X


@pytest.fixture(scope="module")
def small_project(tmp_path_factory):
    model = _hgq_model(between="activation", final=keras.layers.Activation("softmax"))
    out = tmp_path_factory.mktemp("rtl") / "prj"
    return model, export_rtl(model, out)


def test_record_says_what_the_rtl_is(small_project):
    _, project = small_project
    meta = project.meta
    assert meta["backend"] == "rtl" and meta["family"] == "nn" and project.simulator == "verilator"
    assert meta["board"] == "pynq-z2" and meta["part"] == "xc7z020clg400-1"
    assert meta["timing"]["source"] == RTL_PIPELINE and meta["timing"]["ii_cycles"] == 1
    assert meta["timing"]["latency_cycles"] == meta["da4ml"]["stages"] == len(project.firmware().layer_names)
    assert meta["softmax_left_out"] is True and meta["outputs"].startswith("logits")
    for rel in project.rtl["sources"]:
        assert (project.hls_dir / rel).is_file(), rel
    assert project.rtl["top"] == "fastml_top"


def test_emulator_equals_the_keras_model(small_project):
    model, project = small_project
    X = _inputs()
    logits = keras.Model(model.inputs, model.layers[-2].output)
    expected = np.asarray(logits.predict(X.astype(np.float32), verbose=0), dtype=np.float64)
    # The Keras model quantizes float32 inputs; the emulator reads them as given.
    got = project.firmware().predict(X.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(got, expected)


@needs_verilator
def test_verilator_equals_the_emulator(small_project):
    _, project = small_project
    result = check_project(project, _inputs(n=3000, seed=7))
    assert result.bit_exact, result.describe()
    assert result.values == 3000 * project.firmware().n_outputs
    assert "Verilator" in result.describe()


@needs_verilator
def test_cli_export_and_check(tmp_path):
    model = _hgq_model(widths=(5, 3), n_inputs=4, seed=11)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "X.npy", _inputs(n_inputs=4, n=500, seed=3))
    assert main(["export", str(tmp_path / "m.keras"), "--backend", "rtl", "--out", str(tmp_path / "p"),
                 "--part", "xc7a35tcpg236-1", "--clock-ns", "5"]) == 0
    meta = json.loads((tmp_path / "p" / "project.json").read_text())
    assert meta["board"] is None and meta["part"] == "xc7a35tcpg236-1" and meta["clock_period_ns"] == 5.0
    assert main(["check", str(tmp_path / "p"), "--input", str(tmp_path / "X.npy")]) == 0


def test_a_faster_clock_cuts_more_stages(tmp_path):
    model = _hgq_model(widths=(16, 8, 4), seed=5)
    slow = export_rtl(model, tmp_path / "slow", clock_period_ns=20)
    fast = export_rtl(model, tmp_path / "fast", clock_period_ns=4)
    assert fast.timing["latency_cycles"] > slow.timing["latency_cycles"] >= 1
    X = _inputs(n=300)
    np.testing.assert_array_equal(fast.firmware().predict(X), slow.firmware().predict(X))


def test_float_models_and_other_layers_are_refused_by_name():
    float_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(UnsupportedError, match="no HGQ2 quantizers.*quantize"):
        check_rtl_model(float_model)
    tanh = _hgq_model(final=keras.layers.Activation("tanh"))
    with pytest.raises(UnsupportedError, match="tanh|Activation"):
        check_rtl_model(tanh)
    keras.utils.set_random_seed(0)
    mid_softmax = keras.Sequential([keras.Input((4,)), QDense(4), keras.layers.Softmax(name="sm"), QDense(2)])
    with pytest.raises(UnsupportedError, match="'sm'.*softmax"):
        check_rtl_model(mid_softmax)


def test_cli_refusals_come_before_any_work(tmp_path, capsys):
    model = _hgq_model()
    model.save(tmp_path / "m.keras")
    base = ["export", str(tmp_path / "m.keras"), "--backend", "rtl"]
    for out, extra, why in (("a", ["--reuse", "2"], "--reuse does not apply"),
                            ("b", ["--board", "pynq-z2", "--part", "xc7a35tcpg236-1"], "not both"),
                            ("c", ["--precision", "ap_fixed<8,3>"], "leave out --precision")):
        assert main([*base, "--out", str(tmp_path / out), *extra]) != 0
        assert why in capsys.readouterr().err
        assert not (tmp_path / out).exists()
    bdt_only = main(["export", str(tmp_path / "m.keras"), "--backend", "vhdl", "--out", str(tmp_path / "d")])
    assert bdt_only != 0 and "--backend rtl" in capsys.readouterr().err


def test_estimate_is_da4mls_own(small_project):
    from fastml_lab.estimate import estimate

    _, project = small_project
    est = estimate(project)
    assert est.latency_cycles == project.timing["latency_cycles"] and est.ii_cycles == 1
    assert est.resources["dsp"] == 0
    stages = json.loads((project.path / "firmware.json").read_text())["layers"]
    assert est.resources["lut"] == sum(round(stage["lut_cost"]) for stage in stages) > 0
    assert est.resources["ff"] == project.meta["da4ml"]["ff_estimate"]
    assert "da4ml" in est.to_dict()["kind"] and est.wrapper is None and est.implementation is None


def test_reopened_project_is_the_same(small_project):
    _, project = small_project
    again = Project.open(project.path)
    X = _inputs(n=100)
    np.testing.assert_array_equal(again.firmware().predict(X), project.firmware().predict(X))
    assert again.firmware().digest() == project.meta["firmware_digest"]


@needs_verilator
def test_waveform_shows_the_latency(small_project, tmp_path):
    from fastml_lab.rtl.waveform import describe_rtl, plot_waveform, read_vcd, record_vcd

    _, project = small_project
    X = _inputs(n=6, seed=9)
    changes = read_vcd(record_vcd(project, X, tmp_path / "w.vcd"))
    latency = project.timing["latency_cycles"]
    # Event k is caught by the rising edge at time 2k + 1; its result must be on the output port
    # right after the edge `latency` cycles later: the emulator's outputs, packed as the port packs
    # them (each padded to the port's width, two's complement, output 0 in the lowest bits).
    out_type = project.firmware().output_type
    expected = project.firmware().predict(X)
    for k, row in enumerate(expected):
        raw = [int(v) % (1 << out_type.width) for v in np.round(row * 2.0 ** out_type.fractional).astype(np.int64)]
        packed = sum(r << (out_type.width * j) for j, r in enumerate(raw))
        edge = 2 * (k + latency) + 1
        value = [v for t, v in changes["model_out"] if t <= edge][-1]
        assert value == packed, f"event {k}: the output after the edge at {edge} is not its result"
    assert plot_waveform(changes, latency).get_title().endswith(f"latency {latency} cycles, one event per cycle")
    text = describe_rtl(project)
    assert "model_inp" in text and f"{latency} pipeline stages" in text


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
def test_the_mapping_travels_into_the_package_and_its_profile(tmp_path):
    from fastml_lab.estimate.model import TECHNOLOGY_MAPPING
    from fastml_lab.overlay import load as load_overlay
    from fastml_lab.overlay.packaging import package
    from fastml_lab.rtl.yosys import map_project

    project = export_rtl(_hgq_model(widths=(4, 3), n_inputs=4, seed=8), tmp_path / "p", part="xc7z020clg400-1")
    mapping = map_project(project)
    project.record_mapping(mapping)
    folder = package(project, "mapped", out=tmp_path / "pkg")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["resources"]["kind"] == TECHNOLOGY_MAPPING
    assert manifest["resources"]["LUT"] == mapping["resources"]["LUT"] > 0
    with load_overlay(folder, backend="software") as overlay:
        modelled = overlay.profile(_inputs(n_inputs=4, n=200), repeats=2)["modelled"]
    assert modelled["resources"]["FF"] == mapping["resources"]["FF"]
    assert modelled["source"] == RTL_PIPELINE
