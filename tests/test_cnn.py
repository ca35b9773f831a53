"""Convolutional networks through export, C simulation, emulator and estimate, value for value.

The matrix: Conv1D/Conv2D (valid and same padding, strides 1 and 2, kernels 1x? to 5), max and
average pooling (1-D/2-D, overlapping windows and 'same' padding in io_parallel), global pooling,
Flatten, batch norm after a convolution, ReLU and softmax, an HGQ2 network; io_parallel and
io_stream; Latency and Resource; truncation, rounding, saturation and wrap-around types; inputs far
outside the range the types hold. Each project is exported once and compiled once (shared by the
session), and every check runs many events through that one build.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fastml_lab.estimate import estimate  # noqa: E402
from fastml_lab.exceptions import ConfigError, DataError, UnsupportedError  # noqa: E402
from fastml_lab.hls import check_project, export  # noqa: E402

L = keras.layers


def _set_batch_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, var.shape)])


def _conv2d_parallel():
    return keras.Sequential([
        keras.Input((8, 8, 2)),
        L.Conv2D(3, 3, strides=2, padding="same", activation="relu"), L.BatchNormalization(),
        L.Conv2D(4, (2, 3), padding="same"), L.MaxPooling2D(3, strides=1, padding="same"),
        L.AveragePooling2D(3, strides=2, padding="same"), L.Conv2D(3, 2), L.GlobalAveragePooling2D(),
        L.Dense(3), L.Activation("softmax")])


def _conv2d_stream():
    return keras.Sequential([
        keras.Input((9, 9, 1)),
        L.Conv2D(3, 3, padding="same", activation="relu"), L.BatchNormalization(), L.MaxPooling2D(2),
        L.Conv2D(4, 2, strides=2), L.AveragePooling2D(2), L.Flatten(), L.Dense(3)])


def _conv1d_parallel():
    return keras.Sequential([
        keras.Input((16, 2)),
        L.Conv1D(3, 3, strides=2, padding="same", activation="relu"), L.AveragePooling1D(3, strides=2, padding="same"),
        L.Conv1D(2, 2), L.BatchNormalization(), L.GlobalMaxPooling1D(), L.Dense(3)])


def _conv1d_stream():
    return keras.Sequential([
        keras.Input((15, 3)),
        L.Conv1D(4, 5, padding="same"), L.AveragePooling1D(3), L.Conv1D(3, 2, strides=2, activation="relu"),
        L.GlobalAveragePooling1D(), L.Dense(2)])


#: name -> (model, io, precision, strategy, reuse factor)
CASES = {
    "conv2d_parallel_rnd_sat": (_conv2d_parallel, "parallel", "ap_fixed<10,4,AP_RND,AP_SAT>", "Latency", 1),
    "conv2d_stream_trn_wrap": (_conv2d_stream, "stream", "ap_fixed<16,6>", "Latency", 1),
    "conv1d_parallel_resource_wrap": (_conv1d_parallel, "parallel", "ap_fixed<8,3>", "Resource", 2),
    "conv1d_stream_conv_satsym": (_conv1d_stream, "stream", "ap_fixed<12,5,AP_RND_CONV,AP_SAT_SYM>", "Latency", 1),
}


def _events(shape, n=2500, seed=0):
    """Normal values, a tenth of the events 30 times larger (far outside every type), and exact
    midpoints of a fine grid (where the rounding modes differ)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=2.0, size=(n, *shape))
    X[: n // 10] *= 30
    X[n // 10: n // 5] = np.round(X[n // 10: n // 5] * 64) / 64 + 1 / 128
    return X


@pytest.fixture(scope="session")
def cnn_projects(tmp_path_factory):
    """Every case exported once: ``{name: (project, events)}``."""
    root = tmp_path_factory.mktemp("cnn")
    found = {}
    for k, (name, (build, io, precision, strategy, reuse)) in enumerate(CASES.items()):
        keras.utils.set_random_seed(k)
        model = build()
        _set_batch_norms(model, np.random.default_rng(k))
        project = export(model, root / name, precision=precision, io_type=io, strategy=strategy, reuse_factor=reuse)
        found[name] = (project, model, _events(model.inputs[0].shape[1:], seed=k))
    return found


@pytest.mark.needs_gxx
@pytest.mark.parametrize("name", list(CASES))
def test_emulator_equals_csim(cnn_projects, name):
    project, model, X = cnn_projects[name]
    result = check_project(project, X)
    assert result.mismatches == 0, result.describe()
    assert result.values == X.shape[0] * project.firmware().n_outputs
    # the emulator follows the network: far from the saturated events, close to Keras' floats
    y = project.firmware().predict(X[X.shape[0] // 5:])
    if "rnd_sat" in name or "trn_wrap" in name:
        ref = model.predict(X[X.shape[0] // 5:].astype("float32"), verbose=0)
        assert np.mean(np.argmax(y, 1) == np.argmax(ref, 1)) > 0.5


def test_records_the_io_style_and_the_input_shape(cnn_projects):
    project, model, X = cnn_projects["conv2d_stream_trn_wrap"]
    assert project.meta["io_type"] == "io_stream"
    assert project.meta["input_shape"] == [9, 9, 1]
    firmware = project.firmware()
    assert firmware.input_shape == (9, 9, 1)
    assert [layer for layer in firmware.description["layers"] if layer["op"] == "zeropad2d"]
    parallel, _, _ = cnn_projects["conv2d_parallel_rnd_sat"]
    assert parallel.meta["io_type"] == "io_parallel"
    assert "io_type" not in parallel.firmware().description


def test_events_as_images_flat_or_one_image(cnn_projects):
    project, _, X = cnn_projects["conv1d_stream_conv_satsym"]
    firmware = project.firmware()
    y = firmware.predict(X[:20])
    assert np.array_equal(firmware.predict(X[:20].reshape(20, -1)), y)
    assert np.array_equal(firmware.predict(X[3]), y[3:4])
    with pytest.raises(DataError, match=r"expected \(n_events, 15, 3\) or \(n_events, 45\)"):
        firmware.predict(X[:5, :, :2])


@pytest.mark.parametrize("name", list(CASES))
def test_estimate_answers(cnn_projects, name):
    project, _, _ = cnn_projects[name]
    result = estimate(project).to_dict()
    totals = result["totals"]
    assert totals["latency_cycles"] > 0 and totals["ii_cycles"] >= 1
    assert all(totals[key] >= 0 for key in ("dsp", "lut", "ff", "bram_18k"))
    assert result["target"]["io_type"] == project.meta["io_type"]
    ops = {row["op"] for row in result["layers"]}
    assert {"conv1d", "conv2d"} & ops
    conv = next(row for row in result["layers"] if row["op"].startswith("conv"))
    assert conv["ii_cycles"] > 1  # a convolution's pixels take turns through its kernel
    json.dumps(result)


def test_estimate_command_json(cnn_projects, capsys):
    from fastml_lab.cli import main

    project, _, _ = cnn_projects["conv2d_stream_trn_wrap"]
    assert main(["estimate", str(project.path), "--board", "pynq-z2", "--json"]) in (0, None)
    result = json.loads(capsys.readouterr().out)
    assert result["target"]["io_type"] == "io_stream" and result["fits"] in (True, False)


@pytest.fixture(scope="session")
def hgq_project(tmp_path_factory):
    pytest.importorskip("hgq")
    from hgq.layers import QAveragePooling2D, QConv2D, QDense, QMaxPooling2D

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), QConv2D(3, 3, activation="relu", padding="same"), QMaxPooling2D(2),
        QConv2D(2, 2, activation="relu"), QAveragePooling2D(3), L.Flatten(), QDense(3)])
    X = _events((8, 8, 1), n=1500, seed=3).astype("float32")
    model.compile("adam", "mse")
    model.fit(X, np.random.default_rng(1).normal(size=(len(X), 3)), epochs=1, verbose=0)
    return export(model, tmp_path_factory.mktemp("cnn_hgq") / "hgq"), model, X


@pytest.mark.needs_gxx
def test_hgq2_convolutions_equal_keras_and_csim(hgq_project):
    project, model, X = hgq_project
    y = project.firmware().predict(X)
    assert np.array_equal(y, np.asarray(model.predict(X, verbose=0), dtype=np.float64))
    assert check_project(project, X).mismatches == 0


@pytest.mark.needs_gxx
def test_board_stream_project(tmp_path):
    """The board's AXI-stream wrapper around an io_stream CNN (the contract's network)."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, activation="relu"), L.MaxPooling2D(2),
                              L.Flatten(), L.Dense(3)])
    project = export(model, tmp_path / "z2", precision="ap_fixed<12,4,AP_RND,AP_SAT>", io_type="stream",
                     backend="pynq-z2")
    assert project.firmware().interface == "axi_stream"
    assert check_project(project, _events((8, 8, 1), n=400, seed=5)).mismatches == 0
    assert "fits" in estimate(project).verdict()


# ---------------------------------------------------------------------------------- refusals (no g++)
def _refused(model, match, io="parallel", strategy="Latency", tmp=None, **kwargs):
    with pytest.raises((UnsupportedError, ConfigError), match=match):
        export(model, tmp / "refused", io_type=io, strategy=strategy, **kwargs)
    assert not (tmp / "refused").exists()


@pytest.mark.parametrize("layer, io, match", [
    (lambda: L.Conv2D(2, 3, dilation_rate=2, name="dil"), "parallel", r"'dil' \(Conv2D\) has dilation_rate"),
    (lambda: L.MaxPooling2D(3, strides=2, name="pool"), "stream", r"'pool'.*strides equal to pool_size"),
    (lambda: L.AveragePooling2D(2, padding="same", name="pool"), "stream", r"'pool'.*padding='valid'"),
    (lambda: L.DepthwiseConv2D(3, name="dw"), "parallel", r"'dw' is a DepthwiseConv2D.*Supported layers: .*Conv2D"),
    (lambda: L.Dense(3, name="pixels"), "parallel", r"'pixels' is a Dense applied to .*Flatten or a global pooling"),
])
def test_refused_layers_are_named(tmp_path, layer, io, match):
    model = keras.Sequential([keras.Input((8, 8, 1)), layer(), L.Flatten(), L.Dense(2)])
    _refused(model, match, io=io, tmp=tmp_path)


def test_unroll_limit_checked_ahead(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 32)), L.Conv2D(16, 3, name="wide"), L.Flatten(), L.Dense(2)])
    _refused(model, r"'wide'.*4,608 products.*4,096.*Resource", tmp=tmp_path)


def test_unknown_io_style(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    _refused(model, r"Unknown I/O style 'serial'; valid: parallel, stream", io="serial", tmp=tmp_path)


def test_hgq2_stream_refused(tmp_path):
    pytest.importorskip("hgq")
    from hgq.layers import QConv1D, QDense

    model = keras.Sequential([keras.Input((8, 2)), QConv1D(2, 3), L.Flatten(), QDense(2)])
    _refused(model, r"HGQ2.*--io parallel", io="stream", tmp=tmp_path)
