"""JSON values <-> NumPy arrays of a signature's dtypes, for both protocols, with errors that name the input.

Text inputs take strings or `{"b64": "..."}` objects (binary data such as image files); an output whose
name ends in `_bytes` goes back as `{"b64": ...}`, other text as strings, as TF Serving does.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from shared.serving.errors import ServingError
from shared.serving.repository import DTYPE_NAMES, TensorInfo

MAX_RANK = 32  # deeper nesting is a mistake or an attack (numpy itself stops at 64)


def array_of(value: Any, info: TensorInfo, shape: list[int] | None = None) -> np.ndarray:
    """A JSON value (a number, a string or nested lists of them) as an array of the input's dtype.

    `shape`, when the protocol states one (KServe V2), is what the values are reshaped to."""
    array = _text_array(value, info.name) if info.dtype == "DT_STRING" else _number_array(value, info)
    if shape is not None:
        if math.prod(shape) != array.size:
            raise ServingError(
                400, f"input {info.name!r}: shape {shape} does not fit its {array.size} value(s)"
            )
        array = array.reshape(shape)
    return array


def check_v2_shape(shape: Any, name: str) -> list[int]:
    """A KServe V2 `shape`: at most MAX_RANK sizes, each a whole number from 0 to 2^31 - 1."""
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)
    ):
        raise ServingError(
            400, f'input {name!r} needs "shape": a list of at most {MAX_RANK} sizes, each from 0 to 2^31 - 1'
        )
    return shape


def _number_array(value: Any, info: TensorInfo) -> np.ndarray:
    name, dtype = info.name, info.numpy_dtype
    try:
        array = np.asarray(value)
    except ValueError:
        raise ServingError(400, _ragged(name)) from None
    if array.size == 0:  # reads as float64: nothing to check here (an empty input is refused later)
        return array.astype(dtype)
    if array.ndim > MAX_RANK:
        raise ServingError(400, f"input {name!r} is nested more than {MAX_RANK} lists deep")
    if array.dtype == object or array.dtype.kind in "USV":
        if array.dtype == object and _is_ragged(value):
            raise ServingError(400, _ragged(name))
        raise ServingError(
            400, f"input {name!r} takes {DTYPE_NAMES[info.dtype]} numbers; it was sent {_kind(value)}"
        )
    if dtype.kind == "b":
        if array.dtype.kind != "b":
            raise ServingError(400, f"input {name!r} takes true/false values; it was sent numbers")
        return array
    if array.dtype.kind == "b":
        raise ServingError(400, f"input {name!r} takes {dtype.name} numbers; it was sent true/false values")
    if dtype.kind in "iu":
        if array.dtype.kind == "f":
            raise ServingError(
                400,
                f"input {name!r} takes whole numbers ({dtype.name}, written without a decimal point); "
                f"it was sent {_first_fraction(array)!r}",
            )
        limits = np.iinfo(dtype)
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise ServingError(
                400,
                f"input {name!r} takes {dtype.name} values, {limits.min} to {limits.max}; "
                f"it was sent {array.min()} to {array.max()}",
            )
    return array.astype(dtype)


def _first_fraction(array: np.ndarray) -> float:
    """The first value a client wrote with a fraction (or the first value, when all of them are whole)."""
    flat = array.reshape(-1)
    fractions = flat[~np.isfinite(flat) | (flat != np.round(flat))]
    return (fractions if fractions.size else flat)[0].item()


def _text_array(value: Any, name: str) -> np.ndarray:
    items: list[bytes] = []
    shape = _walk(value, items, name)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


def _walk(value: Any, items: list[bytes], name: str, depth: int = 0) -> tuple[int, ...]:
    """Appends the leaves of nested lists to `items` as bytes; returns the shape, refusing ragged lists."""
    if isinstance(value, list):
        if depth >= MAX_RANK:
            raise ServingError(400, f"input {name!r} is nested more than {MAX_RANK} lists deep")
        shapes = {_walk(item, items, name, depth + 1) for item in value}
        if len(shapes) > 1:
            raise ServingError(400, _ragged(name))
        return (len(value), *(shapes.pop() if shapes else ()))
    items.append(_bytes_of(value, name))
    return ()


def _bytes_of(value: Any, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ServingError(400, f"input {name!r}: a b64 value is not valid base64") from None
    raise ServingError(
        400, f'input {name!r} takes strings or {{"b64": "<base64>"}} objects; it was sent {_kind(value)}'
    )


def _is_ragged(value: Any, depth: int = 0) -> bool:
    if not isinstance(value, list) or depth > MAX_RANK:
        return False
    lengths = {len(v) if isinstance(v, list) else -1 for v in value}
    return len(lengths) > 1 or any(_is_ragged(v, depth + 1) for v in value)


def _ragged(name: str) -> str:
    return f"input {name!r}: nested lists of different lengths; every example must have the same shape"


def _kind(value: Any) -> str:
    while isinstance(value, list) and value:
        value = value[0]
    kinds = {
        bool: "true/false",
        str: "text",
        dict: "an object",
        type(None): "null",
        int: "numbers beyond 64 bits",
    }
    return kinds.get(type(value), type(value).__name__)


def check_shape(array: np.ndarray, info: TensorInfo) -> None:
    """A ServingError when `array` cannot be the input: its rank or a fixed dimension differs."""
    if info.shape is None:
        return
    fits = array.ndim == len(info.shape) and all(
        want is None or want == got for want, got in zip(info.shape, array.shape, strict=True)
    )
    if not fits:
        expected = "[" + ", ".join("-1" if d is None else str(d) for d in info.shape) + "]"
        raise ServingError(
            400,
            f"input {info.name!r} has shape {list(array.shape)}; the signature takes {expected} "
            "(-1: any size)",
        )


def json_of(array: np.ndarray, name: str) -> Any:
    """An output as JSON: numbers as lists, text as strings, `*_bytes` outputs as {"b64": ...} objects."""
    if array.dtype != object and array.dtype.kind != "S":
        return array.tolist()
    encode = _b64 if name.endswith("_bytes") else _text
    flat = np.empty(array.size, dtype=object)
    flat[:] = [encode(item) for item in array.reshape(-1)]
    return flat.reshape(array.shape).tolist()


def _text(item: bytes) -> Any:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:  # not text after all: send it losslessly
        return _b64(item)


def _b64(item: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(item).decode("ascii")}
