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

from starlette.requests import Request
from starlette.responses import Response

from shared.serving.binary import HEADER_LENGTH, array_from_bytes, binary_chunks, bytes_of, split_body
from shared.serving.dataplane import DataPlane, check_names
from shared.serving.errors import ServingError
from shared.serving.json import JSONResponse, parse_json, read_body
from shared.serving.repository import ModelVersion, Signature, TensorInfo
from shared.serving.tensors import array_of, json_of

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
    signature = plane.signature(model, "serving_default" if "serving_default" in model.signatures else None)
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
    raw = await read_body(request, plane.settings.max_body_bytes)
    head, data = split_body(raw, request.headers.get(HEADER_LENGTH))
    body = parse_json(head)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ServingError(
            400, 'the body must be a JSON object with "inputs": a list of {name, shape, datatype, data}'
        )
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ServingError(400, '"parameters" must be an object')
    signature = plane.signature(model, parameters.get("signature_name"))
    inputs = _inputs(body["inputs"], signature, data)
    binary = _requested_outputs(body.get("outputs"), signature, bool(parameters.get("binary_data_output")))
    outputs = await plane.predict(model, signature, inputs)
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
        if binary[name]:
            chunks.append(bytes_of(value))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            tensor["data"] = json_of(value.reshape(-1), name)
        reply["outputs"].append(tensor)
    if not chunks:
        return JSONResponse(reply)
    head = JSONResponse(reply).body
    return Response(
        head + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )


def _model(request: Request) -> tuple[DataPlane, ModelVersion]:
    plane: DataPlane = request.app.state.plane
    version = request.path_params.get("version")
    if version is not None and not version.isdigit():
        raise ServingError(400, f"model version {version!r} is not a whole number")
    model = plane.model(request.path_params["name"], int(version) if version is not None else None)
    request.state.model = model.name
    return plane, model


def _inputs(tensors: list, signature: Signature, data: bytes) -> dict:
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tensors):
        raise ServingError(400, 'every entry of "inputs" must be an object with a "name"')
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
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ServingError(400, f'input {info.name!r} needs "shape": a list of sizes')
        if info.name in chunks:
            arrays[info.name] = array_from_bytes(chunks[info.name], expected, shape, info.name)
        elif "data" in tensor:
            arrays[info.name] = array_of(tensor["data"], info, shape=shape)
        else:
            raise ServingError(400, f'input {info.name!r} needs "data" or parameters.binary_data_size')
    return arrays


def _requested_outputs(requested: Any, signature: Signature, binary_default: bool) -> dict[str, bool]:
    """The outputs to send, each with whether it goes as binary data (`binary_data`, else the request's
    `binary_data_output`)."""
    if requested is None:
        return dict.fromkeys(signature.outputs, binary_default)
    if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
        raise ServingError(400, '"outputs" must be a list of {"name": ...} objects')
    unknown = sorted({o["name"] for o in requested} - set(signature.outputs))
    if unknown:
        raise ServingError(400, f"unknown output(s) {unknown}; signature {signature.describe()}")
    return {
        o["name"]: bool((o.get("parameters") or {}).get("binary_data", binary_default)) for o in requested
    }


def _tensor_metadata(tensor: TensorInfo) -> dict[str, Any]:
    shape = [-1] if tensor.shape is None else [-1 if d is None else d for d in tensor.shape]
    return {"name": tensor.name, "datatype": DATATYPES.get(tensor.dtype, tensor.dtype), "shape": shape}
