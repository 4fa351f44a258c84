"""KServe V2's binary tensor data extension (Triton's `binary_tensor_data`), which tritonclient's HTTP client
uses by default: the body is the JSON request, then each tensor's raw bytes in the order the JSON lists
them; `Inference-Header-Content-Length` gives the JSON's length and each such tensor's `parameters` its
`binary_data_size`. Numbers are little-endian and row-major; BYTES elements each carry a 4-byte
little-endian length. Replies come back the same way for outputs asked for with `binary_data`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from shared.serving.errors import ServingError

HEADER_LENGTH = "inference-header-content-length"
NUMPY_OF = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON part, the binary part) of a request body."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ServingError(
            400, f"Inference-Header-Content-Length {header_length!r} must be a byte count within the body"
        )
    return body[: int(header_length)], body[int(header_length) :]


def binary_chunks(tensors: list[dict[str, Any]], data: bytes) -> dict[str, bytes]:
    """Each input's bytes, cut from `data` in the order of `tensors` by its `binary_data_size`."""
    chunks, offset = {}, 0
    for tensor in tensors:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(data):
            raise ServingError(
                400,
                f"input {tensor['name']!r}: binary_data_size {size!r} runs past the {len(data)} bytes sent",
            )
        chunks[tensor["name"]] = data[offset : offset + size]
        offset += size
    if offset != len(data):
        raise ServingError(400, f"the body holds {len(data) - offset} bytes after the tensors' binary data")
    return chunks


def array_from_bytes(chunk: bytes, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                raise ServingError(400, f"input {name!r}: a BYTES element's length is cut off")
            (length,) = struct.unpack_from("<I", chunk, offset)
            if offset + 4 + length > len(chunk):
                raise ServingError(
                    400, f"input {name!r}: a BYTES element of {length} bytes runs past the data"
                )
            items.append(chunk[offset + 4 : offset + 4 + length])
            offset += 4 + length
        if offset != len(chunk) or len(items) != count:
            raise ServingError(
                400,
                f"input {name!r}: the binary data holds {len(items)} elements; shape {shape} needs {count}",
            )
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = np.dtype(NUMPY_OF[datatype]).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise ServingError(
            400,
            f"input {name!r}: {len(chunk)} bytes of binary data; "
            f"shape {shape} of {datatype} needs {count * dtype.itemsize}",
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def bytes_of(array: np.ndarray) -> bytes:
    """An output's raw bytes, as `array_from_bytes` reads them."""
    if array.dtype == object or array.dtype.kind == "S":
        return b"".join(struct.pack("<I", len(item)) + bytes(item) for item in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
