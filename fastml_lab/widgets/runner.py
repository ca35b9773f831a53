"""Run a step's work in a background thread: progress, a stop flag, and errors caught for display.

The page never freezes: :meth:`Runner.start` returns at once and the work reports through its
:class:`Task` (``task.progress(...)``, ``task.stopped``, ``task.check()``). What the work prints,
warns or logs to stdout/stderr goes to the task's log instead of spilling into the notebook.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Callable

from ..exceptions import FastMLError


class Stopped(Exception):
    """Raised inside the work by :meth:`Task.check` once Stop was pressed."""


class Task:
    """What a running piece of work sees: the stop flag, progress reporting and a log."""

    def __init__(self, on_progress: Callable[[int, int, str], None]):
        self._stop = threading.Event()
        self._on_progress = on_progress
        self.log_lines: list[str] = []

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> None:
        """Raise :class:`Stopped` if Stop was pressed (call between pieces of work)."""
        if self._stop.is_set():
            raise Stopped()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self._on_progress(done, total, text)

    def write(self, text: str) -> None:
        self.log_lines.append(text)
        del self.log_lines[:-500]


class _RoutedStream:
    """Stands in for sys.stdout/stderr: writes from a worker thread go to its task's log."""

    def __init__(self, original):
        self._original = original

    def write(self, text):
        task = _TASKS.get(threading.get_ident())
        if task is None:
            return self._original.write(text)
        task.write(text)
        return len(text)

    def flush(self):
        if threading.get_ident() not in _TASKS:
            self._original.flush()

    def __getattr__(self, name):
        return getattr(self._original, name)


_TASKS: dict[int, Task] = {}


def _route_worker_output() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _RoutedStream):
            setattr(sys, name, _RoutedStream(stream))


def describe_error(exc: BaseException) -> str:
    """One readable line: the toolkit's own messages as they are, others with their type."""
    if isinstance(exc, FastMLError):
        return str(exc)
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class Runner:
    """Starts ``work(task)`` in a daemon thread and reports the outcome through callbacks.

    ``on_progress(done, total, text)`` is called from the worker; ``on_finish(outcome, value,
    task)`` once, with outcome ``"done"`` (value: what work returned), ``"stopped"`` (the work
    raised :class:`Stopped`) or ``"error"`` (value: the exception). One piece of work at a time.
    """

    def __init__(self, on_progress, on_finish):
        self._on_progress = on_progress
        self._on_finish = on_finish
        self._thread: threading.Thread | None = None
        self.task: Task | None = None
        self.error: BaseException | None = None
        self.error_details: str = ""
        self.seconds: float | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable[[Task], object], name: str = "fastml-lab-step") -> bool:
        """Start ``work``; False (and nothing started) when work is already running."""
        if self.busy:
            return False
        _route_worker_output()
        self.task = task = Task(self._on_progress)
        self.error, self.error_details, self.seconds = None, "", None
        self._thread = threading.Thread(target=self._main, args=(work, task), name=name, daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        if self.task is not None:
            self.task.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work finished (True) or ``timeout`` seconds passed (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _main(self, work, task: Task) -> None:
        _TASKS[threading.get_ident()] = task
        start = time.perf_counter()
        try:
            try:
                value = work(task)  # it finished: what it made is kept, even if Stop came late
                outcome = "done"
            except Stopped:
                outcome, value = "stopped", None
            except Exception as exc:  # shown in the step's panel, never raised into the notebook
                outcome, value = "error", exc
                self.error = exc
                self.error_details = traceback.format_exc()
            self.seconds = time.perf_counter() - start
            try:
                self._on_finish(outcome, value, task)
            except Exception as exc:  # a failure while showing results is shown the same way
                self.error, self.error_details = exc, traceback.format_exc()
                try:
                    self._on_finish("error", exc, task)
                except Exception:  # nothing left to show it with; keep it off the notebook
                    task.write(traceback.format_exc())
        finally:
            _TASKS.pop(threading.get_ident(), None)
