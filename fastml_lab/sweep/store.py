"""The sweep folder: one record per finished point, a table, and what produced them.

::

    DIR/sweep.json        the space as given, the search, and one entry per run: when, the code
                          version (fastml_lab's version and git commit), the library versions, the
                          data, the cluster
    DIR/points/ID.json    one record per finished point (ok or error), written atomically when the
                          point finishes (ID: the digest of the point's settings)
    DIR/journal.jsonl     one line per record written: the audit of "exactly once"
    DIR/results.csv       the table, one row per record, rewritten atomically after each point
    DIR/results.parquet   the same table, written when a sweep ends and by ``sweep --report``

Only the process that runs the sweep (the Dask client) writes here; workers return records.
A point is written once: a second result for an id already finished is ignored.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import platform
import subprocess
from pathlib import Path

from .. import __version__
from .._io import read_json, write_json_atomic, write_text_atomic
from ..exceptions import ConfigError, DataError

SWEEP_FILE = "sweep.json"
POINTS_DIR = "points"
JOURNAL_FILE = "journal.jsonl"
TABLE_CSV = "results.csv"
TABLE_PARQUET = "results.parquet"
FINISHED = ("ok", "error")
#: Settings columns of the table, in order (a family's own parameters; others stay empty).
SETTING_COLUMNS = ("sizes", "bits", "prune", "beta", "reuse", "strategy", "epochs", "float_epochs",
                   "rounds", "depth", "precision", "library", "learning_rate", "batch_size")
METRIC_COLUMNS = ("float_accuracy", "accuracy", "fixed_accuracy", "mismatches", "csim_mismatches", "dsp", "lut",
                  "ff", "bram_18k", "latency_cycles", "ii_cycles", "clock_mhz", "latency_ns", "fits", "fit_detail",
                  "ebops")
COLUMNS = ("id", "kind", "label", "status", *SETTING_COLUMNS, "seed", *METRIC_COLUMNS, "seconds", "worker", "error")
LIBRARIES = ("tensorflow", "keras", "hgq2", "hls4ml", "conifer", "xgboost-cpu", "xgboost", "scikit-learn",
             "dask", "distributed", "optuna", "numpy")


def code_version() -> dict:
    """fastml_lab's version and, from a git checkout, its commit and whether files were changed."""
    out = {"fastml_lab": __version__}
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10)
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            if commit.returncode == 0:
                out["git_commit"] = commit.stdout.strip()
                out["git_changed_files"] = len(dirty.stdout.splitlines())
        except (OSError, subprocess.SubprocessError):
            pass
    return out


def library_versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


class SweepFolder:
    """The folder of one sweep: its records in memory and on disk."""

    def __init__(self, path):
        self.path = Path(path)
        self.records: dict = {}
        self.written_now: set = set()
        self.unreadable: dict = {}  # file -> why its record was not read
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"The sweep folder {self.path} is a file; give a folder.")
        if (self.path / POINTS_DIR).is_dir():
            for file in sorted((self.path / POINTS_DIR).glob("*.json")):
                try:
                    record = read_json(file, "the point record")
                except DataError as exc:  # unreadable: the point runs again and its record is rewritten
                    self.unreadable[file] = str(exc)
                    continue
                if _is_record(record, file.stem):
                    self.records[file.stem] = record
                else:
                    self.unreadable[file] = (f"{file} is not a point record (a JSON object with id "
                                             f"{file.stem!r}, a status and, if any, a point and metrics).")

    @classmethod
    def open_existing(cls, path) -> "SweepFolder":
        """The sweep folder ``path`` to report on; DataError naming a file that cannot be read."""
        path = Path(path)
        if not (path / SWEEP_FILE).is_file() and not (path / POINTS_DIR).is_dir():
            raise DataError(f"{path} holds no sweep ({SWEEP_FILE} and {POINTS_DIR}/ are missing). "
                            "Run one with `fastml-lab sweep SPACE --out DIR`.")
        folder = cls(path)
        if (path / SWEEP_FILE).is_file() and not isinstance(read_json(path / SWEEP_FILE, "the sweep record"), dict):
            raise DataError(f"{path / SWEEP_FILE} must hold a JSON object (the space and its runs).")
        for file, why in folder.unreadable.items():
            raise DataError(f"{why} Remove it, or run the sweep again to rewrite it.")
        return folder

    # ------------------------------------------------------------------ what is done
    def finished(self, point_id: str, retry_errors: bool = False) -> bool:
        record = self.records.get(point_id)
        if record is None:
            return False
        return record.get("status") == "ok" or (record.get("status") == "error" and not retry_errors)

    @property
    def meta(self) -> dict:
        try:
            meta = read_json(self.path / SWEEP_FILE, "the sweep record")
        except DataError:
            return {}
        return meta if isinstance(meta, dict) else {}

    def start_run(self, space, search: str, info: dict) -> dict:
        """Record a run: the space (first run), the search, code and library versions, data, cluster."""
        meta = self.meta or {"created": _now(), "space": space.source, "name": space.name, "runs": []}
        if meta.get("space") != space.source:
            meta.setdefault("other_spaces", []).append(space.source)
        run = {"started": _now(), "search": search, "code": code_version(), "libraries": library_versions(),
               "data": dict(space.data), "board": space.board, "status": "running", **info}
        meta["runs"].append(run)
        meta["budget"] = dict(space.budget)
        meta["board"] = space.board
        write_json_atomic(self.path / SWEEP_FILE, meta)
        return meta

    def end_run(self, status: str, counts: dict) -> None:
        meta = self.meta
        if meta.get("runs"):
            meta["runs"][-1].update(status=status, ended=_now(), **counts)
            write_json_atomic(self.path / SWEEP_FILE, meta)

    # ------------------------------------------------------------------ writing
    def write(self, record: dict) -> bool:
        """Write ``record`` (atomically) unless its point is already written in this run or finished
        ok before; then the journal and the table. True when it was written."""
        point_id = record["id"]
        if point_id in self.written_now or self.records.get(point_id, {}).get("status") == "ok":
            return False
        record = dict(record, finished=_now())
        write_json_atomic(self.path / POINTS_DIR / f"{point_id}.json", record)
        self.records[point_id] = record
        self.written_now.add(point_id)
        with open(self.path / JOURNAL_FILE, "a", encoding="utf-8") as journal:
            journal.write(json.dumps({"id": point_id, "status": record["status"], "time": record["finished"]}) + "\n")
        self.write_table()
        return True

    def rows(self) -> list:
        return [table_row(r) for r in sorted(self.records.values(), key=lambda r: r.get("finished", ""))]

    def write_table(self) -> Path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return write_text_atomic(self.path / TABLE_CSV, buffer.getvalue())


def _is_record(record, point_id: str) -> bool:
    return (isinstance(record, dict) and record.get("id") == point_id and record.get("status") in FINISHED
            and all(isinstance(record.get(key, {}), dict) for key in ("point", "metrics"))
            and isinstance(record.get("point", {}).get("params", {}), dict)
            and isinstance(record.get("worker") or {}, dict))


def table_row(record: dict) -> dict:
    """One row of the table from one record (settings and metrics flattened)."""
    point = record.get("point", {})
    params = point.get("params", {})
    metrics = record.get("metrics", {})
    worker = record.get("worker") or {}
    row = {"id": record["id"], "kind": record.get("kind"), "label": record.get("label"),
           "status": record.get("status")}
    row.update({name: params.get(name) for name in SETTING_COLUMNS})
    row["seed"] = point.get("seed")
    row.update({name: metrics.get(name) for name in METRIC_COLUMNS})
    row["seconds"] = record.get("seconds")
    row["worker"] = worker.get("name") or (f"{worker.get('host')}:{worker.get('pid')}" if worker else None)
    row["error"] = record.get("error")
    return row


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")
