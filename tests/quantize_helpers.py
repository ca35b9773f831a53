"""Small synthetic jets and a briefly trained float MLP, shared by the quantization tests (session scope)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def jets():
    from fastml_lab.data import load_jets

    return load_jets("synthetic", n_events=6000, seed=0)


@pytest.fixture(scope="session")
def float_model(jets):
    """16-32-16-5 ReLU/softmax, five short epochs (about 0.65 accuracy): quick to train, worth quantizing."""
    pytest.importorskip("keras")
    from fastml_lab.train import build_model, train_model

    model = build_model("32-16", seed=0)
    train_model(model, jets, epochs=5, batch_size=256, learning_rate=3e-3, progress=False)
    return model
