"""One point of a sweep: train, export to a temporary folder, emulate, estimate; a record of plain data.

:func:`run_point` is the task a Dask worker runs. It takes the point as a dict (see
:class:`~fastml_lab.sweep.space.Point`), loads the data it names (once per worker process), and
returns a JSON-ready record: the settings, the accuracies (float, the trained model's, and the
fixed-point accuracy on the bit-exact emulator), the mismatches between the quantized Keras model
and the emulator (NN; with ``csim`` also between the emulator and the C simulation), the hardware
figures of :func:`~fastml_lab.sweep.estimate.hardware_estimate`, the time taken and where it ran.
A point that raises is returned as a record with ``status: "error"`` and the error, so the
sweep goes on. Nothing depends on the caller's working directory, and no model crosses processes.

:func:`train_point` alone gives the trained model of a point (what "use this point" re-creates).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from .space import Point

#: Environment that keeps one TensorFlow/BLAS thread per task (set before TensorFlow is imported).
SINGLE_THREAD_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}

_DATASETS: dict = {}


def single_threaded() -> None:
    """One thread for TensorFlow's pools and BLAS in this process (a Dask worker with one thread)."""
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ[key] = value
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is not None:  # already imported: its pools may be set until it first runs an op
        with contextlib.suppress(RuntimeError, AttributeError):
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)


def warm_worker(libraries) -> float:
    """Import the heavy libraries in this worker process once, one thread each, before its first
    point (TensorFlow's start takes seconds; paid here once, not inside a point's time); returns
    the seconds it took. A library that is not installed is skipped."""
    from .._deps import require

    single_threaded()
    start = time.perf_counter()
    for name in libraries:
        with contextlib.suppress(ImportError):
            require(name)
    single_threaded()  # TensorFlow is imported now: set its pools before it runs an op
    return time.perf_counter() - start


def dataset(data: dict):
    """The jets ``data`` names, loaded once per process."""
    key = (data["source"], data.get("n_events"), data.get("seed", 0))
    if key not in _DATASETS:
        from ..data import load_jets

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _DATASETS[key] = load_jets(data["source"], n_events=data.get("n_events"), seed=data.get("seed", 0),
                                       progress=False)
    return _DATASETS[key]


def run_point(point: dict, threads: int | None = 1) -> dict:
    """The worker's task: the record of ``point`` (a dict); never raises for an error of the point."""
    started = time.perf_counter()
    if threads == 1:
        single_threaded()
    p = Point.from_dict(point)
    record = p.record(status="ok", worker={"host": socket.gethostname(), "pid": os.getpid(), "name": _worker_name()},
                      started=datetime.datetime.now().isoformat(timespec="seconds"))
    try:
        with _quiet_libraries():
            record["metrics"] = evaluate_point(p)
    except Exception as exc:  # the point's error is its result; the sweep goes on
        record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback="".join(traceback.format_exception(exc))[-4000:])
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _worker_name():
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return None


def train_point(point: Point, ds=None):
    """``(model, info)``: the point's trained model (NN: the quantization-aware Keras model; BDT: the
    :class:`~fastml_lab.bdt.train.BDTModel`) and what training reported, as its family trains it."""
    return point.support.train(point, dataset(point.data) if ds is None else ds)


def export_point(point: Point, model, out, ds=None):
    """Export the point's trained model to the folder ``out`` with its family's export; returns the project."""
    ds = dataset(point.data) if ds is None else ds
    support = point.support
    return support.family.export(model, out, backend=point.board, scaler=ds.scaler, class_names=ds.class_names,
                                  overwrite=True, **support.export_options(point.params))


def evaluate_point(point: Point, keep=None) -> dict:
    """The point's figures (see the module docstring); ``keep``: a folder to export to and keep."""
    from ..evaluate import evaluate, evaluate_scores
    from .estimate import hardware_estimate

    times = {}
    start = time.perf_counter()
    ds = dataset(point.data)
    times["data"] = time.perf_counter() - start
    start = time.perf_counter()
    model, info = train_point(point, ds)
    times["train"] = time.perf_counter() - start
    float_model = info.pop("float_model", None)
    accuracy = evaluate(model, ds).accuracy  # a BDT's own model is its float model
    metrics = {"accuracy": accuracy,
               "float_accuracy": evaluate(float_model, ds).accuracy if float_model is not None else accuracy, **info}
    with contextlib.ExitStack() as stack:
        folder = Path(keep) if keep else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="fastml_lab_point_"))) / "project"
        start = time.perf_counter()
        project = export_point(point, model, folder, ds)
        times["export"] = time.perf_counter() - start
        start = time.perf_counter()
        emulated = project.firmware().predict(ds.X_test)
        times["emulate"] = time.perf_counter() - start
        metrics["fixed_accuracy"] = evaluate_scores(emulated, np.asarray(ds.labels_test),
                                                    ds.class_names).accuracy
        metrics["mismatches"], metrics["mismatch_reference"] = point.support.mismatches(model, ds, emulated)
        if point.csim:
            from ..hls.check import check_project

            start = time.perf_counter()
            check = check_project(project, ds.X_test)
            metrics["csim_mismatches"] = check.mismatches
            times["csim"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics.update(hardware_estimate(project, point.board))
        times["estimate"] = time.perf_counter() - start
    metrics["n_test"] = int(len(ds.X_test))
    metrics["data_origin"] = ds.source
    metrics["data_digest"] = ds.digest()
    metrics["seconds_by_stage"] = {k: round(v, 3) for k, v in times.items()}
    return metrics


@contextlib.contextmanager
def _quiet_libraries():
    """hls4ml, conifer and TensorFlow talk a lot on stdout/logging; a worker's log needs none of it."""
    import io

    names = ("fastml_lab", "fastml_lab.data", "conifer", "hls4ml", "tensorflow", "absl")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
