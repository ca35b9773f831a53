"""OpenML dataset 42468 (``hls4ml_lhc_jets_hlf``) through scikit-learn's ``fetch_openml``.

``fetch_openml`` downloads OpenML's JSON description, feature list and qualities and the gzipped
ARFF file into ``<cache>/openml/openml.org/`` (the cache folder is its ``data_home``), checks the
file's MD5 against the description, and on later calls reads those files without the network.

Environment:

* ``FASTML_LAB_CACHE``: cache folder (default ``~/.cache/fastml_lab``; the ``cache_dir``
  argument wins over both).
* ``FASTML_LAB_OFFLINE=1``: never go online. A cached copy still loads (its reads are made with
  the network refused); without one, ``source="auto"`` uses the synthetic generator.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import numpy as np

from .._deps import require
from ..exceptions import ConfigError, DataError
from .schema import FEATURES, check_columns, check_dataset

OPENML_ID = 42468
OPENML_NAME = "hls4ml_lhc_jets_hlf"
TARGET = "class"
ORIGIN = f"OpenML {OPENML_NAME} (id {OPENML_ID})"
#: The description fetch_openml asks for first; ``reachable`` probes it.
DESCRIPTION_URL = f"https://www.openml.org/api/v1/json/data/{OPENML_ID}"
#: fetch_openml's attempts and the seconds between them when the network fails.
N_RETRIES = 3
RETRY_DELAY_S = 1.0
#: The metadata fetch_openml caches, as ``<data_home>/openml/openml.org/<URL path>.gz``.
_METADATA = (f"api/v1/json/data/{OPENML_ID}", f"api/v1/json/data/features/{OPENML_ID}",
             f"api/v1/json/data/qualities/{OPENML_ID}")
_ALTERNATIVES = ("check the network, pass a local copy (load_jets('jets.h5')), or use "
                 "load_jets(source='synthetic').")
_NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)

log = logging.getLogger("fastml_lab.data")


def offline() -> bool:
    """True when ``FASTML_LAB_OFFLINE`` is set to 1/true/yes: no network access at all."""
    return os.environ.get("FASTML_LAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def cache_directory(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$FASTML_LAB_CACHE``, else ``~/.cache/fastml_lab``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("FASTML_LAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fastml_lab"


def cached_path(openml_path: str, cache_dir=None) -> Path:
    """Where fetch_openml keeps the resource at ``openml_path`` (a URL path) of this cache."""
    return cache_directory(cache_dir) / "openml" / "openml.org" / f"{openml_path}.gz"


def missing_files(cache_dir=None) -> list:
    """The cached files fetch_openml reads that are not there (all of them before a download)."""
    paths = [cached_path(p, cache_dir) for p in _METADATA]
    if paths[0].is_file():
        url = _cached_description(paths[0]).get("url", "")
        paths.append(cached_path(urlparse(url).path.lstrip("/"), cache_dir))
    return [p for p in paths if not p.is_file()]


def is_cached(cache_dir=None) -> bool:
    """True when the dataset loads from the cache alone."""
    return cached_path(_METADATA[0], cache_dir).is_file() and not missing_files(cache_dir)


def reachable(timeout: float) -> bool:
    """True when OpenML answers for the dataset within ``timeout`` seconds (False when offline)."""
    if offline():
        return False
    try:
        with urlopen(Request(DESCRIPTION_URL, headers={"User-Agent": "fastml_lab"}), timeout=timeout):
            return True
    except (*_NETWORK_ERRORS, OSError, ValueError) as exc:
        log.debug("OpenML unavailable: %s", exc)
        return False


def fetch_jets(cache_dir=None, *, allow_download: bool = True, progress: bool = True):
    """Raw float32 features (n, 16) in FEATURES order and int64 labels of the OpenML jets.

    Reads the cache; downloads into it first when a file is missing and downloading is allowed
    (never with ``FASTML_LAB_OFFLINE`` set). ``progress`` shows a notice while it downloads.
    """
    folder = cache_directory(cache_dir)
    cached = is_cached(cache_dir)
    if not cached and (not allow_download or offline()):
        raise ConfigError(
            f"OpenML {OPENML_NAME} is not cached at {folder} and FASTML_LAB_OFFLINE is set; "
            "unset it to download, pass a local copy, or use source='synthetic'."
        )
    datasets = require("sklearn.datasets", "fetch the OpenML jets")
    require("pandas", "fetch the OpenML jets")
    notice = None if cached else (f"Downloading {ORIGIN}, 830,000 jets, into {folder}; later loads "
                                  "read this copy")
    refused = cached and offline()
    retries, delay = (1, 0.01) if refused else (N_RETRIES, RETRY_DELAY_S)  # no waiting for a refusal
    try:
        with _network_refused() if refused else nullcontext(), _notice(notice, progress):
            frame = datasets.fetch_openml(
                data_id=OPENML_ID, data_home=str(folder), target_column=None, as_frame=True,
                parser="pandas", n_retries=retries, delay=delay,
            ).frame
    except _NETWORK_ERRORS as exc:
        if refused:
            raise DataError(f"The cached {ORIGIN} in {folder} is unreadable ({_reason(exc)}) and "
                            "FASTML_LAB_OFFLINE is set; unset it to download it again.") from None
        raise DataError(f"Cannot reach OpenML for {ORIGIN} ({_reason(exc)}); {_ALTERNATIVES}") from None
    except OSError as exc:
        raise DataError(f"Cannot read or write the OpenML cache in {folder} ({exc}).") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{ORIGIN} is not in the form this toolkit reads ({exc}); {_ALTERNATIVES}") from None
    X, labels = jets_from_frame(frame)
    if notice:
        log.info("Cached %d jets at %s", len(labels), folder)
    return X, labels


def jets_from_frame(frame) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels from fetch_openml's frame; DataError when OpenML changed the schema."""
    check_columns(frame.columns, TARGET, f"{ORIGIN} has changed: its columns are not the jet schema",
                  end=". Pass a local copy or use load_jets(source='synthetic').")
    features = frame[list(FEATURES)]
    text = [name for name in FEATURES if features[name].dtype.kind not in "fiu"]
    if text:
        raise DataError(f"{ORIGIN} has changed: column(s) {text} are not numeric; feature values "
                        "must be numbers.")
    return check_dataset(features.to_numpy(dtype=np.float64), frame[TARGET].to_numpy(dtype=object),
                         ORIGIN)


def _cached_description(path: Path) -> dict:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return json.load(stream)["data_set_description"]
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"'{path}': the cached OpenML description is unreadable ({exc!r}); delete "
                        "the file to download it again.") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


@contextmanager
def _network_refused():
    """fetch_openml without the network: its one way out (``urlopen``, the seam scikit-learn's
    own tests replace) raises instead, so a broken cache cannot start a download."""
    from sklearn.datasets import _openml

    def refuse(request, *args, **kwargs):
        raise URLError("FASTML_LAB_OFFLINE is set; the network is not used")

    original, _openml.urlopen = _openml.urlopen, refuse
    try:
        yield
    finally:
        _openml.urlopen = original


@contextmanager
def _notice(text, progress: bool):
    """Log ``text``; with ``progress``, also show it as a tqdm line with the elapsed time."""
    if text is None:
        yield
        return
    log.info("%s.", text)
    try:
        tqdm = require("tqdm.auto", "show progress").tqdm if progress else None
    except ImportError:
        tqdm = None
    if tqdm is None:
        yield
        return
    with tqdm(total=None, desc=text, bar_format="{desc} [{elapsed}]"):
        yield
