"""Bit-width studies: PTQ accuracy per width on the emulator, pruned models, QAT, table and plot."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

from conftest import make_blobs  # noqa: E402
from fastml_lab.data.prepare import prepare_jets  # noqa: E402
from fastml_lab.exceptions import ConfigError  # noqa: E402
from fastml_lab.hls import PrecisionPlan, export  # noqa: E402
from fastml_lab.quantize import Study, bit_width_study  # noqa: E402
from fastml_lab.train import build_model, train_model  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def jets():
    """Five overlapping Gaussian classes: a float accuracy near 0.75 with few near-ties between
    the top two classes (the firmware's softmax tables cannot order scores closer than one table
    step, and near-ties would move the fixed-point accuracy by luck)."""
    X, labels = make_blobs(n_events=6000, seed=3, spread=2.0)
    return prepare_jets(X, labels, source="blobs", notice="Gaussian blobs for the study tests.")


@pytest.fixture(scope="module")
def trained(jets):
    model = build_model("16-8", seed=1)
    train_model(model, jets, epochs=10, learning_rate=3e-3, progress=False, patience=None)
    return model


@pytest.fixture(scope="module")
def ptq(trained, jets):
    calls = []
    study = bit_width_study(trained, jets, bits=(4, 8, 12, 16), progress=False,
                            on_progress=lambda done, total, row: calls.append((done, total, row["bits"])))
    return study, calls


def test_ptq_accuracy_rises_with_bits_up_to_the_float_accuracy(ptq):
    study, _ = ptq
    acc = {r["bits"]: r["accuracy"] for r in study.bit_rows()}
    assert study.float_accuracy > 0.65  # a trained model, well above chance (0.2)
    assert acc[4] < acc[8] - 0.3
    assert abs(acc[16] - study.float_accuracy) < 0.01
    assert abs(acc[12] - study.float_accuracy) < 0.01
    assert all(r["evaluated_with"] == "emulator" and r["sparsity"] == 0 for r in study.rows)
    assert study.events == 1200 and study.mode == "ptq"


def test_each_row_is_the_emulated_firmware_of_its_plan(ptq, trained, jets, tmp_path):
    study, _ = ptq
    row = next(r for r in study.rows if r["bits"] == 8)
    plan = PrecisionPlan.from_dict(row["plan"])
    assert plan.input_type().width == 8 and plan.type_for("fc1", "weight").width == 8
    scores, overflows = export(trained, tmp_path / "prj", plan=plan).firmware().predict_counting_overflows(jets.X_test)
    assert row["accuracy"] == float(np.mean(scores.argmax(axis=1) == jets.labels_test))
    assert row["overflows"] == overflows


def test_progress_is_reported_after_every_row(ptq):
    _, calls = ptq
    assert calls == [(1, 4, 4), (2, 4, 8), (3, 4, 12), (4, 4, 16)]


def test_one_integer_width_for_everything(trained, jets):
    study = bit_width_study(trained, (jets.X_test, jets.labels_test), bits=(6, 16), integer_bits=6,
                            progress=False)
    plans = {r["bits"]: PrecisionPlan.from_dict(r["plan"]) for r in study.rows}
    assert plans[6].to_dict()["default"] == "ap_fixed<6,6>" and plans[6].layers == {}
    assert plans[16].to_dict()["default"] == "ap_fixed<16,6>"
    assert study.integer_bits == 6


def test_temporary_exports_stay_quiet(trained, jets, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="fastml_lab")
    bit_width_study(trained, (jets.X_test, jets.labels_test), bits=(16,), progress=False)
    assert not [r for r in caplog.records if "Exported" in r.getMessage()]
    assert logging.getLogger("fastml_lab").level == logging.INFO


def test_table_dict_and_plot(ptq):
    study, _ = ptq
    text = study.table()
    assert f"{study.float_accuracy:.4f}" in text and len(text.splitlines()) == 2 + 4
    data = json.loads(json.dumps(study.to_dict()))
    assert [r["bits"] for r in data["rows"]] == [4, 8, 12, 16]
    fig = study.plot()
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    reference = [line for line in ax.lines if list(line.get_ydata()) == [study.float_accuracy] * 2]
    assert reference, "the float accuracy is drawn as a horizontal line"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(PNG_SIGNATURE)


def test_pruned_models_go_through_the_same_widths(trained, jets):
    study = bit_width_study(trained, jets, bits=(6, 16), sparsities=(0.5, 0.9), epochs=2, progress=False)
    assert [(r["sparsity"], r["bits"]) for r in study.sparsity_rows()] == [(0.5, 6), (0.5, 16), (0.9, 6), (0.9, 16)]
    by_key = {(r["sparsity"], r["bits"]): r for r in study.rows}
    assert by_key[0.9, 16]["measured_sparsity"] == pytest.approx(0.9, abs=0.02)
    assert by_key[0.9, 16]["float_accuracy"] < by_key[0.5, 16]["float_accuracy"] <= study.float_accuracy + 0.01
    assert abs(by_key[0.5, 16]["accuracy"] - by_key[0.5, 16]["float_accuracy"]) < 0.01
    fig = study.plot()
    assert len(fig.axes) == 2 and fig.axes[1].get_xlabel().startswith("Sparsity")
    assert "0.90" in study.table()


def test_qat_study_trains_and_emulates_each_width(trained, jets):
    study = bit_width_study(trained, jets, bits=(4, 8), mode="qat", epochs=1, progress=False)
    rows = {r["bits"]: r for r in study.rows}
    assert list(rows) == [4, 8] and study.mode == "qat"
    assert all(r["evaluated_with"] == "emulator" and r["ebops"] > 0 for r in study.rows)
    assert rows[4]["ebops"] < rows[8]["ebops"]
    assert abs(rows[8]["accuracy"] - study.float_accuracy) < 0.05  # 8 bits trained in: close to float
    assert rows[4]["accuracy"] > 0.4  # far above the 4-bit PTQ collapse to chance


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="fast"), "mode"),
    (dict(bits=()), "bits"),
    (dict(bits=(8, 8)), "distinct"),
    (dict(bits=("eight",)), "integer widths"),
    (dict(integer_bits=2.5), "integer_bits"),
    (dict(mode="qat", integer_bits=4), "QAT learns"),
    (dict(sparsities=(1.0,)), "sparsities"),
    (dict(epochs=0), "epochs"),
])
def test_bad_settings_are_refused(trained, jets, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bit_width_study(trained, jets, progress=False, **kwargs)


def test_pairs_cannot_be_used_for_training(trained, jets):
    with pytest.raises(ConfigError, match="JetDataset"):
        bit_width_study(trained, (jets.X_test, jets.labels_test), sparsities=(0.5,), progress=False)


def test_study_is_a_plain_record():
    study = Study(mode="ptq", float_accuracy=0.7, events=10, integer_bits="auto",
                  rows=[{"bits": 8, "sparsity": 0.0, "accuracy": 0.69, "float_accuracy": 0.7,
                         "evaluated_with": "emulator", "overflows": {"fc1": 2}}])
    assert study.table().splitlines()[2] == "   8     0.00   0.6900    -1.00         2  emulator"
