"""Sweeps on real Dask clusters: a `dask scheduler` and two `dask worker` processes on localhost (one of
them killed mid-sweep), resume, a point that fails, Ctrl-C, and the LocalCluster default path.

The spaces are tiny (synthetic jets, a few thousand events, 1 epoch, small BDTs); the records and the
table are checked against each other, never against numbers written here.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("yaml")

from fastml_lab.sweep.point import SINGLE_THREAD_ENV  # noqa: E402
from fastml_lab.sweep.results import report  # noqa: E402
from fastml_lab.sweep.store import JOURNAL_FILE, POINTS_DIR, SWEEP_FILE, TABLE_CSV  # noqa: E402

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60
SWEEP_TIMEOUT_S = 400

#: One NN point and six BDT points (rounds x depth), on the same jets.
MIXED_SPACE = """\
data: {source: synthetic, n_events: 3000}
board: pynq-z2
models:
  - kind: nn
    grid: {sizes: ["4"], bits: [6], epochs: [1], batch_size: [256]}
  - kind: bdt
    grid: {rounds: [40, 80, 120], depth: [4, 5]}
"""


def _env() -> dict:
    env = dict(os.environ, **SINGLE_THREAD_ENV)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _spawn(args, log: Path, sigint_ignored: bool = False) -> subprocess.Popen:
    """``args`` in a session of its own; ``sigint_ignored``: started with SIGINT ignored, as a shell's
    background job is (Python then leaves it ignored unless the program takes it back)."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True, preexec_fn=ignore)


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers (w1, w2) without nannies, so killing one ends it."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    procs = {"scheduler": _spawn([str(BIN / "dask"), "scheduler", "--scheduler-file", str(scheduler_file),
                                  "--port", "0", "--dashboard-address", ":0", "--idle-timeout", "600"],
                                 folder / "scheduler.log")}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.is_file():
            assert procs["scheduler"].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.3)  # the file is written before it is complete on a slow machine
        address = json.loads(scheduler_file.read_text())["address"]
        for name in ("w1", "w2"):
            procs[name] = _spawn([str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--memory-limit", "3GiB",
                                  "--death-timeout", "60"], folder / f"{name}.log")
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield {"address": address, "file": scheduler_file, "procs": procs, "folder": folder}
    finally:
        for proc in reversed(list(procs.values())):
            _stop(proc)


def _records(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / POINTS_DIR).glob("*.json"))}


def _table(out: Path) -> list:
    with open(out / TABLE_CSV, newline="") as f:
        return list(csv.DictReader(f))


def _journal(out: Path) -> list:
    return [json.loads(line) for line in (out / JOURNAL_FILE).read_text().splitlines()]


def _assert_table_matches_records(out: Path) -> dict:
    records, rows = _records(out), _table(out)
    assert sorted(r["id"] for r in rows) == sorted(records), "one row per record"
    for row in rows:
        record = records[row["id"]]
        assert row["status"] == record["status"]
        assert row["kind"] == record["kind"]
        if record["status"] == "ok":
            for key in ("fixed_accuracy", "accuracy", "lut", "dsp", "latency_ns"):
                assert float(row[key]) == pytest.approx(float(record["metrics"][key]), rel=1e-12), key
    return records


def _sweep_cli(space: Path, out: Path, *extra) -> list:
    return [str(BIN / "fastml-lab"), "sweep", str(space), "--out", str(out), *extra]


def test_worker_killed_mid_sweep_every_point_finishes_exactly_once(cluster, tmp_path):
    from distributed import Client

    space = tmp_path / "space.yaml"
    space.write_text(MIXED_SPACE)
    out = tmp_path / "sweep"
    proc = _spawn(_sweep_cli(space, out, "--scheduler", cluster["address"]), tmp_path / "sweep.log")
    killed = None
    try:
        with Client(cluster["address"], timeout="30s") as watcher:
            deadline = time.monotonic() + SWEEP_TIMEOUT_S
            while killed is None and time.monotonic() < deadline and proc.poll() is None:
                busy = {watcher.scheduler_info()["workers"][addr]["name"]: keys
                        for addr, keys in watcher.processing().items() if keys}
                done = len(list((out / POINTS_DIR).glob("*.json"))) if (out / POINTS_DIR).is_dir() else 0
                if done >= 1 and busy:  # a worker is running a point now: kill it
                    killed = sorted(busy)[0]
                    in_flight = [k for k in busy[killed] if "fastml-lab-point-" in str(k)]
                    _stop(cluster["procs"][killed], signal.SIGKILL)
                time.sleep(0.05)
        assert killed is not None, "the sweep never had a worker busy after the first point"
        assert proc.wait(timeout=SWEEP_TIMEOUT_S) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        _stop(proc)
    assert cluster["procs"][killed].poll() is not None, "the killed worker is gone"
    records = _assert_table_matches_records(out)
    assert len(records) == 7 and all(r["status"] == "ok" for r in records.values())
    assert {r["kind"] for r in records.values()} == {"nn", "bdt"}
    journal = _journal(out)
    assert sorted(j["id"] for j in journal) == sorted(records), "each point written exactly once"
    survivor = "w2" if killed == "w1" else "w1"
    retried = [str(k).removeprefix("fastml-lab-point-") for k in in_flight]
    assert retried, "a point was in flight on the killed worker"
    for point_id in retried:  # its points ran again elsewhere
        assert records[point_id]["worker"]["name"] == survivor
    for record in records.values():
        assert record["metrics"]["mismatches"] in (0, None)
    meta = json.loads((out / SWEEP_FILE).read_text())
    assert meta["runs"][-1]["status"] == "done" and meta["runs"][-1]["cluster"] == cluster["address"]
    assert meta["runs"][-1]["code"]["fastml_lab"] and meta["runs"][-1]["data"]["n_events"] == 3000

    # resume: the same command finds every point done and runs none; a wider grid runs only the new point
    before = {p.name: p.stat().st_mtime_ns for p in (out / POINTS_DIR).iterdir()}
    again = subprocess.run(_sweep_cli(space, out, "--scheduler", cluster["address"]), capture_output=True,
                           text=True, env=_env(), timeout=SWEEP_TIMEOUT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 points ok, 0 errors, 7 already in the folder" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / POINTS_DIR).iterdir()} == before
    space.write_text(MIXED_SPACE.replace("depth: [4, 5]", "depth: [4, 5, 2]").replace("[40, 80, 120]", "[40]"))
    wider = subprocess.run(_sweep_cli(space, out, "--scheduler", cluster["address"]), capture_output=True,
                           text=True, env=_env(), timeout=SWEEP_TIMEOUT_S)
    assert wider.returncode == 0, wider.stderr[-3000:]
    assert "1 points ok, 0 errors, 3 already in the folder" in wider.stdout
    records = _assert_table_matches_records(out)
    assert len(records) == 8 and len(_journal(out)) == 8


def test_a_failing_point_records_its_error_and_the_sweep_goes_on(cluster, tmp_path):
    from fastml_lab.sweep import run_sweep

    space = {"data": {"source": "synthetic", "n_events": 2000}, "board": "pynq-z2",
             "models": [{"kind": "bdt", "grid": {"rounds": [5, 10], "depth": [2]}},
                        # the Resource strategy cannot share fc1's 16 x 4 multipliers 3 times: export refuses it
                        {"kind": "nn", "grid": {"sizes": ["4"], "reuse": [3], "strategy": ["resource"], "float_epochs": [0],
                                                "epochs": [1]}}]}
    out = tmp_path / "sweep"
    seen = []
    summary = run_sweep(space, out, scheduler_file=str(cluster["file"]),
                        on_point=lambda record, summary, written: seen.append(record["id"]))
    assert (summary.ok, summary.errors, summary.status) == (2, 1, "done")
    records = _assert_table_matches_records(out)
    failed = [r for r in records.values() if r["status"] == "error"]
    assert len(failed) == 1 and failed[0]["kind"] == "nn"
    assert "reuse_factor 3 is not valid" in failed[0]["error"] and "ConfigError" in failed[0]["error"]
    assert sorted(seen) == sorted(records)
    rep = report(out)
    assert len(rep.ok) == 2 and len(rep.errors) == 1 and "reuse_factor 3" in rep.summary()
    assert (out / "front.png").stat().st_size > 0 and (out / "results.parquet").is_file()
    # an error is a finished point: a re-run skips it, --retry-errors runs it again (and it fails again)
    assert run_sweep(space, out, scheduler_file=str(cluster["file"])).skipped == 3
    retry = run_sweep(space, out, scheduler_file=str(cluster["file"]), retry_errors=True)
    assert (retry.skipped, retry.errors) == (2, 1)


def test_ctrl_c_keeps_the_points_that_finished(cluster, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("kind: bdt\ndata: {source: synthetic, n_events: 3000}\n"
                     "grid: {rounds: [100, 150, 200, 250, 300, 350, 400, 450], depth: [6],\n"
                     "       learning_rate: [0.05, 0.1, 0.2, 0.3, 0.4]}\n")  # 40 points: more than finish by the Ctrl-C
    out = tmp_path / "sweep"
    # Started with SIGINT ignored: the sweep must take Ctrl-C back while its points run.
    proc = _spawn(_sweep_cli(space, out, "--scheduler", cluster["address"]), tmp_path / "sweep.log",
                  sigint_ignored=True)
    try:
        deadline = time.monotonic() + SWEEP_TIMEOUT_S
        while not list((out / POINTS_DIR).glob("*.json")) if (out / POINTS_DIR).is_dir() else True:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "sweep.log").read_text()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 130
        except subprocess.TimeoutExpired:
            pytest.fail("the sweep did not stop within 60 s of Ctrl-C; its log:\n"
                        + (tmp_path / "sweep.log").read_text()[-4000:])
    finally:
        _stop(proc)
    records = _assert_table_matches_records(out)
    assert 1 <= len(records) < 40 and all(r["status"] == "ok" for r in records.values())
    assert json.loads((out / SWEEP_FILE).read_text())["runs"][-1]["status"] == "interrupted"
    assert "interrupted" in (tmp_path / "sweep.log").read_text()


def test_local_cluster_by_default(tmp_path):
    from fastml_lab.sweep import run_sweep

    space = {"kind": "bdt", "data": {"source": "synthetic", "n_events": 2000}, "board": "pynq-z2",
             "grid": {"rounds": [5, 20], "depth": [2, 3]}, "budget": {"latency_ns": 300}}
    started = []
    summary = run_sweep(space, tmp_path / "sweep", workers=1, on_start=started.append)
    assert summary.workers == 1 and summary.dashboard.startswith("http://")
    assert started and (summary.ok, summary.errors) == (4, 0)
    records = _assert_table_matches_records(tmp_path / "sweep")
    assert {r["worker"]["pid"] for r in records.values()} != {os.getpid()}, "points ran in a worker process"
    rep = report(tmp_path / "sweep")
    front = rep.front("front_lut")
    assert front and all(r["status"] == "ok" for r in front)
    best = max(rep.ok, key=lambda r: float(r["fixed_accuracy"]))
    cheapest = min(rep.ok, key=lambda r: float(r["lut"]))
    assert best["front_lut"] and cheapest["front_lut"]
