"""The one jet-column check (schema.check_columns) behind CSV/Parquet tables, OpenML frames and ARFF
files: the same rule everywhere, each reader's own message, word for word."""

import re

import numpy as np
import pytest
from data_helpers import keep_offline, sample_jets, table_frame, write_arff

from fastml_lab.data import FEATURES, read_jets
from fastml_lab.data.openml import ORIGIN, jets_from_frame
from fastml_lab.data.schema import check_columns
from fastml_lab.exceptions import DataError

SIXTEEN = list(FEATURES)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    keep_offline(monkeypatch, tmp_path)


@pytest.fixture
def jets():
    return sample_jets(20)


def test_columns_in_any_order_pass():
    check_columns([*reversed(FEATURES), "class"], "class", "never shown")


@pytest.mark.parametrize(("names", "missing", "extra"), [
    ([*FEATURES], ["class"], []),
    ([*FEATURES[1:], "class"], ["zlogz"], []),
    ([*FEATURES, "class", "weight"], [], ["weight"]),
    (["zlogz_v2", *FEATURES[1:], "label"], ["zlogz", "class"], ["zlogz_v2", "label"]),
])
def test_mismatch_names_what_is_missing_and_what_is_more(names, missing, extra):
    with pytest.raises(DataError) as info:
        check_columns(names, "class", "Head", exactly=True, end=" [tail].")
    assert str(info.value) == (f"Head (missing {missing}, unexpected {extra}); expected exactly the 16 "
                               f"features {SIXTEEN} and 'class' [tail].")


def test_csv_message(tmp_path, jets):
    path = tmp_path / "jets.csv"
    table_frame(*jets).rename(columns={"zlogz": "z"}).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        read_jets(path)
    assert str(info.value) == (
        f"'{path}': wrong columns (missing ['zlogz'], unexpected ['z']); expected exactly the 16 features "
        f"{SIXTEEN} and 'class' (g/q/t/w/z or 0..4)."
    )


def test_openml_message(jets):
    frame = table_frame(*jets).drop(columns=["multiplicity"])
    frame[0] = 1.0  # a column name that is not text is named as text
    with pytest.raises(DataError) as info:
        jets_from_frame(frame)
    assert str(info.value) == (
        f"{ORIGIN} has changed: its columns are not the jet schema (missing ['multiplicity'], unexpected "
        f"['0']); expected the 16 features {SIXTEEN} and 'class'. Pass a local copy or use "
        f"load_jets(source='synthetic')."
    )


def test_arff_message(tmp_path, jets):
    attributes = [f"@ATTRIBUTE {n} NUMERIC" for n in FEATURES] + ["@ATTRIBUTE label {g,q,t,w,z}"]
    rows = [",".join(f"{v:.6g}" for v in x) + ",g" for x in jets[0]]
    path = write_arff(tmp_path / "label.arff", *jets, attributes=attributes, rows=rows)
    with pytest.raises(DataError) as info:
        read_jets(path)
    assert str(info.value) == (
        f"'{path}': ARFF attributes do not match the jet schema (missing ['class'], unexpected "
        f"['label']); expected the 16 features {SIXTEEN} and 'class'."
    )


def test_good_table_still_reads(tmp_path, jets):
    path = tmp_path / "jets.csv"
    table_frame(*jets).to_csv(path, index=False, float_format="%.9g")
    X, labels = read_jets(path)
    np.testing.assert_array_equal(labels, jets[1])
    assert re.fullmatch(r"float32", str(X.dtype))
