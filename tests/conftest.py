"""Shared fixtures: offline mode, quiet TensorFlow, a headless matplotlib and small learnable data."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Tests never touch the network: ``source="auto"`` must fall back to local data."""
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")


def make_blobs(n_events: int = 3000, n_features: int = 16, n_classes: int = 5, seed: int = 0,
               spread: float = 1.0):
    """Gaussian clusters, one per class: ``(X float32, integer labels)``; easy to learn."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.5, size=(n_classes, n_features))
    labels = rng.integers(0, n_classes, size=n_events)
    X = centers[labels] + rng.normal(0.0, spread, size=(n_events, n_features))
    return X.astype(np.float32), labels


@pytest.fixture
def blobs():
    return make_blobs()
