"""The Open Inference Protocol (KServe V2, also spoken by Triton and MLServer), over the same data plane.

    GET  /v2                                           server metadata
    GET  /v2/health/live, /v2/health/ready             200 when live / every model is loaded
    GET  /v2/models/{name}[/versions/{v}]              inputs and outputs of the signature
    GET  /v2/models/{name}[/versions/{v}]/ready        200 when that model is loaded
    POST /v2/models/{name}[/versions/{v}]/infer        {"inputs": [{name, shape, datatype, data}], ...}

A request may name another signature than `serving_default` in its `parameters` (`signature_name`). Tensors
may travel as binary data after the JSON (the binary tensor data extension, `shared/serving/binary.py`), as
tritonclient sends them by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from shared.serving.binary import HEADER_LENGTH, array_from_bytes, binary_chunks, bytes_of, split_body
from shared.serving.dataplane import DataPlane, check_names
from shared.serving.errors import ServingError
from shared.serving.json import JSONResponse, parse_json
from shared.serving.repository import ModelVersion, Signature, TensorInfo
from shared.serving.tensors import array_of, check_v2_shape

PLATFORM = "tensorflow_savedmodel"
DATATYPES = {
    "DT_BOOL": "BOOL",
    "DT_UINT8": "UINT8",
    "DT_UINT16": "UINT16",
    "DT_UINT32": "UINT32",
    "DT_UINT64": "UINT64",
    "DT_INT8": "INT8",
    "DT_INT16": "INT16",
    "DT_INT32": "INT32",
    "DT_INT64": "INT64",
    "DT_HALF": "FP16",
    "DT_FLOAT": "FP32",
    "DT_DOUBLE": "FP64",
    "DT_STRING": "BYTES",
}


async def server_metadata(request: Request) -> JSONResponse:
    return JSONResponse(
        {"name": "deep-learning-projects", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
    )


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"live": True})


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({"ready": True})  # models load before the server listens


async def model_metadata(request: Request) -> JSONResponse:
    plane, model = _model(request)
    default = "serving_default" if "serving_default" in model.signatures else min(model.signatures)
    signature = plane.signature(model, default)
    return JSONResponse(
        {
            "name": model.name,
            "versions": [str(v) for v in sorted(plane.repository.models[model.name])],
            "platform": PLATFORM,
            "inputs": [_tensor_metadata(t) for t in signature.inputs.values()],
            "outputs": [_tensor_metadata(t) for t in signature.outputs.values()],
        }
    )


async def model_ready(request: Request) -> JSONResponse:
    _, model = _model(request)
    return JSONResponse({"name": model.name, "ready": True})


async def infer(request: Request) -> Response:
    plane, model = _model(request)
    async with plane.slot() as slot:
        raw = await plane.read_body(request)
        head = request.headers.get(HEADER_LENGTH)
        body, signature, inputs = await plane.offload(_request, plane, model, raw, head, size=len(raw))
        outputs = await plane.predict(model, signature, inputs, slot)
        size = sum(value.nbytes for value in outputs.values())
        return await plane.offload(_reply, model, signature, body, outputs, size=size)


def _request(plane: DataPlane, model: ModelVersion, raw: bytes, head_length: str | None) -> tuple:
    """(the request's JSON, the signature it asks for, its inputs as arrays)."""
    head, data = split_body(raw, head_length)
    body = parse_json(head)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ServingError(
            400, 'the body must be a JSON object with "inputs": a list of {name, shape, datatype, data}'
        )
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(400, '"parameters" must be an object')
    signature = plane.signature(model, parameters.get("signature_name"))
    return body, signature, _inputs(body["inputs"], signature, data)


def _reply(model: ModelVersion, signature: Signature, body: dict, outputs: dict) -> Response:
    """The outputs asked for, each as JSON `data` or, when asked (`binary_data`), as binary data after the
    JSON; text that is not UTF-8 cannot be JSON and goes as binary data too."""
    binary_default = bool(body.get("parameters", {}).get("binary_data_output"))
    binary = _requested_outputs(body.get("outputs"), signature, binary_default)
    reply: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if "id" in body:
        reply["id"] = body["id"]
    reply["outputs"], chunks = [], []
    for name in signature.outputs:  # in the signature's (sorted) order, the same every time
        if name not in binary:
            continue
        value = outputs[name]
        tensor = {
            "name": name,
            "datatype": DATATYPES[signature.outputs[name].dtype],
            "shape": list(value.shape),
        }
        data = None if binary[name] else _json_data(value)
        if data is None:
            chunks.append(bytes_of(value))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            tensor["data"] = data
        reply["outputs"].append(tensor)
    if not chunks:
        return JSONResponse(reply)
    head = JSONResponse(reply).body
    return Response(
        head + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )


def _json_data(value: np.ndarray) -> list | None:
    """A tensor's `data`, flat: numbers, or text as strings (None for bytes that are not UTF-8 text)."""
    flat = value.reshape(-1)
    if value.dtype != object and value.dtype.kind != "S":
        return flat.tolist()
    try:
        return [bytes(item).decode("utf-8") for item in flat]
    except UnicodeDecodeError:
        return None


def _model(request: Request) -> tuple[DataPlane, ModelVersion]:
    plane: DataPlane = request.app.state.plane
    version = request.path_params.get("version")
    if version is not None and not version.isdigit():
        raise ServingError(400, f"model version {version!r} is not a whole number")
    model = plane.model(request.path_params["name"], int(version) if version is not None else None)
    request.state.model = model.name
    return plane, model


def _inputs(tensors: list, signature: Signature, data: bytes) -> dict:
    if not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("parameters") or {}, dict)
        for t in tensors
    ):
        raise ServingError(
            400, 'every entry of "inputs" must be an object with a "name" (and "parameters": {})'
        )
    names = [t["name"] for t in tensors]
    if len(set(names)) != len(names):
        raise ServingError(400, f'"inputs" names an input twice: {names}')
    check_names(signature, names)
    chunks = binary_chunks(tensors, data)
    arrays = {}
    for tensor in tensors:
        info = signature.inputs[tensor["name"]]
        expected = DATATYPES.get(info.dtype, info.dtype)
        if tensor.get("datatype") != expected:
            raise ServingError(
                400, f"input {info.name!r} is {expected}; the request says {tensor.get('datatype')!r}"
            )
        shape = check_v2_shape(tensor.get("shape"), info.name)
        if info.name in chunks:
            arrays[info.name] = array_from_bytes(chunks[info.name], expected, shape, info.name)
        elif "data" in tensor:
            arrays[info.name] = array_of(tensor["data"], info, shape=shape)
        else:
            raise ServingError(400, f'input {info.name!r} needs "data" or parameters.binary_data_size')
    return arrays


def _requested_outputs(requested: Any, signature: Signature, binary_default: bool) -> dict[str, bool]:
    """The outputs to send (all of them when none are named), each with whether it goes as binary data
    (its `binary_data`, else the request's `binary_data_output`)."""
    if not requested:
        return dict.fromkeys(signature.outputs, binary_default)
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("parameters", {}), dict)
        for o in requested
    ):
        raise ServingError(400, '"outputs" must be a list of {"name": "...", "parameters": {...}} objects')
    unknown = sorted({o["name"] for o in requested} - set(signature.outputs))
    if unknown:
        raise ServingError(400, f"unknown output(s) {unknown}; signature {signature.describe()}")
    return {o["name"]: bool(o.get("parameters", {}).get("binary_data", binary_default)) for o in requested}


def _tensor_metadata(tensor: TensorInfo) -> dict[str, Any]:
    shape = [-1] if tensor.shape is None else [-1 if d is None else d for d in tensor.shape]
    return {"name": tensor.name, "datatype": DATATYPES.get(tensor.dtype, tensor.dtype), "shape": shape}
