"""The OpenML fetch and cache, exercised against file:// mirrors written by the tests (no network)."""

import logging

import numpy as np
import pytest
from data_helpers import keep_offline, sample_jets, write_openml_mirror

from fastml_lab.data import load_jets, openml
from fastml_lab.exceptions import ConfigError, DataError


@pytest.fixture
def cache(monkeypatch, tmp_path):
    return keep_offline(monkeypatch, tmp_path)


@pytest.fixture
def jets():
    return sample_jets(60)


def go_online_via(monkeypatch, url):
    """Allow the 'network', which here is a file:// mirror."""
    monkeypatch.delenv("FASTML_LAB_OFFLINE")
    monkeypatch.setenv("FASTML_LAB_OPENML_URL", url)


@pytest.mark.parametrize("compress", [False, True])
def test_download_parses_and_caches_atomically(tmp_path, cache, jets, compress):
    url = write_openml_mirror(tmp_path / "mirror", *jets, compress=compress)
    path = openml.download_openml_jets(cache, description=openml.fetch_description(url), progress=False)
    assert path == cache / "openml_42468_hls4ml_lhc_jets_hlf.npz"
    assert sorted(p.name for p in cache.iterdir()) == [path.name]  # no temporary files left behind
    X, labels = openml.load_cached(cache)
    np.testing.assert_array_equal(X, jets[0])
    np.testing.assert_array_equal(labels, jets[1])


def test_checksum_mismatch_is_rejected_and_nothing_is_cached(tmp_path, cache, jets):
    url = write_openml_mirror(tmp_path / "mirror", *jets, md5="0" * 32)
    with pytest.raises(DataError, match="MD5 .* differs from OpenML's 0000"):
        openml.download_openml_jets(cache, description=openml.fetch_description(url), progress=False)
    assert not openml.is_cached(cache)
    assert list(cache.iterdir()) == []


def test_unreachable_server_gives_data_error_with_alternatives(tmp_path):
    with pytest.raises(DataError, match="cannot reach OpenML .*source='synthetic'"):
        openml.fetch_description((tmp_path / "absent.json").as_uri(), timeout=1)


def test_malformed_description_gives_data_error(tmp_path):
    path = tmp_path / "description.json"
    path.write_text('{"something": 1}')
    with pytest.raises(DataError, match="not an OpenML dataset description"):
        openml.fetch_description(path.as_uri())


def test_source_openml_downloads_once_then_uses_the_cache(tmp_path, monkeypatch, cache, jets, caplog):
    mirror = tmp_path / "mirror"
    go_online_via(monkeypatch, write_openml_mirror(mirror, *jets))
    with caplog.at_level(logging.INFO, logger="fastml_lab"):
        first = load_jets("openml", progress=True)
    assert first.source == "OpenML hls4ml_lhc_jets_hlf (downloaded)"
    assert "Cached 60 jets" in caplog.text
    for file in mirror.iterdir():
        file.unlink()  # the second call must not need the server
    second = load_jets("openml", progress=False)
    assert second.source == "OpenML hls4ml_lhc_jets_hlf (cached)"
    assert "real hls4ml LHC jet dataset" in second.notice
    np.testing.assert_array_equal(first.X_train, second.X_train)


def test_cache_dir_argument_beats_the_environment(tmp_path, monkeypatch, cache, jets):
    go_online_via(monkeypatch, write_openml_mirror(tmp_path / "mirror", *jets))
    chosen = tmp_path / "chosen"
    load_jets("openml", cache_dir=chosen, progress=False)
    assert openml.is_cached(chosen) and not openml.is_cached(None)
    assert openml.cache_directory(None) == cache


def test_auto_prefers_the_cached_real_data(tmp_path, monkeypatch, cache, jets, recwarn):
    go_online_via(monkeypatch, write_openml_mirror(tmp_path / "mirror", *jets))
    openml.download_openml_jets(cache, progress=False)
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    ds = load_jets(progress=False)
    assert ds.source == "OpenML hls4ml_lhc_jets_hlf (cached)"
    assert len(ds.labels_train) + len(ds.labels_test) == 60
    assert not [w for w in recwarn if "synthetic" in str(w.message)]


def test_auto_downloads_when_openml_answers(tmp_path, monkeypatch, cache, jets):
    go_online_via(monkeypatch, write_openml_mirror(tmp_path / "mirror", *jets))
    ds = load_jets(progress=False)
    assert ds.source == "OpenML hls4ml_lhc_jets_hlf (downloaded)"
    assert openml.is_cached(cache)


def test_auto_offline_falls_back_to_synthetic_with_a_notice(cache, caplog):
    with caplog.at_level(logging.INFO, logger="fastml_lab"), pytest.warns(UserWarning) as warned:
        ds = load_jets(n_events=500, progress=False)
    assert ds.source == "synthetic (offline generator, seed 0)"
    assert ds.notice.startswith("Using synthetic jets") and "FASTML_LAB_OFFLINE" in ds.notice
    assert "\n" not in ds.notice
    assert [str(w.message) for w in warned] == [ds.notice]
    assert ds.notice in caplog.text
    assert not cache.exists()  # nothing was downloaded or cached


def test_auto_falls_back_when_openml_is_unreachable(tmp_path, monkeypatch, cache):
    go_online_via(monkeypatch, (tmp_path / "down.json").as_uri())
    with pytest.warns(UserWarning, match="OpenML could not be reached"):
        ds = load_jets(n_events=300, seed=2, progress=False)
    assert ds.source == "synthetic (offline generator, seed 2)"


def test_source_openml_offline_without_cache_says_how_to_proceed(cache):
    with pytest.raises(ConfigError, match="not cached .*FASTML_LAB_OFFLINE.*source='synthetic'"):
        load_jets("openml")


def test_corrupt_cache_file_names_it(cache):
    cache.mkdir()
    (cache / openml.CACHE_FILE).write_bytes(b"not an npz")
    with pytest.raises(DataError, match="cached OpenML jets are unreadable.*delete the file"):
        load_jets("auto")
