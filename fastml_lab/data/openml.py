"""Fetch OpenML dataset 42468 (``hls4ml_lhc_jets_hlf``) once and keep it in a local cache.

The download uses OpenML's public REST API with urllib: the JSON description at
``https://api.openml.org/api/v1/json/data/42468`` names the ARFF file (``url``, or ``file_id`` for
``/data/v1/download/<file_id>``) and its ``md5_checksum``. The ARFF file is streamed to a temporary
file with a tqdm progress bar, checked against the checksum, parsed, and stored as
``openml_42468_hls4ml_lhc_jets_hlf.npz`` (float32 features, int8 labels) in the cache directory.
Every cache write goes to a temporary file first and is moved into place with ``os.replace``.

Environment:

* ``FASTML_LAB_CACHE``: cache directory (default ``~/.cache/fastml_lab``; the ``cache_dir``
  argument wins over both).
* ``FASTML_LAB_OFFLINE=1``: never go online; ``source="auto"`` then uses the cache or the
  synthetic generator.
* ``FASTML_LAB_OPENML_URL``: another description URL (a mirror, or a ``file://`` URL for tests).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._io import atomic_destination
from ..exceptions import DataError
from .arff import open_text, read_arff
from .schema import FEATURES, check_dataset

OPENML_ID = 42468
OPENML_NAME = "hls4ml_lhc_jets_hlf"
DESCRIPTION_URL = f"https://api.openml.org/api/v1/json/data/{OPENML_ID}"
DOWNLOAD_URL = "https://api.openml.org/data/v1/download/{file_id}"
CACHE_FILE = f"openml_{OPENML_ID}_{OPENML_NAME}.npz"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20

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


def description_url() -> str:
    return os.environ.get("FASTML_LAB_OPENML_URL") or DESCRIPTION_URL


def is_cached(cache_dir=None) -> bool:
    return (cache_directory(cache_dir) / CACHE_FILE).is_file()


def load_cached(cache_dir=None) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached OpenML jets as (X, labels), or None when nothing is cached yet."""
    path = cache_directory(cache_dir) / CACHE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            X, labels = stored["X"], stored["labels"]
    except (OSError, KeyError, ValueError, zlib.error) as exc:
        raise DataError(
            f"'{path}': the cached OpenML jets are unreadable ({exc}); delete the file to download again."
        ) from None
    return check_dataset(X, labels, path)


def fetch_description(url: str | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> dict:
    """OpenML's JSON description of the dataset (raises DataError when unreachable or malformed)."""
    url = url or description_url()
    try:
        with urllib.request.urlopen(_request(url), timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
        return body["data_set_description"]
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DataError(f"cannot reach OpenML at {url} ({_reason(exc)}); {_ALTERNATIVES}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{url}: not an OpenML dataset description ({exc!r}); expected JSON with a "
            f"'data_set_description' object. {_ALTERNATIVES}"
        ) from None


def download_openml_jets(cache_dir=None, *, description: dict | None = None,
                         timeout: float = DOWNLOAD_TIMEOUT_S, progress: bool = True) -> Path:
    """Download the ARFF file, check it, and cache it as .npz; returns the cache file's path."""
    description = description if description is not None else fetch_description(timeout=timeout)
    url = description.get("url") or DOWNLOAD_URL.format(file_id=description.get("file_id"))
    if not description.get("url") and not description.get("file_id"):
        raise DataError(f"the OpenML description names no data file ('url' or 'file_id'). {_ALTERNATIVES}")
    folder = cache_directory(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CACHE_FILE
    log.info("Downloading OpenML %s (id %d) from %s", OPENML_NAME, OPENML_ID, url)
    with _temporary(folder, ".arff") as arff_path:
        _stream_to_file(url, arff_path, timeout, progress)
        _check_md5(arff_path, description.get("md5_checksum"), url)
        X, labels = read_arff(arff_path, target=description.get("default_target_attribute") or "class")
    with atomic_destination(target) as npz_path, open(npz_path, "wb") as out:
        np.savez(out, X=X, labels=labels.astype(np.int8), features=np.asarray(FEATURES))
    log.info("Cached %d jets at %s", len(labels), target)
    return target


_ALTERNATIVES = ("check the network, pass a local copy (load_jets('jets.h5')), or use "
                 "load_jets(source='synthetic').")


def _request(url: str, compressed: bool = False) -> urllib.request.Request:
    headers = {"User-Agent": "fastml_lab"}
    if compressed:  # the ARFF file may arrive gzip-encoded; read_arff un-gzips it
        headers["Accept-Encoding"] = "gzip"
    return urllib.request.Request(url, headers=headers)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


def _stream_to_file(url: str, path: Path, timeout: float, progress: bool) -> None:
    try:
        with urllib.request.urlopen(_request(url, compressed=True), timeout=timeout) as response, \
                open(path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(total, progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DataError(f"downloading {url} failed ({_reason(exc)}); {_ALTERNATIVES}") from None


def _check_md5(path: Path, expected: str | None, url: str) -> None:
    if not expected:
        return
    digest = hashlib.md5()
    with open_text(path) as stream:
        raw = stream.buffer
        for chunk in iter(lambda: raw.read(_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise DataError(
            f"{url}: the downloaded file's MD5 {digest.hexdigest()} differs from OpenML's "
            f"{expected}; the download is corrupt, try again."
        )


@contextmanager
def _temporary(folder: Path, suffix: str):
    handle, name = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


class _NoBar:
    def update(self, n):
        pass


@contextmanager
def _progress_bar(total, enabled: bool):
    if not enabled:
        yield _NoBar()
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield _NoBar()
        return
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"OpenML {OPENML_NAME}") as bar:
        yield bar
