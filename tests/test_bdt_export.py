"""Exporting BDTs: the project folder, the firmware description read from conifer's C++, the precision
parts, and clear errors for files and settings export cannot use. No compile here (see test_bdt_exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("conifer")
pytest.importorskip("hls4ml")

from fastml_lab.bdt.export import export_bdt, parse_precision  # noqa: E402
from fastml_lab.bdt.reader import read_parameters  # noqa: E402
from fastml_lab.bdt.train import train_bdt  # noqa: E402
from fastml_lab.emulator import Firmware  # noqa: E402
from fastml_lab.exceptions import ConfigError, DataError, UnsupportedError  # noqa: E402
from fastml_lab.fixed import FixedType  # noqa: E402


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] > 0).astype(int)
    return train_bdt((X, labels), rounds=5, depth=2, early_stopping=None), X


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model[0].save(tmp_path_factory.mktemp("model") / "bdt.json")


def test_export_writes_the_project_and_a_description_the_emulator_runs(model, saved, tmp_path):
    bdt, X = model
    project = export_bdt(saved, tmp_path / "prj", backend="pynq-z2", precision="ap_fixed<12,5>",
                         class_names=["background", "signal"])
    meta = project.meta
    assert meta["family"] == "bdt" and meta["board"] == "pynq-z2" and meta["part"] == "xc7z020clg400-1"
    assert meta["precision"] == {"input": "ap_fixed<12,5>", "threshold": "ap_fixed<12,5>",
                                 "score": "ap_fixed<12,5>", "weight": "ap_fixed<2,2>"}
    assert meta["n_inputs"] == 4 and meta["n_outputs"] == 1 and meta["n_trees"] == 5
    hls = project.hls_dir
    assert (hls / "firmware" / "parameters.h").is_file() and (hls / "firmware" / "ap_types" / "ap_fixed.h").is_file()
    assert "typedef ap_fixed<12,5> score_t;" in (hls / "firmware" / "parameters.h").read_text()
    saved = json.loads((hls / "myproject.json").read_text())
    assert saved["config"]["output_dir"] == str(hls.resolve())  # not the temporary folder it was written in
    firmware = Firmware.load(project.path)
    assert firmware.digest() == meta["firmware_digest"]
    layer = firmware.description["layers"][0]
    assert layer["op"] == "bdt" and layer["splitting_convention"] == "<" and layer["n_rounds"] == 5
    # a wide type follows the float model closely
    wide = export_bdt(bdt, tmp_path / "wide", precision="ap_fixed<24,8>").firmware()
    assert np.abs(wide.predict(X)[:, 0] - bdt.decision_function(X)[:, 0]).max() < 0.01


def test_precision_parts():
    types = parse_precision("input=ap_fixed<10,4> score=ap_fixed<14,6,AP_RND,AP_SAT>")
    assert types["input"] == types["threshold"] == FixedType.parse("ap_fixed<10,4>")
    assert types["score"] == FixedType(14, 6, True, "RND", "SAT")
    assert types["weight"].quantize(np.ones(1))[0] == 1.0
    assert parse_precision({"threshold": "ap_fixed<8,2>"})["input"] == FixedType.parse("ap_fixed<16,6>")
    assert parse_precision("ap_fixed<8,3>")["score"] == FixedType.parse("ap_fixed<8,3>")


@pytest.mark.parametrize("precision, message", [
    ("ap_fixed<16", "Cannot read the precision"),
    ("input=ap_fixed<16,6> bias=ap_fixed<8,3>", "Unknown BDT precision part"),
    ("input=ap_fixed<16,6> oops", "Cannot read the BDT precision"),
    ({"weight": "ap_fixed<8,1>"}, "must hold 1"),
    ("ap_fixed<16,6,AP_FOO>", "Unknown rounding mode"),
])
def test_precisions_that_do_not_parse_are_refused(model, tmp_path, precision, message):
    with pytest.raises(ConfigError, match=message):
        export_bdt(model[0], tmp_path / "prj", precision=precision)
    assert not (tmp_path / "prj").exists()


def test_files_export_cannot_read_are_refused_by_name(tmp_path):
    with pytest.raises(DataError, match=r"missing\.json.*does not exist"):
        export_bdt(tmp_path / "missing.json", tmp_path / "prj")
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ConfigError, match=r"model\.h5.*\.json or \.ubj"):
        export_bdt(tmp_path / "model.h5", tmp_path / "prj")
    (tmp_path / "other.json").write_text(json.dumps({"layers": []}))
    with pytest.raises(DataError, match="neither an xgboost model"):
        export_bdt(tmp_path / "other.json", tmp_path / "prj")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        export_bdt(tmp_path / "broken.json", tmp_path / "prj")
    (tmp_path / "broken.ubj").write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match="xgboost refused"):
        export_bdt(tmp_path / "broken.ubj", tmp_path / "prj")
    (tmp_path / "partial.json").write_text(json.dumps({"trees": []}))
    with pytest.raises(DataError, match="needs n_classes"):
        export_bdt(tmp_path / "partial.json", tmp_path / "prj")
    assert not (tmp_path / "prj").exists()


def test_other_models_and_settings_are_refused(model, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    with pytest.raises(UnsupportedError, match="HistGradientBoostingClassifier"):
        export_bdt(HistGradientBoostingClassifier(), tmp_path / "prj")
    with pytest.raises(ConfigError, match="Unknown backend"):
        export_bdt(model[0], tmp_path / "prj", backend="pynq-z9")
    with pytest.raises(ConfigError, match="3 names"):
        export_bdt(model[0], tmp_path / "prj", class_names=["a", "b", "c"])
    export_bdt(model[0], tmp_path / "prj")
    with pytest.raises(ConfigError, match="already exists"):
        export_bdt(model[0], tmp_path / "prj")


def test_conifer_json_and_ubj_export_the_same_firmware(model, saved, tmp_path):
    bdt, _ = model
    bdt.estimator.save_model(str(tmp_path / "bdt.ubj"))
    a = export_bdt(saved, tmp_path / "a").firmware()
    b = export_bdt(tmp_path / "bdt.ubj", tmp_path / "b").firmware()
    c = export_bdt(tmp_path / "a" / "conifer" / "myproject.json", tmp_path / "c").firmware()
    assert a.digest() == b.digest() == c.digest()


def test_reader_refuses_oblique_splits(model, tmp_path):
    project = export_bdt(model[0], tmp_path / "prj")
    params = project.hls_dir / "firmware" / "parameters.h"
    text = params.read_text()
    first = text.index("{{") + 2  # the first node's weight row
    params.write_text(text[:first] + "2" + text[first + 1:])
    with pytest.raises(UnsupportedError, match="oblique"):
        read_parameters(params)


def test_the_bdt_emulator_is_board_safe(model, tmp_path):
    """Loading and running a BDT project needs numpy alone (Python 3.10 syntax), as on the board."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    project = export_bdt(model[0], tmp_path / "prj")
    np.save(tmp_path / "x.npy", model[1][:50])
    expected = project.firmware().predict(model[1][:50])
    code = ("import sys, numpy as np; from fastml_lab.emulator import Firmware;"
            f"fw = Firmware.load({str(project.path)!r}); y = fw.predict(np.load({str(tmp_path / 'x.npy')!r}));"
            f"np.save({str(tmp_path / 'y.npy')!r}, y);"
            "heavy = {'tensorflow', 'keras', 'hls4ml', 'sklearn', 'pandas', 'scipy', 'xgboost', 'conifer'};"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)
    package = Path(__file__).resolve().parents[1] / "fastml_lab"
    for path in (package / "bdt" / "__init__.py", package / "bdt" / "reader.py", package / "firmware" / "ops" / "bdt.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


def test_the_same_cxx_exported_twice_compiles_once(model, tmp_path, monkeypatch):
    """A second project of the same BDT (another folder, e.g. Restart & Run All's re-export) takes
    the library compiled for the first from the shared cache; another precision compiles anew."""
    from fastml_lab.hls import build_cache, csim

    monkeypatch.setenv(build_cache.CACHE_ENV, str(tmp_path / "shared"))
    X = model[1][:300]
    first = export_bdt(model[0], tmp_path / "a", precision="ap_fixed<15,6>")
    expected = csim.run_csim(first, X)
    assert len(list((tmp_path / "shared").glob("*.so"))) == 1
    compiles = []
    real_run = csim._run
    monkeypatch.setattr(csim, "_run", lambda *a, **k: compiles.append(a) or real_run(*a, **k))
    second = export_bdt(model[0], tmp_path / "b", precision="ap_fixed<15,6>")
    assert np.array_equal(csim.run_csim(second, X), expected) and compiles == []
    assert next((second.path / "csim").glob("*.so")).is_file()
    other = export_bdt(model[0], tmp_path / "c", precision="ap_fixed<13,6>")
    csim.run_csim(other, X)
    assert compiles and len(list((tmp_path / "shared").glob("*.so"))) == 2
    monkeypatch.setenv(build_cache.CACHE_ENV, "off")  # sharing turned off: nothing read or written
    compiles.clear()
    csim.run_csim(export_bdt(model[0], tmp_path / "d", precision="ap_fixed<15,6>"), X)
    assert compiles and len(list((tmp_path / "shared").glob("*.so"))) == 2


def test_a_library_that_names_its_project_is_never_shared(tmp_path):
    from fastml_lab.hls.build_cache import content_key

    recipe = {"stem": "libcsim", "flags": [], "include_dirs": [], "sources": [], "batch_source": "",
              "key_files": [], "path_defines": {"WEIGHTS_DIR": "firmware/weights"}}
    assert content_key(tmp_path, recipe, (), "g++") is None
    assert content_key(tmp_path, dict(recipe, path_defines={}), (), "g++") is not None


def test_a_bdt_estimate_on_a_bare_part_takes_the_clock_given(model, tmp_path):
    from fastml_lab.estimate import estimate

    project = export_bdt(model[0], tmp_path / "prj")
    own = estimate(project)
    fast = estimate(project, part="xcu250-figd2104-2L-e", clock_period_ns=5.0)
    assert own.clock_mhz == 100 and fast.clock_mhz == 200
    assert fast.latency_cycles == own.latency_cycles and fast.latency_ns == own.latency_ns / 2
    assert fast.fits is None and "bare part" in fast.verdict()
