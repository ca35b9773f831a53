"""One input check for every consumer of events: the emulator, the scaler and the software overlay
refuse the same bad arrays with the same error and message, accept the same good ones alike, and
an overlay checks an array once per predict. Runs the shipped jet_mlp package (no TensorFlow, no g++)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from fastml_lab import inputs
from fastml_lab.exceptions import DataError
from fastml_lab.overlay import load
from fastml_lab.scaler import Scaler

N = 16  #: inputs of the shipped jet_mlp package


def _with(value, row, col, shape=(5, N)):
    X = np.random.default_rng(0).normal(size=shape)
    X[row, col] = value
    return X


#: name -> (bad array, pattern the shared message must match)
BAD = {
    "0 rows (empty list)": ([], r"X has shape \(0,\); expected \(n_events, 16\)"),
    "empty 2-D (0, 16)": (np.zeros((0, N)), r"X has 0 events \(shape \(0, 16\)\); at least 1 is needed"),
    "1-D of the wrong size": (np.zeros(N - 1), r"shape \(15,\).*exactly 16 values"),
    "1-D of several events": (np.zeros(3 * N), r"shape \(48,\).*X\.reshape\(-1, 16\)"),
    "3-D": (np.zeros((2, 2, N)), r"shape \(2, 2, 16\); expected \(n_events, 16\)"),
    "too few features": (np.zeros((3, N - 1)), r"shape \(3, 15\); expected \(n_events, 16\)"),
    "too many features": (np.zeros((3, N + 1)), r"shape \(3, 17\)"),
    "(n, 0)": (np.zeros((4, 0)), r"shape \(4, 0\)"),
    "a scalar": (2.5, r"shape \(\); expected"),
    "NaN": (_with(np.nan, 3, 2), r"X\[3, 2\] is nan.*1 NaN or infinite value\(s\) in 1 event"),
    "inf": (_with(-np.inf, 1, 5), r"X\[1, 5\] is -inf"),
    "object dtype": (np.zeros((2, N)).astype(object), r"dtype object.*np\.asarray\(X, dtype=float\)"),
    "strings": (np.full((2, N), "1.5"), r"real numbers .*dtype <U3"),
    "bool": (np.ones((2, N), dtype=bool), r"real numbers .*dtype bool"),
    "complex": (np.zeros((2, N), dtype=complex), r"real numbers .*dtype complex128"),
    "ragged lists": ([[0.0] * N, [0.0] * (N - 1)], r"Cannot read X as an array of numbers .*row of 16 values"),
}


@pytest.fixture(scope="module")
def overlay():
    with load("jet_mlp", backend="software") as ol:
        yield ol


@pytest.fixture(scope="module")
def consumers(overlay):
    """The three public entry points that take events, keyed by name."""
    scaler = Scaler.from_dict(overlay.package.manifest["scaler"])
    assert overlay.n_inputs == overlay.firmware.n_inputs == scaler.n_features_in_ == N
    return {"emulator": overlay.firmware.predict, "scaler": scaler.transform, "overlay": overlay.predict}


@pytest.mark.parametrize("case", list(BAD))
def test_every_consumer_refuses_a_bad_array_alike(consumers, case):
    X, pattern = BAD[case]
    answers = {}
    for name, consume in consumers.items():
        with pytest.raises(Exception) as caught:
            consume(X)
        answers[name] = (type(caught.value), str(caught.value))
    assert answers["scaler"] == answers["emulator"] == answers["overlay"], answers
    error, message = answers["overlay"]
    assert error is DataError
    assert re.search(pattern, message), message


GOOD = {
    "2-D float64": lambda X: X,
    "float32": lambda X: X.astype(np.float32),
    "int16": lambda X: np.round(X).astype(np.int16),
    "uint8": lambda X: np.abs(np.round(X)).astype(np.uint8),
    "nested lists": lambda X: X.tolist(),
    "Fortran order": lambda X: np.asfortranarray(X),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_every_consumer_accepts_a_good_array_alike(consumers, case):
    X = GOOD[case](np.random.default_rng(1).normal(0.0, 2.0, size=(7, N)))
    as_float64 = np.asarray(X, dtype=np.float64)
    emulated, scaled, run = (consume(X) for consume in consumers.values())
    assert emulated.shape == run.shape == (7, 5) and scaled.shape == (7, N)
    np.testing.assert_array_equal(run, emulated)  # the overlay is the emulator behind stream words
    np.testing.assert_array_equal(emulated, consumers["emulator"](as_float64))
    expected_dtype = np.float32 if case == "float32" else np.float64
    assert scaled.dtype == expected_dtype
    np.testing.assert_array_equal(scaled, consumers["scaler"](np.asarray(X, dtype=expected_dtype)))


def test_one_1d_row_is_one_event_everywhere(consumers):
    X = np.random.default_rng(2).normal(size=(3, N))
    for name, consume in consumers.items():
        row, first = consume(X[0]), consume(X[:1])
        assert row.shape == first.shape and row.shape[0] == 1, name
        np.testing.assert_array_equal(row, first)


def test_scaled_predict_equals_scaling_first(overlay, consumers):
    raw = np.random.default_rng(3).normal(1.0, 3.0, size=(20, N))
    np.testing.assert_array_equal(overlay.predict(raw, scale=True), overlay.predict(consumers["scaler"](raw)))


def test_scaler_fit_refuses_the_same_arrays_but_takes_any_width():
    for case in ("NaN", "inf", "empty 2-D (0, 16)", "bool", "strings", "ragged lists"):
        X, pattern = BAD[case]
        with pytest.raises(DataError, match=pattern.replace("of 16 values", "of the same number of values")):
            Scaler().fit(X)
    for X in (np.zeros((4, 0)), np.zeros((2, 2, N))):
        with pytest.raises(DataError, match=r"expected \(n_events, n_features\)"):
            Scaler().fit(X)
    with pytest.raises(DataError, match=r"shape \(16,\); expected \(n_events, n_features\).*reshape\(-1, 1\)"):
        Scaler().fit(np.zeros(N))  # fitting needs events: a 1-D array is ambiguous
    assert Scaler().fit(np.arange(12).reshape(4, 3)).n_features_in_ == 3


@pytest.fixture
def count_checks(monkeypatch):
    """Counts calls of check_events through every fastml_lab module that holds it."""
    calls = []
    original = inputs.check_events

    def spy(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("n_features"))
        return original(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("fastml_lab") and getattr(module, "check_events", None) is original:
            monkeypatch.setattr(module, "check_events", spy)
    return calls


@pytest.mark.parametrize("scale", [False, True])
def test_overlay_checks_an_array_once_per_predict(overlay, count_checks, scale):
    X = np.random.default_rng(4).normal(size=(10, N))
    overlay.predict(X, scale=scale)
    assert count_checks == [N]
