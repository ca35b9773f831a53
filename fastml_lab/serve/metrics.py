"""The server's counters and histograms, written at ``/metrics`` in Prometheus' text format under
Triton's names (``nv_inference_*``), one series per model and version.

Counters: successful and failed requests (``reason`` REJECTED for a refused request, BACKEND for an
overlay or board that failed), events answered (``nv_inference_count``), overlay calls
(``nv_inference_exec_count``) and the time spent in all, in the queue and in the overlay. Histograms:
events and requests per overlay call (what dynamic batching gathered) and each request's latency.
"""

from __future__ import annotations

import threading

BATCH_BUCKETS = tuple(float(1 << i) for i in range(13))  # 1 ... 4096
LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
                      2500.0, 5000.0, 10000.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(labels: tuple) -> str:
    if not labels:
        return ""
    text = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + text + "}"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Family:
    """One metric: a counter, gauge or histogram, with a value per set of labels."""

    def __init__(self, name: str, kind: str, help: str, buckets=None):
        self.name, self.kind, self.help = name, kind, help
        self.buckets = tuple(buckets) if buckets is not None else None
        self._values = {}

    def _series(self, labels: tuple):
        if labels not in self._values:
            self._values[labels] = [0] * (len(self.buckets) + 2) if self.buckets else [0.0]
        return self._values[labels]

    def add(self, labels: tuple, amount: float = 1.0) -> None:
        self._series(labels)[0] += amount

    def observe(self, labels: tuple, value: float) -> None:
        series = self._series(labels)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                series[i] += 1
        series[-2] += 1       # count (the +Inf bucket)
        series[-1] += value   # sum

    def render(self) -> list:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, series in sorted(self._values.items()):
            if self.buckets is None:
                lines.append(f"{self.name}{_labels(labels)} {_number(series[0])}")
                continue
            for bound, count in zip(self.buckets, series):
                lines.append(f"{self.name}_bucket{_labels(labels + (('le', _number(bound)),))} {count}")
            lines.append(f"{self.name}_bucket{_labels(labels + (('le', '+Inf'),))} {series[-2]}")
            lines.append(f"{self.name}_sum{_labels(labels)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{_labels(labels)} {series[-2]}")
        return lines


class Metrics:
    """Every metric of one server; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        f = self.families = {}
        for name, kind, help, buckets in (
            ("nv_inference_request_success", "counter", "Number of successful inference requests", None),
            ("nv_inference_request_failure", "counter",
             "Number of failed inference requests (REJECTED: refused; BACKEND: the overlay failed)", None),
            ("nv_inference_count", "counter", "Number of inferences (events) answered", None),
            ("nv_inference_exec_count", "counter", "Number of overlay calls (batched executions)", None),
            ("nv_inference_request_duration_us", "counter",
             "Cumulative inference request duration in microseconds (parsing to answer)", None),
            ("nv_inference_queue_duration_us", "counter", "Cumulative time requests waited for their batch", None),
            ("nv_inference_compute_infer_duration_us", "counter",
             "Cumulative time in the overlay's predict, in microseconds", None),
            ("nv_inference_pending_request_count", "gauge", "Requests waiting for or in an overlay call", None),
            ("nv_inference_batch_size", "histogram", "Events per overlay call", BATCH_BUCKETS),
            ("nv_inference_batch_requests", "histogram", "Requests gathered into one overlay call", BATCH_BUCKETS),
            ("nv_inference_request_latency_ms", "histogram",
             "Latency of successful inference requests, in milliseconds", LATENCY_BUCKETS_MS),
            ("fastml_lab_http_responses", "counter", "HTTP responses by status code", None),
        ):
            f[name] = Family(name, kind, help, buckets)

    @staticmethod
    def model_labels(model: str, version: str) -> tuple:
        return (("model", model), ("version", version))

    def register(self, model: str, version: str) -> None:
        """Start a model's series at zero, as Triton lists every loaded model."""
        labels = self.model_labels(model, version)
        with self._lock:
            for family in self.families.values():
                if family.name == "nv_inference_request_failure":
                    for reason in ("REJECTED", "BACKEND"):
                        family._series(labels + (("reason", reason),))
                elif family.name != "fastml_lab_http_responses":
                    family._series(labels)

    def add(self, name: str, labels: tuple, amount: float = 1.0) -> None:
        with self._lock:
            self.families[name].add(labels, amount)

    def observe(self, name: str, labels: tuple, value: float) -> None:
        with self._lock:
            self.families[name].observe(labels, value)

    def render(self) -> str:
        with self._lock:
            lines = [line for family in self.families.values() for line in family.render()]
        return "\n".join(lines) + "\n"
