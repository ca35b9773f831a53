"""Lookup tables of hls4ml's activations, computed as the C++ initialisers compute them.

The C simulation fills these tables at run time with single-precision arithmetic and the C math
library (``expf``, ``tanhf``); the same calls are made here through ctypes, so the tables match
entry for entry. The emulator stores the finished tables, so it needs no math library itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from ..exceptions import ToolchainNotFoundError
from ..fixed import FixedType


@functools.lru_cache(maxsize=1)
def _libm():
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name or "libm.so.6")
    except OSError as exc:
        raise ToolchainNotFoundError(f"The C math library could not be loaded ({exc}).") from exc
    for fn in ("expf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    return lib


def _apply(fn_name: str, values: np.ndarray) -> np.ndarray:
    fn = getattr(_libm(), fn_name)
    return np.array([fn(float(v)) for v in values.astype(np.float32)], dtype=np.float32)


def activation_table(kind: str, size: int) -> np.ndarray:
    """Values of ``nnet::init_sigmoid_table`` / ``init_tanh_table`` (float32, before the cast)."""
    ii = np.arange(size, dtype=np.float64)
    half_range = 8.0 if kind == "sigmoid" else 4.0
    # in_val = 2 * R * (ii - N / 2.0) / N, evaluated in double, stored as float
    in_val = (2 * half_range * (ii - float(size) / 2.0) / float(size)).astype(np.float32)
    if kind == "sigmoid":
        e = _apply("expf", -in_val)
        denom = (np.float32(1) + e).astype(np.float32)  # float + float
        return (1.0 / denom.astype(np.float64)).astype(np.float32)  # 1.0 / float is a double division
    return _apply("tanhf", in_val)


def slice_index_values(index_type: FixedType, size: int) -> np.ndarray:
    """``softmax_real_val_from_idx``: the value whose top log2(size) bits are the index."""
    n_bits = int(np.ceil(np.log2(size)))
    shift = index_type.width - n_bits
    raw = np.arange(size, dtype=np.int64) << shift
    if index_type.signed:
        raw = np.where(raw >= (1 << (index_type.width - 1)), raw - (1 << index_type.width), raw)
    return index_type.from_raw(raw).astype(np.float32)


def softmax_exp_table(index_type: FixedType, size: int, exp_scale: float = 1.0, negate: bool = False) -> np.ndarray:
    x = (slice_index_values(index_type, size) * np.float32(exp_scale)).astype(np.float32)
    if negate:
        x = -x
    return _apply("expf", x)


def softmax_inv_table(index_type: FixedType, size: int) -> np.ndarray:
    x = slice_index_values(index_type, size)
    with np.errstate(divide="ignore"):
        return (np.float32(1) / x).astype(np.float32)
