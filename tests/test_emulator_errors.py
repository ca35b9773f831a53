"""Firmware (the bit-exact numpy emulator): input validation, loading damaged projects, digests, traces."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fastml_lab.emulator import Firmware
from fastml_lab.exceptions import DataError, FastMLError, IntegrityError

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from fastml_lab.hls import export

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(7, activation="relu", name="fc1"),
                              keras.layers.Dense(4, name="fc2"), keras.layers.Activation("softmax", name="sm")])
    return export(model, tmp_path_factory.mktemp("emu") / "prj", precision="ap_fixed<16,6>")


@pytest.fixture
def fw(project):
    return Firmware.load(project.path)


@pytest.fixture
def damaged(project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(project.path, copy)
    return copy


X6 = np.random.default_rng(0).normal(size=(9, 6))


@pytest.mark.parametrize("shape", [(9, 5), (9, 7), (2, 3, 6), (5,), (0,)])
def test_wrong_shapes_are_refused(fw, shape):
    with pytest.raises(DataError) as err:
        fw.predict(np.zeros(shape))
    assert "(n_events, 6)" in str(err.value) and str(shape) in str(err.value)


@pytest.mark.parametrize("X", [np.array([["a"] * 6] * 2), np.array([[b"1"] * 6]), np.array([[1 + 2j] * 6])])
def test_non_numeric_dtypes_are_refused(fw, X):
    with pytest.raises(DataError, match=f"dtype {X.dtype}"):
        fw.predict(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_row_and_column(fw, bad):
    X = X6.copy()
    X[4, 2] = bad
    X[7, 0] = bad
    with pytest.raises(DataError) as err:
        fw.predict(X)
    msg = str(err.value)
    assert "2 NaN or infinite value(s)" in msg and "X[4, 2]" in msg


def test_one_dimensional_single_event_is_accepted(fw):
    one = fw.predict(X6[3])
    assert one.shape == (1, 4)
    assert np.array_equal(one, fw.predict(X6[3:4]))
    assert np.array_equal(fw.predict(X6[3].tolist()), one)
    ints = np.arange(6)
    assert np.array_equal(fw.predict(ints), fw.predict(ints.astype(float)))


def test_empty_batch_is_refused_like_the_overlay_refuses_it(fw):
    with pytest.raises(DataError, match="0 events .*at least 1"):
        fw.predict(np.zeros((0, 6)))
    with pytest.raises(DataError, match="0 events"):
        fw.predict_counting_overflows(np.zeros((0, 6)))


def test_input_check_is_the_shared_one(fw):
    from fastml_lab.inputs import check_events

    for bad in (np.zeros((3, 5)), np.zeros((0, 6)), np.array([[np.nan] * 6]), np.array([["a"] * 6])):
        with pytest.raises(DataError) as ours:
            fw.validate_input(bad)
        with pytest.raises(DataError) as shared:
            check_events(bad, 6, min_rows=1, allow_single_row=True)
        assert str(ours.value) == str(shared.value)


def test_run_checked_gives_predicts_outputs_without_checking_again(fw, monkeypatch):
    from fastml_lab import emulator

    X = fw.validate_input(np.random.default_rng(1).normal(size=(5000, 6)) * 3)
    expected = fw.predict(X)

    def refuse(*args, **kwargs):
        raise AssertionError("checked again")

    monkeypatch.setattr(emulator, "check_events", refuse)
    assert np.array_equal(fw.run_checked(X), expected)


def test_old_descriptions_with_timing_still_load(damaged, fw):
    desc = json.loads((damaged / "firmware.json").read_text())
    assert "timing" not in desc
    desc["timing"] = {"source": "estimate", "latency_cycles": 12, "ii_cycles": 1, "clock_mhz": 100.0}
    (damaged / "firmware.json").write_text(json.dumps(desc))
    old = Firmware.load(damaged)
    assert not hasattr(old, "timing")
    X = np.random.default_rng(2).normal(size=(50, 6))
    assert np.array_equal(old.predict(X), fw.predict(X))
    # The digest is over the description as stored, so the one a package recorded still holds.
    assert old.digest() != fw.digest()
    assert old.digest() == Firmware(desc, fw.arrays).digest()


def test_load_folder_without_firmware_files(tmp_path):
    with pytest.raises(DataError, match="firmware.json is missing"):
        Firmware.load(tmp_path)


def test_load_without_npz(damaged):
    (damaged / "firmware.npz").unlink()
    with pytest.raises(DataError, match="firmware.npz is missing"):
        Firmware.load(damaged)


def test_load_corrupted_json(damaged):
    text = (damaged / "firmware.json").read_text()
    (damaged / "firmware.json").write_text(text[: len(text) // 2])
    with pytest.raises(IntegrityError, match=r"firmware description .*firmware.json: it is not valid JSON"):
        Firmware.load(damaged)


@pytest.mark.parametrize("version", [2, None, "1"])
def test_load_wrong_schema_version(damaged, version):
    desc = json.loads((damaged / "firmware.json").read_text())
    if version is None:
        del desc["schema_version"]
    else:
        desc["schema_version"] = version
    (damaged / "firmware.json").write_text(json.dumps(desc))
    with pytest.raises(IntegrityError) as err:
        Firmware.load(damaged)
    assert f"schema_version {version!r}" in str(err.value) and "schema_version 1" in str(err.value)


def test_load_with_an_array_missing(damaged):
    with np.load(damaged / "firmware.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != "fc2/weight"}
    np.savez(damaged / "firmware.npz", **arrays)
    with pytest.raises(IntegrityError, match="fc2/weight"):
        Firmware.load(damaged)


def test_load_corrupted_npz_is_a_clear_error(damaged):
    (damaged / "firmware.npz").write_bytes(b"not a zip archive at all" * 4)
    with pytest.raises(FastMLError, match="firmware.npz"):
        Firmware.load(damaged)


def test_load_json_that_is_not_an_object(damaged):
    (damaged / "firmware.json").write_text("[1, 2, 3]\n")
    with pytest.raises(IntegrityError, match="firmware.json"):
        Firmware.load(damaged)


def test_digest_changes_when_one_weight_changes(fw, project):
    assert fw.digest() == project.meta["firmware_digest"]
    same = Firmware(json.loads(json.dumps(fw.description)), {k: v.copy() for k, v in fw.arrays.items()})
    assert same.digest() == fw.digest()
    arrays = {k: v.copy() for k, v in fw.arrays.items()}
    arrays["fc1/weight"].flat[5] += 1          # one LSB of one stored weight
    changed = Firmware(fw.description, arrays)
    assert changed.digest() != fw.digest()
    desc = json.loads(json.dumps(fw.description))
    desc["layers"][0]["result_type"]["integer"] += 1
    assert Firmware(desc, fw.arrays).digest() != fw.digest()


def test_overflow_counts_and_trace_follow_predict(fw):
    X = np.random.default_rng(4).normal(size=(5000, 6)) * 40   # saturates and wraps
    out, counts = fw.predict_counting_overflows(X)
    assert np.array_equal(out, fw.predict(X)) and counts["input"] > 0 and counts["fc1"] > 0
    assert set(counts) == {"input", *fw.layer_names}


def test_trace_returns_every_layer_and_ends_at_the_output(fw):
    X = np.random.default_rng(3).normal(size=(5000, 6)) * 2   # more than one chunk
    out, trace = fw.predict(X, trace=True)
    assert list(trace) == fw.layer_names == ["fc1", "fc1_relu", "fc2", "sm"]
    for name, values in trace.items():
        assert values.shape[0] == 5000, name
    assert trace["fc1"].shape[1] == trace["fc1_relu"].shape[1] == 7
    assert np.array_equal(trace["fc1_relu"], np.maximum(trace["fc1"], 0))
    assert np.array_equal(trace["sm"], out)
    assert np.array_equal(out, fw.predict(X))
