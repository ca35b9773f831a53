"""The one seam every overlay implements: :class:`Accelerator`.

The base class does everything that does not touch hardware: the input check (the emulator's
and the scaler's, :func:`~fastml_lab.inputs.check_events`), optional scaling, packing events into
stream words, splitting batches to the largest transfer, unpacking, class helpers and profiling.
A subclass supplies ``_transfer(words, n_events) -> words`` (the board's DMA round trip, or the
emulator) and ``max_events_per_transfer``.
"""

from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from ..exceptions import BoardError, ConfigError, DataError, NotReadyError
from ..inputs import check_events

log = logging.getLogger(__name__)

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def pack(X: np.ndarray, word_dtype) -> np.ndarray:
    """Events (n, n_inputs) as one flat, contiguous run of stream words, row after row."""
    dtype = np.dtype(word_dtype)
    if dtype == np.float32:
        too_big = np.abs(X) > _FLOAT32_MAX
        if too_big.any():
            row, col = np.argwhere(too_big)[0]
            raise DataError(f"X[{row}, {col}] = {X[row, col]:g} does not fit a float32 stream word.")
    return np.ascontiguousarray(X, dtype=dtype).reshape(-1)


def unpack(words, n_events: int, n_outputs: int) -> np.ndarray:
    """Stream words back to a float64 (n_events, n_outputs) array (a new array, never a view)."""
    words = np.asarray(words)
    expected = n_events * n_outputs
    if words.size != expected:
        raise BoardError(f"Received {words.size} output words for {n_events} events; expected "
                         f"{expected} ({n_outputs} per event).")
    return np.array(words, dtype=np.float64).reshape(n_events, n_outputs)


class Accelerator:
    """Runs a packaged model: ``predict``, ``classify``, ``profile``, ``describe``, ``close``.

    ``predict(X)`` sends ``X`` as given, like the C simulation; ``predict(X, scale=True)`` first
    applies the package's input scaler (for raw, unscaled features).
    """

    #: "board" or "software".
    backend = "abstract"

    def __init__(self, package):
        self.package = package
        self._scaler = None
        self._closed = False

    # ------------------------------------------------------------------ subclass seam
    @property
    def max_events_per_transfer(self) -> int:
        raise NotImplementedError

    def _transfer(self, words: np.ndarray, n_events: int) -> np.ndarray:
        """Send the packed words of ``n_events`` events; return their output words."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what the subclass holds."""

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return self.package.name

    @property
    def n_inputs(self) -> int:
        return self.package.n_inputs

    @property
    def input_shape(self) -> tuple:
        """One event's shape (``(n_inputs,)``, or an image's ``(H, W, C)``), as the manifest records it."""
        return tuple(self.package.io.get("input_shape") or (self.n_inputs,))

    @property
    def n_outputs(self) -> int:
        return self.package.n_outputs

    @property
    def class_names(self):
        return self.package.class_names

    @property
    def word_dtype(self) -> np.dtype:
        return np.dtype(self.package.io["word_dtype"])

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ inference
    def predict(self, X, scale: bool = False) -> np.ndarray:
        """Outputs for events ``X`` (n_events, n_inputs) as a new float64 (n_events, n_outputs) array.

        ``scale=True`` applies the package's scaler to raw features first. ``X`` is checked once,
        as the emulator and the scaler check it; a 1-D array of ``n_inputs`` values is one event.
        """
        self._check_open()
        X = check_events(X, self.n_inputs, shape=self.input_shape)
        if scale:
            X = self._get_scaler().transform_checked(X)
        n = X.shape[0]
        out = np.empty((n, self.n_outputs), dtype=np.float64)
        step = self.max_events_per_transfer
        for start in range(0, n, step):
            chunk = X[start:start + step]
            words = self._transfer(pack(chunk, self.word_dtype), chunk.shape[0])
            out[start:start + chunk.shape[0]] = unpack(words, chunk.shape[0], self.n_outputs)
        return out

    def classify(self, X, scale: bool = False) -> np.ndarray:
        """The index of the largest output of each event (int64)."""
        return np.argmax(self.predict(X, scale=scale), axis=1).astype(np.int64)

    def labels(self, X, scale: bool = False) -> np.ndarray:
        """Class names of the predicted classes (needs ``class_names`` in the package)."""
        if not self.class_names:
            raise ConfigError(f"The package {self.name!r} records no class names; use classify().")
        return np.asarray(self.class_names, dtype=object)[self.classify(X, scale=scale)]

    def scale(self, X) -> np.ndarray:
        """Raw features ``X`` through the package's input scaler (what ``predict(X, scale=True)`` sends):
        for a client that sends scaled events to a served overlay."""
        self._check_open()
        return self._get_scaler().transform_checked(check_events(X, self.n_inputs, shape=self.input_shape))

    def _get_scaler(self):
        if self._scaler is None:
            spec = self.package.manifest.get("scaler")
            if not spec:
                raise ConfigError(f"The package {self.name!r} has no input scaler; pass features "
                                  "that are already scaled (scale=False).")
            from ..scaler import Scaler

            self._scaler = Scaler.from_dict(spec)
        return self._scaler

    # ------------------------------------------------------------------ measurement
    def modelled(self) -> dict:
        """Board figures computed from the firmware's II, latency and clock (not measured)."""
        timing = self.package.timing
        clock = timing.get("clock_mhz") or self.package.manifest.get("clock_mhz")
        ii = timing.get("ii_cycles")
        if not clock or not ii:
            return {"label": "modelled", "available": False,
                    "reason": "the package records no II or clock"}
        # The AXI stream, like the m_axi port of a BDT's accelerator, moves one word per cycle.
        interface = self.package.io["interface"]
        stream_cycles = 1 if interface == "parallel" else max(self.n_inputs, self.n_outputs)
        cycles = max(int(ii), stream_cycles)
        latency = timing.get("latency_cycles")
        port = "stream" if interface == "axi_stream" else "memory port (m_axi)"
        return {
            "label": "modelled",
            "available": True,
            "events_per_s": clock * 1e6 / cycles,
            "latency_us": None if latency is None else latency / clock,
            "cycles_per_event": cycles,
            "bound": "II" if int(ii) >= stream_cycles else f"{port} (one {8 * self.word_dtype.itemsize}-bit word per cycle)",
            "clock_mhz": clock,
            "source": timing.get("source", "unknown"),
            "design": self.package.manifest.get("source"),
            "resources": self.package.manifest.get("resources"),
            "note": "the IP alone at its clock; Python and DMA set-up time are not included",
        }

    def profile(self, X, scale: bool = False, repeats: int = 50) -> dict:
        """Measure batch throughput on ``X`` and single-event latency (median of ``repeats``)."""
        self._check_open()
        X = check_events(X, self.n_inputs, shape=self.input_shape)
        start = time.perf_counter()
        self.predict(X, scale=scale)
        batch_s = time.perf_counter() - start
        one = X[:1]
        self.predict(one, scale=scale)  # warm-up
        latencies = []
        for _ in range(max(1, int(repeats))):
            t0 = time.perf_counter()
            self.predict(one, scale=scale)
            latencies.append((time.perf_counter() - t0) * 1e6)
        latencies.sort()
        n = int(X.shape[0])
        return {
            "backend": self.backend,
            "label": "measured",
            "events": n,
            "batch_s": batch_s,
            "events_per_s": n / batch_s if batch_s > 0 else float("inf"),
            "us_per_event": 1e6 * batch_s / n if n else None,
            "latency_us": statistics.median(latencies),
            "latency_us_p90": latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))],
            "latency_repeats": len(latencies),
            "what": {"events_per_s": f"one predict call on a batch of {n:,} events ({self.backend}), per event",
                     "latency_us": f"one predict call on one event, median of {len(latencies)} "
                                   "(the call's own overhead included)"},
            "modelled": self.modelled(),
        }

    # ------------------------------------------------------------------ description, lifetime
    def describe(self) -> dict:
        """What runs where: package, backend, I/O format, timing."""
        pkg = self.package
        return {
            "name": pkg.name,
            "version": pkg.version,
            "backend": self.backend,
            "family": pkg.family,
            "board": pkg.board,
            "interface": pkg.io["interface"],
            "status": pkg.status,
            "path": str(pkg.path),
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "input_type": str(pkg.input_type),
            "output_type": str(pkg.output_type),
            "packing": pkg.io.get("packing"),
            "class_names": self.class_names,
            "has_scaler": bool(pkg.manifest.get("scaler")),
            "max_events_per_transfer": self.max_events_per_transfer,
            "timing": pkg.timing,
        }

    def _check_open(self) -> None:
        if self._closed:
            raise NotReadyError(f"The overlay {self.name!r} is closed; load it again.")

    def close(self) -> None:
        """Release buffers and locks; further calls raise NotReadyError. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name!r} backend={self.backend!r} {state}>"
