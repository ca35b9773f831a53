"""HGQ2 quantization-aware models: Keras, the emulator and the C simulation agree on every value.

The quantizers' bit widths are set at random per element (some to zero bits), so the firmware has
per-element quantizers, negative-integer-bit weight types and pruned-away inputs; the inputs
include values that wrap. No precision plan is given: the quantizers decide every type.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
hgq = pytest.importorskip("hgq")

from fastml_lab.hls import export, run_csim  # noqa: E402

pytestmark = [pytest.mark.needs_gxx, pytest.mark.slow]


def _hgq_model(seed: int, softmax: bool, overflow: str):
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QDense, QSoftmax
    from hgq.utils import trace_minmax

    keras.utils.set_random_seed(seed)
    with QuantizerConfigScope(place="all", default_q_type="kbi", overflow_mode="SAT_SYM"), \
            QuantizerConfigScope(place="datalane", default_q_type="kif", overflow_mode=overflow):
        layers = [keras.Input((6,), name="features"), QDense(12, activation="relu", name="fc1"),
                  QDense(8, activation="relu", name="fc2"), QDense(4, name="out")]
        if softmax:
            layers.append(QSoftmax(name="sm"))
        model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2, size=(512, 6)).astype("float32")
    model(X)
    for layer in model.layers:   # heterogeneous fractional bits, some elements at zero bits
        for quantizer in (getattr(layer, "_iq", None), getattr(layer, "_kq", None)):
            inner = getattr(quantizer, "quantizer", None)
            if inner is None:
                continue
            if hasattr(inner, "_f"):
                inner._f.assign(rng.integers(-2, 6, size=inner._f.shape).astype("float32"))
            elif hasattr(inner, "_b"):
                inner._b.assign(rng.integers(0, 7, size=inner._b.shape).astype("float32"))
    trace_minmax(model, X, batch_size=512)
    return model


CASES = {
    "hgq_wrap_vitis": dict(softmax=False, overflow="WRAP", backend="vitis"),
    "hgq_sat_softmax_vitis": dict(softmax=True, overflow="SAT", backend="vitis"),
    "hgq_wrap_pynq_z2": dict(softmax=False, overflow="WRAP", backend="pynq-z2"),
}


@pytest.fixture(scope="module")
def hgq_projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("bitexact_hgq")
    built = {}
    for i, (name, case) in enumerate(CASES.items()):
        model = _hgq_model(i, case["softmax"], case["overflow"])
        built[name] = (model, export(model, root / name, backend=case["backend"]))
    return built


def _inputs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2, size=(5000, 6))
    X[:250] *= 30                       # beyond the traced range: wraps or saturates
    X[250:500] = rng.integers(-256, 256, size=(250, 6)) / 32 + 1 / 64   # grid midpoints
    return X.astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
def test_keras_emulator_and_csim_agree_on_every_value(hgq_projects, case):
    model, project = hgq_projects[case]
    X = _inputs(len(case))
    emulated = project.firmware().predict(X)
    simulated = run_csim(project, X)
    keras_out = np.asarray(model.predict(X, verbose=0), dtype=np.float64)
    for other, label in ((simulated, "C simulation"), (keras_out, "Keras")):
        bad = np.argwhere(emulated != other)
        assert bad.size == 0, (f"{case}: {len(bad)} of {emulated.size} values differ from {label}; first at "
                               f"{bad[0].tolist()}: {emulated[tuple(bad[0])]} vs {other[tuple(bad[0])]}")
    assert np.unique(emulated).size > 10


def test_quantizers_reach_the_firmware(hgq_projects):
    """Per-element quantizers, zero-bit elements and the recorded source of the precisions."""
    model, project = hgq_projects["hgq_wrap_vitis"]
    fw = project.firmware()
    quantizers = [layer for layer in fw.description["layers"] if layer["op"] == "quantize"]
    assert len(quantizers) == 3
    assert any(len(layer["element_types"]) > 1 for layer in quantizers)
    assert any((fw.arrays[f"{layer['name']}/type_index"] == -1).any() for layer in quantizers)
    assert project.meta["precision_source"] == "quantizers"
    assert set(project.meta["plan"]["layers"]) >= {"fc1", "fc2", "out"}


def test_a_plan_for_a_quantized_model_is_refused(hgq_projects, tmp_path):
    from fastml_lab.exceptions import ConfigError

    model, _ = hgq_projects["hgq_wrap_vitis"]
    with pytest.raises(ConfigError, match="quantizers"):
        export(model, tmp_path / "p", precision="ap_fixed<16,6>")
    assert not (tmp_path / "p").exists()
