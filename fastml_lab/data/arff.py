"""Read the OpenML ARFF file of ``hls4ml_lhc_jets_hlf`` (plain or gzip-compressed).

The header declares 16 numeric attributes (the features, any order) and a nominal ``class``
attribute with values g, q, t, w, z; the ``@data`` section holds one comma-separated jet per line.
Sparse ARFF (``{index value, ...}`` rows) is not used by this dataset and is rejected.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np

from .._deps import require
from ..exceptions import DataError
from .schema import FEATURES, check_dataset

_ATTRIBUTE = re.compile(r"""@attribute\s+('[^']*'|"[^"]*"|\S+)\s+(.+?)\s*$""", re.IGNORECASE)
_NUMERIC_TYPES = {"numeric", "real", "integer"}


def open_text(path: Path) -> io.TextIOBase:
    """Open ``path`` as UTF-8 text, transparently un-gzipping it."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_arff(path, target: str = "class") -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 features (n, 16) in FEATURES order and int64 labels (from ``target``) from an ARFF file."""
    path = Path(path)
    pandas = require("pandas", "read ARFF files")
    try:
        with open_text(path) as stream:
            names, types = _read_header(stream, path)
            _check_attributes(names, types, target, path)
            frame = _read_rows(pandas, stream, names, target, path)
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise DataError(f"'{path}': not a readable ARFF text file ({exc}).") from None
    first = frame.iloc[:, 0]
    if first.dtype == object and first.astype(str).str.startswith("{").any():
        raise DataError(f"'{path}': sparse ARFF rows are not supported; write one dense row per jet.")
    X = _numeric(frame[list(FEATURES)], path)
    return check_dataset(X, frame[target].to_numpy(dtype=object), path)


def _read_rows(pandas, stream, names: list[str], target: str, path: Path):
    try:
        frame = pandas.read_csv(
            stream, header=None, names=names, comment="%", quotechar="'",
            skipinitialspace=True, na_values=["?", ""], keep_default_na=False,
            dtype={target: str}, skip_blank_lines=True,
        )
    except pandas.errors.EmptyDataError:
        raise DataError(f"'{path}': the @data section holds no jets; expected one line per jet after @data.") from None
    except (pandas.errors.ParserError, ValueError) as exc:
        raise DataError(
            f"'{path}': the @data section is malformed ({exc}); each line must hold "
            f"{len(names)} comma-separated values."
        ) from None
    if frame.empty:
        raise DataError(f"'{path}': the @data section holds no jets; expected one line per jet after @data.")
    short = frame[target].isna().to_numpy()
    if short.any():
        raise DataError(
            f"'{path}': the @data section is malformed: {int(short.sum())} row(s) (first: data row "
            f"{int(short.argmax())}) have fewer than {len(names)} values or no class; each line must "
            f"hold {len(names)} comma-separated values ending with the class."
        )
    return frame


def _read_header(stream, path: Path) -> tuple[list[str], list[str]]:
    names, types = [], []
    for line in iter(stream.readline, ""):
        text = line.strip()
        if not text or text.startswith("%"):
            continue
        lower = text.lower()
        if lower.startswith("@data"):
            return names, types
        if lower.startswith("@attribute"):
            match = _ATTRIBUTE.match(text)
            if match is None:
                raise DataError(f"'{path}': cannot parse the ARFF header line {text!r}.")
            names.append(match.group(1).strip("'\""))
            types.append(match.group(2))
        elif not names and not lower.startswith("@relation"):
            raise DataError(
                f"'{path}': not an ARFF file (it starts with {text[:40]!r}); expected the OpenML "
                "hls4ml_lhc_jets_hlf ARFF format (@relation, @attribute lines, then @data)."
            )
        elif not lower.startswith("@relation"):
            raise DataError(
                f"'{path}': unexpected line {text[:60]!r} before @data; an ARFF header holds "
                "only @relation, @attribute and % comment lines."
            )
    if not names:
        raise DataError(
            f"'{path}': not an ARFF file (no @attribute or @data lines); expected the OpenML "
            "hls4ml_lhc_jets_hlf ARFF format."
        )
    raise DataError(f"'{path}': the ARFF header has no @data line, so it holds no jets; expected @data and one line per jet.")


def _check_attributes(names: list[str], types: list[str], target: str, path: Path) -> None:
    expected = set(FEATURES) | {target}
    missing = [name for name in (*FEATURES, target) if name not in names]
    extra = [name for name in names if name not in expected]
    if missing or extra or len(names) != len(set(names)):
        raise DataError(
            f"'{path}': ARFF attributes do not match the jet schema (missing {missing}, unexpected "
            f"{extra}); expected the 16 features {list(FEATURES)} and '{target}'."
        )
    for name, kind in zip(names, types):
        if name != target and kind.lower() not in _NUMERIC_TYPES:
            raise DataError(f"'{path}': attribute '{name}' has type {kind!r}; features must be NUMERIC.")


def _numeric(frame, path: Path) -> np.ndarray:
    try:
        return frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        bad = [col for col in frame.columns if frame[col].dtype.kind not in "fiub"]
        raise DataError(
            f"'{path}': column(s) {bad} hold non-numeric values; feature values must be numbers."
        ) from None
