"""read_jets on small files in the real formats, and DataError for every malformed case."""

import numpy as np
import pytest
from data_helpers import (
    ZENODO_NAMES, keep_offline, sample_jets, table_frame, write_arff, write_zenodo_h5, zenodo_matrix,
)

from fastml_lab.data import CLASSES, FEATURES, load_jets, read_jets
from fastml_lab.exceptions import DataError


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    keep_offline(monkeypatch, tmp_path)


@pytest.fixture
def jets():
    return sample_jets(50)


def assert_same(result, jets):
    X, labels = result
    assert X.dtype == np.float32 and X.shape == (50, 16)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(X, jets[0])
    np.testing.assert_array_equal(labels, jets[1])


@pytest.mark.parametrize("class_as", ["letters", "integers"])
def test_csv(tmp_path, jets, class_as):
    path = tmp_path / "jets.csv"
    frame = table_frame(*jets, class_as=class_as)
    frame[list(reversed(frame.columns))].to_csv(path, index=False, float_format="%.9g")
    assert_same(read_jets(path), jets)


def test_parquet(tmp_path, jets):
    path = tmp_path / "jets.parquet"
    table_frame(*jets).to_parquet(path)
    assert_same(read_jets(str(path)), jets)


@pytest.mark.parametrize("compress", [False, True])
def test_openml_arff(tmp_path, jets, compress):
    path = tmp_path / ("jets.arff.gz" if compress else "jets.arff")
    assert_same(read_jets(write_arff(path, *jets, compress=compress)), jets)


def test_zenodo_hdf5_reorders_labels_to_gqtwz(tmp_path, jets):
    path = write_zenodo_h5(tmp_path / "jetImage_0_10000.h5", *jets)
    assert_same(read_jets(path), jets)
    # A W jet is j_w=1, the third label column in the file, and must become label 3 (CLASSES order).
    w_row = int(np.flatnonzero(jets[1] == CLASSES.index("w"))[0])
    assert zenodo_matrix(*jets)[w_row, ZENODO_NAMES.index("j_w")] == 1.0
    assert read_jets(path)[1][w_row] == 3


def test_folder_of_hdf5_files_in_name_order(tmp_path, jets):
    folder = tmp_path / "zenodo"
    folder.mkdir()
    X, labels = jets
    write_zenodo_h5(folder / "b.hdf5", X[20:], labels[20:])
    write_zenodo_h5(folder / "a.h5", X[:20], labels[:20])
    (folder / "README.txt").write_text("not data")
    assert_same(read_jets(folder), jets)


def test_load_jets_from_a_path(tmp_path, jets):
    X, labels = sample_jets(100)
    path = tmp_path / "jets.parquet"
    table_frame(X, labels).to_parquet(path)
    ds = load_jets(path, progress=False)
    assert ds.source == "local file jets.parquet"
    assert str(path) in ds.notice
    assert len(ds.labels_train) == 80 and len(ds.labels_test) == 20


# ----- malformed input: every case names the file and the problem ---------------------------------

def _csv(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _missing_column(tmp_path, jets):
    return _csv(tmp_path, table_frame(*jets).drop(columns=["n2_b2_mmdt"]))


def _extra_column(tmp_path, jets):
    frame = table_frame(*jets)
    frame["j_pt"] = 1.0
    return _csv(tmp_path, frame)


def _nan_value(tmp_path, jets):
    frame = table_frame(*jets)
    frame.loc[7, "mass_mmdt"] = np.nan
    return _csv(tmp_path, frame)


def _inf_value(tmp_path, jets):
    frame = table_frame(*jets)
    frame.loc[3, "zlogz"] = np.inf
    return _csv(tmp_path, frame)


def _unknown_label(tmp_path, jets):
    frame = table_frame(*jets)
    frame.loc[0, "class"] = "h"
    return _csv(tmp_path, frame)


def _label_out_of_range(tmp_path, jets):
    frame = table_frame(*jets, class_as="integers")
    frame.loc[0, "class"] = 5
    return _csv(tmp_path, frame)


def _text_feature(tmp_path, jets):
    frame = table_frame(*jets)
    frame["multiplicity"] = frame["multiplicity"].astype(object)
    frame.loc[2, "multiplicity"] = "many"
    return _csv(tmp_path, frame)


def _empty_file(tmp_path, jets):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def _header_only(tmp_path, jets):
    return _csv(tmp_path, table_frame(*jets).iloc[:0])


def _missing_file(tmp_path, jets):
    return tmp_path / "nowhere.csv"


def _unsupported_suffix(tmp_path, jets):
    path = tmp_path / "jets.npy"
    np.save(path, jets[0])
    return path


def _garbage_hdf5(tmp_path, jets):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"this is not an HDF5 file" * 10)
    return path


def _garbage_parquet(tmp_path, jets):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 but not really" * 10)
    return path


def _hdf5_wrong_shape(tmp_path, jets):
    return write_zenodo_h5(tmp_path / "short.h5", *jets, jets=zenodo_matrix(*jets)[:, :58])


def _hdf5_missing_name(tmp_path, jets):
    names = [n if n != "j_mass_mmdt" else "j_massX" for n in ZENODO_NAMES]
    return write_zenodo_h5(tmp_path / "renamed.h5", *jets, names=names)


def _hdf5_without_jets(tmp_path, jets):
    import h5py

    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("jetImage", data=np.zeros((3, 2, 2)))
    return path


def _hdf5_not_one_hot(tmp_path, jets):
    matrix = zenodo_matrix(*jets)
    matrix[4, ZENODO_NAMES.index("j_t")] = 1.0
    matrix[4, ZENODO_NAMES.index("j_g")] = 1.0
    return write_zenodo_h5(tmp_path / "twolabels.h5", *jets, jets=matrix)


def _hdf5_nan(tmp_path, jets):
    matrix = zenodo_matrix(*jets)
    matrix[9, ZENODO_NAMES.index("j_c2_b1_mmdt")] = np.nan
    return write_zenodo_h5(tmp_path / "nan.h5", *jets, jets=matrix)


def _arff_missing_attribute(tmp_path, jets):
    attributes = [f"@ATTRIBUTE {n} NUMERIC" for n in FEATURES[1:]] + ["@ATTRIBUTE class {g,q,t,w,z}"]
    rows = [",".join(f"{v:.6g}" for v in x[1:]) + ",g" for x in jets[0]]
    return write_arff(tmp_path / "short.arff", *jets, attributes=attributes, rows=rows)


def _arff_ragged_row(tmp_path, jets):
    rows = ["1,2,3,g"] + [",".join("1" for _ in FEATURES) + ",q"]
    return write_arff(tmp_path / "ragged.arff", *jets, rows=rows)


def _arff_no_data(tmp_path, jets):
    return write_arff(tmp_path / "nodata.arff", *jets, rows=[])


def _not_arff(tmp_path, jets):
    path = tmp_path / "notes.arff"
    path.write_text("hello\nworld\n")
    return path


def _empty_folder(tmp_path, jets):
    folder = tmp_path / "nothing_here"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    return folder


MALFORMED = {
    _missing_column: "missing \\['n2_b2_mmdt'\\]",
    _extra_column: "unexpected \\['j_pt'\\]",
    _nan_value: "NaN or infinite .*row 7, column 'mass_mmdt'",
    _inf_value: "NaN or infinite .*row 3, column 'zlogz'",
    _unknown_label: "unknown class labels \\['h'\\]; valid labels are",
    _label_out_of_range: "unknown class labels \\['5'\\]",
    _text_feature: "\\['multiplicity'\\] hold non-numeric",
    _empty_file: "the file is empty",
    _header_only: "no jets",
    _missing_file: "no such file or folder",
    _unsupported_suffix: "unsupported file type '.npy'",
    _garbage_hdf5: "not a readable HDF5 file",
    _garbage_parquet: "not a readable Parquet file",
    _hdf5_wrong_shape: "'jets' has shape \\(50, 58\\) but 'jetFeatureNames' lists 59",
    _hdf5_missing_name: "lacks \\['j_mass_mmdt'\\]",
    _hdf5_without_jets: "without datasets 'jets' and 'jetFeatureNames'",
    _hdf5_not_one_hot: "1 jet\\(s\\) \\(first at row 4\\) have labels that are not one-hot",
    _hdf5_nan: "NaN or infinite .*row 9, column 'c2_b1_mmdt'",
    _arff_missing_attribute: "missing \\['zlogz'\\]",
    _arff_ragged_row: "@data section is malformed",
    _arff_no_data: "holds no jets",
    _not_arff: "not an ARFF file",
    _empty_folder: "holds no jet files",
}


@pytest.mark.parametrize("make", list(MALFORMED), ids=lambda f: f.__name__.strip("_"))
def test_malformed_input_raises_data_error(tmp_path, jets, make):
    path = make(tmp_path, jets)
    with pytest.raises(DataError, match=MALFORMED[make]) as caught:
        read_jets(path)
    message = str(caught.value)
    assert f"'{path}'" in message  # names the file
    assert "expected" in message or "valid" in message or "must" in message or "needs" in message


def test_load_jets_with_malformed_file_raises_the_same_error(tmp_path, jets):
    with pytest.raises(DataError, match="missing"):
        load_jets(_missing_column(tmp_path, jets))
