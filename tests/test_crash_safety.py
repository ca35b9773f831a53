"""Crash safety: ``kill -9`` at moments spread over a run of export, package, quantize, study,
demo and sweep.

After every kill the destination is either absent (it did not exist before) or complete and
readable (the old one, or the new one), nothing but hidden leftovers lies beside it, and the next
run succeeds and clears those leftovers. The kill moments are fractions of a measured full run, so
they fall in the import, the work and the final renames alike. A sweep is killed as its points
finish; its next run resumes: the points already in the folder are neither run nor written again.

Each run starts in a session of its own, so what it started (g++, Dask workers) is found after the
kill: the sweep's workers must end by themselves; other leftovers are counted and ended here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hls4ml")

pytestmark = [pytest.mark.needs_tf]

CLI = Path(sys.executable).with_name("fastml-lab")
#: Where in a run the kills land, as fractions of one full run's wall time.
FRACTIONS = (0.3, 0.6, 0.85, 0.97)


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", FASTML_LAB_OFFLINE="1")


def full_run(argv, timeout=600) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(CLI), *map(str, argv)], capture_output=True, text=True, env=_env(),
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - start


def start(argv) -> subprocess.Popen:
    """The verb in a session (and process group) of its own, whose id is the process's."""
    return subprocess.Popen([str(CLI), *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)


def group(pgid: int) -> list:
    """``[(pid, command name)]`` of the live processes in process group ``pgid`` (zombies left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if rest[0] != "Z" and int(rest[2]) == pgid:
            found.append((int(stat.parent.name), name))
    return sorted(found)


def end_group(pgid: int) -> list:
    """What the killed run left running in its process group (given 3 s to end with their parent),
    then ended (SIGKILL)."""
    deadline = time.monotonic() + 3
    while group(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group(pgid)
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while group(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return left


def killed_run(argv, after_s: float, orphans: list | None = None, when=None) -> int:
    """Start the verb, SIGKILL it after ``after_s`` seconds (if still running); its exit status.
    With ``when`` (called at the start, it gives a test of progress) the seconds count from the
    moment that test is first true. What the run left running is added to ``orphans`` (names) and ended."""
    reached = when() if when is not None else None
    proc = start(argv)
    try:
        deadline = time.monotonic() + 600
        while reached is not None and not reached() and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never reached its moment"
            time.sleep(0.02)
        proc.wait(timeout=after_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    left = end_group(proc.pid)
    if orphans is not None:
        orphans.extend(name for _, name in left)
    return proc.returncode


def visible(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def campaign(argv, target: Path, check_complete, runs_in: Path, fractions=FRACTIONS) -> dict:
    """Kill ``argv`` at each of ``fractions`` of a full run; check ``target`` after each kill.
    A moment may also be ``(when, seconds)``: that many seconds after ``when`` (see :func:`killed_run`).

    Returns the counts of kills, of runs that finished before their moment, and the names of the
    processes the killed runs left running (``orphans``)."""
    seconds = full_run(argv)
    check_complete(target)
    before = visible(runs_in)
    counts = {"kills": 0, "finished_first": 0, "orphans": []}
    for fraction in fractions:
        when, after_s = fraction if isinstance(fraction, tuple) else (None, fraction * seconds)
        status = killed_run(argv, after_s, counts["orphans"], when)
        counts["kills" if status == -signal.SIGKILL else "finished_first"] += 1
        # The destination existed before (a replacement run): it is complete, old or new.
        from fastml_lab._io import recover_replaced

        recover_replaced(target)
        check_complete(target)
        assert visible(runs_in) == before, "a killed run left a visible file or folder"
    full_run(argv)
    check_complete(target)
    assert [p.name for p in runs_in.iterdir() if p.name.startswith(".")] == [], \
        "the next run did not clear what the killed runs left"
    print(f"{argv[0]}: {counts}")
    # g++ and the C simulation's runner end with the killed run; the compiler proper that a killed
    # g++ had started (cc1plus: the parent-death signal is not inherited) finishes its one file alone.
    left = [name for name in counts["orphans"] if name not in ("cc1plus", "cc1")]
    assert not left, f"the killed runs left {left} running"
    return counts


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu", name="fc1"),
                              keras.layers.Dense(5, name="fc2"), keras.layers.Activation("softmax", name="out")])
    model.compile("adam", "categorical_crossentropy")
    model.save(root / "m.keras")
    return root / "m.keras"


def _project_complete(path: Path):
    from fastml_lab.project import Project

    project = Project.open(path)
    fw = project.firmware()
    assert fw.n_inputs == 16 and np.isfinite(fw.predict(np.zeros((2, 16)))).all()
    assert (project.hls_dir / "firmware" / "myproject.cpp").is_file()


def test_export_killed_at_any_moment_leaves_a_complete_project_or_the_old_one(model_file, tmp_path):
    target = tmp_path / "prj"
    argv = ["export", model_file, "--out", target, "--backend", "pynq-z2", "--force"]
    counts = campaign(argv, target, _project_complete, tmp_path)
    assert counts["kills"] >= 2, counts  # most moments fall inside the run


def test_package_killed_at_any_moment_leaves_a_verified_package(model_file, tmp_path):
    from fastml_lab.overlay import OverlayPackage
    from fastml_lab.overlay.software import load_firmware

    prj = tmp_path / "src" / "prj"
    full_run(["export", model_file, "--out", prj, "--backend", "pynq-z2"])
    out = tmp_path / "pkgs" / "crashpkg"
    out.parent.mkdir()

    def complete(path):
        package = OverlayPackage(path)  # reads and checks the manifest
        firmware = load_firmware(package)  # checks the emulator files against it
        assert firmware.predict(np.zeros((1, 16))).shape == (1, 5)

    campaign(["package", prj, "--name", "crashpkg", "--out", out, "--overwrite"], out, complete, out.parent)


def test_a_killed_quantize_never_leaves_a_half_written_model(model_file, tmp_path):
    from fastml_lab.train import load_model

    out = tmp_path / "q" / "qmodel.keras"
    out.parent.mkdir()

    def complete(path):
        assert load_model(path).count_params() > 0

    argv = ["quantize", model_file, "--data", "synthetic", "--events", "2000", "--epochs", "1",
            "--bits", "6,8", "--out", out]
    # Training dominates a quantize run, and a full run's length varies too much to aim at its save by
    # fractions: one kill in the training, the others as the save's temporary file appears and just after.
    saving = _appears(out.parent, ".qmodel.*.tmp.keras")
    counts = campaign(argv, out, complete, out.parent, fractions=(0.5, (saving, 0), (saving, 0.05)))
    assert counts["kills"] >= 2, counts


def _appears(folder: Path, pattern: str):
    """A test for :func:`killed_run`: a path matching ``pattern`` in ``folder`` that was not there at the start."""
    def make():
        before = set(folder.glob(pattern))
        return lambda: bool(set(folder.glob(pattern)) - before)

    return make


def test_a_killed_study_leaves_its_table_and_plot_complete_or_the_old_ones(model_file, tmp_path):
    from matplotlib.image import imread

    out = tmp_path / "study"

    def complete(path):
        assert visible(path) == ["study.json", "study.png"]
        study = json.loads((path / "study.json").read_text())
        assert study["mode"] == "ptq" and [row["bits"] for row in study["rows"]] == [4, 8]
        assert all(0 <= row["accuracy"] <= 1 for row in study["rows"])
        assert imread(path / "study.png").ndim == 3  # decodes the whole PNG

    argv = ["study", model_file, "--bits", "4,8", "--data", "synthetic", "--events", "2000", "--out", out,
            "--force"]
    # Importing TensorFlow takes most of a study: one kill in it, one in the work, one between the
    # table and the plot (the study writes its folder in a temporary one).
    moments = (0.4, (_appears(tmp_path, ".study.*.partial"), 3.0),
               (_appears(tmp_path, ".study.*.partial/study.json"), 0))
    counts = campaign(argv, out, complete, tmp_path, fractions=moments)
    assert counts["kills"] >= 2, counts


def _new_project(out: Path, built: bool):
    """A test for :func:`killed_run`: the run has replaced ``out/bdt_project`` (and ``built`` its C simulation)."""
    def inode():
        with contextlib.suppress(OSError):
            return (out / "bdt_project").stat().st_ino

    def make():
        before = inode()
        return lambda: inode() != before and (not built or any((out / "bdt_project" / "csim").glob("*.so")))

    return make


DEMO_FILES = ["bdt.bdt.json", "bdt.json", "bdt_project", "report.json"]


def test_a_killed_demo_leaves_a_readable_report_model_and_project(tmp_path):
    pytest.importorskip("xgboost")
    pytest.importorskip("conifer")
    from fastml_lab._io import recover_replaced
    from fastml_lab.bdt.train import load_bdt
    from fastml_lab.project import Project

    out = tmp_path / "demo"

    def complete(path):
        recover_replaced(path / "bdt_project")  # what the next export does first
        assert visible(path) == DEMO_FILES
        report = json.loads((path / "report.json").read_text())  # the steps that finished, or all of them
        assert report["settings"]["model"] == "bdt" and report["timings_s"]
        assert set(report["timings_s"]) <= {"setup", "data", "bdt_train", "bdt_hls", "compare", "total"}
        assert load_bdt(path / "bdt.json").n_classes == 5
        firmware = Project.open(path / "bdt_project").firmware()
        assert np.isfinite(firmware.predict(np.zeros((2, firmware.n_inputs)))).all()

    argv = ["demo", "--quick", "--model", "bdt", "--data", "synthetic", "--out", out]
    # In the import and training; while g++ compiles the new project's C simulation; while it runs.
    moments = (0.15, (_new_project(out, built=False), 3.0), (_new_project(out, built=True), 0.3))
    counts = campaign(argv, out, complete, out, fractions=moments)
    assert counts["kills"] >= 2, counts
    assert "total" in json.loads((out / "report.json").read_text())["timings_s"]


SWEEP_SPACE = """\
kind: bdt
data: {source: synthetic, n_events: 2000}
board: pynq-z2
grid: {rounds: [10, 20, 30, 40, 50, 60], depth: [2]}
"""
SWEEP_FILES = {"points", "journal.jsonl", "results.csv", "results.parquet", "sweep.json", "front.png"}


def sweep_records(out: Path, ids) -> dict:
    """The folder's point records, each complete and valid; the table and journal readable."""
    import csv

    points = out / "points"
    records = {p.stem: json.loads(p.read_text()) for p in points.glob("*.json")} if points.is_dir() else {}
    for point_id, record in records.items():
        assert point_id in ids and record["id"] == point_id and record["status"] == "ok", record
        assert 0 <= record["metrics"]["fixed_accuracy"] <= 1 and record["finished"]
    if out.is_dir():
        assert set(visible(out)) <= SWEEP_FILES, visible(out)
        json.loads((out / "sweep.json").read_text())
    if points.is_dir():
        assert visible(points) == sorted(f"{i}.json" for i in records)
    if (out / "journal.jsonl").is_file():
        journal = [json.loads(line)["id"] for line in (out / "journal.jsonl").read_text().splitlines()]
        assert len(journal) == len(set(journal)) and set(journal) <= set(records), "a point written twice"
    if (out / "results.csv").is_file():
        with open(out / "results.csv", newline="") as table:
            assert {row["id"] for row in csv.DictReader(table)} <= set(records)
    return records


def stamps(folder: Path) -> dict:
    """``{name: modification time}`` of what ``folder`` holds (nothing when it does not exist)."""
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*")} if folder.is_dir() else {}


def test_a_killed_sweep_keeps_complete_records_and_the_next_run_resumes(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("xgboost")
    space = tmp_path / "space.yaml"
    space.write_text(SWEEP_SPACE)
    seconds = full_run(["sweep", space, "--out", tmp_path / "whole", "--workers", "1"])
    ids = set(sweep_records(tmp_path / "whole", ids={p.stem for p in (tmp_path / "whole" / "points").iterdir()}))
    assert len(ids) == 6
    out = tmp_path / "sweep"
    argv = ["sweep", space, "--out", out, "--workers", "1"]
    rng = np.random.default_rng(3)
    # One kill while the cluster starts, then one as each of two more points arrives (a moment later).
    moments = [("after", 0.3 * seconds), ("points", 1), ("points", 1)]
    kills, orphans = 0, []
    for how, value in moments:
        proc = start(argv)
        try:
            if how == "after":
                proc.wait(timeout=value)
            else:
                goal = len(sweep_records(out, ids)) + value
                deadline = time.monotonic() + 300
                while len(list((out / "points").glob("*.json"))) < goal and proc.poll() is None:
                    assert time.monotonic() < deadline, "the sweep made no progress"
                    time.sleep(0.02)
                proc.wait(timeout=rng.uniform(0.0, 0.3))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        written = stamps(out / "points")
        # The workers notice their nanny's death and exit: nothing of the killed run stays behind.
        deadline = time.monotonic() + 30
        while group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans.extend(name for _, name in end_group(proc.pid))
        assert not orphans, f"the killed sweep left {orphans} running"
        assert stamps(out / "points") == written, "something wrote into the sweep folder after the kill"
        sweep_records(out, ids)
    assert kills == len(moments), "a run finished before its moment"
    kept = sweep_records(out, ids)
    assert 2 <= len(kept) < len(ids), len(kept)
    finished = {name: stamp for name, stamp in stamps(out / "points").items() if name[:-5] in kept}
    resumed = subprocess.run([str(CLI), *map(str, argv)], capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(ids) - len(kept)} points ok, 0 errors, {len(kept)} already in the folder" in resumed.stdout
    assert sweep_records(out, ids).keys() == ids
    assert {name: stamp for name, stamp in stamps(out / "points").items() if name in finished} == finished, \
        "a finished point ran again"
    assert not [p for folder in (out, out / "points") for p in folder.iterdir() if p.name.startswith(".")]
    print(f"sweep: {kills} kills, {len(kept)} of {len(ids)} points resumed from the folder, orphans {orphans}")
