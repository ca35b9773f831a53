"""Quantization-aware training with HGQ2: the model it builds, the widths it keeps or learns, the EBOPs
penalty, saving, errors, and the export that must agree with Keras on every value."""

from __future__ import annotations

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError, TrainingError, UnsupportedError
from fastml_lab.quantize import QuantizeResult, quantize
from fastml_lab.quantize.qat_model import (HGQ_START_BITS, INPUT_BITS, build_qat_model, resolve_bits,
                                           start_hgq_widths, trace_ranges)

from quantize_helpers import float_model, jets  # noqa: F401  (session fixtures)

keras = pytest.importorskip("keras")
pytest.importorskip("hgq")

LAYERS = ["fc1", "fc2", "output"]


@pytest.fixture(scope="module")
def uniform(float_model, jets):  # noqa: F811
    return quantize(float_model, jets, bits={"weights": 6, "activations": 8}, epochs=2, progress=False)


HGQ_BETAS = (0.0, 1e-5, 1e-4)


@pytest.fixture(scope="module")
def hgq_runs(float_model, jets):  # noqa: F811
    """The same HGQ training (fixed seed) without the EBOPs penalty and with two strengths of it."""
    return {beta: quantize(float_model, jets, hgq_beta=beta, epochs=3, batch_size=256, progress=False)
            for beta in HGQ_BETAS}


def _kif(quantizer):
    return [np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64) for x in quantizer.quantizer.kif]


def _accuracy(model, jets):  # noqa: F811
    return float(np.mean(model.predict(jets.X_test, verbose=0).argmax(axis=1) == jets.labels_test))


# ------------------------------------------------------------------------------------------ bits
def test_bits_grammar():
    assert resolve_bits(None, LAYERS) == {"fc1": {"weights": 6, "activations": INPUT_BITS},
                                          "fc2": {"weights": 6, "activations": 8},
                                          "output": {"weights": 6, "activations": 8}}
    assert resolve_bits(5, LAYERS)["fc2"] == {"weights": 5, "activations": 5}
    assert resolve_bits({"weights": 4, "inputs": 10}, LAYERS)["fc1"] == {"weights": 4, "activations": 10}
    per_layer = resolve_bits({"fc1": {"weights": 8, "activations": 12}, "default": 7}, LAYERS)
    assert per_layer == {"fc1": {"weights": 8, "activations": 12}, "fc2": {"weights": 7, "activations": 7},
                         "output": {"weights": 7, "activations": 7}}


@pytest.mark.parametrize("bits, message", [
    (1, "from 2 to 24"),
    ({"weights": 30}, "from 2 to 24"),
    ({"weights": "six"}, "got 'six'"),
    ({"fc9": 6}, "'fc9', which are not Dense layers of the model; its Dense layers are fc1, fc2, output"),
    ({"weights": 6, "fc1": 8}, "'weights', which are not Dense layers"),
    ({"fc1": {"weight": 6}}, r"unknown keys \['weight'\]"),
])
def test_bad_bits_are_refused_with_the_valid_forms(bits, message):
    with pytest.raises(ConfigError, match=message):
        resolve_bits(bits, LAYERS)


# ----------------------------------------------------------------------------------------- model
def test_qat_model_has_the_float_architecture_and_starts_from_its_weights(float_model, jets):  # noqa: F811
    widths = resolve_bits(16, [lay.name for lay in float_model.layers if type(lay).__name__ == "Dense"])
    qmodel = build_qat_model(float_model, widths)
    trace_ranges(qmodel, jets.X_train)
    assert [lay.name for lay in qmodel.layers] == [lay.name for lay in float_model.layers]
    assert [type(lay).__name__ for lay in qmodel.layers] == [
        "QDense", "Activation", "QDense", "Activation", "QDense", "QSoftmax"]
    for layer in float_model.layers:
        if type(layer).__name__ == "Dense":
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            qkernel = keras.ops.convert_to_numpy(qmodel.get_layer(layer.name).qkernel)
            assert np.max(np.abs(qkernel - kernel)) <= np.max(np.abs(kernel)) * 2.0 ** -14
    logits = [keras.Model(m.inputs, m.get_layer("output").output).predict(jets.X_test, verbose=0)
              for m in (float_model, qmodel)]
    assert np.max(np.abs(logits[1] - logits[0])) < 0.01  # 16 bits: the float model, nearly


def test_relu_layers_fused_activations_and_dropout_are_understood():
    model = keras.Sequential([
        keras.Input((16,)), keras.layers.Dense(8, name="fc1"), keras.layers.ReLU(name="act1"),
        keras.layers.Dropout(0.2, name="drop"), keras.layers.Dense(6, activation="relu", name="fc2"),
        keras.layers.Dense(5, name="out"), keras.layers.Softmax(name="sm")])
    qmodel = build_qat_model(model, resolve_bits(8, ["fc1", "fc2", "out"]))
    assert [lay.name for lay in qmodel.layers] == ["fc1", "act1", "fc2", "out", "sm"]
    assert qmodel.get_layer("fc2").activation.__name__ == "relu"
    signs = [int(_kif(qmodel.get_layer(name).iq)[0].max()) for name in ("fc1", "fc2", "out")]
    assert signs == [1, 0, 0]  # inputs after a ReLU need no sign bit
    capped = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, name="fc1"),
                               keras.layers.ReLU(max_value=6.0, name="relu6")])
    with pytest.raises(UnsupportedError, match="'relu6'"):
        build_qat_model(capped, resolve_bits(8, ["fc1"]))
    fused = keras.Sequential([keras.Input((16,)), keras.layers.Dense(5, activation="softmax", name="out")])
    with pytest.raises(UnsupportedError, match=r"'out' \(Dense, activation 'softmax'\).*Split the softmax off"):
        build_qat_model(fused, resolve_bits(8, ["out"]))


def test_uniform_mode_keeps_the_chosen_widths_and_the_accuracy(uniform, float_model, jets):  # noqa: F811
    assert isinstance(uniform, QuantizeResult) and uniform.mode == "uniform" and uniform.beta is None
    assert uniform.bits["fc1"] == {"weights": 6, "activations": INPUT_BITS}
    for name, widths in uniform.bits.items():
        layer = uniform.model.get_layer(name)
        k, i, f = _kif(layer.kq)
        assert k.size == 1 and k + i + f == widths["weights"]
        codes = keras.ops.convert_to_numpy(layer.qkernel) * 2.0 ** f
        assert np.array_equal(codes, np.round(codes)) and np.abs(codes).max() <= 2 ** (widths["weights"] - 1) - 1
        k, i, f = _kif(layer.iq)
        assert k.size == 1 and k + i + f == widths["activations"]
    assert _accuracy(float_model, jets) > 0.6 and _accuracy(uniform.model, jets) > _accuracy(float_model, jets) - 0.03
    assert uniform.ebops == uniform.fit.ebops > 0
    # The hardware estimate (Vivado HLS on the PYNQ-Z2): fc1's 6-bit weights meet 16-bit input features
    # and take DSPs, as the published 6-bit QAT model's 221 DSP do; the later 6 x 8 products go to LUTs.
    dense = [layer for layer in uniform.fit.hardware.layers if layer.op == "dense"]
    assert dense[0].dsp > 0 and all(layer.dsp == 0 for layer in dense[1:]), [(l.name, l.dsp) for l in dense]
    assert uniform.fit.dsp == sum(layer.dsp for layer in uniform.fit.hardware.layers)
    assert uniform.history.epochs_run >= 1 and set(uniform.sparsity) == set(uniform.bits)


def test_hgq_beta_lowers_ebops_with_per_weight_widths(hgq_runs, jets):  # noqa: F811
    penalised = hgq_runs[1e-5]
    assert penalised.mode == "hgq" and penalised.beta == 1e-5
    layer = penalised.model.get_layer("fc2")
    k, i, f = _kif(layer.kq)
    bits = k + i + f
    assert bits.shape == tuple(layer.kernel.shape)  # one width per weight
    assert _kif(layer.iq)[2].size == layer.kernel.shape[0]  # one width per input feature
    assert _accuracy(penalised.model, jets) > 0.5


def test_a_larger_beta_gives_fewer_ebops(hgq_runs):
    """Each tenfold beta must show: the widths settle where penalty and loss balance, instead of
    all falling at the same pace whatever beta (which gave equal EBOPs for large betas)."""
    ebops = [hgq_runs[beta].ebops for beta in HGQ_BETAS]
    assert all(later < 0.6 * earlier for earlier, later in zip(ebops, ebops[1:])), ebops
    assert all(run.fit.ebops == run.ebops for run in hgq_runs.values())


def test_hgq_inputs_start_at_the_given_width_and_biases_saturate(float_model, jets):  # noqa: F811
    widths = resolve_bits({"weights": 7, "activations": 9}, LAYERS, HGQ_START_BITS)
    qmodel = build_qat_model(float_model, widths, "hgq", 1e-5)
    start_hgq_widths(qmodel, widths, jets.X_train)
    for name in LAYERS:
        layer = qmodel.get_layer(name)
        k, i, f = _kif(layer.iq)
        total = k + i + f  # features that are always zero (dead ReLUs) need no bits
        assert set(np.unique(total)) <= {0, widths[name]["activations"]} and total.max() > 0, name
        assert layer.iq.quantizer.overflow_mode == "WRAP" and hasattr(layer.iq.quantizer, "_f")  # KIF
        # a wrapping KBI bias whose width touched zero would take 32 integer bits and stay zero
        assert layer.bq.quantizer.overflow_mode == "SAT_SYM", name
        k, i, f = _kif(layer.bq)
        bias = keras.ops.convert_to_numpy(layer.bias)
        assert np.all(np.abs(bias) <= 2.0 ** i), name  # its integer bits hold the float biases


def test_a_nan_loss_stops_training_with_a_readable_error(float_model, jets):  # noqa: F811
    with pytest.raises(TrainingError, match=r"'jet_mlp_qat' diverged in epoch [12] of 2: the loss became (nan|inf).*"
                                            r"smaller learning rate \(this run: 1e\+38\)"):
        quantize(float_model, jets, hgq_beta=1e-5, epochs=2, batch_size=256, learning_rate=1e38, progress=False)


@pytest.mark.parametrize("which", ["uniform", "hgq"])
def test_saved_qat_model_loads_and_computes_the_same(which, uniform, hgq_runs, jets, tmp_path):  # noqa: F811
    from fastml_lab.train import load_model
    from fastml_lab.train import save_model

    model = uniform.model if which == "uniform" else hgq_runs[1e-5].model
    path = save_model(model, tmp_path / "q.keras")
    again = load_model(path)
    X = jets.X_test[:500]
    assert np.array_equal(again.predict(X, verbose=0), model.predict(X, verbose=0))


def test_quantize_refuses_what_it_cannot_do(float_model, jets, uniform):  # noqa: F811
    with pytest.raises(ConfigError, match="hgq_beta must be a number >= 0"):
        quantize(float_model, jets, hgq_beta=-1.0)
    with pytest.raises(ConfigError, match="already quantization-aware"):
        quantize(uniform.model, jets)
    with pytest.raises(ConfigError, match="sparsity must be a fraction"):
        quantize(float_model, jets, prune=1.0)
    tanh = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, name="fc1"),
                             keras.layers.Activation("tanh", name="tanh1"), keras.layers.Dense(5, name="out")])
    with pytest.raises(UnsupportedError, match="'tanh1'.*Supported: Dense"):
        quantize(tanh, jets, epochs=1)


# ---------------------------------------------------------------------------------------- export
@pytest.mark.slow
@pytest.mark.needs_gxx
@pytest.mark.parametrize("which", ["uniform", "hgq"])
def test_export_keras_emulator_and_csim_agree_on_every_value(which, uniform, hgq_runs, jets, tmp_path):  # noqa: F811
    from fastml_lab.hls import export, run_csim

    model = uniform.model if which == "uniform" else hgq_runs[1e-5].model
    project = export(model, tmp_path / "prj")
    X = np.concatenate([jets.X_test, jets.X_test[:200] * 8])  # beyond the traced ranges too
    keras_out = model.predict(X, verbose=0, batch_size=4096)
    emulated = project.firmware().predict(X)
    simulated = run_csim(project, X)
    assert project.meta["precision_source"] == "quantizers"
    assert int((keras_out != emulated).sum()) == 0
    assert int((emulated != simulated).sum()) == 0
