"""Numerical profiling: distributions, overflow and vanish counts against a direct numpy count,
the suggested plan, the JSON, the text summary and the plot."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from conftest import make_blobs  # noqa: E402
from fastml_lab.exceptions import ConfigError, DataError, UnsupportedError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402
from fastml_lab.hls import PrecisionPlan  # noqa: E402
from fastml_lab.quantize import Profile, profile  # noqa: E402
from fastml_lab.train import build_model, train_model  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained():
    X, labels = make_blobs(n_events=3000, seed=4)
    X *= 3.0  # inputs up to ~20: too wide for a few integer bits
    model = build_model("16-8", seed=4)
    train_model(model, (X, labels), epochs=2, progress=False, patience=None)
    return model, X


def _outputs(model, X, name):
    probe = keras.Model(model.inputs, model.get_layer(name).output)
    return probe.predict(X, verbose=0).astype(np.float64)


def _by_label(prof: Profile) -> dict:
    return {(d.layer, d.slot): d for d in prof.distributions}


def test_too_few_integer_bits_overflow_exactly_as_a_direct_count(trained):
    model, X = trained
    prof = profile(model, X, plan=PrecisionPlan.uniform("ap_fixed<8,2>"), sample=1000)
    found = _by_label(prof)
    limit = 2.0  # ap_fixed<8,2>, truncating: x overflows when x >= 2 or x < -2
    sample = X[:1000].astype(np.float64)
    expected = {("input", "input"): sample,
                **{(name, "result"): _outputs(model, sample, name) for name in ("fc1", "relu1", "fc2", "relu2", "output")},
                ("fc1", "weight"): model.get_layer("fc1").get_weights()[0]}
    for key, values in expected.items():
        direct = int(np.sum((values >= limit) | (values < -limit)))
        assert found[key].overflows == direct, key
        assert found[key].values == values.size
    assert found["input", "input"].overflows > 1000
    assert found["fc1", "result"].overflows > 0
    assert prof.overflows["fc1"]["result"] == found["fc1", "result"].overflows
    assert prof.total_overflows == sum(d.overflows for d in prof.distributions)


def test_vanish_counts_follow_the_rounding_mode(trained):
    model, X = trained
    weights = model.get_layer("fc1").get_weights()[0].astype(np.float64)
    lsb = 2.0 ** -4
    truncating = _by_label(profile(model, X, plan={"default": "ap_fixed<6,2>"}, sample=200))
    # TRN floors: small positive values become 0, small negative ones -lsb.
    assert truncating["fc1", "weight"].vanished == int(np.sum((weights > 0) & (weights < lsb)))
    rounding = _by_label(profile(model, X, plan={"default": "ap_fixed<6,2,AP_RND,AP_SAT>"}, sample=200))
    # RND rounds half up: -lsb/2 <= x < lsb/2 becomes 0.
    assert rounding["fc1", "weight"].vanished == int(np.sum((weights != 0) & (weights >= -lsb / 2) & (weights < lsb / 2)))
    assert rounding["fc1", "weight"].vanished > 0
    relu = _outputs(model, X[:200].astype(np.float64), "relu1")
    assert truncating["relu1", "result"].zeros == int(np.sum(relu == 0)) > 0
    assert truncating["relu1", "result"].vanished == int(np.sum((relu > 0) & (relu < lsb)))


def test_suggested_plan_covers_every_range_on_the_same_sample(trained):
    model, X = trained
    narrow = profile(model, X, plan=PrecisionPlan.uniform("ap_fixed<10,2>"), sample=1500)
    assert narrow.total_overflows > 0
    suggested = narrow.suggested_plan()
    assert isinstance(suggested, PrecisionPlan)
    assert suggested.input_type().width == 10
    assert suggested.input_type().integer > 2  # more integer bits where the inputs need them
    assert suggested.type_for("fc1", "weight").integer <= 2  # fewer where the weights are small
    again = profile(model, X, plan=suggested, sample=1500)
    assert again.total_overflows == 0
    assert again.suggested_plan().to_dict() == suggested.to_dict()
    suggested.layers["fc1"]["weight"] = FixedType(4, 1)  # a copy: the profile keeps its own
    assert narrow.suggested_plan().type_for("fc1", "weight").width == 10


def test_a_fused_activation_is_profiled_before_and_after_it_as_hls4ml_splits_it():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(3, name="fc2")])
    X = np.random.default_rng(2).normal(size=(400, 6)).astype("float32")
    found = _by_label(profile(model, X, plan={"layers": {"fc1_relu": {"result": "ap_ufixed<8,3>"}}}))
    sums = X.astype(np.float64) @ model.get_layer("fc1").get_weights()[0]
    assert found["fc1", "result"].zeros == 0 and found["fc1", "result"].values == sums.size
    assert found["fc1_relu", "result"].zeros == int(np.sum(sums <= 0)) > 0
    assert found["fc1_relu", "result"].type == FixedType(8, 3, signed=False)
    assert found["fc1_relu", "result"].band == (-5, 3)
    assert "fc1_relu" in profile(model, X).suggested_plan().layers


def test_box_statistics_are_the_log2_magnitudes(trained):
    model, X = trained
    prof = profile(model, X, sample=500)
    weights = model.get_layer("fc2").get_weights()[0]
    box = _by_label(prof)["fc2", "weight"].log2
    logs = np.log2(np.abs(weights[weights != 0]).astype(np.float64))
    assert box["min"] == pytest.approx(logs.min()) and box["max"] == pytest.approx(logs.max())
    assert box["median"] == pytest.approx(np.median(logs))
    assert box["q1"] <= box["median"] <= box["q3"]
    assert _by_label(prof)["fc2", "weight"].band == (-10, 5)  # ap_fixed<16,6>: 2^-10 .. 2^5


def test_default_plan_is_ap_fixed_16_6_and_the_dict_is_json(trained):
    model, X = trained
    prof = profile(model, X, sample=300)
    data = json.loads(json.dumps(prof.to_dict()))
    assert data["plan"]["default"] == "ap_fixed<16,6>"
    assert data["events"] == 300
    assert [(d["layer"], d["slot"]) for d in data["distributions"]][:4] == [
        ("input", "input"), ("fc1", "weight"), ("fc1", "bias"), ("fc1", "result")]
    assert data["total_overflows"] == sum(d["overflows"] for d in data["distributions"])
    assert PrecisionPlan.from_dict(data["suggested_plan"]).to_dict() == prof.suggested_plan().to_dict()
    assert data["distributions"][0]["band_log2"] == [-10, 5]


def test_summary_and_plot(trained):
    model, X = trained
    prof = profile(model, X, plan={"default": "ap_fixed<8,2>"}, sample=300)
    text = prof.summary()
    assert "relu2" in text and "fc1 weight" in text and f"{prof.total_overflows} overflow" in text
    fig = prof.plot()
    assert len(fig.axes) == 4  # two panels, each with its twin axis of counts
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(PNG_SIGNATURE)
    panels = prof.plot_panels()
    assert set(panels) == {"weights", "activations"}
    ax = panels["activations"].axes[0]
    rows = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    assert rows[0][1] == "input\nap_fixed<8,2>" and rows[-1][1].startswith("softmax")  # input on top


def test_dataset_objects_use_their_training_part(trained):
    model, X = trained

    class Data:
        X_train = X[:100]
        X_test = X[100:]

    prof = profile(model, Data(), sample=None)
    assert prof.events == 100


def test_bad_inputs_are_refused(trained):
    model, X = trained
    with pytest.raises(DataError, match=r"\(n, 16\)"):
        profile(model, X[:, :5])
    with pytest.raises(DataError, match="sample"):
        profile(model, X, sample=0)
    with pytest.raises(ConfigError, match="fc9"):
        profile(model, X, plan={"layers": {"fc9": {"weight": "ap_fixed<8,2>"}}})
    bad = X[:10].copy()
    bad[2, 3] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        profile(model, bad)


def test_a_quantization_aware_model_is_profiled_against_the_types_of_its_export(trained, tmp_path):
    pytest.importorskip("hgq")
    from fastml_lab.hls import export
    from fastml_lab.quantize import quantize, sparsity

    model, X = trained
    labels = make_blobs(n_events=3000, seed=4)[1]
    qat = quantize(model, (X[:2000], labels[:2000]), bits=6, epochs=1, progress=False).model
    prof = profile(qat, X[:2000], sample=1000)
    exported = PrecisionPlan.from_dict(export(qat, tmp_path / "prj").meta["plan"])
    found = _by_label(prof)
    for (layer, slot), d in found.items():
        expected = exported.input_type() if slot == "input" else exported.type_for(layer, slot)
        assert d.type == expected, (layer, slot)
    assert prof.total_overflows == 0  # the activation ranges were traced on these events
    assert found["fc2", "weight"].overflows == found["fc2", "weight"].vanished == 0  # quantized weights
    assert found["fc2", "weight"].zeros == round(sparsity(qat)["fc2"] * found["fc2", "weight"].values)
    assert prof.to_dict()["suggested_plan"] is None
    with pytest.raises(UnsupportedError, match="quantizers"):
        prof.suggested_plan()
    with pytest.raises(ConfigError, match="without a plan"):
        profile(qat, X, plan={"default": "ap_fixed<8,2>"})


def test_importing_the_quantize_package_loads_no_tensorflow():
    code = ("import sys, fastml_lab.quantize as q; assert callable(q.profile) and callable(q.bit_width_study); "
            "import fastml_lab.quantize.profile; assert callable(q.profile); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'hls4ml', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
