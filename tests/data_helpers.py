"""Writers for small jet files in the real public formats, used by the data tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fastml_lab.data import CLASSES, FEATURES

# Zenodo's 59 column names: the 16 features as j_<name>, the one-hot labels in the order
# j_g, j_q, j_w, j_z, j_t, and other jet quantities this toolkit ignores.
_ZENODO_OTHERS = [
    "j_ptfrac", "j_pt", "j_eta", "j_mass", "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau1_b2",
    "j_tau2_b2", "j_tau3_b2", "j_tau32_b1", "j_tau32_b2", "j_c1_b0", "j_c1_b1", "j_c1_b2",
    "j_c2_b1", "j_c2_b2", "j_d2_b1", "j_d2_b2", "j_d2_a1_b1", "j_d2_a1_b2", "j_m2_b1", "j_m2_b2",
    "j_n2_b1", "j_n2_b2", "j_tau1_b1_mmdt", "j_tau2_b1_mmdt", "j_tau3_b1_mmdt", "j_tau1_b2_mmdt",
    "j_tau2_b2_mmdt", "j_tau3_b2_mmdt", "j_tau32_b1_mmdt", "j_tau32_b2_mmdt", "j_pt_mmdt",
    "j_eta_mmdt", "j_phi", "j_undef", "j_index",
]
ZENODO_LABEL_ORDER = ("g", "q", "w", "z", "t")
ZENODO_NAMES = (
    _ZENODO_OTHERS[:12] + [f"j_{f}" for f in FEATURES[:8]] + _ZENODO_OTHERS[12:30]
    + [f"j_{f}" for f in FEATURES[8:]] + _ZENODO_OTHERS[30:36]
    + [f"j_{c}" for c in ZENODO_LABEL_ORDER] + _ZENODO_OTHERS[36:]
)
assert len(ZENODO_NAMES) == 59


def sample_jets(n: int = 50, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Small raw jets with every class present, as float32 features and int labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 0.5, (n, len(FEATURES))).astype(np.float32)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    return X, labels.astype(np.int64)


def zenodo_matrix(X, labels) -> np.ndarray:
    """The (n, 59) 'jets' matrix of a Zenodo file holding these jets."""
    rng = np.random.default_rng(7)
    jets = rng.normal(size=(len(labels), len(ZENODO_NAMES))).astype(np.float32)
    column = {name: i for i, name in enumerate(ZENODO_NAMES)}
    for j, feature in enumerate(FEATURES):
        jets[:, column[f"j_{feature}"]] = X[:, j]
    for name in ZENODO_LABEL_ORDER:
        jets[:, column[f"j_{name}"]] = (np.asarray(CLASSES)[labels] == name).astype(np.float32)
    return jets


def write_zenodo_h5(path: Path, X, labels, *, jets=None, names=ZENODO_NAMES) -> Path:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("jets", data=zenodo_matrix(X, labels) if jets is None else jets)
        handle.create_dataset("jetFeatureNames", data=np.array([n.encode() for n in names]))
        handle.create_dataset("jetImage", data=np.zeros((len(labels), 4, 4), dtype=np.float32))
    return path


def table_frame(X, labels, *, class_as="letters"):
    import pandas as pd

    frame = pd.DataFrame(X, columns=list(FEATURES))
    frame["class"] = np.asarray(CLASSES)[labels] if class_as == "letters" else labels
    return frame


def arff_text(X, labels, *, attributes=None, rows=None) -> str:
    """The ARFF text OpenML serves for hls4ml_lhc_jets_hlf (quoted nominal class values)."""
    attributes = attributes or [f"@ATTRIBUTE {name} NUMERIC" for name in FEATURES] + [
        "@ATTRIBUTE class {'g','q','t','w','z'}"
    ]
    if rows is None:
        rows = [",".join(f"{v:.9g}" for v in x) + f",'{CLASSES[c]}'" for x, c in zip(X, labels)]
    return "\n".join(["% hls4ml jets", "@RELATION hls4ml_lhc_jets_hlf", "", *attributes, "",
                      "@DATA", *rows]) + "\n"


def write_arff(path: Path, X, labels, *, compress=False, **kwargs) -> Path:
    data = arff_text(X, labels, **kwargs).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def keep_offline(monkeypatch, tmp_path) -> Path:
    """No network and an empty private cache for one test; returns the cache folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    monkeypatch.setenv("FASTML_LAB_CACHE", str(cache))
    return cache
