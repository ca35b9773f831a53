"""Run a sweep on Dask: a local cluster by default, any cluster by its address.

:func:`run_sweep` expands the space (grid, random, or Optuna's NSGA-II asking as it goes), skips
the points the folder already holds, and hands the rest to Dask workers as
:func:`~fastml_lab.sweep.point.run_point` tasks. Each result is written to the folder the moment
it arrives (:class:`~fastml_lab.sweep.store.SweepFolder`), so an interrupted sweep keeps what
finished and a re-run resumes.

Where it runs (``scheduler``):

* ``None``: a ``LocalCluster`` of worker processes, one thread each, as many as the machine has
  cores and memory for (or ``workers``);
* ``"tcp://HOST:PORT"``: an existing scheduler (``dask scheduler`` + ``dask worker``);
* ``scheduler_file=``: the file ``dask scheduler --scheduler-file`` wrote (HPC jobs);
* a ``distributed.Client`` or a cluster object (``dask_jobqueue.SLURMCluster``, a dask-gateway
  cluster): used as is.

A worker that dies has its task rerun elsewhere by the scheduler; the client keeps one result per
point. A point that fails is recorded with its error and the sweep goes on. Ctrl-C cancels what is
still queued, writes the table and re-raises.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .._system import usable_cores
from ..exceptions import ConfigError
from .point import run_point
from .space import Point, Space, load_space
from .store import SweepFolder

log = logging.getLogger("fastml_lab.sweep")

#: Memory one TensorFlow worker needs to be comfortable (bytes).
WORKER_MEMORY = 1.5 * 2**30
#: Objectives of the optuna search: (metric, direction).
OBJECTIVES = (("fixed_accuracy", "maximize"), ("lut", "minimize"), ("latency_ns", "minimize"))
#: Seconds between checks of the stop flag while waiting for results.
POLL_S = 0.5


@dataclass
class SweepSummary:
    """What one :func:`run_sweep` call did."""

    folder: str
    search: str
    planned: int
    skipped: int = 0
    ok: int = 0
    errors: int = 0
    status: str = "running"
    seconds: float = 0.0
    dashboard: str | None = None
    workers: int = 0
    warm_up_seconds: float = 0.0
    records: list = field(default_factory=list)

    def describe(self) -> str:
        return (f"{self.ok} points ok, {self.errors} errors, {self.skipped} already in the folder "
                f"({self.search} search, {self.workers} workers, {self.seconds:.1f} s): {self.status}")


def quiet_dask(level=logging.ERROR) -> None:
    """Quiet distributed's loggers (a local cluster's scheduler and nannies log every step here)."""
    for name in ["distributed", *[n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]]:
        logging.getLogger(name).setLevel(level)


def local_workers(requested: int | None = None) -> int:
    """Workers for a LocalCluster: ``requested``, else one per core that memory allows."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ConfigError(f"workers must be a whole number >= 1; got {requested!r}.")
        return requested
    cores = usable_cores()
    try:
        import psutil

        memory = psutil.virtual_memory().total
        return max(1, min(cores, int(memory // WORKER_MEMORY)))
    except ImportError:
        return max(1, cores)


def connect(scheduler=None, scheduler_file=None, workers: int | None = None):
    """``(client, owned)``: a Dask client for the chosen place; ``owned`` things are closed at the end."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("fastml_lab's sweeps run on Dask: pip install 'dask[distributed]' "
                          "(or pip install 'fastml-lab[lab]').") from None
    if scheduler is not None and scheduler_file is not None:
        raise ConfigError("Give a scheduler address or a scheduler file, not both.")
    if scheduler_file is not None:
        if not os.path.isfile(scheduler_file):
            raise ConfigError(f"The scheduler file {scheduler_file} does not exist (dask scheduler "
                              "--scheduler-file FILE writes it).")
        client = Client(scheduler_file=str(scheduler_file), timeout="30s")
        return client, [client]
    if scheduler is None:
        n = local_workers(workers)
        memory = _memory_per_worker(n)
        from .point import SINGLE_THREAD_ENV

        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               memory_limit=memory, silence_logs=logging.ERROR, env=dict(SINGLE_THREAD_ENV))
        client = Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, str):
        if "://" not in scheduler:
            raise ConfigError(f"A scheduler address reads tcp://HOST:PORT; got {scheduler!r}.")
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"No Dask scheduler answered at {scheduler} ({exc}).") from None
        return client, [client]
    if isinstance(scheduler, Client):
        return scheduler, []
    if hasattr(scheduler, "scheduler_address"):  # a cluster object: LocalCluster, SLURMCluster, gateway
        client = Client(scheduler)
        return client, [client]
    raise ConfigError(f"scheduler must be an address (tcp://HOST:PORT), a distributed.Client or a cluster; "
                      f"got {type(scheduler).__name__}.")


def _memory_per_worker(n: int):
    try:
        import psutil

        return int(psutil.virtual_memory().total * 0.9 / n)
    except ImportError:
        return "auto"


def dashboard_link(client) -> str | None:
    try:
        return client.dashboard_link
    except (AttributeError, KeyError):
        return None


def run_sweep(space, out, *, search: str | None = None, trials: int | None = None, workers: int | None = None,
              scheduler=None, scheduler_file=None, retry_errors: bool = False,
              on_point: Callable | None = None, on_start: Callable | None = None, stop=None) -> SweepSummary:
    """Run the points of ``space`` (a file, dict or :class:`Space`) into the folder ``out``.

    ``search``: "grid", "random" or "optuna" (default: the space's, else grid). ``trials``: points
    of a random or optuna search. ``workers``: LocalCluster size (default: sized to the machine).
    ``on_start(summary)`` is called once connected (``summary.dashboard``: the dashboard link);
    ``on_point(record, summary, written)`` after each finished point; ``stop`` (a
    ``threading.Event``) ends the sweep early like Ctrl-C, without raising.
    """
    space = load_space(space)
    search = space.resolve_search(search)
    if scheduler is None and scheduler_file is None:
        local_workers(workers)  # refuses a bad worker count before the folder is made
    if search == "optuna":
        n_planned = space.resolve_trials(trials)
        points = None
    else:
        points = space.points(search, trials)
        n_planned = len(points)
    folder = SweepFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = SweepSummary(folder=str(folder.path), search=search, planned=n_planned)
    client, owned = connect(scheduler, scheduler_file, workers)
    try:
        summary.dashboard = dashboard_link(client)
        summary.workers = len(client.nthreads())
        where = "local cluster" if scheduler is None and scheduler_file is None else (
            scheduler if isinstance(scheduler, str) else (scheduler_file or type(scheduler).__name__))
        folder.start_run(space, search, {"cluster": str(where), "workers": summary.workers, "planned": n_planned,
                                         "trials": trials if search != "grid" else None,
                                         "dashboard": summary.dashboard})
        summary.warm_up_seconds = _warm(client, space)
        if on_start:
            on_start(summary)
        try:
            with _ctrl_c_interrupts():
                if search == "optuna":
                    _optuna(client, space, folder, n_planned, retry_errors, summary, on_point, stop)
                else:
                    _run_points(client, points, folder, retry_errors, summary, on_point, stop)
            summary.status = "stopped" if stop is not None and stop.is_set() else "done"
        except KeyboardInterrupt:
            summary.status = "interrupted"
            raise
        finally:
            summary.seconds = time.perf_counter() - start
            folder.write_table()
            _write_parquet(folder)
            folder.end_run(summary.status, {"ok": summary.ok, "errors": summary.errors, "skipped": summary.skipped,
                                            "seconds": round(summary.seconds, 1)})
    finally:
        for thing in owned:
            try:
                thing.close()
            except Exception:  # closing a cluster that lost its workers may complain; nothing to keep
                log.debug("closing %s failed", thing, exc_info=True)
    return summary


def _warm(client, space: Space) -> float:
    """Each worker imports the libraries of the space's families (TensorFlow...) once, all workers at
    the same time, before the first point (a worker that joins later pays it in its first point);
    the slowest worker's seconds."""
    from .point import warm_worker
    from .space import sweep_support

    libraries = tuple(dict.fromkeys(lib for family in space.families for lib in sweep_support(family).libraries))
    if not libraries:
        return 0.0
    try:
        seconds = client.run(warm_worker, libraries)
    except Exception:  # a worker that cannot warm up still runs points (and reports their errors)
        log.debug("warming the workers failed", exc_info=True)
        return 0.0
    return round(max(seconds.values(), default=0.0), 2)


@contextlib.contextmanager
def _ctrl_c_interrupts():
    """While the points run, Ctrl-C (SIGINT) raises KeyboardInterrupt in the main thread even if this
    process started with SIGINT ignored (as a background job's children do) or a library replaced
    Python's handler: a sweep must stop, keep what finished and say so. Restored afterwards; other
    threads (the walk's Explore step) leave the handler alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_parquet(folder: SweepFolder) -> None:
    try:
        from .results import write_parquet

        write_parquet(folder)
    except ImportError:
        pass


def _key(point: Point) -> str:
    return f"fastml-lab-point-{point.id}"


def _finish(future, point: Point, folder, summary, on_point) -> dict:
    """The record of a finished future (its result, or an error record when the task itself failed)."""
    if future.status == "finished":
        record = future.result()
    else:
        try:
            exc = future.exception()
        except Exception as other:  # cancelled futures raise on exception()
            exc = other
        record = point.record(status="error", error=f"{type(exc).__name__}: {exc}", seconds=None)
    written = folder.write(record)
    if written:
        summary.ok += record["status"] == "ok"
        summary.errors += record["status"] == "error"
        summary.records.append(record)
    if on_point:
        on_point(record, summary, written)
    return record


def _wait_some(pending: set, stop):
    """Futures of ``pending`` that finished (waits until one does, or the stop flag is set)."""
    from distributed import wait

    while True:
        if stop is not None and stop.is_set():
            return set()
        try:
            done, _ = wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
            return set(done)
        except TimeoutError:
            continue


def _run_points(client, points, folder, retry_errors, summary, on_point, stop) -> None:
    todo = [p for p in points if not folder.finished(p.id, retry_errors)]
    summary.skipped = len(points) - len(todo)
    if not todo:
        return
    futures = client.map(run_point, [p.to_dict() for p in todo], key=[_key(p) for p in todo], pure=False)
    by_key = {f.key: p for f, p in zip(futures, todo)}
    pending = set(futures)
    try:
        while pending:
            done = _wait_some(pending, stop)
            if not done:
                break  # stopped
            for future in done:
                pending.discard(future)
                _finish(future, by_key[future.key], folder, summary, on_point)
                future.release()
    finally:
        if pending:
            client.cancel(list(pending))


# ------------------------------------------------------------------------------------ optuna
def _optuna(client, space: Space, folder, n_trials: int, retry_errors, summary, on_point, stop) -> None:
    try:
        import optuna
    except ImportError:
        raise ImportError("The optuna search needs Optuna: pip install optuna (or 'fastml-lab[lab]').") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    population = max(4, min(50, n_trials // 4))
    measured = sum(1 for r in folder.records.values() if r.get("optuna"))
    # a resumed search must not draw the first generation it drew before: the seed moves on with it
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=space.seed + measured)
    study = optuna.create_study(directions=[d for _, d in OBJECTIVES], sampler=sampler)
    told = _replay(optuna, study, folder, retry_errors)
    summary.skipped = told
    capacity = max(1, sum(client.nthreads().values()))
    running: dict = {}  # future -> (trial, point)
    asked = told
    try:
        while asked < n_trials or running:
            while asked < n_trials and len(running) < capacity and not (stop is not None and stop.is_set()):
                trial = study.ask()
                asked += 1
                point = space.suggest(trial)
                if folder.finished(point.id, retry_errors):  # asked again for a point already measured
                    _tell(optuna, study, trial, folder.records[point.id])
                    summary.skipped += 1
                    continue
                future = client.submit(run_point, point.to_dict(), key=f"{_key(point)}-{trial.number}", pure=False)
                running[future] = (trial, point)
            if not running:
                break
            done = _wait_some(set(running), stop)
            if not done:
                break
            for future in done:
                trial, point = running.pop(future)
                record = _finish(future, point, folder, summary, on_point)
                if record["status"] == "ok":
                    _remember(optuna, folder, point.id, trial)
                _tell(optuna, study, trial, folder.records.get(point.id, record))
                future.release()
    finally:
        if running:
            client.cancel(list(running))


def objective_values(record: dict):
    """The objectives of a record (None when the point failed or lacks one)."""
    metrics = record.get("metrics") or {}
    values = [metrics.get(name) for name, _ in OBJECTIVES]
    if record.get("status") != "ok" or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return [float(v) for v in values]


def _tell(optuna, study, trial, record) -> None:
    values = objective_values(record)
    if values is None:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, values)


def _remember(optuna, folder, point_id: str, trial) -> None:
    """Keep the trial's parameters and distributions in the point's record, so a resumed search
    starts from what was measured."""
    record = folder.records[point_id]
    record["optuna"] = {"params": trial.params, "distributions": {
        name: optuna.distributions.distribution_to_json(d) for name, d in trial.distributions.items()}}
    from .._io import write_json_atomic
    from .store import POINTS_DIR

    write_json_atomic(folder.path / POINTS_DIR / f"{point_id}.json", record)


def _replay(optuna, study, folder, retry_errors) -> int:
    """Add the folder's measured optuna points to ``study``; returns how many."""
    n = 0
    for record in folder.records.values():
        saved = record.get("optuna")
        values = objective_values(record)
        if not saved or values is None:
            continue
        try:
            distributions = {k: optuna.distributions.json_to_distribution(v)
                             for k, v in saved["distributions"].items()}
            study.add_trial(optuna.trial.create_trial(params=saved["params"], distributions=distributions,
                                                      values=values))
            n += 1
        except (ValueError, KeyError, TypeError):
            continue  # a record from another space: the table keeps it, the study does not need it
    return n
