"""A served overlay's tensors as the Open Inference Protocol describes them: name, datatype, shape.

Everything comes from the package's manifest: the names from
:func:`~fastml_lab.overlay.manifest.tensor_names`, the input's datatype from its stream word
(``io.word_dtype``: FP32 on a PYNQ-Z2, FP64 for a software-only package), one event's shape from
``io.input_shape`` / ``io.output_shape`` (``[n_inputs]`` / ``[n_outputs]`` where they are missing). The output is what :meth:`Accelerator.predict
<fastml_lab.overlay.accelerator.Accelerator.predict>` returns, and ``fastml-lab run`` writes: FP64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The protocol's datatype of each numpy type (little-endian on the wire, as Triton sends them).
DATATYPES = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPE_OF = {(dtype.kind, dtype.itemsize): name for name, dtype in DATATYPES.items()}

#: :meth:`Accelerator.predict`'s outputs: float64.
OUTPUT_DTYPE = np.dtype(np.float64)


def datatype_of(dtype) -> str:
    """The protocol's name of a numpy dtype (``float32`` -> ``"FP32"``)."""
    dtype = np.dtype(dtype)
    return _DATATYPE_OF[dtype.kind, dtype.itemsize]


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model: its name, protocol datatype and one event's dimensions."""

    name: str
    datatype: str
    dims: tuple

    @property
    def width(self) -> int:
        """Values per event."""
        return int(np.prod(self.dims))

    @property
    def shape(self) -> list:
        """The protocol's shape: ``-1`` (any number of events), then one event's dimensions."""
        return [-1, *self.dims]

    @property
    def dtype(self) -> np.dtype:
        return DATATYPES[self.datatype]

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def _dims(recorded, width: int) -> tuple:
    """The manifest's shape of one event if it holds ``width`` values, else ``(width,)``."""
    dims = tuple(int(d) for d in recorded or ())
    return dims if dims and int(np.prod(dims)) == width else (width,)


def input_spec(package) -> TensorSpec:
    """The input tensor of an :class:`~fastml_lab.overlay.package.OverlayPackage`: events of
    ``io.input_shape`` (``n_inputs`` values) in its stream word's type."""
    return TensorSpec(package.input_name, datatype_of(package.io["word_dtype"]),
                      _dims(package.io.get("input_shape"), package.n_inputs))


def output_spec(package) -> TensorSpec:
    """The output tensor of a package: ``io.output_shape`` (``n_outputs`` float64 values) per event."""
    return TensorSpec(package.output_name, datatype_of(OUTPUT_DTYPE),
                      _dims(package.io.get("output_shape"), package.n_outputs))
