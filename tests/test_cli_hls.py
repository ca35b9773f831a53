"""`fastml-lab export | csim | emulate | check | synth` as a user runs them: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

pytestmark = pytest.mark.needs_tf

CLI = Path(sys.executable).with_name("fastml-lab")


def run(*args, cwd=None, timeout=180):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


_TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d)")


def one_line_error(proc, verb, tf_noise=False):
    """Exit status 2 and exactly one error line (TensorFlow's own start-up log lines aside, when the
    verb has to import it)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if tf_noise:
        lines = [line for line in lines if not _TF_NOISE.match(line)]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fastml-lab {verb}: error:")
    return lines[0]


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="fc1"),
                              keras.layers.Dense(3, name="fc2")])
    model.save(root / "m.keras")
    proc = run("export", root / "m.keras", "--out", root / "prj", "--precision", "ap_fixed<14,5>")
    assert proc.returncode == 0, proc.stderr
    assert "6 inputs -> 3 outputs" in proc.stdout and "prj" in proc.stdout
    return root, root / "prj"


@pytest.mark.parametrize("verb", [None, "export", "csim", "emulate", "check", "synth"])
def test_help_works_for_every_verb(verb):
    proc = run(*([verb] if verb else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: fastml-lab")
    if verb is None:
        for v in ("export", "csim", "emulate", "check", "synth"):
            assert v in proc.stdout
    elif verb == "export":
        for opt in ("--out", "--precision", "--plan", "--reuse", "--strategy", "--backend", "--clock-period",
                    "--part", "--force"):
            assert opt in proc.stdout
    elif verb in ("csim", "emulate"):
        assert "--input" in proc.stdout and "--output" in proc.stdout
    elif verb == "check":
        assert "--input" in proc.stdout and "--events" in proc.stdout
    else:
        assert "project" in proc.stdout


def test_export_then_emulate_round_trip(cli_project, tmp_path):
    from fastml_lab.emulator import Firmware
    from fastml_lab.hls import Project

    root, prj = cli_project
    assert Project.open(prj).meta["plan"]["default"] == "ap_fixed<14,5>"
    X = np.random.default_rng(0).normal(size=(11, 6))
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "sub" / "y.npy"
    proc = run("emulate", prj, "--input", tmp_path / "x.npy", "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert "11 events" in proc.stdout
    y = np.load(out)
    assert y.shape == (11, 3) and y.dtype == np.float64
    assert np.array_equal(y, Firmware.load(prj).predict(X))


def test_emulate_does_not_import_tensorflow_keras_or_hls4ml(cli_project, tmp_path):
    _, prj = cli_project
    np.save(tmp_path / "x.npy", np.zeros((2, 6)))
    code = (
        "import sys\n"
        "from fastml_lab.cli import main\n"
        f"rc = main(['emulate', {str(prj)!r}, '--input', {str(tmp_path / 'x.npy')!r}, "
        f"'--output', {str(tmp_path / 'y.npy')!r}])\n"
        "assert rc == 0, rc\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'hls4ml'))\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert np.load(tmp_path / "y.npy").shape == (2, 3)


def _bad_input_cases(tmp_path):
    cols = tmp_path / "cols.npy"
    np.save(cols, np.zeros((4, 5)))
    nan = tmp_path / "nan.npy"
    X = np.zeros((4, 6))
    X[2, 3] = np.nan
    np.save(nan, X)
    csv = tmp_path / "x.csv"
    np.savetxt(csv, np.zeros((3, 6)))
    return {
        "columns": (cols, ["(n_events, 6)", "(4, 5)"]),
        "nan": (nan, ["NaN", "nan.npy[2, 3] is nan"]),  # the shared input check names the position
        "missing": (tmp_path / "nothere.npy", ["nothere.npy", "does not exist"]),
        "not_npy": (csv, ["x.csv", ".npy"]),
    }


@pytest.mark.parametrize("case", ["columns", "nan", "missing", "not_npy"])
def test_emulate_bad_inputs_exit_2_with_one_line(cli_project, tmp_path, case):
    _, prj = cli_project
    path, words = _bad_input_cases(tmp_path)[case]
    out = tmp_path / "y.npy"
    line = one_line_error(run("emulate", prj, "--input", path, "--output", out), "emulate")
    for word in words:
        assert word in line, (word, line)
    assert not out.exists()


def test_emulate_empty_input_file_exits_2(cli_project, tmp_path):
    _, prj = cli_project
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    one_line_error(run("emulate", prj, "--input", empty, "--output", tmp_path / "y.npy"), "emulate")


@pytest.mark.parametrize("verb", ["emulate", "csim"])
def test_folder_that_is_not_a_project_exits_2(tmp_path, verb):
    np.save(tmp_path / "x.npy", np.zeros((2, 6)))
    folder = tmp_path / "not_a_project"
    folder.mkdir()
    line = one_line_error(run(verb, folder, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"), verb)
    assert "not_a_project" in line
    assert not (tmp_path / "y.npy").exists()


def test_export_refuses_an_existing_folder_in_one_line(cli_project):
    root, prj = cli_project
    digest_before = (prj / "project.json").read_text()
    line = one_line_error(run("export", root / "m.keras", "--out", prj), "export", tf_noise=True)
    assert "already exists" in line and "prj" in line
    assert (prj / "project.json").read_text() == digest_before


def test_export_missing_model_file_exits_2(tmp_path):
    line = one_line_error(run("export", tmp_path / "gone.keras", "--out", tmp_path / "p"), "export",
                          tf_noise=True)
    assert "gone.keras" in line
    assert not (tmp_path / "p").exists()


@pytest.mark.needs_gxx
def test_csim_of_c_plus_plus_that_does_not_compile_says_so(cli_project, tmp_path):
    import shutil

    from fastml_lab.exceptions import ToolchainNotFoundError
    from fastml_lab.hls.csim import CompileError, compile_csim

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    _, prj = cli_project
    broken = tmp_path / "broken"
    shutil.copytree(prj, broken, ignore=shutil.ignore_patterns("csim"))
    source = broken / "hls4ml" / "firmware" / "myproject.cpp"
    source.write_text(source.read_text() + "\nthis is not C++;\n")
    np.save(tmp_path / "x.npy", np.zeros((2, 6)))
    proc = run("csim", broken, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "The C simulation did not compile: g++ failed on myproject.cpp" in proc.stderr
    assert "not found" not in proc.stderr.lower().split("myproject.cpp")[0]
    assert not (tmp_path / "y.npy").exists()
    with pytest.raises(CompileError) as err:
        compile_csim(broken)
    assert not isinstance(err.value, ToolchainNotFoundError)


@pytest.mark.needs_gxx
def test_check_compares_csim_and_emulator_as_check_project_does(cli_project, tmp_path):
    import json

    from fastml_lab.hls import check_project

    _, prj = cli_project
    X = np.random.default_rng(5).normal(scale=4, size=(40, 6))
    np.save(tmp_path / "x.npy", X)
    proc = run("check", prj, "--input", tmp_path / "x.npy", "--events", 25)
    assert proc.returncode == 0, proc.stderr
    assert "0 mismatches on 75 output values (25 events)" in proc.stdout
    proc = run("check", prj, "--input", tmp_path / "x.npy", "--json")
    counts = json.loads(proc.stdout)
    direct = check_project(prj, X)
    assert counts["values"] == direct.values == 120 and counts["mismatches"] == direct.mismatches == 0


@pytest.mark.needs_gxx
def test_check_exits_1_and_counts_values_when_the_firmware_disagrees(cli_project, tmp_path):
    """A description that no longer matches the C++ (one weight changed) is caught, value by value."""
    import shutil

    _, prj = cli_project
    changed = tmp_path / "changed"
    shutil.copytree(prj, changed, ignore=shutil.ignore_patterns("csim"))
    arrays = dict(np.load(changed / "firmware.npz"))
    key = next(k for k in arrays if k.endswith("/weight"))
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] += 64
    np.savez(changed / "firmware.npz", **arrays)
    np.save(tmp_path / "x.npy", np.random.default_rng(6).normal(scale=4, size=(30, 6)))
    proc = run("check", changed, "--input", tmp_path / "x.npy")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    mismatches = int(re.search(r"(\d+) mismatch", proc.stdout).group(1))
    assert 0 < mismatches <= 90 and "on 90 output values (30 events)" in proc.stdout


def test_check_refuses_a_bad_event_count_in_one_line(cli_project, tmp_path):
    _, prj = cli_project
    np.save(tmp_path / "x.npy", np.zeros((3, 6)))
    line = one_line_error(run("check", prj, "--input", tmp_path / "x.npy", "--events", 0), "check")
    assert "n_events" in line and "0" in line
