"""JSON bodies in and out: NaN and Infinity allowed both ways, as TF Serving allows them."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.serving.errors import ServingError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # Starlette's own JSONResponse refuses NaN; a model's output may hold it
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; a 413 as soon as it is over `limit` bytes (by its Content-Length, before
    reading it, or while it streams in)."""
    too_large = ServingError(413, f"the request body is over the limit of {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ServingError(400, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)  # several times faster than json on the arrays of numbers clients send
    except orjson.JSONDecodeError:
        pass
    try:  # orjson refuses NaN and Infinity, which TF Serving accepts
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ServingError(400, "the request body is not UTF-8 text; send a JSON object") from None
    except json.JSONDecodeError as e:
        raise ServingError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise ServingError(400, "the request body's JSON is nested too deeply") from None
