"""TensorFlow Serving's REST API (v1), so a client written for TF Serving works unchanged.

    GET  /v1/models/{name}[/versions/{version}]            status (every version, newest first)
    GET  /v1/models/{name}[/versions/{version}]/metadata   signature_def
    POST /v1/models/{name}[/versions/{version}]:predict    {"instances": [...]} or {"inputs": ...}

Row format: `instances` holds one entry per example (an object naming each input, or the value itself when
the signature has one input); the reply is `predictions`, one entry per example. Columnar format: `inputs`
holds whole tensors (an object naming them, or the tensor itself); the reply is `outputs`. A reply holding
one output leaves its name out. `signature_name` picks a signature (default `serving_default`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from shared.serving.dataplane import DataPlane, check_names
from shared.serving.errors import ServingError
from shared.serving.json import JSONResponse, parse_json
from shared.serving.repository import ModelVersion, Signature
from shared.serving.tensors import array_of, json_of

# TF Serving's own patterns (model_servers/http_rest_api_util.cc), matched against the whole path
PREDICT_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<verb>classify|regress|predict)"
)
INFO_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<subresource>metadata))?"
)


async def handle(request: Request) -> JSONResponse:
    """Every /v1/... request: the path says which of the three it is."""
    plane: DataPlane = request.app.state.plane
    path = request.url.path
    pattern = {"POST": PREDICT_PATH, "GET": INFO_PATH}.get(request.method)
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        raise ServingError(400, f"Malformed request: {request.method} {path}")
    if match["name"] is None:
        raise ServingError(400, "Missing model name in request.")
    if match["label"] is not None:  # labels are a TF Serving model-config feature this server has no use for
        raise ServingError(400, f"Unrecognized servable version label: {match['label']}")
    name, version = match["name"], int(match["version"]) if match["version"] is not None else None
    verb = match["verb"] if request.method == "POST" else match["subresource"] or "status"
    request.state.api = f"v1_{verb}"
    if verb == "status":
        reply = status(plane, name, version)
        request.state.model = name
        return JSONResponse(reply)
    model = plane.model(name, version)
    request.state.model = model.name
    if verb == "metadata":
        return JSONResponse(metadata(model))
    if verb != "predict":
        raise ServingError(501, f":{verb} needs tf.Example inputs and a {verb} signature; use :predict")
    async with plane.slot() as slot:
        raw = await plane.read_body(request)
        body = await plane.offload(parse_json, raw, size=len(raw))
        signature, row_format, inputs = await plane.offload(request_arrays, plane, model, body, size=len(raw))
        outputs = await plane.predict(model, signature, inputs, slot)
        size = sum(value.nbytes for value in outputs.values())
        return await plane.offload(reply_of, outputs, row_format, size=size)


def status(plane: DataPlane, name: str, version: int | None) -> dict[str, Any]:
    versions = plane.repository.models.get(name)
    if not versions:
        raise ServingError(404, f"Could not find any versions of model {name}")
    if version is not None and version not in versions:
        raise ServingError(404, f"Could not find version {version} of model {name}")
    shown = [version] if version is not None else sorted(versions, reverse=True)
    return {
        "model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in shown
        ]
    }


def metadata(model: ModelVersion) -> dict[str, Any]:
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"signature_def": model.signature_defs}},
    }


def request_arrays(plane: DataPlane, model: ModelVersion, body: Any) -> tuple[Signature, bool, dict]:
    """(the signature asked for, whether the request is in the row format, its inputs as arrays)."""
    if not isinstance(body, dict):
        raise ServingError(400, 'the body must be a JSON object holding "instances" or "inputs"')
    signature = plane.signature(model, body.get("signature_name"))
    if "instances" in body and "inputs" in body:
        raise ServingError(
            400, "expecting only one of 'inputs' (columnar format) or 'instances' (row format) keys to exist"
        )
    if "instances" in body:
        return signature, True, rows_to_arrays(body["instances"], signature)
    if "inputs" in body:
        return signature, False, columns_to_arrays(body["inputs"], signature)
    raise ServingError(400, "Missing 'inputs' or 'instances' key")


def reply_of(outputs: dict, row_format: bool) -> JSONResponse:
    """`predictions` for a row-format request, `outputs` for a columnar one."""
    if row_format:
        return JSONResponse({"predictions": rows_of(outputs)})
    if len(outputs) == 1:
        name, value = next(iter(outputs.items()))
        return JSONResponse({"outputs": json_of(value, name)})
    return JSONResponse({"outputs": {name: json_of(value, name) for name, value in outputs.items()}})


def rows_to_arrays(instances: Any, signature: Signature) -> dict:
    if not isinstance(instances, list) or not instances:
        raise ServingError(400, '"instances" must be a non-empty list, one entry per example')
    if not signature.batchable:
        raise ServingError(
            400,
            f"signature {signature.describe()} takes whole tensors, not a list of examples; send them in the "
            f'columnar format: {{"inputs": {{...}}}}',
        )
    named = [_named(instance) for instance in instances]
    if all(named):
        keys = set(instances[0])
        if any(set(instance) != keys for instance in instances):
            raise ServingError(400, '"instances": every instance must name the same inputs')
        check_names(signature, keys)
        columns = {key: [instance[key] for instance in instances] for key in keys}
    elif any(named):
        raise ServingError(400, '"instances": some instances are objects naming inputs and some are not')
    elif len(signature.inputs) == 1:
        columns = {next(iter(signature.inputs)): instances}
    else:
        raise ServingError(
            400,
            f"signature {signature.describe()} has several inputs: "
            "each instance must be an object naming them",
        )
    return {name: array_of(values, signature.inputs[name]) for name, values in columns.items()}


def columns_to_arrays(inputs: Any, signature: Signature) -> dict:
    if _named(inputs):
        check_names(signature, inputs)
        return {name: array_of(value, signature.inputs[name]) for name, value in inputs.items()}
    if len(signature.inputs) != 1:
        raise ServingError(
            400,
            f'signature {signature.describe()} has several inputs: "inputs" must be an object naming them',
        )
    name = next(iter(signature.inputs))
    return {name: array_of(inputs, signature.inputs[name])}


def rows_of(outputs: dict) -> list:
    """Row-format replies: one entry per example (the value itself when there is one output)."""
    columns = {name: json_of(value, name) for name, value in outputs.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    count = len(next(iter(columns.values())))
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]


def _named(value: Any) -> bool:
    """An object naming inputs (not a `{"b64": ...}` value)."""
    return isinstance(value, dict) and set(value) != {"b64"}
