"""load_jets: split sizes, scaler fitted on the training part only, one-hot order, subsets, checks."""

import json
import subprocess
import sys

import numpy as np
import pytest
from data_helpers import keep_offline, sample_jets, table_frame
from sklearn.model_selection import train_test_split

from fastml_lab.data import CLASSES, FEATURES, JetDataset, load_jets, make_synthetic_jets
from fastml_lab.exceptions import ConfigError
from fastml_lab.scaler import Scaler


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    keep_offline(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def dataset():
    return load_jets("synthetic", n_events=2000, seed=3, progress=False)


def test_split_is_80_20_with_tutorial_random_state(dataset):
    assert isinstance(dataset, JetDataset)
    assert dataset.X_train.shape == (1600, 16) and dataset.X_test.shape == (400, 16)
    assert dataset.X_train.dtype == np.float32 and dataset.X_test.dtype == np.float32
    X, labels = make_synthetic_jets(2000, seed=3)
    _, _, labels_train, labels_test = train_test_split(X, labels, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(dataset.labels_train, labels_train)
    np.testing.assert_array_equal(dataset.labels_test, labels_test)


def test_scaler_is_fitted_on_the_training_part_only(dataset):
    X, labels = make_synthetic_jets(2000, seed=3)
    X_train, X_test, _, _ = train_test_split(X, labels, test_size=0.2, random_state=42)
    assert isinstance(dataset.scaler, Scaler)
    np.testing.assert_allclose(dataset.scaler.mean_, X_train.mean(axis=0, dtype=np.float64), rtol=1e-9)
    assert not np.allclose(dataset.scaler.mean_, X.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(dataset.X_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(dataset.X_train.std(axis=0), 1, atol=1e-3)
    np.testing.assert_array_equal(dataset.X_test, dataset.scaler.transform(X_test))


def test_one_hot_labels_follow_class_order(dataset):
    assert dataset.class_names == CLASSES and dataset.feature_names == FEATURES
    for y, labels in ((dataset.y_train, dataset.labels_train), (dataset.y_test, dataset.labels_test)):
        assert y.dtype == np.float32 and y.shape == (len(labels), 5)
        np.testing.assert_array_equal(y.sum(axis=1), 1)
        np.testing.assert_array_equal(y.argmax(axis=1), labels)


def test_one_hot_columns_match_class_letters(tmp_path):
    X, labels = sample_jets(50)
    frame = table_frame(X, labels)
    frame.to_csv(tmp_path / "jets.csv", index=False)
    ds = load_jets(tmp_path / "jets.csv")
    letters = np.asarray(CLASSES)[ds.y_train.argmax(axis=1)]
    expected = frame["class"].to_numpy()[train_test_split(np.arange(50), test_size=0.2, random_state=42)[0]]
    np.testing.assert_array_equal(letters, expected)


def test_summary_is_json_serializable(dataset):
    summary = json.loads(json.dumps(dataset.summary()))
    assert summary["n_train"] == 1600 and summary["n_test"] == 400
    assert summary["source"] == "synthetic (offline generator, seed 3)"
    assert list(summary["class_counts_train"]) == list(CLASSES)
    assert sum(summary["class_counts_train"].values()) == 1600
    assert sum(summary["class_counts_test"].values()) == 400
    assert "n_train=1600" in repr(dataset)


def test_n_events_subset_of_a_file_is_seeded_and_taken_before_splitting(tmp_path):
    X, labels = sample_jets(200)
    path = tmp_path / "jets.parquet"
    table_frame(X, labels).to_parquet(path)
    a = load_jets(path, n_events=100, seed=1)
    b = load_jets(path, n_events=100, seed=1)
    c = load_jets(path, n_events=100, seed=2)
    assert len(a.labels_train) == 80 and len(a.labels_test) == 20
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    # Every kept jet comes from the file.
    raw = a.scaler.inverse_transform(a.X_train)
    distance = np.abs(raw[:, None, :] - X[None, :, :]).max(axis=2).min(axis=1)
    assert distance.max() < 1e-4


def test_synthetic_seed_changes_the_data():
    a = load_jets("synthetic", n_events=300, seed=0)
    b = load_jets("synthetic", n_events=300, seed=1)
    assert a.notice == "Using synthetic jets (offline generator, seed 0)."
    assert not np.array_equal(a.X_train, b.X_train)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"source": 3}, "source must be one of"),
        ({"source": "synthtic"}, "neither one of"),
        ({"source": "synthetic", "n_events": 1}, "integer >= 2"),
        ({"source": "synthetic", "n_events": 10.5}, "integer >= 2"),
        ({"source": "synthetic", "seed": "x"}, "seed must be a non-negative integer"),
        ({"source": "synthetic", "seed": -1}, "seed must be a non-negative integer"),
        ({"source": "synthetic", "test_size": 1.5}, "test_size must be a fraction"),
        ({"source": "synthetic", "test_size": 0}, "test_size must be a fraction"),
        ({"source": "synthetic", "n_events": 3, "test_size": 0.9}, "both parts need at least one jet"),
    ],
)
def test_bad_parameters_raise_config_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        load_jets(**kwargs)


def test_n_events_larger_than_the_file_is_refused(tmp_path):
    X, labels = sample_jets(50)
    table_frame(X, labels).to_csv(tmp_path / "jets.csv", index=False)
    with pytest.raises(ConfigError, match="n_events=80 exceeds the 50 jets"):
        load_jets(tmp_path / "jets.csv", n_events=80)


def test_importing_the_data_module_stays_light():
    code = (
        "import sys, fastml_lab.data\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'pandas', 'h5py', 'pyarrow', 'tqdm')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
