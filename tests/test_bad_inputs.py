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
