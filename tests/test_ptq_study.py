"""Post-training quantization study: emulated accuracy and overflow counts, no compile."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fastml_lab.hls.study import ptq_study  # noqa: E402


@pytest.fixture(scope="module")
def model_and_data():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 6)).astype("float32")
    labels = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + 2 * (X[:, 2] > 0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu", name="fc1"),
                              keras.layers.Dense(4, activation="softmax", name="out")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, labels, epochs=30, batch_size=128, verbose=0)
    return model, X, labels


def test_wide_types_keep_the_float_accuracy(model_and_data):
    model, X, labels = model_and_data
    scores = model.predict(X, verbose=0)
    study = ptq_study(model, X, labels, precision="ap_fixed<18,8,AP_RND,AP_SAT>", float_scores=scores)
    assert study["float_accuracy"] > 0.8
    assert abs(study["accuracy"] - study["float_accuracy"]) < 0.02
    assert study["overflows"]["fc1"] == 0 and study["events"] == 3000
    assert study["plan"]["default"] == "ap_fixed<18,8,AP_RND,AP_SAT>"


def test_narrow_types_overflow_and_lose_accuracy(model_and_data):
    model, X, labels = model_and_data
    wide = ptq_study(model, X * 8, labels, precision="ap_fixed<16,6>")
    narrow = ptq_study(model, X * 8, labels, precision="ap_fixed<4,1,AP_TRN,AP_WRAP>")
    assert narrow["overflows"]["input"] > 1000 and narrow["overflows"]["fc1"] > 0
    assert wide["overflows"]["input"] == 0
    assert narrow["accuracy"] < wide["accuracy"] - 0.1


def test_overflow_counts_match_a_direct_count(model_and_data, tmp_path):
    """The counts are the number of values outside the result type before the cast."""
    from fastml_lab.hls import export

    model, X, labels = model_and_data
    fw = export(model, tmp_path / "prj", precision="ap_fixed<6,2>").firmware()
    outputs, counts = fw.predict_counting_overflows(X * 4)
    assert np.array_equal(outputs, fw.predict(X * 4))
    _, traces = fw.predict(X * 4, trace=True)
    assert counts["input"] == int(fw.input_type.overflows((X * 4).astype(np.float64)).sum())
    assert set(counts) == {"input", *traces}

