"""fastml_lab.scaler.Scaler: sklearn parity, JSON round trip, input checks (the shared
``check_events``; tests/test_inputs.py compares them with the emulator's), numpy-only import."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from fastml_lab.exceptions import DataError, NotReadyError
from fastml_lab.scaler import Scaler


@pytest.fixture
def X():
    rng = np.random.default_rng(3)
    data = rng.normal([0, 5, -3, 1e3], [1, 0.1, 20, 300], size=(500, 4)).astype(np.float32)
    data[:, 1] = 2.5  # a constant feature
    return data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_sklearn_standard_scaler(X, dtype):
    X = X.astype(dtype)
    ours, ref = Scaler().fit(X), StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-12)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-12)
    assert ours.scale_[1] == 1.0 == ref.scale_[1]
    out = ours.transform(X)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.transform(X))
    np.testing.assert_array_equal(ours.inverse_transform(out), ref.inverse_transform(out))


def test_inverse_transform_round_trips(X):
    scaler = Scaler().fit(X)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-5, atol=1e-3)


def test_transform_does_not_modify_input(X):
    before = X.copy()
    Scaler().fit(X).transform(X)
    np.testing.assert_array_equal(X, before)


def test_dict_round_trip_through_json(X):
    scaler = Scaler().fit(X)
    restored = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.mean_, scaler.mean_)
    np.testing.assert_array_equal(restored.scale_, scaler.scale_)
    assert restored.n_samples_seen_ == 500
    np.testing.assert_array_equal(restored.transform(X), scaler.transform(X))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.ones(4), r"shape \(4,\); expected \(n_events, n_features\)"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), r"X\[0, 1\] is nan.*NaN or infinite"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), r"X\[0, 1\] is inf.*NaN or infinite"),
        (np.zeros((0, 3)), "0 events .*at least 1 is needed"),
        (np.array([["a", "b"]]), "real numbers .*dtype <U1"),
        (np.ones((2, 3), dtype=bool), "real numbers .*dtype bool"),
    ],
)
def test_fit_rejects_bad_input(data, words):
    with pytest.raises(DataError, match=words):
        Scaler().fit(data)


def test_transform_rejects_wrong_feature_count(X):
    scaler = Scaler().fit(X)
    for method in (scaler.transform, scaler.inverse_transform):
        with pytest.raises(DataError, match=r"shape \(500, 3\); expected \(n_events, 4\)"):
            method(X[:, :3])


def test_one_event_as_a_1d_row(X):
    scaler = Scaler().fit(X)
    np.testing.assert_array_equal(scaler.transform(X[0]), scaler.transform(X[:1]))
    np.testing.assert_array_equal(scaler.inverse_transform(X[0]), scaler.inverse_transform(X[:1]))


def test_unfitted_scaler_says_to_fit_first(X):
    with pytest.raises(NotReadyError, match="call fit"):
        Scaler().transform(X)


@pytest.mark.parametrize(
    "state",
    [{"mean": [0.0]}, {"mean": [0.0, 1.0], "scale": [1.0]}, {"mean": [0.0], "scale": [0.0]},
     {"mean": ["x"], "scale": [1.0]}, [1, 2]],
)
def test_from_dict_rejects_malformed_state(state):
    with pytest.raises(DataError, match="Scaler.from_dict"):
        Scaler.from_dict(state)


def test_imports_with_numpy_alone():
    code = (
        "import sys\n"
        "for name in ('sklearn', 'pandas', 'scipy', 'tensorflow', 'keras', 'h5py'):\n"
        "    sys.modules[name] = None  # any import of these now fails\n"
        "from fastml_lab.scaler import Scaler\n"
        "import numpy as np\n"
        "print(Scaler().fit(np.arange(6.0).reshape(3, 2)).scale_.round(3).tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1.633, 1.633]"
