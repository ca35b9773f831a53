"""The software overlay and the common Accelerator code: inputs, scaling, packing, chunking,
classes, profiling, lifetime and the choice of backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastml_lab.exceptions import BoardError, ConfigError, DataError, NotReadyError
from fastml_lab.overlay import load
from fastml_lab.overlay import manifest as mf
from fastml_lab.overlay import software as software_module
from fastml_lab.overlay.accelerator import pack, unpack


@pytest.fixture
def tiny(make_overlay_package):
    return make_overlay_package("tiny")


@pytest.fixture
def firmware(overlay_project):
    from fastml_lab.emulator import Firmware

    return Firmware.load(overlay_project)


def _events(firmware, n=1000, seed=0, spread=2.0):
    return np.random.default_rng(seed).normal(0.0, spread, size=(n, firmware.n_inputs))


def test_predict_is_the_firmware_through_float32_stream_words(tiny, firmware):
    X = _events(firmware)
    with load(tiny, backend="software") as ol:
        assert ol.backend == "software"
        Y = ol.predict(X)
    assert Y.dtype == np.float64 and Y.shape == (len(X), firmware.n_outputs)
    expected = firmware.predict(X.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(Y, expected)
    assert np.array_equal(Y, Y.astype(np.float32).astype(np.float64))  # every value is a stream word


def test_chunked_batches_equal_one_batch(tiny, firmware, monkeypatch):
    X = _events(firmware, n=250)
    with load(tiny, backend="software") as ol:
        whole = ol.predict(X)
        monkeypatch.setattr(software_module, "SOFTWARE_CHUNK_EVENTS", 7)
        assert ol.max_events_per_transfer == 7
        np.testing.assert_array_equal(ol.predict(X), whole)


def test_one_event_as_a_vector_and_integer_inputs(tiny, firmware):
    X = _events(firmware, n=3)
    with load(tiny, backend="software") as ol:
        np.testing.assert_array_equal(ol.predict(X[0]), ol.predict(X[:1]))
        ints = np.arange(firmware.n_inputs, dtype=np.int16)
        np.testing.assert_array_equal(ol.predict(ints), ol.predict(ints.astype(float)))


def test_results_are_new_arrays(tiny, firmware):
    X = _events(firmware, n=4)
    with load(tiny, backend="software") as ol:
        first = ol.predict(X)
        first[:] = 123.0
        assert not np.array_equal(ol.predict(X), first)


@pytest.mark.parametrize("make, message", [
    (lambda n: np.zeros((2, n + 1)), r"shape \(2, \d+\); expected \(n_events, \d+\)"),
    (lambda n: np.zeros((2, 2, n)), r"shape \(2, 2, \d+\); expected"),
    (lambda n: np.zeros((0, n)), r"0 events .*at least 1 is needed"),
    (lambda n: np.array([["a"] * n]), "real numbers"),
    (lambda n: np.zeros(n, dtype=complex), "real numbers"),
    (lambda n: [[0.0] * n, [0.0]], "Cannot read X as an array of numbers"),
])
def test_malformed_inputs(tiny, make, message):
    with load(tiny, backend="software") as ol:
        with pytest.raises(DataError, match=message):
            ol.predict(make(ol.n_inputs))


def test_nan_and_inf_are_named_by_position(tiny, firmware):
    X = _events(firmware, n=5)
    X[3, 2] = np.nan
    X[4, 0] = np.inf
    with load(tiny, backend="software") as ol:
        with pytest.raises(DataError, match=r"X\[3, 2\] is nan.*2 NaN or infinite value\(s\) in 2 event"):
            ol.predict(X)
        X[3, 2] = 0.0
        X[4, 0] = 1e39
        with pytest.raises(DataError, match=r"X\[4, 0\] = 1e\+39 does not fit a float32"):
            ol.predict(X)


def test_pack_and_unpack():
    X = np.arange(6, dtype=np.float64).reshape(2, 3) + 0.1
    words = pack(X, "float32")
    assert words.dtype == np.float32 and words.shape == (6,) and words.flags.c_contiguous
    assert words[3] == np.float32(3.1)
    back = unpack(words, 2, 3)
    assert back.dtype == np.float64 and not np.shares_memory(back, words)
    with pytest.raises(BoardError, match="Received 6 output words for 3 events; expected 9"):
        unpack(words, 3, 3)


def _set_scaler(pkg, scaler_dict):
    path = pkg / mf.MANIFEST_FILE
    data = json.loads(path.read_text())
    data["scaler"] = scaler_dict
    path.write_text(json.dumps(data))


def test_scale_option_uses_the_package_scaler(tiny, firmware):
    from fastml_lab.scaler import Scaler

    spec = mf.read(tiny)["scaler"]
    assert spec, "the exported project records its scaler"
    scaler = Scaler.from_dict(spec)
    X_raw = _events(firmware, n=200, spread=4.0) + 3.0
    with load(tiny, backend="software") as ol:
        np.testing.assert_array_equal(ol.predict(X_raw, scale=True),
                                      ol.predict(scaler.transform(X_raw)))
        assert not np.array_equal(ol.predict(X_raw, scale=True), ol.predict(X_raw))
        assert ol.describe()["has_scaler"]


def test_scale_without_a_scaler_is_an_error(tiny, firmware):
    _set_scaler(tiny, None)
    with load(tiny, backend="software") as ol:
        with pytest.raises(ConfigError, match="no input scaler"):
            ol.predict(_events(firmware, n=2), scale=True)


def test_classify_and_labels(tiny, firmware):
    X = _events(firmware, n=50)
    with load(tiny, backend="software") as ol:
        classes = ol.classify(X)
        assert classes.dtype == np.int64
        np.testing.assert_array_equal(classes, np.argmax(ol.predict(X), axis=1))
        names = ol.class_names
        if names:
            assert list(ol.labels(X[:5])) == [names[i] for i in classes[:5]]


def test_profile_reports_measured_and_modelled_figures(tiny, firmware):
    with load(tiny, backend="software") as ol:
        report = ol.profile(_events(firmware, n=500), repeats=5)
        timing = ol.package.timing  # the project's timing, carried by the manifest
    assert report["backend"] == "software" and report["label"] == "measured"
    assert report["events"] == 500 and report["events_per_s"] > 0
    assert report["latency_repeats"] == 5 and report["latency_us"] > 0
    assert report["us_per_event"] == pytest.approx(1e6 / report["events_per_s"])
    assert "a batch of 500 events" in report["what"]["events_per_s"]
    assert "one event, median of 5" in report["what"]["latency_us"]
    assert "CPU" in report["measured_on"]
    modelled = report["modelled"]
    assert modelled["label"] == "modelled" and modelled.get("design", {}) == ol.package.manifest["source"]
    if modelled["available"]:
        cycles = max(timing["ii_cycles"], firmware.n_inputs, firmware.n_outputs)
        assert modelled["cycles_per_event"] == cycles
        assert modelled["events_per_s"] == pytest.approx(timing["clock_mhz"] * 1e6 / cycles)


def test_describe(tiny, firmware):
    with load(tiny, backend="software") as ol:
        info = ol.describe()
    assert info["backend"] == "software" and info["status"] == "software only"
    assert info["n_inputs"] == firmware.n_inputs and info["input_type"] == str(firmware.input_type)


def test_closed_overlay_refuses_work(tiny, firmware):
    ol = load(tiny, backend="software")
    ol.close()
    ol.close()
    assert ol.closed and "closed" in repr(ol)
    with pytest.raises(NotReadyError, match="closed"):
        ol.predict(_events(firmware, n=1))


# ---------------------------------------------------------------------------- backend choice
def test_auto_without_a_board_runs_in_software(tiny, caplog):
    with caplog.at_level("INFO", logger="fastml_lab.overlay"):
        with load(tiny) as ol:
            assert ol.backend == "software"
    assert "runs in software" in caplog.text


def test_board_backend_without_a_bitstream_says_so(tiny):
    with pytest.raises(BoardError, match="has no bitstream"):
        load(tiny, backend="board")


def test_board_backend_without_pynq_says_so(make_overlay_package, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynq", None)  # makes `import pynq` fail
    pkg = make_overlay_package("built", built=True)
    with pytest.raises(BoardError, match="pynq is not installed"):
        load(pkg, backend="board")
    with load(pkg) as ol:
        assert ol.backend == "software"


def test_unknown_backend(tiny):
    with pytest.raises(ConfigError, match="backend must be one of"):
        load(tiny, backend="fpga")
