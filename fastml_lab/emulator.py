"""Bit-exact software model of the firmware that hls4ml generates.

:class:`Firmware` loads the description that the export reads back from the generated C++
(``firmware.json`` + ``firmware.npz``: layer list, fixed-point types, weights as stored integers,
lookup tables) and computes, for a batch, exactly what the C simulation computes, value for value.
All values are float64 arrays of real numbers; they are exact because every type is at most 53
bits wide and :meth:`Firmware.load` checks that every sum stays exact (or refuses the firmware).
Each layer is an op class of :mod:`fastml_lab.firmware` (one class per op, found by op name).
A ``timing`` entry that older descriptions hold is not read: timing belongs to the project.

Numpy only: this module runs on the board.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ._io import read_json
from .exceptions import DataError, IntegrityError
from .firmware import build_layer
from .fixed import FixedType
from .inputs import check_events

#: Rows per chunk: keeps temporaries small (Binder has 2 GB) and caches warm.
CHUNK_ROWS = 4096


class Firmware:
    """The firmware of one exported model, ready to run on a batch of inputs."""

    FILES = ("firmware.json", "firmware.npz")

    def __init__(self, description: dict, arrays: dict):
        self.description = description
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.interface = description.get("interface", "parallel")
        self.n_inputs = int(description["n_inputs"])
        self.n_outputs = int(description["n_outputs"])
        #: An event's shape: ``(n_inputs,)`` for flat events, ``(H, W, C)`` or ``(L, C)`` for images
        #: and sequences, whose values the firmware reads in row-major order.
        self.input_shape = tuple(int(d) for d in description.get("input_shape") or (self.n_inputs,))
        self.input_type = FixedType.from_dict(description["input_type"])
        self.output_type = FixedType.from_dict(description["output_type"])
        self._layers = [build_layer(spec, self.arrays) for spec in description["layers"]]
        self._check_exact()
        self._steps = self._fuse(self._layers)

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, folder) -> "Firmware":
        """Read ``firmware.json`` and ``firmware.npz`` from ``folder``."""
        folder = Path(folder)
        json_path, npz_path = (folder / name for name in cls.FILES)
        for path in (json_path, npz_path):
            if not path.is_file():
                raise DataError(f"{path} is missing: {folder} holds no exported firmware description.")
        description = read_json(json_path, "the firmware description", IntegrityError)
        if not isinstance(description, dict):
            raise IntegrityError(
                f"{json_path} must hold a JSON object describing the firmware; it holds a "
                f"{type(description).__name__}. Export the project again."
            )
        if description.get("schema_version") != 1:
            raise IntegrityError(
                f"{json_path} has schema_version {description.get('schema_version')!r}; this "
                "version of fastml_lab reads schema_version 1."
            )
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise IntegrityError(
                f"{npz_path} is damaged and cannot be read ({exc}); export the project again."
            ) from None
        try:
            return cls(description, arrays)
        except KeyError as exc:
            raise IntegrityError(f"{folder}: the firmware description refers to missing data {exc}.") from None

    def save(self, folder) -> None:
        """Write ``firmware.json`` and ``firmware.npz`` into ``folder`` (atomically, file by file)."""
        import io

        from ._io import write_bytes_atomic, write_json_atomic

        folder = Path(folder)
        write_json_atomic(folder / self.FILES[0], self.description, indent=1)
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.arrays)
        write_bytes_atomic(folder / self.FILES[1], buf.getvalue())

    def digest(self) -> str:
        """sha256 over the description (as stored: an older file's ``timing`` entry included, so
        its recorded digest still holds) and the arrays: equal digests mean identical firmware."""
        h = hashlib.sha256(json.dumps(self.description, sort_keys=True).encode())
        for key in sorted(self.arrays):
            arr = np.ascontiguousarray(self.arrays[key])
            h.update(key.encode())
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    @property
    def layer_names(self) -> list:
        return [layer.name for layer in self._layers]

    def __repr__(self) -> str:
        ops = ", ".join(f"{lay.name}:{lay.op}" for lay in self._layers)
        return f"Firmware({self.n_inputs} -> {self.n_outputs}, {self.interface}, [{ops}])"

    # ------------------------------------------------------------------ running
    def validate_input(self, X) -> np.ndarray:
        """``X`` as a float64 ``(n, n_inputs)`` array, checked by :func:`fastml_lab.inputs.check_events`
        (at least one event; a 1-D array of ``n_inputs`` values is one event; events of
        :attr:`input_shape` are flattened)."""
        return check_events(X, self.n_inputs, min_rows=1, allow_single_row=True, shape=self.input_shape)

    def cast_input(self, X: np.ndarray) -> np.ndarray:
        """What enters the first layer: the stream wrapper's float32 word, then ``input_t``."""
        if self.interface == "axi_stream":
            X = X.astype(np.float32).astype(np.float64)
        return self.input_type.quantize(X)

    def predict(self, X, trace: bool = False):
        """The firmware's outputs for inputs ``X`` (n, n_inputs) or (n, *input_shape): float64 (n, n_outputs).

        With ``trace=True`` also returns ``{layer name: output}`` for every layer.
        """
        if not trace:
            return self.run_checked(self.validate_input(X))
        traces: dict = {layer.name: [] for layer in self._layers}

        def keep(layer, h):
            traces[layer.name].append(layer(h))
            return traces[layer.name][-1]

        out = self._run(self.validate_input(X), keep)
        return out, {name: np.concatenate(parts) for name, parts in traces.items()}

    def predict_counting_overflows(self, X):
        """``(outputs, counts)``: :meth:`predict`'s outputs and, per layer, how many values left
        the result type's range before the cast (``"input"`` counts the input cast)."""
        counts = {"input": 0, **{layer.name: 0 for layer in self._layers}}

        def count(layer, h):
            out, n = layer.counting(h)
            counts[layer.name] += n
            return out

        X = self.validate_input(X)
        out = self._run(X, count)
        counts["input"] = int(self.input_type.overflows(X).sum())
        return out, counts

    def run_checked(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict`'s outputs for an array :func:`~fastml_lab.inputs.check_events` already
        returned (float64, C-contiguous, ``(n, n_inputs)``); it is not checked again."""
        return self._run(X, None)

    def _run(self, X, apply) -> np.ndarray:
        """Run the layers over the checked ``X`` in chunks; ``apply(layer, h)`` returns the layer's
        output (None: the fused steps, which compute the same values in fewer passes)."""
        out = np.empty((X.shape[0], self.n_outputs), dtype=np.float64)
        for start in range(0, X.shape[0], CHUNK_ROWS):
            h = self.cast_input(X[start:start + CHUNK_ROWS])
            if apply is None:
                for step in self._steps:
                    h = step(h)
            else:
                for layer in self._layers:
                    h = apply(layer, h)
            out[start:start + h.shape[0]] = h
        if self.interface == "axi_stream":
            out = out.astype(np.float32).astype(np.float64)
        return out

    @staticmethod
    def _fuse(layers: list) -> list:
        """The layers as steps, where a layer and the next compute in one pass (see ``Op.fused_with``)."""
        steps, i = [], 0
        while i < len(layers):
            fused = layers[i].fused_with(layers[i + 1]) if i + 1 < len(layers) else None
            steps.append(fused or layers[i])
            i += 2 if fused else 1
        return steps

    # ------------------------------------------------------------------ exactness
    def _check_exact(self) -> None:
        """Refuse firmware whose arithmetic the float64 representation cannot follow exactly."""
        x_type = self.input_type
        for layer in self._layers:
            layer.check_exact(x_type)
            x_type = layer.result_type
