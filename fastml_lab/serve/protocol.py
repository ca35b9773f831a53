"""The body of an ``infer`` request and of its answer, in the Open Inference Protocol's JSON and in
Triton's binary-tensor extension; no HTTP here.

A request is JSON, or, with the ``Inference-Header-Content-Length`` header, that many bytes of JSON
followed by the raw little-endian bytes of every input whose ``parameters.binary_data_size`` says how
many are its own, in the order of ``inputs``. An output is answered in binary when the request asks
(``outputs[i].parameters.binary_data``, or ``parameters.binary_data_output`` for outputs it does not
list); the answer then carries the same header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..inputs import NUMERIC_KINDS, check_events
from .errors import RequestError
from .tensors import TensorSpec

#: The request header (and the answer's) giving the length of the JSON part of a body with binary tensors.
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass
class InferRequest:
    """A parsed request: its ``id`` (if any), the checked events (float64, ``(n, width)``), and which
    outputs to answer, each with whether in binary."""

    id: object
    events: np.ndarray
    outputs: list = field(default_factory=list)


def _bad(message: str) -> RequestError:
    return RequestError(400, message)


def split_body(body: bytes, header_length) -> tuple:
    """``(json bytes, binary bytes)`` of a body whose JSON part is ``header_length`` bytes (None: all)."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except (TypeError, ValueError):
        raise _bad(f"Inference-Header-Content-Length must be a number of bytes; got {header_length!r}.") from None
    if not 0 <= length <= len(body):
        raise _bad(f"Inference-Header-Content-Length is {length}, but the body has {len(body)} bytes.")
    return body[:length], body[length:]


def parse_json(data: bytes, what: str = "The request") -> dict:
    """A JSON object from ``data`` (UTF-8), or a 400 saying where it is malformed."""
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _bad(f"{what} is not UTF-8 text ({exc}); send JSON, or a binary body with the "
                   "Inference-Header-Content-Length header.") from None
    except json.JSONDecodeError as exc:
        raise _bad(f"{what} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise _bad(f"{what} must be a JSON object; got {type(value).__name__}.")
    return value


def _parameters(obj: dict, where: str) -> dict:
    params = obj.get("parameters", {})
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _bad(f"{where}'s parameters must be a JSON object; got {params!r}.")
    return params


def _size(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{where} must be a number of bytes (a non-negative integer); got {value!r}.")
    return value


def _shape(tensor: dict, spec: TensorSpec, model: str) -> tuple:
    """The request's shape of the input, which must be ``[n_events, *spec.dims]``."""
    shape = tensor.get("shape")
    expected = "[n_events, " + ", ".join(map(str, spec.dims)) + "]"
    if (not isinstance(shape, list) or not shape
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)):
        raise _bad(f"Input {spec.name!r} needs a shape: a list of non-negative integers, {expected}; "
                   f"got {shape!r}.")
    if tuple(shape[1:]) != tuple(spec.dims):
        given = f"{shape[1]} values per event" if len(shape) == 2 and len(spec.dims) == 1 else f"shape {shape}"
        raise _bad(f"Input {spec.name!r} of model {model!r} has shape {expected} ({spec.width} values per "
                   f"event); the request gives {given}.")
    return shape


def _from_binary(spec, shape, binary: bytes, offset: int, size: int) -> np.ndarray:
    count = shape[0] * spec.width
    expected = count * spec.dtype.itemsize
    if size != expected:
        raise _bad(f"Input {spec.name!r}: binary_data_size is {size} bytes, but shape {list(shape)} of "
                   f"{spec.datatype} takes {expected} bytes.")
    if offset + size > len(binary):
        raise _bad(f"Input {spec.name!r} needs {size} bytes of binary data from byte {offset} after the "
                   f"JSON header; the body has {len(binary) - offset} left.")
    return np.frombuffer(binary, dtype=spec.dtype, count=count, offset=offset).reshape(shape[0], spec.width)


def _from_json(tensor, spec, shape) -> np.ndarray:
    if "data" not in tensor:
        raise _bad(f"Input {spec.name!r} has neither 'data' nor parameters.binary_data_size.")
    try:
        values = np.asarray(tensor["data"])
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise _bad(f"Input {spec.name!r}: cannot read 'data' as numbers ({exc}).") from None
    if values.dtype.kind not in NUMERIC_KINDS:
        raise _bad(f"Input {spec.name!r}: 'data' must hold numbers ({spec.datatype}); numpy reads it as "
                   f"{values.dtype} (strings, booleans, nulls or integers too large?).")
    count = shape[0] * spec.width
    if values.size != count:
        raise _bad(f"Input {spec.name!r}: shape {list(shape)} holds {count} values; 'data' has {values.size}.")
    values = values.reshape(shape[0], spec.width)
    with np.errstate(over="ignore", invalid="ignore"):
        cast = values.astype(spec.dtype)
    overflow = np.isfinite(values) & ~np.isfinite(cast)
    if overflow.any():
        row, col = (int(i) for i in np.argwhere(overflow)[0])
        raise _bad(f"{spec.name}[{row}, {col}] = {values[row, col]:g} does not fit {spec.datatype} (event {row}, "
                   f"value {col} in row-major order).")
    return cast


def _inputs(request: dict, spec: TensorSpec, model: str, binary: bytes) -> np.ndarray:
    tensors = request.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise _bad(f"The request needs 'inputs': a list with the tensor {spec.name!r} "
                   f"({spec.datatype}, shape {spec.shape}).")
    found, offset = None, 0
    for tensor in tensors:
        if not isinstance(tensor, dict):
            raise _bad(f"Each input must be a JSON object; got {tensor!r:.80}.")
        name = tensor.get("name")
        if name != spec.name:
            raise _bad(f"Model {model!r} has no input {name!r}; its one input is {spec.name!r} "
                       f"({spec.datatype}, shape {spec.shape}).")
        if found is not None:
            raise _bad(f"Input {spec.name!r} is given twice.")
        datatype = tensor.get("datatype")
        if datatype != spec.datatype:
            hint = f" (numpy: x.astype(np.{spec.dtype.name}))" if spec.datatype.startswith("FP") else ""
            raise _bad(f"Input {spec.name!r} of model {model!r} is {spec.datatype}; the request sends "
                       f"{datatype!r}{hint}.")
        shape = _shape(tensor, spec, model)
        params = _parameters(tensor, f"Input {spec.name!r}")
        if "binary_data_size" in params:
            if "data" in tensor:
                raise _bad(f"Input {spec.name!r} has both 'data' and parameters.binary_data_size; send one.")
            size = _size(params["binary_data_size"], f"Input {spec.name!r}'s binary_data_size")
            found = _from_binary(spec, shape, binary, offset, size)
            offset += size
        else:
            found = _from_json(tensor, spec, shape)
    if offset != len(binary):
        raise _bad(f"The body has {len(binary) - offset} bytes after the JSON header that no input's "
                   "binary_data_size accounts for.")
    return found


def _outputs(request: dict, spec: TensorSpec, model: str) -> list:
    default_binary = bool(_parameters(request, "The request").get("binary_data_output", False))
    listed = request.get("outputs")
    if listed is None or listed == []:
        return [(spec.name, default_binary)]
    if not isinstance(listed, list):
        raise _bad(f"'outputs' must be a list of {{\"name\": ...}} objects; got {listed!r:.80}.")
    chosen = []
    for output in listed:
        if not isinstance(output, dict) or output.get("name") != spec.name:
            name = output.get("name") if isinstance(output, dict) else output
            raise _bad(f"Model {model!r} has no output {name!r}; its one output is {spec.name!r} "
                       f"({spec.datatype}, shape {spec.shape}).")
        params = _parameters(output, f"Output {spec.name!r}")
        if params.get("classification"):
            raise _bad("Classification outputs (class_count) are not served; ask for the "
                       f"output {spec.name!r} and take the largest value per event.")
        chosen.append((spec.name, bool(params.get("binary_data", default_binary))))
    return chosen


def parse_infer(body: bytes, header_length, model: str, input_spec: TensorSpec,
                output_spec: TensorSpec) -> InferRequest:
    """The request ``body`` for ``model``, its inputs checked as the overlay checks events; a
    :class:`RequestError` (400) or the overlay's DataError names what is wrong."""
    head, binary = split_body(body, header_length)
    request = parse_json(head)
    events = _inputs(request, input_spec, model, binary)
    events = check_events(events, input_spec.width, allow_single_row=False, name=input_spec.name)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, (str, int, float)):
        raise _bad(f"The request's id must be a string; got {request_id!r:.80}.")
    return InferRequest(request_id, events, _outputs(request, output_spec, model))


def encode_infer(model: str, version: str, request: InferRequest, output_spec: TensorSpec,
                 outputs: np.ndarray) -> tuple:
    """``(body, header length or None)`` answering ``request`` with ``outputs`` (float64, ``(n, width)``)."""
    reply = {"model_name": model, "model_version": version}
    if request.id is not None:
        reply["id"] = request.id
    tensors, blobs = [], []
    for name, binary in request.outputs:
        tensor = {"name": name, "datatype": output_spec.datatype, "shape": [len(outputs), *output_spec.dims]}
        if binary:
            blob = np.ascontiguousarray(outputs, dtype=output_spec.dtype).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = outputs.reshape(-1).tolist()
        tensors.append(tensor)
    reply["outputs"] = tensors
    head = json_bytes(reply)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def json_bytes(value) -> bytes:
    """``value`` as compact UTF-8 JSON (floats exactly, as Python writes them)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_plain).encode("utf-8")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")

