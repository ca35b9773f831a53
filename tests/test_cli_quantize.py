"""``fastml-lab quantize``: the model and its JSON summary, the printed figures, and one-line errors."""

from __future__ import annotations

import json

import pytest

from fastml_lab.cli import COMMAND_MODULES, main

from quantize_helpers import float_model, jets  # noqa: F401  (session fixtures)

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def model_file(float_model, tmp_path_factory):  # noqa: F811
    from fastml_lab.train import save_model

    return save_model(float_model, tmp_path_factory.mktemp("cli_quantize") / "float.keras")


def test_the_verb_comes_right_after_the_demo_and_training():
    assert COMMAND_MODULES[:3] == ("pipeline", "train", "quantize")


def test_quantize_writes_the_model_and_a_summary_and_prints_the_figures(model_file, tmp_path, capsys):
    from fastml_lab.train import load_model

    out = tmp_path / "q.keras"
    assert main(["quantize", str(model_file), "--data", "synthetic", "--events", "3000", "--bits", "6,8",
                 "--layer-bits", "output=8/10", "--prune", "0.5", "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["mode"] == "uniform" and summary["prune"] == 0.5 and summary["n_test"] == 600
    assert summary["bits"]["fc2"] == {"weights": 6, "activations": 8}
    assert summary["bits"]["output"] == {"weights": 8, "activations": 10}  # --layer-bits overrides --bits
    assert summary["fit"]["kind"] == "estimate" and summary["ebops"] == summary["fit"]["ebops"]
    assert all(value >= 0.5 for value in summary["sparsity"].values())
    for line in (f"float accuracy      {summary['float_accuracy']:.4f}", f"QAT accuracy        {summary['accuracy']:.4f}",
                 f"EBOPs               {summary['ebops']:,}", "fc1 50.0%", "(estimate)", f"Wrote {out}"):
        assert line in printed
    qmodel = load_model(out)
    assert [type(layer).__name__ for layer in qmodel.layers][0] == "QDense"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.json", "q.keras"]  # no temporary files left


def test_hgq_mode(model_file, tmp_path, capsys):
    out = tmp_path / "h.keras"
    assert main(["quantize", str(model_file), "--data", "synthetic", "--events", "3000", "--hgq", "1e-6",
                 "--epochs", "1", "--out", str(out)]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["mode"] == "hgq" and summary["beta"] == 1e-6 and summary["ebops"] > 0
    assert "HGQ (beta 1e-06)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--out", "q.h5"], "--out must name a .keras file; got 'q.h5'"),
    (["--out", "q.keras", "--bits", "40"], "width must be an integer from 2 to 24"),
    (["--out", "q.keras", "--prune", "1.5"], "sparsity must be a fraction"),
    (["--out", "q.keras", "--layer-bits", "fc9=8/8"], "'fc9', which are not Dense layers"),
    (["--out", "q.keras", "--layer-bits", "fc1=8/8", "--hgq", "1e-6"], "--layer-bits sets uniform widths"),
])
def test_errors_exit_2_with_one_line(args, message, model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["quantize", str(model_file), "--data", "synthetic", "--events", "600", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastml-lab quantize: error: ") and message in err and "\n" not in err
    assert not any(tmp_path.iterdir())


def test_missing_model_is_an_error(tmp_path, capsys):
    assert main(["quantize", str(tmp_path / "none.keras"), "--data", "synthetic", "--out", str(tmp_path / "q.keras")]) == 2
    assert "none.keras' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--bits", "6,x"], ["--bits", "6", "--hgq", "1e-6"], ["--layer-bits", "fc1=8"]])
def test_bad_options_are_usage_errors(args, model_file, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["quantize", str(model_file), "--data", "synthetic", "--out", "q.keras", *args])
    assert stop.value.code == 2
    assert "usage: fastml-lab quantize" in capsys.readouterr().err


def test_bits_option_forms():
    from fastml_lab.commands.quantize import _bits

    assert _bits("6") == 6
    assert _bits("6,8") == {"weights": 6, "activations": 8}
    assert _bits("6,8,12") == {"weights": 6, "activations": 8, "inputs": 12}
    assert _bits(" 7 ") == 7
