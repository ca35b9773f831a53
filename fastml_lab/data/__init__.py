"""The hls4ml LHC jet data: real (OpenML, Zenodo HDF5, CSV/Parquet) or synthetic, ready to train on.

>>> from fastml_lab.data import load_jets
>>> ds = load_jets("synthetic", n_events=5000)   # or "auto", "openml", a file or a folder
>>> ds.X_train.shape, ds.y_train.shape
((4000, 16), (4000, 5))

Modules: ``schema`` (names and checks), ``synthetic`` (offline generator), ``openml`` (the
OpenML download and cache, through scikit-learn's ``fetch_openml``), ``files`` and ``arff`` (local
files), ``prepare`` (split, scale, one-hot), ``load`` (source selection). Heavy libraries (pandas,
h5py, scikit-learn, SciPy) load only when used. Environment: ``FASTML_LAB_CACHE`` (cache folder),
``FASTML_LAB_OFFLINE=1`` (never go online).
"""

from __future__ import annotations

from .files import read_jets
from .load import load_jets
from .prepare import JetDataset
from .schema import CLASSES, FEATURES
from .synthetic import make_synthetic_jets

__all__ = ["CLASSES", "FEATURES", "JetDataset", "load_jets", "make_synthetic_jets", "read_jets"]
