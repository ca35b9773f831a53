"""``load_jets``: pick a data source, take an optional reproducible subset, and prepare it.

Sources: ``"synthetic"`` (offline generator), ``"openml"`` (the real data through scikit-learn's
``fetch_openml``, cached or downloaded; :mod:`~fastml_lab.data.openml`), a
path (see :func:`~fastml_lab.data.files.read_jets`), or ``"auto"``: the cached real dataset if
present; otherwise OpenML if it answers within a few seconds; otherwise the synthetic generator,
with a warning. ``FASTML_LAB_OFFLINE=1`` keeps ``"auto"`` (and ``"openml"``) off the network.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, DataError
from . import openml
from .files import read_jets
from .prepare import JetDataset, prepare_jets
from .synthetic import make_synthetic_jets

#: Events generated when the synthetic source is used without ``n_events``.
DEFAULT_SYNTHETIC_EVENTS = 100_000
#: Seconds ``"auto"`` waits for OpenML before falling back to synthetic jets.
AUTO_PROBE_TIMEOUT_S = 3.0
SOURCES = ("auto", "synthetic", "openml")

log = logging.getLogger("fastml_lab.data")


def load_jets(source="auto", n_events=None, seed=0, test_size=0.2, cache_dir=None,
              progress=True) -> JetDataset:
    """Load jets from ``source`` and return them split, standardized and one-hot encoded.

    ``n_events`` caps the number of jets: a random subset drawn with ``seed`` before splitting.
    ``seed`` also seeds the synthetic generator; the train/test split always uses
    ``random_state=42``, as in the hls4ml tutorial.
    """
    _check_parameters(source, n_events, seed, test_size)
    fell_back = False
    if isinstance(source, os.PathLike) or source not in SOURCES:
        _check_path_source(source)
        X, labels = read_jets(source)
        path = Path(source).expanduser()
        origin = f"local file {path.name}" if path.is_file() else f"local folder {path.name}"
        notice = f"Using jets from {path}."
    elif source == "synthetic":
        X, labels, origin, notice = _synthetic(n_events, seed, reason=None)
    elif source == "openml":
        X, labels, origin, notice = _openml(cache_dir, progress, allow_download=True)
    else:
        X, labels, origin, notice, fell_back = _auto(n_events, seed, cache_dir, progress)
    X, labels = _subset(X, labels, n_events, seed, origin)
    _check_split(len(labels), test_size, origin)
    if fell_back:  # said once: as a warning (shown in notebooks), not also as a log line
        warnings.warn(notice, UserWarning, stacklevel=2)
    else:
        log.info(notice)
    return prepare_jets(X, labels, source=origin, notice=notice, test_size=test_size)


def _check_parameters(source, n_events, seed, test_size) -> None:
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(
            f"source must be one of {list(SOURCES)} or a path; got {source!r} ({type(source).__name__})."
        )
    if n_events is not None and (isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer))
                                 or n_events < 2):
        raise ConfigError(f"n_events must be None or an integer >= 2; got {n_events!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    if isinstance(test_size, bool) or not isinstance(test_size, (float, int)) or not 0 < test_size < 1:
        raise ConfigError(f"test_size must be a fraction between 0 and 1 (exclusive); got {test_size!r}.")


def _check_path_source(source) -> None:
    path = Path(source).expanduser()
    if not path.exists() and isinstance(source, str) and not path.suffix and len(path.parts) == 1:
        raise ConfigError(
            f"source={source!r} is neither one of {list(SOURCES)} nor an existing file or folder."
        )


def _check_split(n: int, test_size: float, origin: str) -> None:
    n_test = math.ceil(test_size * n)
    if n_test < 1 or n - n_test < 1:
        raise ConfigError(
            f"{origin}: test_size={test_size} leaves {n - n_test} training and {n_test} test jets out of {n}; "
            "both parts need at least one jet."
        )


def _synthetic(n_events, seed, reason):
    X, labels = make_synthetic_jets(n_events or DEFAULT_SYNTHETIC_EVENTS, seed=seed)
    origin = f"synthetic (offline generator, seed {seed})"
    if reason is None:
        notice = f"Using synthetic jets (offline generator, seed {seed})."
    else:
        notice = (f"Using synthetic jets (offline generator, seed {seed}) because {reason}; "
                  "accuracies are illustrative, not the real dataset's.")
    return X, labels, origin, notice


def _openml(cache_dir, progress, allow_download):
    cached = openml.is_cached(cache_dir)
    X, labels = openml.fetch_jets(cache_dir, allow_download=allow_download, progress=progress)
    where = openml.cache_directory(cache_dir)
    how = "cached at" if cached else "downloaded to"
    return (X, labels, f"OpenML {openml.OPENML_NAME} ({'cached' if cached else 'downloaded'})",
            f"Using the real hls4ml LHC jet dataset (OpenML {openml.OPENML_ID}, {how} {where}).")


def _auto(n_events, seed, cache_dir, progress):
    """The cached or downloaded real jets, else synthetic ones; the last item says it fell back."""
    if openml.is_cached(cache_dir):
        return (*_openml(cache_dir, progress, allow_download=False), False)
    if openml.offline():
        reason = "the real dataset is not cached and FASTML_LAB_OFFLINE is set"
    else:
        try:
            if openml.reachable(timeout=AUTO_PROBE_TIMEOUT_S):
                return (*_openml(cache_dir, progress, allow_download=True), False)
        except DataError as exc:
            log.debug("OpenML unavailable: %s", exc)
        reason = "the real dataset is not cached and OpenML could not be reached or read"
    return (*_synthetic(n_events, seed, reason), True)


def _subset(X, labels, n_events, seed, origin):
    if n_events is None or n_events == len(labels):
        return X, labels
    if n_events > len(labels):
        raise ConfigError(f"n_events={n_events} exceeds the {len(labels)} jets in {origin}; ask for fewer.")
    rows = np.sort(np.random.default_rng(seed).choice(len(labels), size=n_events, replace=False))
    return X[rows], labels[rows]
