"""The model server's binary tensors, limits, metrics, CORS and deadlines, in-process (Starlette's test
client) on the toy SavedModel of tests/shared/conftest.py."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import numpy as np
import pytest

from shared.config import UserError
from shared.serving.errors import ServingError
from tests.serving_helpers import IMAGES, b64, call_in_process, client_for, png_bytes


def binary_request(tensors: list[tuple[dict, bytes]], **extra) -> tuple[bytes, dict[str, str]]:
    """A KServe V2 request with binary tensor data, laid out as tritonclient lays it out."""
    inputs = [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors]
    head = json.dumps({"inputs": inputs, **extra}).encode()
    body = head + b"".join(raw for _, raw in tensors)
    return body, {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }


def test_v2_binary_tensor_data_in_and_out_as_tritonclient_uses_it(client, layout):
    expected = call_in_process(layout / "toy" / "2", "serving_default", {"images": IMAGES})
    outputs = [{"name": "digit", "parameters": {"binary_data": False}}, {"name": "probabilities"}]
    body, headers = binary_request(
        [({"name": "images", "shape": [5, 4, 4], "datatype": "UINT8"}, IMAGES.tobytes())],
        outputs=outputs,
        parameters={"binary_data_output": True},
    )
    reply = client.post("/v2/models/toy/infer", content=body, headers=headers)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/octet-stream"
    length = int(reply.headers["inference-header-content-length"])
    head = {o["name"]: o for o in json.loads(reply.content[:length])["outputs"]}
    assert head["digit"]["data"] == expected["digit"].tolist()  # asked for as JSON
    assert head["probabilities"]["parameters"] == {"binary_data_size": 5 * 3 * 4}
    probabilities = np.frombuffer(reply.content[length:], "<f4").reshape(head["probabilities"]["shape"])
    np.testing.assert_array_equal(probabilities, expected["probabilities"])

    texts = [b"hello", "wörld".encode(), b""]
    raw = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    body, headers = binary_request(
        [({"name": "text", "shape": [3], "datatype": "BYTES"}, raw)],
        parameters={"signature_name": "text", "binary_data_output": True},
    )
    reply = client.post("/v2/models/toy/infer", content=body, headers=headers)
    length = int(reply.headers["inference-header-content-length"])
    head = json.loads(reply.content[:length])["outputs"]
    assert [o["name"] for o in head] == ["length", "shout"]
    lengths = np.frombuffer(reply.content[length : length + 12], "<i4")
    assert lengths.tolist() == [5, 5, 0] and reply.content[length + 12 :] == (
        b"\x05\x00\x00\x00HELLO" + struct.pack("<I", 6) + "WöRLD".encode() + b"\x00\x00\x00\x00"
    )

    image = {"name": "images", "shape": [1, 4, 4], "datatype": "UINT8"}
    for tensors, headers_, message in (
        ([(image, bytes(15))], None, "15 bytes of binary data; shape [1, 4, 4] of UINT8 needs 16"),
        (
            [(image, bytes(16))],
            {"Inference-Header-Content-Length": "999999"},
            "must be a byte count within the body",
        ),
        (
            [({**image, "datatype": "BYTES"}, b"\x09\x00")],
            None,
            "input 'images' is UINT8; the request says 'BYTES'",
        ),
    ):
        body, headers = binary_request(tensors)
        reply = client.post("/v2/models/toy/infer", content=body, headers={**headers, **(headers_ or {})})
        assert reply.status_code == 400 and message in reply.json()["error"], reply.text
    text = {"name": "text", "shape": [2], "datatype": "BYTES"}
    for raw, message in (
        (b"\x09\x00\x00\x00ab", "a BYTES element of 9 bytes runs past the data"),
        (b"\x02\x00\x00\x00ab", "holds 1 elements; shape [2] needs 2"),
        (b"\x02\x00", "a BYTES element's length is cut off"),
    ):
        body, headers = binary_request([(text, raw)], parameters={"signature_name": "text"})
        assert message in client.post("/v2/models/toy/infer", content=body, headers=headers).json()["error"]


def test_body_limit_answers_413_before_and_while_reading(repository):
    with client_for(repository, max_body_bytes=1000) as small:
        reply = small.post("/v1/models/toy:predict", json={"instances": [[[0] * 4] * 4] * 40})
        assert reply.status_code == 413 and "over the limit of 1000 bytes" in reply.json()["error"]
        chunks = (b"x" * 300 for _ in range(5))  # streamed, no Content-Length
        assert small.post("/v1/models/toy:predict", content=chunks).status_code == 413
        assert (
            small.post("/v1/models/toy:predict", json={"instances": IMAGES[:1].tolist()}).status_code == 200
        )


def test_images_are_checked_before_the_model(repository):
    with client_for(repository, max_image_pixels=1000) as small:
        reply = small.post(
            "/v1/models/toy:predict", json={"signature_name": "image", "instances": [b64(png_bytes(40, 30))]}
        )
        assert reply.status_code == 400
        assert reply.json()["error"] == (
            "input 'image_bytes', example 0: the image is 30x40, 0.0 megapixels; at most 0.001 are accepted"
        )
        truncated = png_bytes(20, 20)[:-40]
        reply = small.post(
            "/v1/models/toy:predict", json={"signature_name": "image", "instances": [b64(truncated)]}
        )
        assert reply.status_code == 400 and "not a readable image file" in reply.json()["error"]


def test_metrics_count_requests_errors_and_latency_per_model(client):
    client.post("/v1/models/toy:predict", json={"instances": IMAGES[:2].tolist()})
    client.post("/v1/models/toy:predict", json={"instances": [[1]]})
    client.post("/v1/models/unknown-name:predict", json={"instances": [[1]]})
    text = client.get("/metrics").text
    assert 'serving_requests_total{api="v1_predict",code="200",model="toy"}' in text
    assert 'serving_errors_total{api="v1_predict",code="400",model="toy"}' in text
    assert (
        'serving_errors_total{api="v1_predict",code="404",model=""}' in text
    )  # no label from a client's name
    assert "unknown-name" not in text
    assert 'serving_request_latency_seconds_bucket{api="v1_predict",le="0.005",model="toy"}' in text
    assert 'serving_batch_size_bucket{le="2.0",model="toy"}' in text


def test_cors_only_when_an_origin_is_given(repository, client):
    origin = {"Origin": "http://127.0.0.1:3000"}
    assert "access-control-allow-origin" not in client.get("/v1/models/toy", headers=origin).headers
    with client_for(repository, cors_origins=("http://127.0.0.1:3000",)) as open_client:
        reply = open_client.get("/v1/models/toy", headers=origin)
        assert reply.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
        other = open_client.get("/v1/models/toy", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
        asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        preflight = open_client.options("/v2/models/toy/infer", headers={**origin, **asked})
        assert preflight.status_code == 200  # a page may POST JSON
        binary = {**asked, "Access-Control-Request-Headers": "content-type,inference-header-content-length"}
        assert open_client.options("/v2/models/toy/infer", headers={**origin, **binary}).status_code == 200


def test_deadline_answers_504_and_the_work_keeps_its_place_until_it_ends(repository):
    with client_for(repository, request_timeout_ms=50) as hurried:
        slow = {"signature_name": "generate", "inputs": {"prompt": "a", "length": 300_000}}
        reply = hurried.post("/v1/models/toy:predict", json=slow)
        assert reply.status_code == 504 and "deadline of 50 ms" in reply.json()["error"]
        # the model call cannot be stopped: it holds its place among --max-in-flight until it ends
        assert "serving_in_flight_requests 1.0" in hurried.get("/metrics").text
        deadline = time.monotonic() + 60
        while "serving_in_flight_requests 0.0" not in hurried.get("/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_the_body_limit_refuses_a_large_content_length_without_reading_the_body():
    from starlette.requests import Request

    from shared.serving.json import read_body

    async def receive():
        raise AssertionError("the body was read")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"2000")]}
    with pytest.raises(ServingError) as refused:
        asyncio.run(read_body(Request(scope, receive), limit=1000))
    assert refused.value.status == 413


def test_limits_must_be_positive():
    from shared.serving.__main__ import build_parser, settings_from

    for flag in ("--request-timeout-ms", "--max-body-mb", "--max-in-flight", "--max-request-examples"):
        with pytest.raises(UserError, match=f"{flag} must be positive, not 0"):
            settings_from(build_parser().parse_args([flag, "0"]))
    with pytest.raises(UserError, match="--batch-max-size must be at least 0, not -1"):
        settings_from(build_parser().parse_args(["--batch-max-size", "-1"]))
