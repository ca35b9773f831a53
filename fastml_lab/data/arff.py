"""Read a local ARFF file of ``hls4ml_lhc_jets_hlf`` (plain or gzip-compressed) with SciPy's parser.

The header declares the 16 numeric features (any order) and a nominal ``class`` attribute with
values g, q, t, w, z. OpenML downloads go through scikit-learn's ``fetch_openml`` instead
(:mod:`fastml_lab.data.openml`); this reader is for a copy saved by hand.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from .._deps import require
from ..exceptions import DataError
from .schema import FEATURES, check_columns, check_dataset

_FORMAT = "the OpenML hls4ml_lhc_jets_hlf ARFF format (@relation, @attribute lines, then @data)"


def read_arff(path, target: str = "class") -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 features (n, 16) in FEATURES order and int64 labels (from ``target``)."""
    path = Path(path)
    arff = require("scipy.io.arff", "read ARFF files")
    try:
        with _open_text(path) as stream:
            data, meta = arff.loadarff(stream)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"'{path}': not a readable ARFF text file ({exc}); expected {_FORMAT}.") from None
    except (StopIteration, arff.ArffError, NotImplementedError) as exc:
        raise DataError(f"'{path}': not an ARFF file ({exc!r}); expected {_FORMAT}.") from None
    except (ValueError, IndexError) as exc:
        raise DataError(
            f"'{path}': the @data section is malformed ({exc}); each line must hold "
            f"{len(FEATURES) + 1} comma-separated values ending with the class."
        ) from None
    names, types = meta.names(), meta.types()
    check_columns(names, target, f"'{path}': ARFF attributes do not match the jet schema")
    not_numeric = [name for name, kind in zip(names, types) if name != target and kind != "numeric"]
    if not_numeric:
        raise DataError(f"'{path}': attribute(s) {not_numeric} are not NUMERIC; features must be numbers.")
    if data.size == 0:
        raise DataError(f"'{path}': the @data section holds no jets; expected one line per jet after @data.")
    X = np.column_stack([data[name] for name in FEATURES])
    classes = np.char.decode(data[target].astype(bytes), "utf-8") if data[target].dtype.kind == "S" \
        else data[target]
    return check_dataset(X, classes, path)


def _open_text(path: Path) -> io.TextIOBase:
    """``path`` as UTF-8 text, un-gzipping it when it starts with gzip's magic bytes."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")
