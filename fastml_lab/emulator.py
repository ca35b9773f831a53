"""Bit-exact software model of the firmware that hls4ml generates.

:class:`Firmware` loads the description that the export reads back from the generated C++
(``firmware.json`` + ``firmware.npz``: layer list, fixed-point types, weights as stored integers,
lookup tables) and computes, for a batch, exactly what the C simulation computes, value for value.
All values are float64 arrays of real numbers; they are exact because every type is at most 53
bits wide and :meth:`Firmware.load` checks that every sum stays exact (or refuses the firmware).

Numpy only: this module runs on the board.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .exceptions import DataError, IntegrityError, UnsupportedError
from .fixed import MAX_EXACT_WIDTH, FixedType

#: Rows per chunk: keeps temporaries small (Binder has 2 GB) and caches warm.
CHUNK_ROWS = 4096
#: Elements of a per-product temporary (rows x n_in x n_out) before the chunk is split further.
MAX_PRODUCT_ELEMENTS = 1 << 22


class Firmware:
    """The firmware of one exported model, ready to run on a batch of inputs."""

    FILES = ("firmware.json", "firmware.npz")

    def __init__(self, description: dict, arrays: dict):
        self.description = description
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.interface = description.get("interface", "parallel")
        self.n_inputs = int(description["n_inputs"])
        self.n_outputs = int(description["n_outputs"])
        self.input_type = FixedType.from_dict(description["input_type"])
        self.output_type = FixedType.from_dict(description["output_type"])
        self.timing = dict(description.get("timing", {}))
        self._layers = [_build_layer(spec, self.arrays) for spec in description["layers"]]
        self._check_exact()

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, folder) -> "Firmware":
        """Read ``firmware.json`` and ``firmware.npz`` from ``folder``."""
        folder = Path(folder)
        json_path, npz_path = (folder / name for name in cls.FILES)
        for path in (json_path, npz_path):
            if not path.is_file():
                raise DataError(f"{path} is missing: {folder} holds no exported firmware description.")
        try:
            description = json.loads(json_path.read_text())
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"{json_path} is not valid JSON ({exc}).") from None
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
        """sha256 over the description and the arrays: equal digests mean identical firmware."""
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
        """Check shape, dtype and finiteness; return a float64 (n, n_inputs) array."""
        X = np.asarray(X)
        if X.ndim == 1 and X.size == self.n_inputs:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise DataError(
                f"Expected inputs of shape (n_events, {self.n_inputs}); got {X.shape}."
            )
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise DataError(f"Expected a numeric (float or integer) input array; got dtype {X.dtype}.")
        X = X.astype(np.float64, copy=False)
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise DataError(
                f"Input has {int(bad.sum())} NaN/inf value(s); the first is at row {row}, column {col} "
                f"({X[row, col]}). The firmware needs finite numbers."
            )
        return X

    def cast_input(self, X: np.ndarray) -> np.ndarray:
        """What enters the first layer: the stream wrapper's float32 word, then ``input_t``."""
        if self.interface == "axi_stream":
            X = X.astype(np.float32).astype(np.float64)
        return self.input_type.quantize(X)

    def predict(self, X, trace: bool = False):
        """The firmware's outputs for inputs ``X`` (n, n_inputs): float64 (n, n_outputs).

        With ``trace=True`` also returns ``{layer name: output}`` for every layer.
        """
        if not trace:
            return self._run(X, lambda layer, h: layer(h))
        traces: dict = {layer.name: [] for layer in self._layers}

        def keep(layer, h):
            traces[layer.name].append(layer(h))
            return traces[layer.name][-1]

        out = self._run(X, keep)
        return out, {name: np.concatenate(parts) for name, parts in traces.items()}

    def predict_counting_overflows(self, X):
        """``(outputs, counts)``: :meth:`predict`'s outputs and, per layer, how many values left
        the result type's range before the cast (``"input"`` counts the input cast)."""
        counts = {"input": 0, **{layer.name: 0 for layer in self._layers}}

        def count(layer, h):
            out, n = layer.counting(h)
            counts[layer.name] += n
            return out

        out = self._run(X, count)
        counts["input"] = int(self.input_type.overflows(self.validate_input(X)).sum())
        return out, counts

    def _run(self, X, apply) -> np.ndarray:
        """Run the layers over ``X`` in chunks; ``apply(layer, h)`` returns the layer's output."""
        X = self.validate_input(X)
        out = np.empty((X.shape[0], self.n_outputs), dtype=np.float64)
        for start in range(0, X.shape[0], CHUNK_ROWS):
            h = self.cast_input(X[start:start + CHUNK_ROWS])
            for layer in self._layers:
                h = apply(layer, h)
            out[start:start + h.shape[0]] = h
        if self.interface == "axi_stream":
            out = out.astype(np.float32).astype(np.float64)
        return out

    # ------------------------------------------------------------------ exactness
    def _check_exact(self) -> None:
        """Refuse firmware whose arithmetic the float64 representation cannot follow exactly."""
        x_type = self.input_type
        for layer in self._layers:
            layer.check_exact(x_type)
            x_type = layer.result_type


# ============================================================================================ layers
class _Layer:
    op = ""

    def __init__(self, spec: dict, arrays: dict):
        self.name = spec["name"]
        self.spec = spec
        self.result_type = FixedType.from_dict(spec["result_type"])
        self.data_type = FixedType.from_dict(spec["data_type"])

    def check_exact(self, x_type: FixedType) -> None:
        _require_width(self.name, "result", self.result_type)

    def compute(self, x: np.ndarray) -> np.ndarray:
        """The layer's values before the cast to its result type."""
        raise NotImplementedError

    def cast(self, values: np.ndarray) -> np.ndarray:
        return self.result_type.quantize(values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.cast(self.compute(x))

    def counting(self, x: np.ndarray):
        """``(output, number of values that overflowed the result type)``."""
        values = self.compute(x)
        return self.cast(values), int(self.result_type.overflows(values).sum())


class _Dense(_Layer):
    op = "dense"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.weight_type = FixedType.from_dict(spec["weight_type"])
        self.bias_type = FixedType.from_dict(spec["bias_type"])
        self.accum_type = FixedType.from_dict(spec["accum_type"])
        self.w = self.weight_type.from_raw(arrays[f"{self.name}/weight"])
        self.b = self.bias_type.from_raw(arrays[f"{self.name}/bias"])
        self.strategy = spec.get("strategy", "latency")
        self.bias_acc = self.accum_type.quantize(self.b)
        self.path = "matmul"
        self.accum_is_identity = False

    def check_exact(self, x_type: FixedType) -> None:
        for slot, t in (("weight", self.weight_type), ("bias", self.bias_type),
                        ("accum", self.accum_type), ("result", self.result_type)):
            _require_width(self.name, slot, t)
        product_bits = x_type.width + self.weight_type.width
        if product_bits > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"Layer {self.name!r}: a {x_type} x {self.weight_type} product has {product_bits} "
                f"bits, more than the {MAX_EXACT_WIDTH} that can be emulated exactly."
            )
        acc = self.accum_type
        product_frac = x_type.fractional + self.weight_type.fractional
        rounds_products = product_frac > acc.fractional
        x_max = max(abs(x_type.min), abs(x_type.max))
        # Largest magnitude of the running sum, in any order (bias + all |x_i w_ij|).
        bound = float(np.max(np.abs(self.b) + x_max * np.abs(self.w).sum(axis=0))) if self.w.size else 0.0
        may_overflow = bound > acc.max or -bound < acc.min
        finest = max(product_frac, acc.fractional, self.bias_type.fractional)
        exact_sum_bits = math.ceil(math.log2(bound + 1.0)) + finest + 1
        if exact_sum_bits > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"Layer {self.name!r}: the dot product needs {exact_sum_bits} bits to be summed "
                f"exactly ({x_type} inputs, {self.weight_type} weights, {self.w.shape[0]} terms), "
                f"more than {MAX_EXACT_WIDTH}. Narrow the input or weight types."
            )
        order_matters = may_overflow and acc.overflow != "WRAP"
        if order_matters and self.strategy != "latency":
            raise UnsupportedError(
                f"Layer {self.name!r}: its accumulator {acc} saturates, so the result depends on the "
                "order of the additions, and the emulator follows only the Latency strategy's order. "
                "Use a wrapping or wider accumulator, or the Latency strategy."
            )
        # With no rounding and no overflow possible, the cast to accum_t changes nothing.
        bias_on_grid = self.bias_type.fractional <= acc.fractional
        self.accum_is_identity = not (may_overflow or rounds_products or not bias_on_grid)
        if order_matters:
            self.path = "sequential"
        elif rounds_products:
            self.path = "per_product"
        else:
            self.path = "matmul"

    def compute(self, x):
        if self.path == "matmul":
            # Exact: every product and partial sum fits float64; a wrapping accumulator's modular
            # sum equals the wrap of the exact sum.
            acc = x @ self.w
            acc += self.bias_acc
            return acc if self.accum_is_identity else self.accum_type.quantize(acc)
        if self.path == "per_product":
            return self._per_product(x)
        return self._sequential(x)

    def _per_product(self, x):
        n_in, n_out = self.w.shape
        step = max(1, MAX_PRODUCT_ELEMENTS // max(1, n_in * n_out))
        acc = np.empty((x.shape[0], n_out))
        for s in range(0, x.shape[0], step):
            products = self.accum_type.quantize(x[s:s + step, :, None] * self.w[None])
            acc[s:s + step] = products.sum(axis=1) + self.bias_acc
        return self.accum_type.quantize(acc)

    def _sequential(self, x):
        # hls4ml's Latency kernel: acc = bias; for each input i: acc += (accum_t)(x_i * w_i).
        acc = np.broadcast_to(self.bias_acc, (x.shape[0], self.w.shape[1])).copy()
        for i in range(self.w.shape[0]):
            term = self.accum_type.quantize(x[:, i:i + 1] * self.w[i][None, :])
            acc = self.accum_type.quantize(acc + term)
        return acc


class _Normalize(_Layer):
    op = "normalize"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.scale = FixedType.from_dict(spec["scale_type"]).from_raw(arrays[f"{self.name}/scale"])
        self.bias = FixedType.from_dict(spec["bias_type"]).from_raw(arrays[f"{self.name}/bias"])
        self.scale_type = FixedType.from_dict(spec["scale_type"])

    def check_exact(self, x_type):
        super().check_exact(x_type)
        if x_type.width + self.scale_type.width + 1 > MAX_EXACT_WIDTH:
            raise UnsupportedError(f"Layer {self.name!r}: the batch-norm product is too wide to emulate exactly.")

    def compute(self, x):
        reps = x.shape[1] // self.scale.size
        return x * np.tile(self.scale, reps) + np.tile(self.bias, reps)


class _ReLU(_Layer):
    op = "relu"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.cast_is_identity = self.result_type.holds(self.data_type, nonnegative_only=True)

    def compute(self, x):
        # Layer outputs never hold -0.0 (casts normalise it), so max(x, +0.0) has no -0.0 either.
        return np.maximum(x, 0.0)

    def cast(self, values):
        return values if self.cast_is_identity else self.result_type.quantize(values)


class _Linear(_Layer):
    op = "linear"

    def compute(self, x):
        return x


class _LeakyReLU(_Layer):
    op = "leaky_relu"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.alpha = float(spec["param"])

    def compute(self, x):
        return np.where(x > 0, x, self.alpha * x)


class _ThresholdedReLU(_LeakyReLU):
    op = "thresholded_relu"

    def compute(self, x):
        return np.where(x > self.alpha, x, 0.0)


class _TableActivation(_Layer):
    """hls4ml's sigmoid and tanh: a table over [-8, 8) resp. [-4, 4), indexed by truncation."""

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.op = spec["op"]
        self.size = int(spec["table_size"])
        self.table = FixedType.from_dict(spec["table_type"]).from_raw(arrays[f"{self.name}/table"])
        self.span = 16 if self.op == "sigmoid" else 8

    def compute(self, x):
        # data * table_size / span, converted to int (truncation toward zero), then offset.
        index = np.trunc(x * self.size / self.span) + (self.span // 2) * self.size // self.span
        index = np.clip(index, 0, self.size - 1).astype(np.int64)
        return self.table[index]


class _Softmax(_Layer):
    """hls4ml's 'stable' (max-subtracted) and 'latency' softmax with exp and 1/x tables."""

    op = "softmax"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        self.stable = spec["implementation"] == "stable"
        self.accum_type = FixedType.from_dict(spec["accum_type"])
        self.inv_inp_type = FixedType.from_dict(spec["inv_inp_type"])
        self.index_type = FixedType.from_dict(spec["index_type"])
        exp_table = FixedType.from_dict(spec["exp_table_type"]).from_raw(arrays[f"{self.name}/exp_table"])
        # The firmware casts each looked-up exp to accum_t; casting the table once is the same.
        self.exp_accum = self.accum_type.quantize(exp_table)
        self.inv_table = FixedType.from_dict(spec["inv_table_type"]).from_raw(arrays[f"{self.name}/inv_table"])
        self.exp_bits = int(math.ceil(math.log2(int(spec["exp_table_size"]))))
        self.inv_bits = int(math.ceil(math.log2(int(spec["inv_table_size"]))))
        largest = float(np.abs(self.exp_accum).max()) if self.exp_accum.size else 0.0
        limit = min(self.accum_type.max, -self.accum_type.min)
        #: Largest number of terms whose partial sums accum_t holds without a cast changing them.
        self.exact_terms = math.inf if largest == 0 else int(limit // largest)

    def check_exact(self, x_type):
        super().check_exact(x_type)
        for t in (self.accum_type, self.inv_inp_type, self.index_type):
            _require_width(self.name, "softmax internal", t)
        if self.index_type.width < self.exp_bits or self.inv_inp_type.width < self.inv_bits:
            raise UnsupportedError(
                f"Softmax layer {self.name!r}: a table index has more bits than its input type."
            )

    @staticmethod
    def _table_index(t: FixedType, values: np.ndarray, n_bits: int) -> np.ndarray:
        """The top ``n_bits`` of ``values`` cast to ``t``, as the firmware indexes its tables."""
        raw = t.to_raw(values).astype(np.int64)
        raw = np.mod(raw, 1 << t.width)  # two's-complement bit pattern
        return raw >> (t.width - n_bits)

    def _tree_sum(self, cols: list) -> np.ndarray:
        # nnet::reduce: split at the largest power of two below n, add the halves in accum_t.
        n = len(cols)
        if n == 1:
            return cols[0]
        if n == 2:
            return self.accum_type.quantize(cols[0] + cols[1])
        left = 1 << int(math.floor(math.log2(n - 1)))
        return self.accum_type.quantize(self._tree_sum(cols[:left]) + self._tree_sum(cols[left:]))

    def compute(self, x):
        d = x.max(axis=1, keepdims=True) - x if self.stable else x
        exp_res = self.exp_accum[self._table_index(self.index_type, d, self.exp_bits)]
        if exp_res.shape[1] <= self.exact_terms:
            total = exp_res.sum(axis=1)  # every partial sum fits accum_t exactly: casts change nothing
        else:
            total = self._tree_sum([exp_res[:, i] for i in range(exp_res.shape[1])])
        inv = self.inv_table[self._table_index(self.inv_inp_type, total, self.inv_bits)]
        return exp_res * inv[:, None]


class _Quantize(_Layer):
    """HGQ2's per-element quantizer: element ``i`` is cast to its own type (index -1: zero bits)."""

    op = "quantize"

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        index = arrays[f"{self.name}/type_index"]
        self.groups = [(FixedType.from_dict(t), np.flatnonzero(index == k))
                       for k, t in enumerate(spec["element_types"])]

    def check_exact(self, x_type):
        super().check_exact(x_type)
        for t, _ in self.groups:
            _require_width(self.name, "element", t)

    def compute(self, x):
        y = np.zeros_like(x)
        for t, cols in self.groups:
            y[:, cols] = t.quantize(x[:, cols])
        return y

    def counting(self, x):
        overflows = sum(int(t.overflows(x[:, cols]).sum()) for t, cols in self.groups)
        return self(x), overflows


_LAYERS = {
    "quantize": _Quantize, "dense": _Dense, "normalize": _Normalize, "relu": _ReLU, "linear": _Linear,
    "leaky_relu": _LeakyReLU, "thresholded_relu": _ThresholdedReLU, "sigmoid": _TableActivation,
    "tanh": _TableActivation, "softmax": _Softmax,
}


def _build_layer(spec: dict, arrays: dict) -> _Layer:
    try:
        cls = _LAYERS[spec["op"]]
    except KeyError:
        raise UnsupportedError(
            f"Layer {spec.get('name')!r} has operation {spec.get('op')!r}, which this emulator does not "
            f"know; known: {', '.join(sorted(_LAYERS))}."
        ) from None
    return cls(spec, arrays)


def _require_width(layer: str, slot: str, t: FixedType) -> None:
    if t.width > MAX_EXACT_WIDTH:
        raise UnsupportedError(
            f"Layer {layer!r}: the {slot} type {t} is {t.width} bits wide; exact emulation holds at most "
            f"{MAX_EXACT_WIDTH} bits. Choose a narrower type in the precision plan."
        )
