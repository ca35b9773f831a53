"""One overlay behind the protocol: its metadata, readiness, and ``infer`` through its batcher."""

from __future__ import annotations

import logging
import time

from ..exceptions import BoardError
from .batching import Batcher
from .tensors import input_spec, output_spec

log = logging.getLogger(__name__)

PLATFORM = "fastml_lab"


class ServedModel:
    """An :class:`~fastml_lab.overlay.accelerator.Accelerator` served under its package's name.

    ``timeout_s`` bounds how long a request waits for its answer (queue and overlay call together);
    ``owned``: the server closes the overlay when it stops.
    """

    def __init__(self, accelerator, metrics, max_batch: int, max_delay_s: float, timeout_s: float,
                 owned: bool = True):
        self.accelerator = accelerator
        self.package = accelerator.package
        self.name = accelerator.name
        self.version = str(self.package.version)
        self.input = input_spec(self.package)
        self.output = output_spec(self.package)
        self.timeout_s = float(timeout_s)
        self.owned = owned
        self.metrics = metrics
        self.labels = metrics.model_labels(self.name, self.version)
        self.board_error = None
        metrics.register(self.name, self.version)
        self.batcher = Batcher(self._predict, max_batch, max_delay_s, name=self.name, on_batch=self._record_batch)

    # ------------------------------------------------------------------ inference
    def _predict(self, events):
        try:
            return self.accelerator.predict(events)
        except (BoardError, TimeoutError) as exc:  # the board stopped answering: not ready from now on
            self.board_error = str(exc)
            raise

    def _record_batch(self, n_events: int, n_requests: int, seconds: float) -> None:
        self.metrics.add("nv_inference_exec_count", self.labels)
        self.metrics.add("nv_inference_compute_infer_duration_us", self.labels, round(seconds * 1e6))
        self.metrics.observe("nv_inference_batch_size", self.labels, n_events)
        self.metrics.observe("nv_inference_batch_requests", self.labels, n_requests)

    def infer(self, events):
        """The overlay's outputs for checked ``events``, through the batcher; ``(outputs, queue seconds)``."""
        self.metrics.add("nv_inference_pending_request_count", self.labels, 1)
        try:
            job = self.batcher.submit(events)
            outputs = job.wait(self.timeout_s)
        finally:
            self.metrics.add("nv_inference_pending_request_count", self.labels, -1)
        return outputs, job.started_at - job.queued_at

    # ------------------------------------------------------------------ state
    def not_ready_reason(self):
        """Why the model takes no requests now, or None when it is ready."""
        if self.accelerator.closed:
            return f"the overlay {self.name!r} is closed"
        if self.board_error:
            return f"the board failed ({self.board_error})"
        busy = self.batcher.busy_since
        if busy is not None and time.perf_counter() - busy > self.timeout_s:
            return f"the overlay has not answered a call for {time.perf_counter() - busy:.0f} s"
        return None

    def metadata(self) -> dict:
        pkg = self.package
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [self.input.metadata()],
            "outputs": [self.output.metadata()],
            "parameters": {
                "backend": self.accelerator.backend,
                "family": pkg.family,
                "board": pkg.board,
                "input_type": str(pkg.io["input_type"]),
                "output_type": str(pkg.io["output_type"]),
                "class_names": pkg.class_names,
                "feature_names": pkg.manifest.get("feature_names"),
                "scaling": "none: events are sent as given, like `fastml-lab run` without --scale",
            },
        }

    def config(self) -> dict:
        """The model's configuration, in the shape of Triton's ``/config`` answer."""
        return {
            "name": self.name,
            "platform": PLATFORM,
            "backend": self.accelerator.backend,
            "max_batch_size": self.batcher.max_batch,
            "input": [{"name": self.input.name, "data_type": f"TYPE_{self.input.datatype}",
                       "dims": list(self.input.dims)}],
            "output": [{"name": self.output.name, "data_type": f"TYPE_{self.output.datatype}",
                        "dims": list(self.output.dims)}],
            "dynamic_batching": {"max_queue_delay_microseconds": int(round(self.batcher.max_delay_s * 1e6))},
            "request_timeout_s": self.timeout_s,
        }

    def close(self) -> None:
        """Finish the queued requests, then close the overlay if the server opened it."""
        self.batcher.stop(timeout_s=self.timeout_s)
        if self.owned:
            self.accelerator.close()
