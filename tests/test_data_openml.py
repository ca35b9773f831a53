"""The OpenML jets through scikit-learn's fetch_openml, tested offline as scikit-learn tests it:
``urlopen`` in ``sklearn.datasets._openml`` is replaced by a fake OpenML that serves dataset 42468's
gzipped JSON description, feature list, qualities and ARFF file (300 jets, built here)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

import numpy as np
import pytest
from data_helpers import keep_offline, sample_jets

from fastml_lab.data import CLASSES, FEATURES, load_jets, openml
from fastml_lab.exceptions import ConfigError, DataError

FILE_ID = 22044925


class _Response(io.BytesIO):
    """What urlopen returns: a gzip-encoded body with its headers."""

    def info(self):
        return {"Content-Encoding": "gzip"}


class FakeOpenML:
    """OpenML's four resources for dataset 42468, in OpenML's JSON and ARFF formats."""

    def __init__(self, X, labels, *, features=FEATURES, md5=None):
        rows = [",".join(f"{v:.9g}" for v in x) + f",'{CLASSES[c]}'" for x, c in zip(X, labels)]
        arff = "\n".join(["% hls4ml jets", "@RELATION hls4ml_lhc_jets_hlf", "",
                          *[f"@ATTRIBUTE {name} NUMERIC" for name in features],
                          "@ATTRIBUTE class {'g','q','t','w','z'}", "", "@DATA", *rows]).encode() + b"\n"
        column = {"data_type": "numeric", "is_target": "false", "is_ignore": "false",
                  "is_row_identifier": "false", "number_of_missing_values": "0"}
        columns = [dict(column, index=str(i), name=name) for i, name in enumerate(features)]
        columns.append(dict(column, index=str(len(features)), name="class", data_type="nominal",
                            nominal_values=list(CLASSES), is_target="true"))
        description = {
            "id": str(openml.OPENML_ID), "name": openml.OPENML_NAME, "version": "1", "format": "ARFF",
            "description": "Jets from the hls4ml LHC jet dataset (test copy).", "status": "active",
            "url": f"https://api.openml.org/data/v1/download/{FILE_ID}/hls4ml_lhc_jets_hlf.arff",
            "file_id": str(FILE_ID), "default_target_attribute": "class",
            "md5_checksum": md5 or hashlib.md5(arff).hexdigest(),
        }
        qualities = [{"name": "NumberOfInstances", "value": f"{len(labels)}.0"}]
        self.files = {
            f"/api/v1/json/data/{openml.OPENML_ID}": {"data_set_description": description},
            f"/api/v1/json/data/features/{openml.OPENML_ID}": {"data_features": {"feature": columns}},
            f"/api/v1/json/data/qualities/{openml.OPENML_ID}": {"data_qualities": {"quality": qualities}},
            f"/data/v1/download/{FILE_ID}/hls4ml_lhc_jets_hlf.arff": arff,
        }
        self.requests = []
        self.down = False

    def urlopen(self, request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        self.requests.append(url)
        if self.down:
            raise URLError("[Errno -3] Temporary failure in name resolution")
        body = self.files.get(urlparse(url).path)
        if body is None:
            raise HTTPError(url, 404, "Not Found", {}, None)
        return _Response(gzip.compress(body if isinstance(body, bytes) else json.dumps(body).encode()))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    return keep_offline(monkeypatch, tmp_path)


@pytest.fixture
def jets():
    return sample_jets(300)


def serve(monkeypatch, server, online=True):
    """Let fetch_openml (and the "auto" probe) reach ``server`` instead of openml.org."""
    monkeypatch.setattr("sklearn.datasets._openml.urlopen", server.urlopen)
    monkeypatch.setattr(openml, "urlopen", server.urlopen)
    monkeypatch.setattr(openml, "N_RETRIES", 1)
    monkeypatch.setattr(openml, "RETRY_DELAY_S", 0.01)
    if online:
        monkeypatch.delenv("FASTML_LAB_OFFLINE")
    return server


def test_fetch_reads_the_jets_and_caches_them_where_fetch_openml_keeps_them(monkeypatch, cache, jets):
    serve(monkeypatch, FakeOpenML(*jets))
    assert not openml.is_cached() and len(openml.missing_files()) == 3
    X, labels = openml.fetch_jets(progress=False)
    assert X.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(X, jets[0])
    np.testing.assert_array_equal(labels, jets[1])
    assert openml.is_cached() and openml.missing_files() == []
    data_file = openml.cached_path(f"data/v1/download/{FILE_ID}/hls4ml_lhc_jets_hlf.arff")
    assert data_file.is_file() and data_file.is_relative_to(cache / "openml")


def test_offline_loads_the_cached_copy_without_the_network(monkeypatch, cache, jets):
    server = serve(monkeypatch, FakeOpenML(*jets))
    first = load_jets("openml", progress=False)
    assert first.source == "OpenML hls4ml_lhc_jets_hlf (downloaded)"
    asked = len(server.requests)
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    server.down = True
    for source in ("openml", "auto"):
        again = load_jets(source, progress=False)
        assert again.source == "OpenML hls4ml_lhc_jets_hlf (cached)"
        assert f"cached at {cache}" in again.notice
        np.testing.assert_array_equal(first.X_train, again.X_train)
    assert len(server.requests) == asked  # no request left the machine


def test_a_broken_cache_offline_is_named_and_never_downloads(monkeypatch, cache, jets):
    server = serve(monkeypatch, FakeOpenML(*jets))
    openml.fetch_jets(progress=False)
    asked = len(server.requests)
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    data_file = openml.cached_path(f"data/v1/download/{FILE_ID}/hls4ml_lhc_jets_hlf.arff")
    data_file.write_bytes(b"not gzip")
    with pytest.warns(RuntimeWarning), pytest.raises(DataError, match="cached .* is unreadable .*FASTML_LAB_OFFLINE"):
        openml.fetch_jets(progress=False)
    assert len(server.requests) == asked


def test_an_unreadable_cached_description_is_named(cache):
    path = openml.cached_path(f"api/v1/json/data/{openml.OPENML_ID}")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cached OpenML description is unreadable.*delete the file"):
        load_jets("auto")


def test_download_shows_a_notice_once(monkeypatch, cache, jets, caplog, capsys):
    serve(monkeypatch, FakeOpenML(*jets))
    with caplog.at_level(logging.INFO, logger="fastml_lab"):
        load_jets("openml", progress=True)
    assert "Downloading OpenML hls4ml_lhc_jets_hlf (id 42468)" in caplog.text
    assert "Cached 300 jets" in caplog.text
    assert "Downloading OpenML hls4ml_lhc_jets_hlf" in capsys.readouterr().err  # the tqdm line
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastml_lab"):
        load_jets("openml", progress=True)
    assert "Downloading" not in caplog.text and "Cached" not in caplog.text


def test_network_down_gives_data_error_with_alternatives(monkeypatch, cache, jets):
    server = serve(monkeypatch, FakeOpenML(*jets))
    server.down = True
    with pytest.raises(DataError, match="Cannot reach OpenML .*name resolution.*source='synthetic'"):
        load_jets("openml", progress=False)
    assert not openml.is_cached()


def test_changed_schema_is_named(monkeypatch, cache, jets):
    renamed = ("zlogz_v2", *FEATURES[1:])
    serve(monkeypatch, FakeOpenML(*jets, features=renamed))
    with pytest.raises(DataError, match=r"has changed: .*missing \['zlogz'\], unexpected \['zlogz_v2'\]"):
        load_jets("openml", progress=False)


def test_checksum_mismatch_is_refused(monkeypatch, cache, jets):
    serve(monkeypatch, FakeOpenML(*jets, md5="0" * 32))
    with pytest.warns(RuntimeWarning), pytest.raises(DataError, match="md5 checksum .* does not match"):
        openml.fetch_jets(progress=False)


def test_cache_dir_argument_beats_the_environment(tmp_path, monkeypatch, cache, jets):
    serve(monkeypatch, FakeOpenML(*jets))
    chosen = tmp_path / "chosen"
    load_jets("openml", cache_dir=chosen, progress=False)
    assert openml.is_cached(chosen) and not openml.is_cached(None)
    assert openml.cache_directory(None) == cache


def test_auto_prefers_the_cached_real_data(monkeypatch, cache, jets, recwarn):
    serve(monkeypatch, FakeOpenML(*jets))
    openml.fetch_jets(progress=False)
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    ds = load_jets(progress=False)
    assert ds.source == "OpenML hls4ml_lhc_jets_hlf (cached)"
    assert len(ds.labels_train) + len(ds.labels_test) == 300
    assert not [w for w in recwarn if "synthetic" in str(w.message)]


def test_auto_downloads_when_openml_answers(monkeypatch, cache, jets):
    serve(monkeypatch, FakeOpenML(*jets))
    ds = load_jets(progress=False)
    assert ds.source == "OpenML hls4ml_lhc_jets_hlf (downloaded)"
    assert openml.is_cached()


def test_auto_offline_falls_back_to_synthetic_with_a_notice(cache, caplog):
    with caplog.at_level(logging.INFO, logger="fastml_lab"), pytest.warns(UserWarning) as warned:
        ds = load_jets(n_events=500, progress=False)
    assert ds.source == "synthetic (offline generator, seed 0)"
    assert ds.notice.startswith("Using synthetic jets") and "FASTML_LAB_OFFLINE" in ds.notice
    assert "\n" not in ds.notice
    assert [str(w.message) for w in warned] == [ds.notice]
    assert ds.notice not in caplog.text  # said once: a notebook shows the warning, a log line would repeat it
    assert not cache.exists()  # nothing was downloaded or cached


def test_auto_falls_back_when_openml_is_unreachable(monkeypatch, cache, jets):
    server = serve(monkeypatch, FakeOpenML(*jets))
    server.down = True
    with pytest.warns(UserWarning, match="OpenML could not be reached"):
        ds = load_jets(n_events=300, seed=2, progress=False)
    assert ds.source == "synthetic (offline generator, seed 2)"
    assert server.requests == [openml.DESCRIPTION_URL]  # one probe, no download attempt


def test_source_openml_offline_without_cache_says_how_to_proceed(cache):
    with pytest.raises(ConfigError, match="not cached .*FASTML_LAB_OFFLINE.*source='synthetic'"):
        load_jets("openml")
