"""Dynamic batching: requests for one overlay gathered into one ``predict`` call, by one worker thread.

A request's events wait in a queue. The worker takes the oldest, then keeps gathering the next ones
until the batch holds ``max_batch`` events or ``max_delay_s`` has passed since the oldest arrived
(requests already queued join at once, without waiting), runs the overlay once on all of them and
hands each request its own rows of the answer. The worker is the overlay's only caller, so one
board (or one emulator) runs one call at a time. A request larger than ``max_batch`` runs alone;
``max_batch=1`` runs every request alone.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

from ..exceptions import DataError, NotReadyError

log = logging.getLogger(__name__)


class Job:
    """One request's events and, once the worker has run them, its outputs or its error."""

    __slots__ = ("events", "outputs", "error", "done", "abandoned", "queued_at", "started_at")

    def __init__(self, events: np.ndarray):
        self.events = events
        self.outputs = None
        self.error = None
        self.done = threading.Event()
        self.abandoned = False
        self.queued_at = time.perf_counter()
        self.started_at = None

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    def wait(self, timeout_s: float) -> np.ndarray:
        """The outputs; the worker's error; or TimeoutError after ``timeout_s``."""
        if not self.done.wait(timeout_s):
            self.abandoned = True
            raise TimeoutError(f"The overlay did not answer within {timeout_s:g} s (the board may have "
                               "stopped answering, or the queue is too long); try again later.")
        if self.error is not None:
            raise self.error
        return self.outputs


class Batcher:
    """Gathers :class:`Job` s for ``predict`` (events -> outputs) and runs them in one thread.

    ``on_batch(n_events, n_jobs, seconds)`` is called after each call of ``predict``.
    """

    def __init__(self, predict, max_batch: int, max_delay_s: float, name: str = "overlay", on_batch=None):
        self.predict = predict
        self.max_batch = max(1, int(max_batch))
        self.max_delay_s = max(0.0, float(max_delay_s))
        self.on_batch = on_batch
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.busy_since = None
        self._thread = threading.Thread(target=self._loop, name=f"fastml-lab serve {name}", daemon=True)
        self._thread.start()

    def submit(self, events: np.ndarray) -> Job:
        job = Job(events)
        with self._cond:
            if self._stopping:
                raise NotReadyError("The server is stopping; it takes no new requests.")
            self._queue.append(job)
            self._cond.notify()
        return job

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the queued jobs, then end the worker (waiting up to ``timeout_s``)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the worker
    def _gather(self) -> list:
        """The next batch (empty when stopping with nothing queued); call with the lock held."""
        while not self._queue:
            if self._stopping:
                return []
            self._cond.wait()
        batch = [self._queue.popleft()]
        n_events = batch[0].n_events
        deadline = batch[0].queued_at + self.max_delay_s
        while n_events < self.max_batch:
            if self._queue:
                if n_events + self._queue[0].n_events > self.max_batch:
                    break
                job = self._queue.popleft()
                batch.append(job)
                n_events += job.n_events
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._stopping:
                break
            self._cond.wait(remaining)
        return [job for job in batch if not job.abandoned]

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._gather()
                if not batch and self._stopping and not self._queue:
                    return
            if batch:
                self._run(batch)

    def _run(self, batch: list) -> None:
        started = time.perf_counter()
        self.busy_since = started
        for job in batch:
            job.started_at = started
        events = batch[0].events if len(batch) == 1 else np.concatenate([job.events for job in batch])
        try:
            outputs = self.predict(events)
        except DataError as exc:
            if len(batch) > 1:  # one request's events refused: answer each request on its own
                self.busy_since = None
                for job in batch:
                    self._run([job])
                return
            self._finish(batch, error=exc, started=started)
        except Exception as exc:  # every request of the batch gets the overlay's error
            self._finish(batch, error=exc, started=started)
        else:
            self._finish(batch, outputs=outputs, started=started)

    def _finish(self, batch: list, started: float, outputs=None, error=None) -> None:
        finished = time.perf_counter()
        self.busy_since = None
        n_events = sum(job.n_events for job in batch)
        if self.on_batch is not None:
            try:
                self.on_batch(n_events, len(batch), finished - started)
            except Exception:  # metrics must never stop the worker
                log.exception("Recording a batch failed.")
        row = 0
        for job in batch:
            if error is not None:
                job.error = error
            else:
                job.outputs = outputs[row:row + job.n_events]
                row += job.n_events
            job.done.set()
