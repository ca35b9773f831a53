"""BDT precision study on the emulator (one point checked against the C simulation) and conifer's
latency and resource estimates, recorded as the project's timing at export."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("conifer")
pytest.importorskip("hls4ml")

from fastml_lab.bdt.estimate import estimate_bdt  # noqa: E402
from fastml_lab.bdt.export import export_bdt  # noqa: E402
from fastml_lab.bdt.study import precision_study  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.exceptions import ConfigError  # noqa: E402
from fastml_lab.project import TIMING_KEYS  # noqa: E402

from conftest import make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    X, labels = make_blobs(n_events=2400, n_features=6, n_classes=3, seed=3, spread=1.6)
    model = train_bdt((X, labels), rounds=25, depth=3, early_stopping=None)
    return model, (X, labels)


@pytest.fixture(scope="module")
def study(trained):
    model, data = trained
    return precision_study(model, data, widths=(5, 8, 16))


def test_rows_follow_the_nn_studys_conventions(study):
    assert [r["bits"] for r in study] == [5, 8, 16]
    for row in study:
        assert row["total_bits"] == row["bits"] and row["sparsity"] == 0 and row["evaluated_with"] == "emulator"
        assert all(f"ap_fixed<{row['bits']}," in row["precision"][part] for part in ("input", "threshold", "score"))
        assert set(row["overflows"]) == {"input", "scores"}
    assert study[-1]["accuracy"] == pytest.approx(study.float_accuracy, abs=0.01)
    assert study[-1]["overflows"]["scores"] == 0 and study[-1]["score_sign_flips"] < 0.01 * 2400 * 3
    assert "BDT precision study" in study.table() and "score=ap_fixed<8," in study.table()
    assert study.study().bit_rows()[0]["bits"] == 5


def test_a_study_point_is_what_the_c_simulation_gives(trained, study, tmp_path):
    from fastml_lab.bdt.study import predicted_classes
    from fastml_lab.hls.check import check_project

    model, (X, labels) = trained
    row = study[1]
    project = export_bdt(model, tmp_path / "point", precision=row["precision"])
    check = check_project(project, X)
    assert check.mismatches == 0
    assert np.mean(predicted_classes(check.simulated) == labels) == row["accuracy"]


def test_study_settings_are_checked(trained):
    model, data = trained
    with pytest.raises(ConfigError, match="widths"):
        precision_study(model, data, widths=(8, 8))
    with pytest.raises(ConfigError, match="widths"):
        precision_study(model, data, widths=(40,))
    with pytest.raises(ConfigError, match="integer_bits"):
        precision_study(model, data, integer_bits="some")


def test_estimate_is_conifers_and_the_export_records_its_timing(trained, tmp_path):
    import conifer
    from conifer.utils.performance import performance_estimates

    model, _ = trained
    project = export_bdt(model, tmp_path / "prj")
    est = estimate_bdt(project)
    theirs = performance_estimates(conifer.model.load_model(str(project.hls_dir / "myproject.json")),
                                   backend="xilinxhls")
    assert (est["core_latency_cycles"], est["LUT"], est["FF"]) == (theirs["latency"], theirs["lut"], theirs["ff"])
    assert est["DSP"] == 0 and est["BRAM"] == 0 and est["kind"] == "estimate" and est["ii_cycles"] == 1
    assert est["latency_ns"] == pytest.approx(est["latency_cycles"] * 10.0)  # pynq-z2: 100 MHz
    assert set(project.timing) == set(TIMING_KEYS)
    assert project.timing == {"latency_cycles": est["latency_cycles"], "ii_cycles": 1, "clock_mhz": 100.0,
                              "source": "estimate"}
    assert estimate_bdt(model) == est  # the model itself: the same ensemble, no board wrapper

    board = export_bdt(model, tmp_path / "board", backend="pynq-z2")
    on_board = estimate_bdt(board)
    assert on_board["latency_cycles"] == est["latency_cycles"] + 6 + 3 and on_board["ii_cycles"] == 6
    assert board.timing["latency_cycles"] == on_board["latency_cycles"]
