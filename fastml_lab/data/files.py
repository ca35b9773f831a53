"""Read jets from local files: CSV, Parquet, OpenML ARFF, Zenodo HDF5, or a folder of them.

* CSV / Parquet: the 16 feature columns (any order) and a ``class`` column holding g/q/t/w/z or
  the integers 0..4; no other columns.
* ARFF: the OpenML ``hls4ml_lhc_jets_hlf`` file (see :mod:`fastml_lab.data.arff`).
* HDF5 (Zenodo, 10,000 jets a file): dataset ``jets`` (N, 59) whose column names are the bytes in
  ``jetFeatureNames``; features are ``'j_' + name``, labels the one-hot columns j_g, j_q, j_w, j_z,
  j_t (reordered here to g, q, t, w, z).
* A folder: every supported file in it, in name order, concatenated.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .._deps import require
from ..exceptions import DataError
from .arff import read_arff
from .schema import CLASSES, FEATURES, check_columns, check_dataset, check_features

TABLE_LABEL = "class"
ZENODO_FEATURES = tuple(f"j_{name}" for name in FEATURES)
ZENODO_LABELS = tuple(f"j_{name}" for name in CLASSES)
SUFFIXES = {
    ".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet",
    ".h5": "HDF5", ".hdf5": "HDF5", ".arff": "ARFF", ".gz": "ARFF",
}
_VALID = ("a CSV or Parquet file (16 feature columns + 'class'), an OpenML .arff file, "
          "a Zenodo .h5/.hdf5 file, or a folder of them")

log = logging.getLogger("fastml_lab.data")


def read_jets(path) -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 features (n, 16) in FEATURES order and int64 labels (0..4) from ``path``."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise DataError(f"'{path}': no such file or folder; expected {_VALID}.")
    kind = _kind(path)
    if path.stat().st_size == 0:
        raise DataError(f"'{path}': the file is empty; expected {_VALID}.")
    reader = {"CSV": _read_csv, "Parquet": _read_parquet, "HDF5": _read_hdf5, "ARFF": read_arff}[kind]
    X, labels = reader(path)
    log.debug("Read %d jets from %s", len(labels), path)
    return X, labels


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gz" and not path.name.lower().endswith(".arff.gz"):
        suffix = ""
    if suffix not in SUFFIXES:
        raise DataError(
            f"'{path}': unsupported file type '{path.suffix or path.name}'; expected {_VALID} "
            f"(suffixes {sorted(set(SUFFIXES) - {'.gz'}) + ['.arff.gz']})."
        )
    return SUFFIXES[suffix]


def _read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _supported(p))
    if not files:
        raise DataError(f"'{folder}': the folder holds no jet files; expected {_VALID}.")
    parts = [read_jets(p) for p in files]
    log.info("Read %d jets from %d files in %s", sum(len(y) for _, y in parts), len(files), folder)
    return np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts])


def _supported(path: Path) -> bool:
    try:
        _kind(path)
    except DataError:
        return False
    return True


def _read_csv(path: Path):
    pandas = require("pandas", "read CSV jet files")
    try:
        frame = pandas.read_csv(path)
    except pandas.errors.EmptyDataError:
        raise DataError(f"'{path}': the file is empty; expected a header row and one row per jet.") from None
    except (pandas.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())  # pandas' messages span lines
        raise DataError(f"'{path}': not a readable CSV file ({reason}); expected {_VALID}.") from None
    return _from_table(frame, path)


def _read_parquet(path: Path):
    pandas = require("pandas", "read Parquet jet files")
    require("pyarrow", "read Parquet jet files")
    try:
        frame = pandas.read_parquet(path)
    except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise DataError(f"'{path}': not a readable Parquet file ({exc}); expected {_VALID}.") from None
    return _from_table(frame, path)


def _from_table(frame, path: Path):
    check_columns(frame.columns, TABLE_LABEL, f"'{path}': wrong columns", exactly=True,
                  end=" (g/q/t/w/z or 0..4).")
    if frame.empty:
        raise DataError(f"'{path}': the table has a header but no jets; expected one row per jet.")
    features = frame[list(FEATURES)]
    bad = [name for name in FEATURES if features[name].dtype.kind not in "fiub"]
    if bad:
        raise DataError(f"'{path}': column(s) {bad} hold non-numeric values; feature values must be numbers.")
    return check_dataset(features.to_numpy(dtype=np.float64), frame[TABLE_LABEL].to_numpy(), path)


def _read_hdf5(path: Path):
    h5py = require("h5py", "read Zenodo HDF5 files")
    try:
        with h5py.File(path, "r") as handle:
            if "jets" not in handle or "jetFeatureNames" not in handle:
                raise DataError(
                    f"'{path}': HDF5 file without datasets 'jets' and 'jetFeatureNames' (found "
                    f"{sorted(handle.keys())}); expected the Zenodo hls4ml LHC jet format."
                )
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in handle["jetFeatureNames"][()]]
            jets = handle["jets"][()]
    except OSError as exc:
        raise DataError(f"'{path}': not a readable HDF5 file ({exc}); expected {_VALID}.") from None
    if jets.ndim != 2 or jets.shape[1] != len(names):
        raise DataError(
            f"'{path}': 'jets' has shape {jets.shape} but 'jetFeatureNames' lists {len(names)} "
            f"names; expected shape (n_jets, {len(names)})."
        )
    missing = [name for name in (*ZENODO_FEATURES, *ZENODO_LABELS) if name not in names]
    if missing:
        raise DataError(
            f"'{path}': 'jetFeatureNames' lacks {missing}; expected the 16 features as 'j_<name>' "
            f"and the one-hot labels {list(ZENODO_LABELS)}."
        )
    column = {name: i for i, name in enumerate(names)}
    X = check_features(jets[:, [column[n] for n in ZENODO_FEATURES]], path)
    one_hot = jets[:, [column[n] for n in ZENODO_LABELS]]
    valid = np.isin(one_hot, (0, 1)).all(axis=1) & (one_hot.sum(axis=1) == 1)
    if not valid.all():
        rows = np.flatnonzero(~valid)
        raise DataError(
            f"'{path}': {rows.size} jet(s) (first at row {rows[0]}) have labels that are not "
            f"one-hot; each row needs exactly one 1 among {list(ZENODO_LABELS)}."
        )
    return check_dataset(X, one_hot.argmax(axis=1), path)
