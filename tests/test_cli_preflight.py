"""Every verb refuses a bad file or option before TensorFlow starts, and TensorFlow's start-up lines
never reach the terminal."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

_RUN = ("import sys; from fastml_lab.cli import main; status = main(sys.argv[1:]); "
        "print('tensorflow imported' if 'tensorflow' in sys.modules else 'tensorflow not imported'); "
        "sys.exit(status)")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("preflight")
    with zipfile.ZipFile(root / "model.keras", "w") as archive:  # passes the cheap check; never loaded
        archive.writestr("config.json", "{}")
    (root / "notzip.keras").write_text("not a zip")
    with zipfile.ZipFile(root / "noconfig.keras", "w") as archive:
        archive.writestr("weights.h5", "")
    (root / "bad.csv").write_text("a,b\n1,2\n")
    (root / "bdt.json").write_text('{"learner": {}}')  # claimed by the BDT family; never loaded
    return root


CASES = {
    "profile, bad data": (["profile", "model.keras", "--data", "bad.csv", "--out", "o"], "wrong columns"),
    "study, bad data": (["study", "model.keras", "--data", "bad.csv", "--out", "o"], "wrong columns"),
    "quantize, bad data": (["quantize", "model.keras", "--data", "bad.csv", "--out", "q.keras"], "wrong columns"),
    "train, bad data": (["train", "--family", "nn", "--data", "bad.csv", "--out", "t.keras"], "wrong columns"),
    "profile, missing model": (["profile", "missing.keras", "--data", "synthetic", "--out", "o"], "does not exist"),
    "study, not a zip": (["study", "notzip.keras", "--data", "synthetic", "--out", "o"], "not a Keras 3 archive"),
    "quantize, no config": (["quantize", "noconfig.keras", "--data", "synthetic", "--out", "q.keras"],
                            "without the config.json"),
    "export, bad precision": (["export", "model.keras", "--out", "p", "--precision", "ap_fixed<3>"],
                              "Cannot read the precision"),
    "export BDT, bad precision": (["export", "bdt.json", "--out", "p", "--precision", "input=ap_fixed<3>"],
                                  "Cannot read the precision"),
    "estimate, unknown board": (["estimate", "model.keras", "--board", "nope"], "Unknown board 'nope'"),
    "estimate, bad precision": (["estimate", "model.keras", "--precision", "ap_fixed<16>"],
                                "Cannot read the precision"),
    "estimate, not a zip": (["estimate", "notzip.keras"], "not a Keras 3 archive"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_or_option_is_refused_before_tensorflow_starts(case, files):
    argv, message = CASES[case]
    proc = subprocess.run([sys.executable, "-c", _RUN, *argv], cwd=files, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout.strip().endswith("tensorflow not imported")
    assert not (files / "o").exists() and not (files / "p").exists()


@pytest.mark.slow
@pytest.mark.needs_tf
def test_tensorflow_start_up_lines_stay_off_the_terminal(tmp_path):
    """oneDNN's notice, cpu_feature_guard's advice and absl's pre-initialisation warning are written by
    TensorFlow's C++ whatever TF_CPP_MIN_LOG_LEVEL says; none of them reaches the user."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "fastml_lab.cli", "train", "--family", "nn", "--data", "synthetic",
                           "--events", "2000", "--epochs", "1", "--hidden", "8", "--out", "m.keras"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.keras").is_file()
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "rebuild TensorFlow"):
        assert noise not in proc.stderr and noise not in proc.stdout, noise


def test_the_quiet_start_keeps_other_lines(capfd):
    """Only the start-up notices are dropped: anything else written during the import still shows."""
    import os

    from fastml_lab._deps import tensorflow_quietly

    with tensorflow_quietly():
        os.write(2, b"I0000 00:00:1796624664.561777    6702 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"E0000 something real went wrong\n")
    err = capfd.readouterr().err
    assert "something real went wrong" in err
    assert "oneDNN" not in err and "absl" not in err
