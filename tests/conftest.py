"""Shared fixtures: offline mode, quiet TensorFlow, a headless matplotlib and small learnable data."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session", autouse=True)
def shared_csim_builds(tmp_path_factory):
    """One folder of compiled C simulations for the whole session (both xdist workers and the
    commands the tests start): a project exported twice from the same C++ compiles once."""
    from fastml_lab.hls.build_cache import CACHE_ENV

    root = tmp_path_factory.getbasetemp()
    root = root.parent if root.name.startswith("popen-gw") else root
    os.environ[CACHE_ENV] = str(root / "csim-builds")
    yield os.environ[CACHE_ENV]


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


# ------------------------------------------------------------------ overlays (tests/test_overlay*.py)
_VIVADO_BIT_DIR = "myproject_vivado_accelerator/project_1.runs/impl_1"
_VIVADO_HWH_DIR = "myproject_vivado_accelerator/project_1.gen/sources_1/bd/design_1/hw_handoff"


@pytest.fixture(scope="session")
def overlay_project(tmp_path_factory):
    """A small model (16-8-5, ReLU, softmax, ap_fixed<16,6>) exported for the PYNQ-Z2, with a
    scaler and class names: the project every overlay test packages. Export only, no g++."""
    keras = pytest.importorskip("keras")
    from fastml_lab.hls import export
    from fastml_lab.scaler import Scaler

    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(8, activation="relu", name="fc1"),
        keras.layers.Dense(5, activation="softmax", name="out"),
    ])
    raw = np.random.default_rng(7).normal(3.0, 4.0, size=(2000, 16))
    out = tmp_path_factory.mktemp("overlay") / "jet_tiny"
    export(model, out, backend="pynq-z2", precision="ap_fixed<16,6>", scaler=Scaler().fit(raw),
           class_names=["g", "q", "t", "w", "z"])
    return out


@pytest.fixture
def make_overlay_package(overlay_project, tmp_path):
    """``make(name, built=False, **package_kwargs)`` -> a fresh package in ``tmp_path/bitstreams``.

    ``built=True`` first adds stand-in Vivado outputs (a .bit and a .hwh with made-up bytes) to a
    copy of the project, where a Vivado run would leave them.
    """
    import shutil

    from fastml_lab.overlay import package

    def make(name="tiny", built=False, **kwargs):
        project = overlay_project
        if built:
            project = tmp_path / f"{name}_project"
            shutil.copytree(overlay_project, project)
            hls = project / "hls4ml"
            (hls / _VIVADO_BIT_DIR).mkdir(parents=True, exist_ok=True)
            (hls / _VIVADO_HWH_DIR).mkdir(parents=True, exist_ok=True)
            (hls / _VIVADO_BIT_DIR / "design_1_wrapper.bit").write_bytes(b"\x00\x09bit " + name.encode())
            (hls / _VIVADO_HWH_DIR / "design_1.hwh").write_text("<MODULES>stand-in</MODULES>\n")
        return package(project, name=name, out=tmp_path / "bitstreams" / name, **kwargs)

    return make
