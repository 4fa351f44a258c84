"""Streaming a step signature: one event per step, for a page that shows text as it is generated.

    POST /v1/models/{name}[/versions/{version}]:stream
    {"signature_name": "generate_step", "inputs": {...}, "steps": 200}

This is the server's one addition to TF Serving's API. A step signature names what it carries from one step
to the next: its output `next_X` becomes its input `X` at the next step (a recurrent state, the character
just written, a step counter). The request gives the first step's inputs in the columnar format; a carried
input it leaves out starts at zeros. The reply is `text/event-stream` (server-sent events): after each step,
one `data:` event holding the step's other outputs as JSON (`{"text": "a"}`), and at the end an `end` event.
Inputs that are wrong get the usual 4xx JSON error before the stream starts; an error in a later step ends
the stream with an `error` event. The stream ends after `steps` steps, when the client goes away (a page's
stop button aborts its request) or when the server stops.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from shared.serving.dataplane import DataPlane, Slot, check_inputs, run_signature
from shared.serving.errors import ServingError
from shared.serving.json import parse_json
from shared.serving.repository import ModelVersion, Signature
from shared.serving.tensors import json_of
from shared.serving.tfserving import columns_to_arrays

CARRIED = "next_"


def carried(signature: Signature) -> dict[str, str]:
    """{output name: the input it becomes at the next step}."""
    return {
        name: name[len(CARRIED) :]
        for name in signature.outputs
        if name.startswith(CARRIED) and name[len(CARRIED) :] in signature.inputs
    }


def first_inputs(signature: Signature, given: object) -> dict[str, np.ndarray]:
    """The request's inputs, with carried inputs it leaves out as zeros of their declared shape."""
    if not isinstance(given, dict):
        raise ServingError(400, '"inputs" must be an object naming the first step\'s inputs')
    inputs = dict(given)
    for name in carried(signature).values():
        if name in inputs:
            continue
        info = signature.inputs[name]
        if info.shape is None or None in info.shape:
            raise ServingError(400, f"input {name!r} has no fixed shape to start at zeros from; give it")
        inputs[name] = np.zeros(info.shape, info.numpy_dtype).tolist()
    return columns_to_arrays(inputs, signature)


def parse_request(plane: DataPlane, model: ModelVersion, body: object) -> tuple[Signature, dict, int]:
    if not isinstance(body, dict):
        raise ServingError(400, 'the body must be a JSON object: {"signature_name", "inputs", "steps"}')
    signature = plane.signature(model, body.get("signature_name"))
    if not carried(signature):
        raise ServingError(
            400,
            f"signature {signature.name!r} carries nothing from step to step (no output named "
            f"{CARRIED}<input>), so it cannot be streamed; use :predict",
        )
    steps, limit = body.get("steps"), plane.settings.max_stream_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= limit:
        raise ServingError(400, f'"steps" must be a whole number from 1 to {limit}; got {steps!r}')
    inputs = first_inputs(signature, body.get("inputs"))
    check_inputs(signature, inputs, plane.settings.max_request_examples)
    return signature, inputs, steps


def event(data: dict, kind: str | None = None) -> bytes:
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {json.dumps(data, allow_nan=True)}\n\n".encode()


async def handle(request: Request) -> Response:
    plane: DataPlane = request.app.state.plane
    name, version = request.path_params["name"], request.path_params.get("version")
    request.state.api = "v1_stream"
    model = plane.model(name, int(version) if version is not None else None)
    request.state.model = model.name
    slot = Slot(plane) if plane.in_flight < plane.settings.max_in_flight else None
    if slot is None:
        limit = plane.settings.max_in_flight
        raise ServingError(503, f"the server is answering its limit of {limit} requests; retry later")
    try:
        raw = await plane.read_body(request)
        signature, inputs, steps = parse_request(plane, model, parse_json(raw))
        outputs = await step(plane, model, signature, inputs, slot)  # a bad input is a 4xx, not an event
    except BaseException:
        slot.release()
        raise
    return StreamingResponse(
        events(plane, model, signature, inputs, outputs, steps, slot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},  # no proxy holds events back
    )


async def step(plane: DataPlane, model: ModelVersion, signature: Signature, inputs: dict, slot: Slot) -> dict:
    """One call of the signature on the model's threads, within the request deadline."""
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(plane.executors[model.name], run_signature, signature, inputs)
    try:
        with anyio.fail_after(plane.settings.request_timeout_ms / 1000):
            return await asyncio.shield(slot.hold(work))
    except TimeoutError:
        raise ServingError(504, f"a step took longer than {plane.settings.request_timeout_ms:g} ms") from None


async def events(
    plane: DataPlane, model: ModelVersion, signature: Signature, inputs: dict, outputs: dict, steps: int, slot
) -> AsyncIterator[bytes]:
    feed = carried(signature)
    try:
        for done in range(1, steps + 1):
            yield event({key: json_of(value, key) for key, value in outputs.items() if key not in feed})
            if done == steps:
                break
            inputs = {**inputs, **{feed[key]: value for key, value in outputs.items() if key in feed}}
            try:
                outputs = await step(plane, model, signature, inputs, slot)
            except ServingError as e:
                yield event({"error": e.message, "code": e.status}, "error")
                return
        yield event({"steps": steps}, "end")
    finally:  # also when the client has gone: the generator is closed, and the slot is given back
        slot.release()
