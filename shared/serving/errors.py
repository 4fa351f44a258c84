"""Errors a request can meet, mapped once to TF Serving's HTTP status codes and `{"error": ...}` bodies."""

from __future__ import annotations

import re

from starlette.responses import JSONResponse

# TF Serving's mapping from TensorFlow's status codes (tensorflow/core/protobuf/error_codes.proto) to HTTP
HTTP_STATUS_OF_CODE = {
    1: 499,  # CANCELLED
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    14: 503,  # UNAVAILABLE
    16: 401,  # UNAUTHENTICATED
}


class ServingError(Exception):
    """A request that cannot be answered: the HTTP status and a message naming what was wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(error: ServingError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status)


def from_tensorflow(error) -> ServingError:
    """A `tf.errors.OpError` raised while a signature ran, with its message cut to what a client can use."""
    return ServingError(HTTP_STATUS_OF_CODE.get(error.error_code, 500), model_message(error.message))


def model_message(message: str) -> str:
    """The part of a TensorFlow error a client can act on.

    An assertion inside the SavedModel (`tf.debugging.assert_*` with a message) raises "assertion failed:
    [the message] [Condition ...]" under graph details and node names: keep the message."""
    assertion = re.search(r"assertion failed: \[(.*?)\](?: \[|\n|$)", message)
    if assertion:
        return assertion.group(1).rstrip()  # TensorFlow ends it with ".  "
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [
        line
        for line in lines
        if not line.startswith(("Graph execution error", "Detected at node", "[[", "File ", "Stack trace"))
    ]
    text = useful[0] if useful else (lines[0] if lines else "the model failed on this input")
    return re.sub(r"\s*\[\[\{\{node [^]]*\}\}\]\].*$|\s*\[Op:[^]]*\]$", "", text)
