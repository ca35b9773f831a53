"""Bad input at every door: one table of broken files and values, fed to every verb that reads them.

Each case must end with exit status 2 and one line on stderr that starts with
``fastml-lab VERB: error:`` and names the file or value, with no traceback; nothing is written
where the verb would have written, and the inputs are left as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.cli import main

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

pytestmark = [pytest.mark.needs_tf, pytest.mark.needs_gxx]

N_IN = 5


# ---------------------------------------------------------------------------------------------- inputs
def _npy_header_only(path):
    np.save(path, np.zeros((50, N_IN)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _pickled(path):
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


#: name -> (how to write the file at the given path, words the message must contain besides the file name)
NPY_CASES = {
    "missing": (None, ["does not exist"]),
    "empty": (lambda p: p.write_bytes(b""), ["empty"]),
    "truncated": (_npy_header_only, []),
    "garbage": (lambda p: p.write_bytes(bytes(range(256)) * 4), []),
    "csv_text": (lambda p: p.write_text("1,2,3,4,5\n"), []),
    "pickled_objects": (_pickled, []),
    "complex": (lambda p: np.save(p, np.ones((3, N_IN), dtype=complex)), ["complex"]),
    "bool": (lambda p: np.save(p, np.ones((3, N_IN), dtype=bool)), ["bool"]),
    "strings": (lambda p: np.save(p, np.array([["a"] * N_IN])), ["dtype"]),
    "wrong_columns": (lambda p: np.save(p, np.zeros((4, N_IN + 1))), [f"(n_events, {N_IN})"]),
    "three_d": (lambda p: np.save(p, np.zeros((2, 2, N_IN))), ["shape"]),
    "one_d_wrong_length": (lambda p: np.save(p, np.zeros(N_IN + 2)), ["shape"]),
    "zero_rows": (lambda p: np.save(p, np.zeros((0, N_IN))), ["0 events"]),
    "nan": (lambda p: np.save(p, np.where(np.eye(3, N_IN) > 0, np.nan, 0.0)), ["nan"]),
    "inf": (lambda p: np.save(p, np.full((2, N_IN), np.inf)), ["inf"]),
}

INPUT_VERBS = ("emulate", "csim", "check", "run")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """One exported project and its software package, shared by every case."""
    from fastml_lab.hls import export
    from fastml_lab.overlay import package

    root = tmp_path_factory.mktemp("doors")
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((N_IN,)), keras.layers.Dense(4, activation="relu", name="fc1"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.save(root / "m.keras")
    prj = export(model, root / "prj", precision="ap_fixed<12,4>", backend="pynq-z2").path
    pkg = Path(package(prj, name="doors", out=root / "pkg"))
    np.save(root / "x.npy", np.random.default_rng(0).normal(size=(6, N_IN)))
    return {"root": root, "prj": prj, "pkg": pkg, "model": root / "m.keras", "x": root / "x.npy"}


def _digest(path: Path) -> str:
    """A hash of a file or of every file under a folder (names and contents)."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and "csim" not in p.relative_to(path).parts:
                h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


def refused(capsys, argv, names, words=()):
    """Run the CLI in this process; exit 2, one line naming ``names`` and ``words``, no traceback."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, (status, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    verb = argv[0]
    assert lines[0].startswith(f"fastml-lab {verb}: error: "), lines[0]
    for word in [*names, *words]:
        assert str(word).lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def _verb_argv(verb, good, target, x, out):
    if verb == "run":
        return ["run", target or good["pkg"], "--input", x, "--output", out, "--backend", "software"]
    if verb == "check":
        return ["check", target or good["prj"], "--input", x]
    return [verb, target or good["prj"], "--input", x, "--output", out]


# ---------------------------------------------------------------------------------------------- arrays
@pytest.mark.parametrize("case", sorted(NPY_CASES))
@pytest.mark.parametrize("verb", INPUT_VERBS)
def test_a_bad_input_array_is_refused_in_one_line(good, tmp_path, capsys, verb, case):
    write, words = NPY_CASES[case]
    x = tmp_path / "bad.npy" if case != "csv_text" else tmp_path / "bad.csv"
    if write is not None:
        write(x)
    before = _digest(x), _digest(good["prj"]), _digest(good["pkg"])
    out = tmp_path / "y.npy"
    refused(capsys, _verb_argv(verb, good, None, x, out), [x.name], words)
    assert not out.exists() and not list(tmp_path.glob(".y.*"))
    assert (_digest(x), _digest(good["prj"]), _digest(good["pkg"])) == before


@pytest.mark.parametrize("verb", ["emulate", "csim", "run"])
def test_an_output_that_is_a_folder_is_refused(good, tmp_path, capsys, verb):
    out = tmp_path / "y.npy"
    out.mkdir()
    refused(capsys, _verb_argv(verb, good, None, good["x"], out), [out.name, "folder"])
    assert out.is_dir() and not any(out.iterdir())


# ---------------------------------------------------------------------------------------------- models
def _nested_json(depth=100_000):
    return "[" * depth + "]" * depth


MODEL_CASES = {  # file name -> content (None: the file does not exist)
    "missing.keras": None,
    "empty.keras": b"",
    "garbage.keras": bytes(range(256)) * 8,
    "zip_without_model.keras": b"PK\x05\x06" + b"\x00" * 18,
    "model.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 64,
    "model.txt": b"not a model",
    "bdt_garbage.json": b"{not json",
    "bdt_not_utf8.json": b'{"learner": "\xff\xfe"}',
    "bdt_deeply_nested.json": _nested_json().encode(),
    "bdt_wrong_schema.json": json.dumps({"hello": [1, 2, 3]}).encode(),
    "bdt_list.json": b"[1, 2, 3]",
    "bdt_garbage.ubj": bytes(range(256)),
}


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_export_refuses_a_bad_model_file(tmp_path, capsys, name):
    content = MODEL_CASES[name]
    model = tmp_path / name
    if content is not None:
        model.write_bytes(content)
    before = _digest(model)
    out = tmp_path / "prj"
    refused(capsys, ["export", model, "--out", out], [name])
    assert not out.exists() and not list(tmp_path.glob(".prj*"))
    assert _digest(model) == before


# ---------------------------------------------------------------------------------------------- projects
def _break(path: Path, how: str):
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(bytes(range(256)))
    elif how == "not_utf8":
        path.write_bytes(b'{"backend": "\xff"}')
    elif how == "nested":
        path.write_text(_nested_json())
    elif how == "list":
        path.write_text("[1, 2]")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


PROJECT_CASES = [("project.json", how) for how in ("missing", "empty", "garbage", "not_utf8", "nested", "list")] + \
    [("firmware.json", how) for how in ("missing", "garbage", "nested", "list")] + \
    [("firmware.npz", how) for how in ("missing", "garbage", "truncated")]


@pytest.mark.parametrize("file,how", PROJECT_CASES)
@pytest.mark.parametrize("verb", ["emulate", "csim", "check", "package"])
def test_a_broken_project_is_refused_naming_it(good, tmp_path, capsys, verb, file, how):
    prj = tmp_path / "broken_prj"
    shutil.copytree(good["prj"], prj, ignore=shutil.ignore_patterns("csim"))
    _break(prj / file, how)
    before = _digest(prj)
    out = tmp_path / ("pkg" if verb == "package" else "y.npy")
    argv = (["package", prj, "--name", "broken", "--out", out] if verb == "package"
            else _verb_argv(verb, good, prj, good["x"], out))
    refused(capsys, argv, ["broken_prj"])
    assert not out.exists()
    assert _digest(prj) == before


REPORT_CASES = {
    "missing.xml": None,
    "empty.xml": b"",
    "garbage.xml": bytes(range(256)),
    "not_xml.xml": b"latency: 12 cycles\n",
    "no_figures.xml": b"<?xml version='1.0'?><profile><UserAssignments/></profile>",
}


@pytest.mark.parametrize("name", sorted(REPORT_CASES))
def test_synth_refuses_a_bad_report(good, tmp_path, capsys, name):
    prj = tmp_path / "prj"
    shutil.copytree(good["prj"], prj, ignore=shutil.ignore_patterns("csim"))
    report = tmp_path / name
    if REPORT_CASES[name] is not None:
        report.write_bytes(REPORT_CASES[name])
    before = _digest(prj)
    refused(capsys, ["synth", prj, "--report", report], [name])
    assert _digest(prj) == before


# ---------------------------------------------------------------------------------------------- packages
def _edit_manifest(pkg: Path, edit):
    path = pkg / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


PACKAGE_CASES = {
    "manifest_missing": lambda pkg: (pkg / "manifest.json").unlink(),
    "manifest_garbage": lambda pkg: (pkg / "manifest.json").write_bytes(bytes(range(256))),
    "manifest_nested": lambda pkg: (pkg / "manifest.json").write_text(_nested_json()),
    "manifest_list": lambda pkg: (pkg / "manifest.json").write_text("[]"),
    "schema_from_the_future": lambda pkg: _edit_manifest(pkg, lambda m: m.update(schema_version=999)),
    "lies_about_inputs": lambda pkg: _edit_manifest(pkg, lambda m: m["io"].update(n_inputs=N_IN + 1)),
    "lies_about_a_checksum": lambda pkg: _edit_manifest(
        pkg, lambda m: m["firmware"]["files"][-1].update(sha256="0" * 64)),
    "path_escapes": lambda pkg: _edit_manifest(
        pkg, lambda m: m["firmware"]["files"][-1].update(path="../outside.npz")),
    "emulator_data_changed": lambda pkg: (pkg / "firmware.npz").write_bytes(
        (pkg / "firmware.npz").read_bytes()[:-8] + b"\x00" * 8),
}


@pytest.mark.parametrize("case", sorted(PACKAGE_CASES))
def test_run_refuses_a_package_that_lies(good, tmp_path, capsys, case):
    pkg = tmp_path / "lying_pkg"
    shutil.copytree(good["pkg"], pkg)
    PACKAGE_CASES[case](pkg)
    before = _digest(pkg)
    out = tmp_path / "y.npy"
    refused(capsys, _verb_argv("run", good, pkg, good["x"], out), ["lying_pkg"])
    assert not out.exists()
    assert _digest(pkg) == before


# ---------------------------------------------------------------------------------------------- the disk
@pytest.mark.parametrize("verb", ["emulate", "run"])
def test_a_full_disk_is_a_clear_error_and_leaves_nothing(good, tmp_path, capsys, monkeypatch, verb):
    import errno
    import os

    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst).endswith("y.npy"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "y.npy"
    refused(capsys, _verb_argv(verb, good, None, good["x"], out), ["y.npy", "no space left"])
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ============================================================================ the training and design doors
# quantize, profile, study, estimate, sweep (and sweep --report) and demo: bad models, jet files, options,
# space files, sweep folders and output paths, each refused before any training starts.
import os  # noqa: E402

from fastml_lab.exceptions import FastMLError  # noqa: E402


@pytest.fixture(scope="module")
def jets(tmp_path_factory):
    """A float model the quantizer takes (16 -> 4 -> 5, softmax split off), a 2-tree xgboost BDT and 60 jets."""
    import xgboost as xgb
    from data_helpers import sample_jets, table_frame

    root = tmp_path_factory.mktemp("train_doors")
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4, activation="relu", name="fc1"),
                              keras.layers.Dense(5, name="out"), keras.layers.Activation("softmax", name="softmax")])
    model.save(root / "nn.keras")
    X, labels = sample_jets(60)
    table_frame(X, labels).to_csv(root / "jets.csv", index=False)
    xgb.XGBClassifier(n_estimators=2, max_depth=2).fit(X, labels).get_booster().save_model(str(root / "bdt.json"))
    return {"nn": root / "nn.keras", "bdt": root / "bdt.json", "csv": root / "jets.csv", "root": root}


def refused_by_parser(capsys, argv, names):
    """argparse's refusal: exit 2, its usage lines, then one error line naming ``names``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert len(lines) == 1 and lines[0].startswith(f"fastml-lab {argv[0]}: error: "), err
    for word in names:
        assert str(word).lower() in lines[0].lower(), (word, lines[0])


# ---------------------------------------------------------------------------------------------- jet files
def _jet_table(path, rows=40, edit=None):
    from data_helpers import sample_jets, table_frame

    frame = table_frame(*sample_jets(rows))
    if edit is not None:
        edit(frame)
    frame.to_csv(path, index=False)


def _set(column, row, value):
    def edit(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return edit


def _ragged(path):
    _jet_table(path)
    lines = path.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:5])
    path.write_text("\n".join(lines) + "\n")


#: name -> (file or folder name, how to write it, words the message must contain besides the name)
JET_CASES = {
    "missing": ("missing.csv", None, ["no such file"]),
    "empty": ("empty.csv", lambda p: p.write_bytes(b""), ["empty"]),
    "garbage": ("garbage.csv", lambda p: p.write_bytes(bytes(range(256)) * 4), ["csv"]),
    "not_utf8": ("latin.csv", lambda p: p.write_bytes(b"zl\xf6gz,class\n1,g\n"), ["utf-8"]),
    "header_only": ("header_only.csv", lambda p: _jet_table(p, edit=lambda f: f.drop(f.index, inplace=True)),
                    ["no jets"]),
    "one_row": ("one_row.csv", lambda p: _jet_table(p, rows=1), ["1 "]),
    "wrong_columns": ("wrong_columns.csv", lambda p: _jet_table(p, edit=lambda f: f.drop(columns="zlogz", inplace=True)),
                      ["zlogz"]),
    "text_values": ("text_values.csv", lambda p: _jet_table(p, edit=_set("zlogz", 2, "abc")), ["numbers"]),
    "ragged_row": ("ragged_row.csv", _ragged, ["finite"]),
    "nan": ("nan.csv", lambda p: _jet_table(p, edit=_set("mass_mmdt", 3, np.nan)), ["finite"]),
    "inf": ("inf.csv", lambda p: _jet_table(p, edit=_set("mass_mmdt", 3, np.inf)), ["finite"]),
    "huge": ("huge.csv", lambda p: _jet_table(p, edit=_set("mass_mmdt", 3, 1e300)), ["finite"]),
    "unknown_label": ("unknown_label.csv", lambda p: _jet_table(p, edit=_set("class", 2, "x")), ["labels"]),
    "missing_label": ("missing_label.csv", lambda p: _jet_table(p, edit=_set("class", 2, None)), ["labels"]),
    "npy": ("jets.npy", lambda p: np.save(p, np.zeros((10, 16))), ["unsupported"]),
    "pickled_npy": ("pickled.npy", _pickled, ["unsupported"]),
    "npz": ("jets.npz", lambda p: np.savez(p, X=np.zeros((10, 16)), y=np.zeros(10)), ["unsupported"]),
    "h5_garbage": ("garbage.h5", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64), ["hdf5"]),
    "parquet_garbage": ("garbage.parquet", lambda p: p.write_bytes(b"PAR1garbage"), ["parquet"]),
    "arff_garbage": ("garbage.arff", lambda p: p.write_bytes(bytes(range(256))), ["arff"]),
    "empty_folder": ("empty_folder", lambda p: p.mkdir(), ["no jet files"]),
}

#: verb -> how it is called on jets ``x`` writing ``out`` (a BDT for the *_bdt rows)
JET_VERBS = {
    "quantize": lambda f, x, out: ["quantize", f["nn"], "--data", x, "--out", out / "q.keras", "--epochs", 1],
    "profile": lambda f, x, out: ["profile", f["nn"], "--data", x, "--out", out],
    "profile_bdt": lambda f, x, out: ["profile", f["bdt"], "--data", x, "--out", out],
    "study": lambda f, x, out: ["study", f["nn"], "--data", x, "--out", out],
    "study_bdt": lambda f, x, out: ["study", f["bdt"], "--data", x, "--out", out],
    "demo": lambda f, x, out: ["demo", "--data", x, "--out", out, "--quick", "--model", "nn"],
}


@pytest.mark.parametrize("case", sorted(JET_CASES))
@pytest.mark.parametrize("verb", sorted(JET_VERBS))
def test_a_bad_jet_file_is_refused_before_training(jets, tmp_path, capsys, verb, case):
    name, write, words = JET_CASES[case]
    x = tmp_path / name
    if write is not None:
        write(x)
    before = _digest(x), _digest(jets["root"])
    out = tmp_path / "out"
    refused(capsys, JET_VERBS[verb](jets, x, out), [name], words)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert (_digest(x), _digest(jets["root"])) == before


# ---------------------------------------------------------------------------------------------- model files
MODEL_VERBS = {
    "quantize": lambda f, m, out: ["quantize", m, "--data", f["csv"], "--out", out / "q.keras", "--epochs", 1],
    "profile": lambda f, m, out: ["profile", m, "--data", f["csv"], "--out", out],
    "study": lambda f, m, out: ["study", m, "--data", f["csv"], "--out", out],
    "estimate": lambda f, m, out: ["estimate", m],
}
TRAIN_MODEL_CASES = {**MODEL_CASES, "bdt_empty.ubj": b"", "model_folder": "folder"}


@pytest.mark.parametrize("name", sorted(TRAIN_MODEL_CASES))
@pytest.mark.parametrize("verb", sorted(MODEL_VERBS))
def test_a_bad_model_file_is_refused_naming_it(jets, tmp_path, capsys, verb, name):
    content = TRAIN_MODEL_CASES[name]
    model = tmp_path / name
    if content == "folder":
        model.mkdir()
    elif content is not None:
        model.write_bytes(content)
    before = _digest(model)
    out = tmp_path / "out"
    refused(capsys, MODEL_VERBS[verb](jets, model, out), [name])
    assert not out.exists() and _digest(model) == before


# ---------------------------------------------------------------------------------------------- options
def _plan(text):
    def write(path):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path
    return write


def _quantize(*options):
    """argv of ``quantize`` on the fixture network and jets, with ``options``."""
    return lambda f, t: ["quantize", f["nn"], "--data", f["csv"], "--out", t / "q.keras", *options]


def _profile(*options):
    """argv of ``profile`` on the fixture network and jets, with ``options``."""
    return lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out", *options]


#: name -> (argv from the fixture paths and the case's folder, words the message must contain)
OPTION_CASES = {
    # a model of the wrong family, or an option of the other family
    "quantize_a_bdt": (lambda f, t: ["quantize", f["bdt"], "--data", f["csv"], "--out", t / "q.keras"], ["bdt.json", ".keras"]),
    "profile_nn_with_precision": (_profile("--precision", "ap_fixed<8,3>"), ["--precision", "--plan"]),
    "profile_bdt_with_plan": (lambda f, t: ["profile", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                            "--plan", _plan("{}")(t / "plan.json")], ["bdt.json", "--precision"]),
    "study_bdt_qat": (lambda f, t: ["study", f["bdt"], "--data", f["csv"], "--out", t / "out", "--mode", "qat"],
                      ["bdt.json", "ptq"]),
    "study_bdt_sparsities": (lambda f, t: ["study", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                           "--sparsities", "0.5"], ["bdt.json", "sparsities"]),
    "estimate_bdt_precision": (lambda f, t: ["estimate", f["bdt"], "--precision", "ap_fixed<8,3>"], ["bdt.json", "precision"]),
    "estimate_bdt_reuse": (lambda f, t: ["estimate", f["bdt"], "--reuse", "2"], ["bdt.json", "reuse"]),
    "estimate_bdt_strategy": (lambda f, t: ["estimate", f["bdt"], "--strategy", "Resource"], ["bdt.json", "strategy"]),
    # widths and precisions
    "quantize_bits_zero": (_quantize("--bits", "0"),
                           ["got 0", "2 to 24"]),
    "quantize_bits_100": (_quantize("--bits", "100"),
                          ["got 100", "2 to 24"]),
    "quantize_activation_bits_zero": (_quantize("--bits", "6,0"), ["activations", "got 0"]),
    "quantize_layer_not_in_model": (_quantize("--layer-bits", "fc9=8/10"), ["fc9", "fc1, out"]),
    "quantize_layer_bits_99": (_quantize("--layer-bits", "fc1=99/99"), ["fc1", "got 99"]),
    "study_bits_zero": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out", "--bits", "0,4"],
                        ["(0, 4)", "2 to 32"]),
    "study_bits_100": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out", "--bits", "100"],
                       ["(100,)", "2 to 32"]),
    "study_bits_none": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out", "--bits", ","],
                        ["()", "2 to 32"]),
    "study_bdt_bits_one": (lambda f, t: ["study", f["bdt"], "--data", f["csv"], "--out", t / "out", "--bits", "1"],
                           ["(1,)", "2 to 32"]),
    "study_integer_bits_negative": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out",
                                                  "--integer-bits", "-100", "--bits", "4"], ["-100", "0 to"]),
    "study_bdt_integer_bits_200": (lambda f, t: ["study", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                                 "--integer-bits", "200", "--bits", "4,6"], ["200", "0 to the smallest width (4)"]),
    "study_sparsity_one_and_a_half": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out",
                                                    "--sparsities", "1.5"], ["1.5", "between 0 and 1"]),
    "study_sparsity_nan": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out",
                                         "--sparsities", "nan"], ["nan", "between 0 and 1"]),
    "study_epochs_zero": (lambda f, t: ["study", f["nn"], "--data", f["csv"], "--out", t / "out", "--mode", "qat",
                                        "--epochs", "0"], ["epochs", "got 0"]),
    "profile_bdt_precision_zero": (lambda f, t: ["profile", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                                 "--precision", "ap_fixed<0,0>"], ["got 0"]),
    "profile_bdt_precision_fixed16": (lambda f, t: ["profile", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                                    "--precision", "fixed<16>"], ["fixed<16>"]),
    "profile_bdt_precision_100": (lambda f, t: ["profile", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                                "--precision", "ap_fixed<100,2>"], ["ap_fixed<100,2>"]),
    "profile_bdt_unknown_part": (lambda f, t: ["profile", f["bdt"], "--data", f["csv"], "--out", t / "out",
                                               "--precision", "input=ap_fixed<8,3> nope=ap_fixed<8,3>"], ["nope"]),
    "estimate_precision_zero": (lambda f, t: ["estimate", f["nn"], "--precision", "ap_fixed<0,0>"], ["got 0"]),
    "estimate_precision_fixed16": (lambda f, t: ["estimate", f["nn"], "--precision", "fixed<16>"], ["fixed<16>", "ap_fixed<w,i>"]),
    "estimate_precision_100": (lambda f, t: ["estimate", f["nn"], "--precision", "ap_fixed<100,2>"], ["ap_fixed<100,2>", "53"]),
    "estimate_precision_unclosed": (lambda f, t: ["estimate", f["nn"], "--precision", "ap_fixed<8,3"], ["ap_fixed<8,3'", "ap_fixed<16,6>"]),
    "estimate_reuse_100000": (lambda f, t: ["estimate", f["nn"], "--reuse", "100000"], ["100000", "valid for every dense layer"]),
    "estimate_reuse_not_dividing": (lambda f, t: ["estimate", f["nn"], "--reuse", "7"], ["reuse_factor 7", "fc1"]),
    "estimate_unknown_board": (lambda f, t: ["estimate", f["nn"], "--board", "nope"], ["'nope'", "pynq-z2"]),
    "estimate_unknown_part": (lambda f, t: ["estimate", f["nn"], "--part", "nope"], ["'nope'", "xc7"]),
    "estimate_bdt_unknown_part": (lambda f, t: ["estimate", f["bdt"], "--part", "nope"], ["'nope'", "xc7"]),
    "estimate_bdt_empty_part": (lambda f, t: ["estimate", f["bdt"], "--part", ""], ["''", "xc7"]),
    "estimate_reuse_auto_on_a_part": (lambda f, t: ["estimate", f["nn"], "--part", "xcu250-figd2104-2L-e", "--reuse", "auto"],
                                      ["--part", "--board"]),
    # training settings, checked before the first epoch
    "quantize_prune_one_and_a_half": (_quantize("--prune", "1.5"), ["1.5", "[0, 1)"]),
    "quantize_prune_nan": (_quantize("--prune", "nan"), ["nan", "[0, 1)"]),
    "quantize_hgq_negative": (_quantize("--hgq", "-1"), ["-1", ">= 0"]),
    "quantize_hgq_inf": (_quantize("--hgq", "inf"), ["inf", ">= 0"]),
    "quantize_epochs_zero": (_quantize("--epochs", "0"), ["epochs", "got 0"]),
    "quantize_batch_size_zero": (_quantize("--batch-size", "0"), ["batch_size", "got 0"]),
    "quantize_learning_rate_negative": (_quantize("--learning-rate", "-1"), ["learning_rate", "got -1"]),
    "quantize_learning_rate_inf": (_quantize("--learning-rate", "inf"), ["learning_rate", "got inf"]),
    "quantize_events_one": (_quantize("--events", "1"), ["n_events", ">= 2"]),
    "quantize_events_too_many": (_quantize("--events", "1000000"), ["1000000", "60 jets", "jets.csv"]),
    "quantize_hgq_and_layer_bits": (_quantize("--hgq", "1e-6", "--layer-bits", "fc1=8/8"), ["--layer-bits", "--hgq"]),
    "profile_events_one": (_profile("--events", "1"),
                           ["n_events", ">= 2"]),
    "demo_unknown_source": (lambda f, t: ["demo", "--data", "nope", "--out", t / "out"], ["'nope'", "synthetic"]),
    # plans
    "profile_plan_missing": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                           "--plan", t / "noplan.json"], ["noplan.json", "does not exist"]),
    "profile_plan_garbage": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                           "--plan", _plan(b"{x")(t / "plan.json")], ["plan.json", "json"]),
    "profile_plan_not_utf8": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                            "--plan", _plan(b'{"default": "\xff"}')(t / "plan.json")], ["plan.json", "utf-8"]),
    "profile_plan_nested": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                          "--plan", _plan(_nested_json())(t / "plan.json")], ["plan.json", "nested"]),
    "profile_plan_list": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                        "--plan", _plan("[]")(t / "plan.json")], ["plan.json", "object"]),
    "profile_plan_zero_width": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                              "--plan", _plan('{"default": "ap_fixed<0,0>"}')(t / "plan.json")], ["got 0"]),
    "profile_plan_fixed16": (lambda f, t: ["profile", f["nn"], "--data", f["csv"], "--out", t / "out",
                                           "--plan", _plan('{"default": "fixed<16>"}')(t / "plan.json")], ["fixed<16>"]),
}

#: cases argparse refuses (its usage lines, then one error line)
PARSER_CASES = {
    "quantize_bits_word": (["quantize", "{nn}", "--data", "{csv}", "--out", "q.keras", "--bits", "abc"], ["'abc'", "6,8"]),
    "quantize_bits_four_parts": (["quantize", "{nn}", "--data", "{csv}", "--out", "q.keras", "--bits", "6,8,16,4"],
                                 ["'6,8,16,4'", "w,a,i"]),
    "quantize_layer_bits_no_slash": (["quantize", "{nn}", "--data", "{csv}", "--out", "q.keras", "--layer-bits", "fc1=8"],
                                     ["'fc1=8'", "fc1=8/10"]),
    "study_bits_word": (["study", "{nn}", "--data", "{csv}", "--out", "out", "--bits", "a"], ["'a'", "4,6,8"]),
    "study_integer_bits_word": (["study", "{nn}", "--data", "{csv}", "--out", "out", "--integer-bits", "x"], ["'x'", "auto"]),
    "study_mode_unknown": (["study", "{nn}", "--data", "{csv}", "--out", "out", "--mode", "hgq"], ["'hgq'", "ptq"]),
    "estimate_reuse_zero": (["estimate", "{nn}", "--reuse", "0"], ["'0'", ">= 1"]),
    "estimate_reuse_word": (["estimate", "{nn}", "--reuse", "x"], ["'x'", "auto"]),
    "estimate_strategy_unknown": (["estimate", "{nn}", "--strategy", "Fast"], ["'fast'", "latency"]),
    "estimate_board_and_part": (["estimate", "{nn}", "--board", "pynq-z2", "--part", "xc7z020clg400-1"], ["--part", "--board"]),
    "demo_model_unknown": (["demo", "--model", "svm", "--out", "out"], ["'svm'", "nn"]),
    "sweep_search_unknown": (["sweep", "space.yaml", "--out", "out", "--search", "bayes"], ["'bayes'", "grid"]),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_a_bad_option_is_refused_before_any_work(jets, tmp_path, capsys, case):
    argv, words = OPTION_CASES[case]
    before = _digest(jets["root"])
    refused(capsys, argv(jets, tmp_path), [], words)
    assert not (tmp_path / "out").exists() and not (tmp_path / "q.keras").exists()
    assert _digest(jets["root"]) == before


@pytest.mark.parametrize("case", sorted(PARSER_CASES))
def test_a_value_argparse_cannot_read_is_refused_in_one_line(jets, tmp_path, capsys, case):
    argv, words = PARSER_CASES[case]
    argv = [str(jets[a[1:-1]]) if a in ("{nn}", "{csv}") else (str(tmp_path / a) if a in ("q.keras", "out") else a)
            for a in argv]
    refused_by_parser(capsys, argv, words)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- outputs
#: name -> (what is in the way: "file" or "folder", the path given as the output, argv)
OUTPUT_CASES = {
    "quantize_out_is_a_folder": ("folder", "q.keras", lambda f, o: ["quantize", f["nn"], "--data", f["csv"], "--out", o]),
    "quantize_parent_is_a_file": ("file", "q.keras", lambda f, o: ["quantize", f["nn"], "--data", f["csv"],
                                                                   "--out", o / "q.keras"]),
    "profile_out_is_a_file": ("file", "out", lambda f, o: ["profile", f["nn"], "--data", f["csv"], "--out", o]),
    "profile_out_is_a_file_forced": ("file", "out", lambda f, o: ["profile", f["nn"], "--data", f["csv"], "--out", o,
                                                                  "--force"]),
    "profile_bdt_parent_is_a_file": ("file", "out", lambda f, o: ["profile", f["bdt"], "--data", f["csv"],
                                                                  "--out", o / "x"]),
    "profile_out_exists": ("folder", "out", lambda f, o: ["profile", f["nn"], "--data", f["csv"], "--out", o]),
    "study_out_is_a_file_forced": ("file", "out", lambda f, o: ["study", f["nn"], "--data", f["csv"], "--out", o,
                                                                "--force"]),
    "study_parent_is_a_file": ("file", "out", lambda f, o: ["study", f["nn"], "--data", f["csv"], "--out", o / "x"]),
    "study_bdt_out_exists": ("folder", "out", lambda f, o: ["study", f["bdt"], "--data", f["csv"], "--out", o]),
    "demo_out_is_a_file": ("file", "out", lambda f, o: ["demo", "--data", "synthetic", "--out", o, "--quick"]),
    "demo_parent_is_a_file": ("file", "out", lambda f, o: ["demo", "--data", "synthetic", "--out", o / "x", "--quick"]),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_an_output_in_the_way_is_refused_and_left_alone(jets, tmp_path, capsys, case):
    kind, name, argv = OUTPUT_CASES[case]
    there = tmp_path / name
    if kind == "file":
        there.write_text("keep me\n")
    else:
        there.mkdir()
        (there / "keep.txt").write_text("keep me\n")
    before = _digest(there), sorted(p.name for p in tmp_path.iterdir())
    refused(capsys, argv(jets, there), [name])
    assert (_digest(there), sorted(p.name for p in tmp_path.iterdir())) == before
    assert there.is_file() if kind == "file" else there.is_dir()


# ---------------------------------------------------------------------------------------------- sweeps
_SPACE = {"kind": "nn", "data": {"source": "synthetic", "n_events": 400}, "grid": {"sizes": ["4"], "bits": [6], "epochs": [1]}}


def _space(**changes):
    return json.dumps({**_SPACE, **changes}).encode()


SPACE_CASES = {  # file name -> (content, None: missing; words the message must contain)
    "missing.yaml": (None, ["does not exist"]),
    "empty.yaml": (b"", ["empty"]),
    "empty.json": (b"", ["json"]),
    "not_utf8.yaml": (b"kind: \xff\n", ["utf-8"]),
    "not_utf8.json": (b'{"kind": "\xff"}', ["utf-8"]),
    "garbage.yaml": (bytes(range(256)), ["utf-8"]),
    "bad_yaml.yaml": (b"kind: [nn\n", ["yaml"]),
    "nested.json": (_nested_json().encode(), ["nested"]),
    "nested.yaml": (_nested_json(20_000).encode(), ["nested"]),
    "nested_map.yaml": (("{a: " * 5000 + "1" + "}" * 5000).encode(), ["nested"]),
    "list.yaml": (b"- 1\n- 2\n", ["mapping", "list"]),
    "space.txt": (b"kind: nn\n", [".yaml"]),
    "unknown_key.json": (_space(colour=1), ["'colour'", "valid keys"]),
    "unknown_param.json": (_space(grid={"sizes": ["4"], "wings": [2]}), ["wings", "valid:"]),
    "empty_list.json": (_space(grid={"sizes": ["4"], "bits": []}), ["grid.bits", "empty list"]),
    "empty_range.json": (json.dumps({**{k: v for k, v in _SPACE.items() if k != "grid"}, "search": "random",
                                     "params": {"learning_rate": {"min": 0.01, "max": 0.01}}}).encode(),
                         ["learning_rate", "a < b"]),
    "grid_and_params.json": (_space(params={"bits": [4]}), ["'grid' or 'params'"]),
    "unknown_board.json": (_space(board="nope"), ["'nope'", "pynq-z2"]),
    "unknown_kind.json": (_space(kind="svm"), ["'svm'", "nn, bdt"]),
    "bad_precision.json": (json.dumps({"kind": "bdt", "grid": {"precision": ["fixed<16>"]}}).encode(), ["fixed<16>"]),
    "zero_width_precision.json": (json.dumps({"kind": "bdt", "grid": {"precision": ["ap_fixed<0,0>"]}}).encode(),
                                  ["ap_fixed<0,0>"]),
    "reuse_zero.json": (_space(grid={"sizes": ["4"], "reuse": [0]}), ["reuse", "1 to 4096"]),
    "bits_zero.json": (_space(grid={"sizes": ["4"], "bits": [0]}), ["bits"]),
    "sizes_not_widths.json": (_space(grid={"sizes": ["x-y"]}), ["'x-y'", "16-8"]),
    "missing_data_file.json": (_space(data={"source": "/nonexistent/jets.csv"}), ["jets.csv", "synthetic"]),
    "no_models.json": (json.dumps({"models": []}).encode(), ["models", "non-empty"]),
    "grid_is_a_list.json": (_space(grid=[1, 2]), ["grid", "mapping"]),
    "trials_zero.json": (_space(trials=0), ["trials", ">= 1"]),
}


@pytest.mark.parametrize("name", sorted(SPACE_CASES))
def test_sweep_refuses_a_bad_space_file(tmp_path, capsys, name):
    content, words = SPACE_CASES[name]
    space = tmp_path / name
    if content is not None:
        space.write_bytes(content)
    before = _digest(space)
    out = tmp_path / "sweep"
    refused(capsys, ["sweep", space, "--out", out], [name], words)
    assert not out.exists() and _digest(space) == before


SWEEP_OPTION_CASES = {  # name -> (extra argv, words)
    "workers_zero": (["--workers", "0"], ["workers", ">= 1"]),
    "trials_zero": (["--trials", "0", "--search", "random"], ["trials", ">= 1"]),
    "no_out": (None, ["--out dir"]),
    "space_and_report": (["--report", "sweep"], ["--report", "no space"]),
}


@pytest.mark.parametrize("case", sorted(SWEEP_OPTION_CASES))
def test_sweep_refuses_bad_options_before_making_its_folder(tmp_path, capsys, case):
    extra, words = SWEEP_OPTION_CASES[case]
    space = tmp_path / "space.json"
    space.write_bytes(_space())
    argv = ["sweep", space] + (["--out", tmp_path / "sweep", *extra] if extra is not None else [])
    refused(capsys, argv, [], words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.json"]


def _record(point_id="abc", **changes):
    return {"id": point_id, "kind": "nn", "label": "4 @ 6 bits", "status": "ok",
            "point": {"kind": "nn", "params": {"sizes": "4"}, "seed": 0},
            "metrics": {"fixed_accuracy": 0.5, "lut": 10, "dsp": 1, "ff": 1, "bram_18k": 0, "latency_ns": 10}, **changes}


REPORT_FOLDER_CASES = {  # name -> (how to break a one-record sweep folder, the file the message names)
    "record_truncated": (lambda d: (d / "points" / "def.json").write_text(json.dumps(_record("def"))[:30]), "def.json"),
    "record_garbage": (lambda d: (d / "points" / "def.json").write_bytes(bytes(range(256))), "def.json"),
    "record_empty": (lambda d: (d / "points" / "def.json").write_bytes(b""), "def.json"),
    "record_nested": (lambda d: (d / "points" / "def.json").write_text(_nested_json()), "def.json"),
    "record_list": (lambda d: (d / "points" / "def.json").write_text("[1, 2]"), "def.json"),
    "record_metrics_text": (lambda d: (d / "points" / "def.json").write_text(json.dumps(_record("def", metrics="oops"))),
                            "def.json"),
    "record_of_another_id": (lambda d: (d / "points" / "def.json").write_text(json.dumps(_record("xyz"))), "def.json"),
    "record_status_unknown": (lambda d: (d / "points" / "def.json").write_text(json.dumps(_record("def", status="?"))),
                              "def.json"),
    "sweep_json_garbage": (lambda d: (d / "sweep.json").write_bytes(bytes(range(256))), "sweep.json"),
    "sweep_json_nested": (lambda d: (d / "sweep.json").write_text(_nested_json()), "sweep.json"),
    "sweep_json_list": (lambda d: (d / "sweep.json").write_text("[]"), "sweep.json"),
    "no_sweep_here": (lambda d: shutil.rmtree(d) or d.mkdir(), "sweep"),
    "a_file": (lambda d: shutil.rmtree(d) or d.write_text("x"), "sweep"),
    "missing": (lambda d: shutil.rmtree(d), "sweep"),
}


@pytest.mark.parametrize("case", sorted(REPORT_FOLDER_CASES))
def test_sweep_report_refuses_a_folder_it_cannot_read(tmp_path, capsys, case):
    folder = tmp_path / "sweep"
    (folder / "points").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"runs": [], "board": "pynq-z2"}))
    (folder / "points" / "abc.json").write_text(json.dumps(_record()))
    breaks, named = REPORT_FOLDER_CASES[case]
    breaks(folder)
    before = _digest(folder)
    refused(capsys, ["sweep", "--report", folder], [named])
    assert _digest(folder) == before and not list(folder.glob("results.*")) if folder.is_dir() else True


# ---------------------------------------------------------------------------------------------- permissions
def test_an_unreadable_jet_folder_is_refused(jets, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading, so the refusal cannot be seen")
    folder = tmp_path / "locked"
    folder.mkdir()
    shutil.copy(jets["csv"], folder / "jets.csv")
    folder.chmod(0)
    try:
        refused(capsys, ["quantize", jets["nn"], "--data", folder, "--out", tmp_path / "q.keras"], ["locked"])
    finally:
        folder.chmod(0o755)
    assert not (tmp_path / "q.keras").exists()


# ---------------------------------------------------------------------------------------------- the Python entry points
def _api_cases(f, t):
    from fastml_lab.data import load_jets
    from fastml_lab.demo import run_demo
    from fastml_lab.estimate import estimate
    from fastml_lab.quantize import bit_width_study, profile, quantize
    from fastml_lab.sweep.results import report
    from fastml_lab.sweep.runner import run_sweep
    from fastml_lab.sweep.space import load_space

    (t / "space.json").write_bytes(b'{"kind": "\xff"}')
    (t / "afile").write_text("x")
    data = (lambda: load_jets(f["csv"]))
    return {
        "load_jets_missing": (lambda: load_jets(t / "missing.csv"), "missing.csv"),
        "load_jets_npy": (lambda: load_jets(t / "x.npy"), "x.npy"),
        "quantize_bits_zero": (lambda: quantize(f["nn"], data(), bits=0, epochs=1), "got 0"),
        "quantize_prune_two": (lambda: quantize(f["nn"], data(), prune=2.0, epochs=1), "got 2.0"),
        "quantize_learning_rate_inf": (lambda: quantize(f["nn"], data(), learning_rate=float("inf"), epochs=1), "inf"),
        "profile_sample_zero": (lambda: profile(f["nn"], data(), sample=0), "sample"),
        "study_integer_bits": (lambda: bit_width_study(f["nn"], data(), bits=(4,), integer_bits=9), "integer_bits"),
        "estimate_reuse": (lambda: estimate(f["nn"], reuse_factor=7), "reuse_factor 7"),
        "estimate_bdt_part": (lambda: estimate(f["bdt"], part="nope"), "'nope'"),
        "load_space_not_utf8": (lambda: load_space(t / "space.json"), "space.json"),
        "run_sweep_workers": (lambda: run_sweep(_SPACE, t / "sweep", workers=0), "workers"),
        "report_missing": (lambda: report(t / "nosweep"), "nosweep"),
        "run_demo_out_is_a_file": (lambda: run_demo(out=t / "afile", quick=True, data="synthetic"), "afile"),
        "run_demo_bad_data": (lambda: run_demo(out=t / "demo", quick=True, data=str(t / "missing.csv"), model="nn"),
                              "missing.csv"),
    }


API_CASES = ("load_jets_missing", "load_jets_npy", "quantize_bits_zero", "quantize_prune_two",
             "quantize_learning_rate_inf", "profile_sample_zero", "study_integer_bits", "estimate_reuse",
             "estimate_bdt_part", "load_space_not_utf8", "run_sweep_workers", "report_missing",
             "run_demo_out_is_a_file", "run_demo_bad_data")


@pytest.mark.parametrize("case", API_CASES)
def test_the_python_entry_points_raise_fastml_errors(jets, tmp_path, case):
    call, word = _api_cases(jets, tmp_path)[case]
    np.save(tmp_path / "x.npy", np.zeros((3, 16)))
    with pytest.raises(FastMLError) as caught:
        call()
    assert word.lower() in str(caught.value).lower()
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "demo").exists()
