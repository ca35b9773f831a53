"""Evaluation metrics on hand-made scores, and the plots drawn from them."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from fastml_lab.evaluate import Evaluation, evaluate, roc_curve
from fastml_lab.exceptions import ConfigError, DataError, NotReadyError
from fastml_lab.plots import plot_confusion, plot_roc, plot_training, save_figure
from fastml_lab.train import TrainingHistory

LABELS = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4, 1])


def one_hot(labels, n=5):
    return np.eye(n)[labels]


# ---------------------------------------------------------------------------------------- metrics
def test_perfect_scores_give_auc_one_and_a_diagonal_confusion_matrix():
    result = evaluate(one_hot(LABELS), LABELS, class_names="gqtwz")
    assert result.accuracy == 1.0
    assert result.auc == {name: 1.0 for name in "gqtwz"}
    np.testing.assert_array_equal(result.confusion, np.diag([2, 2, 3, 1, 2]))


def test_constant_scores_give_auc_one_half_and_reversed_scores_zero():
    assert set(evaluate(np.full((10, 5), 0.2), LABELS).auc.values()) == {0.5}
    assert set(evaluate(1.0 - one_hot(LABELS), LABELS).auc.values()) == {0.0}


def test_confusion_matrix_counts_and_row_normalization():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    result = evaluate(one_hot(predicted, 3), labels, class_names=["a", "b", "c"])
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_allclose(result.confusion_normalized, [[0.5, 0.5, 0], [0, 1, 0], [1 / 3, 0, 2 / 3]])
    assert result.accuracy == pytest.approx(4 / 6)


def test_auc_and_roc_match_sklearn_including_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 2000)
    scores = np.round(rng.random((2000, 5)) + 0.3 * one_hot(labels), 2)  # rounding makes ties
    result = evaluate(scores, labels)
    for c, name in enumerate(result.class_names):
        assert result.auc[name] == pytest.approx(metrics.roc_auc_score(labels == c, scores[:, c]), abs=1e-12)
        fpr, tpr, _ = metrics.roc_curve(labels == c, scores[:, c], drop_intermediate=False)
        np.testing.assert_allclose(result.roc[name].mistag, fpr)
        np.testing.assert_allclose(result.roc[name].efficiency, tpr)


def test_roc_curve_points_and_mistag_at_efficiency():
    curve = roc_curve(np.array([0.9, 0.8, 0.7, 0.1]), np.array([True, False, True, False]))
    np.testing.assert_allclose(curve.efficiency, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(curve.mistag, [0, 0, 0.5, 0.5, 1])
    assert curve.mistag_at(1.0) == 0.5 and curve.mistag_at(0.5) == 0.0
    assert curve.mistag_at(0.75) == pytest.approx(0.25)


def test_to_dict_is_json_and_turns_missing_classes_into_none():
    labels = np.array([0, 1, 0, 1])  # classes 2..4 have no events
    result = evaluate(one_hot(labels), labels, class_names="gqtwz")
    data = json.loads(json.dumps(result.to_dict(curves=True), allow_nan=False))
    assert data["auc"] == {"g": 1.0, "q": 1.0, "t": None, "w": None, "z": None}
    assert data["confusion"]["counts"][0] == [2, 0, 0, 0, 0]
    assert data["confusion"]["normalized"][4] == [0.0] * 5
    assert data["roc"]["g"]["efficiency"][-1] == 1.0 and data["n_events"] == 4


def test_jet_class_names_are_the_default_for_five_columns():
    classes = getattr(pytest.importorskip("fastml_lab.data"), "CLASSES", None)
    if classes is None:
        pytest.skip("fastml_lab.data does not define CLASSES yet")
    assert evaluate(one_hot(LABELS), LABELS).class_names == tuple(classes)


# ------------------------------------------------------------------------------ inputs accepted
def test_models_and_datasets_are_accepted():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)

    class Model:  # anything with predict(X), e.g. an emulator
        def predict(self, X):
            return one_hot(LABELS)[: len(X)]

    pair = evaluate(Model(), (X, LABELS))
    dataset = SimpleNamespace(X_test=X, y_test=one_hot(LABELS), labels_test=None, class_names=list("GQTWZ"))
    from_dataset = evaluate(Model(), dataset)
    assert pair.accuracy == from_dataset.accuracy == 1.0
    assert from_dataset.class_names == tuple("GQTWZ")


def test_a_keras_model_is_evaluated_through_predict():
    pytest.importorskip("keras")
    from fastml_lab.train import build_model

    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    labels = np.arange(300) % 5
    model = build_model("8")
    direct = evaluate(model.predict(X, verbose=0), labels)
    assert evaluate(model, (X, labels)).auc == pytest.approx(direct.auc)


@pytest.mark.parametrize("scores, labels, message", [
    (np.zeros(5), LABELS, "2-D array"),
    (np.zeros((10, 1)), LABELS, "at least 2 classes"),
    (np.full((10, 5), np.nan), LABELS, "NaN"),
    (np.zeros((10, 5)), LABELS[:4], "expected 10 labels"),
    (np.zeros((10, 3)), LABELS, "only 3 columns"),
    (np.zeros((10, 5)), LABELS - 1, "labels must be >= 0"),
    (np.zeros((10, 5)), LABELS + 0.5, "must be integers"),
])
def test_bad_inputs_raise_data_error(scores, labels, message):
    with pytest.raises(DataError, match=message):
        evaluate(scores, labels)


def test_a_model_without_inputs_is_rejected():
    class Model:
        def predict(self, X):
            return X

    with pytest.raises(DataError, match="needs inputs"):
        evaluate(Model(), LABELS)


def test_an_unbuilt_keras_model_is_not_ready():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.layers.Dense(5)])
    with pytest.raises(NotReadyError, match="no weights yet"):
        evaluate(model, (np.zeros((10, 3), dtype=np.float32), LABELS))


# ------------------------------------------------------------------------------------------ plots
def _noisy_evaluation(seed, noise):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 3000)
    return evaluate(one_hot(labels) + noise * rng.random((3000, 5)), labels, class_names="gqtwz")


def _assert_png(path):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_roc_plot_with_comparison_is_saved_as_png(tmp_path):
    fig = plot_roc(_noisy_evaluation(0, 2.0), compare=_noisy_evaluation(1, 3.0), title="jets")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "Signal efficiency"
    assert len(ax.get_lines()) == 10
    assert [line.get_linestyle() for line in ax.get_lines()[:2]] == ["-", "--"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["float", "fixed point"]
    assert re.fullmatch(r"g, AUC = \d+\.\d% / \d+\.\d%", ax.get_lines()[0].get_label())
    _assert_png(save_figure(fig, tmp_path / "roc.png", close=True))


def test_confusion_plot_labels_every_cell(tmp_path):
    fig = plot_confusion(_noisy_evaluation(0, 2.0))
    assert len(fig.axes[0].texts) == 25
    _assert_png(save_figure(fig, tmp_path / "confusion.png", close=True))


def test_training_plot_draws_loss_and_accuracy_panels(tmp_path):
    history = TrainingHistory(loss=[1.0, 0.8, 0.7], acc=[0.5, 0.6, 0.65],
                              val_loss=[1.1, 0.9, 0.85], val_acc=[0.45, 0.55, 0.6], epochs_run=3)
    fig = plot_training(history)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "Loss" and acc_ax.get_ylabel() == "Accuracy"
    assert len(loss_ax.get_lines()) == 2
    _assert_png(save_figure(fig, tmp_path / "training.png", close=True))


def test_plots_draw_on_given_axes():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3)
    assert plot_roc(_noisy_evaluation(0, 2.0), ax=axes[0]) is fig
    with pytest.raises(ConfigError, match="needs 2 axes; got 1"):
        plot_training({"loss": [1.0], "acc": [0.5]}, ax=axes[1])
    plt.close(fig)


def test_plot_errors():
    with pytest.raises(NotReadyError, match="empty"):
        plot_training(TrainingHistory())
    with pytest.raises(ConfigError, match="must end in '.png'"):
        save_figure(object(), "plot.jpg")
    assert isinstance(_noisy_evaluation(0, 1.0), Evaluation)
