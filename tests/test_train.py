"""Model specs, model structure, training, early stopping and saving/loading."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError, DataError, TrainingError
from fastml_lab.train import (ModelSpec, build_model, load_model, parse_spec, save_model,
                              train_model)

keras = pytest.importorskip("keras")


# ----------------------------------------------------------------------------------------- specs
@pytest.mark.parametrize("text, expected", [
    ("64-32-32", ModelSpec()),
    ("8", ModelSpec(hidden=(8,))),
    ("64-32-32:bn", ModelSpec(batch_norm=True)),
    ("64-32-32:bn:l1=1e-4", ModelSpec(batch_norm=True, l1=1e-4)),
    (" 32-16 : act=tanh : l1=0.01 ", ModelSpec(hidden=(32, 16), activation="tanh", l1=0.01)),
])
def test_parse_spec_accepts_the_grammar(text, expected):
    assert parse_spec(text) == expected


def test_spec_string_round_trips():
    spec = ModelSpec(hidden=(20, 10), batch_norm=True, l1=2e-5, activation="sigmoid")
    assert parse_spec(spec.to_string()) == spec
    assert ModelSpec().describe() == "16-64-32-32-5 relu"


def test_parse_spec_passes_overrides():
    assert parse_spec("10", n_inputs=3, n_classes=2) == ModelSpec(hidden=(10,), n_inputs=3, n_classes=2)


@pytest.mark.parametrize("text, message", [
    ("", "non-empty"),
    ("64-x-32", "bad hidden layer widths '64-x-32'"),
    ("64--32", "bad hidden layer widths"),
    ("0-32", "bad hidden layer widths"),
    ("64:dropout", "unknown option 'dropout'"),
    ("64:l1=abc", "l1 needs a number, got 'abc'"),
    ("64:l1=-1", "l1 must be a finite number >= 0"),
    ("64:act=gelu", "activation must be one of relu, tanh, sigmoid; got 'gelu'"),
])
def test_parse_spec_rejects_bad_strings_with_a_clear_message(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_spec(text)


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": ()}, "at least one hidden layer"),
    ({"hidden": (64, -1)}, "positive integers"),
    ({"n_classes": 1}, "at least 2"),
    ({"n_inputs": 0}, "n_inputs must be a positive integer"),
])
def test_model_spec_validates_fields(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelSpec(**kwargs)


def test_importing_the_modules_does_not_import_tensorflow():
    code = ("import sys, fastml_lab.train, fastml_lab.evaluate, fastml_lab.plots; "
            "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------------------- model
def test_classic_model_structure_and_layer_names():
    model = build_model("64-32-32")
    assert [layer.name for layer in model.layers] == [
        "fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "output", "softmax"]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 32, 32, 5]
    assert model.input_shape == (None, 16) and model.output_shape == (None, 5)
    assert model.count_params() == (16 * 64 + 64) + (64 * 32 + 32) + (32 * 32 + 32) + (32 * 5 + 5)
    assert isinstance(model.get_layer("relu1"), keras.layers.Activation)
    assert model.get_layer("fc1").kernel_regularizer is None


def test_variant_with_batch_norm_l1_and_tanh():
    model = build_model(ModelSpec(hidden=(8, 4), batch_norm=True, l1=1e-3, activation="tanh"))
    assert [layer.name for layer in model.layers] == [
        "fc1", "bn1", "tanh1", "fc2", "bn2", "tanh2", "output", "softmax"]
    assert isinstance(model.get_layer("bn2"), keras.layers.BatchNormalization)
    assert float(model.get_layer("fc2").kernel_regularizer.l1) == pytest.approx(1e-3)


def test_seed_makes_initial_weights_reproducible():
    same = [build_model("8", seed=3).get_layer("fc1").get_weights()[0] for _ in range(2)]
    other = build_model("8", seed=4).get_layer("fc1").get_weights()[0]
    np.testing.assert_array_equal(same[0], same[1])
    assert not np.array_equal(same[0], other)


# -------------------------------------------------------------------------------------- training
def _accuracy(model, X, labels):
    return float(np.mean(model.predict(X, verbose=0).argmax(axis=1) == labels))


def test_training_improves_accuracy_and_reports_each_epoch(blobs, capsys):
    X, labels = blobs
    model = build_model("16-8", seed=0)
    before = _accuracy(model, X, labels)
    seen = []
    history = train_model(model, (X, labels), epochs=8, batch_size=128, learning_rate=1e-2,
                          patience=None, progress=False, on_epoch_end=lambda e, logs: seen.append((e, logs)))
    after = _accuracy(model, X, labels)
    assert after > 0.9 > before + 0.3
    assert history.epochs_run == 8 == len(history.loss) == len(history.val_acc)
    assert history.loss[-1] < history.loss[0]
    assert history.seconds > 0 and history.best_epoch is None
    assert [epoch for epoch, _ in seen] == list(range(8))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(seen[0][1])
    assert capsys.readouterr().err == ""  # progress=False is silent


def test_progress_bar_shows_epoch_loss_and_accuracy(blobs, capsys):
    X, labels = blobs
    train_model(build_model("8"), (X[:500], labels[:500]), epochs=2, progress=True, patience=None)
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err and "loss=" in err and "acc=" in err


def test_training_accepts_a_dataset_object_with_one_hot_labels(blobs):
    X, labels = blobs

    class Dataset:
        X_train, y_train = X[:600], np.eye(5, dtype=np.float32)[labels[:600]]

    history = train_model(build_model("8"), Dataset(), epochs=1, validation_split=0.0, progress=False)
    assert history.epochs_run == 1 and history.val_loss == []


def test_early_stopping_stops_when_validation_loss_stalls(blobs):
    X, labels = blobs
    # A learning rate this small leaves the weights unchanged, so val_loss never improves.
    history = train_model(build_model("8"), (X[:800], labels[:800]), epochs=50, patience=2,
                          learning_rate=1e-12, progress=False)
    assert history.stopped_early
    assert history.epochs_run <= 4 and history.best_epoch == 0



def test_a_nan_loss_stops_training_with_a_readable_error(blobs):
    X, labels = blobs
    # Steps this large overflow the float32 weights within a few batches: the loss turns NaN.
    with pytest.raises(TrainingError, match=r"model 'jet_mlp' diverged in epoch \d+ of 20: the loss became "
                                            r"(nan|inf).*smaller learning rate \(this run: 1e\+38\)"):
        train_model(build_model("8"), (X[:800], labels[:800]), epochs=20, patience=5, learning_rate=1e38,
                    progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
    ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0; got -1"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0; got inf"),
    ({"validation_split": 1.0}, r"validation_split must be a number in \[0, 1\)"),
    ({"patience": -2}, "patience must be None or an integer >= 0"),
])
def test_train_model_rejects_bad_parameters(blobs, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        train_model(build_model("4"), blobs, progress=False, **kwargs)


def test_train_model_rejects_mismatched_labels(blobs):
    X, labels = blobs
    with pytest.raises(DataError, match="3000 rows but y has 10"):
        train_model(build_model("4"), (X, labels[:10]), progress=False)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 5\)"):
        train_model(build_model("4"), (X, labels + 3), progress=False)


# ------------------------------------------------------------------------------------ save, load
def test_save_load_round_trip_gives_identical_predictions(blobs, tmp_path):
    X, labels = blobs
    model = build_model("8:bn", seed=1)
    train_model(model, (X[:500], labels[:500]), epochs=1, progress=False)
    path = save_model(model, tmp_path / "sub" / "model.keras")
    loaded = load_model(path)
    np.testing.assert_array_equal(model.predict(X, verbose=0), loaded.predict(X, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.keras"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not the 0600 of a temporary file


def test_failed_save_leaves_no_temporary_file(tmp_path):
    class Broken:
        def save(self, path):
            path.write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model(Broken(), tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


def test_save_model_requires_the_keras_suffix(tmp_path):
    with pytest.raises(ConfigError, match="must end in '.keras'"):
        save_model(build_model("4"), tmp_path / "model.h5")


def test_load_model_names_a_missing_or_corrupt_file(tmp_path):
    with pytest.raises(DataError, match="missing.keras. does not exist"):
        load_model(tmp_path / "missing.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match="corrupt.keras' is not a Keras 3 archive"):  # before TensorFlow starts
        load_model(corrupt)
    import zipfile

    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(damaged, "w") as archive:  # the archive's shape, its contents broken
        archive.writestr("config.json", "{not json")
    with pytest.raises(DataError, match="could not load model file .*damaged.keras"):
        load_model(damaged)


def test_load_model_refuses_a_file_that_is_not_keras_3(tmp_path):
    old = tmp_path / "model.h5"
    old.write_bytes(b"HDF")
    with pytest.raises(DataError, match="model.h5' must be a Keras 3 '.keras' file"):
        load_model(old)


def test_one_hot_labels_are_checked_against_the_model_outputs():
    from fastml_lab.data.schema import one_hot

    assert one_hot([2, 0], 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(DataError, match=r"must lie in \[0, 3\); got 0..3"):
        one_hot([0, 3], 3)
    with pytest.raises(DataError, match="4 columns; expected 3"):
        one_hot(np.eye(4), 3)


def test_every_module_takes_a_dataset_part_the_same_way(blobs):
    from types import SimpleNamespace

    from fastml_lab.data.prepare import dataset_part
    from fastml_lab.train import training_arrays

    X, labels = blobs
    ds = SimpleNamespace(X_train=X[:10], labels_train=labels[:10], X_test=X[10:15], labels_test=None,
                         y_test=np.eye(int(labels.max()) + 1)[labels[10:15]])
    assert dataset_part(ds, "train")[1] is ds.labels_train
    assert dataset_part(ds, "test")[1] is ds.y_test  # no integer labels: the one-hot rows
    assert dataset_part((X, labels), "test") == (X, labels)
    assert np.array_equal(training_arrays(ds)[0], X[:10])
    with pytest.raises(ConfigError, match="'train' or 'test'; got 'val'"):
        dataset_part(ds, "val")
    with pytest.raises(DataError, match="JetDataset .* or an \\(X, labels\\) pair; got int"):
        dataset_part(3, "train")
