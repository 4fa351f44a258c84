"""The model server's remaining refusals, each fed and its message checked: where models come from, the
TF Serving layout's version, a busy port, request shapes the protocols refuse, a shutting-down batcher and
an image header over Pillow's own limit."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

import numpy as np
import pytest
from starlette.testclient import TestClient

from shared.config import UserError
from shared.export import publish, serving_version
from shared.serving.__main__ import bind
from shared.serving.app import create_app
from shared.serving.batching import Batcher
from shared.serving.dataplane import ServerSettings
from shared.serving.errors import ServingError
from shared.serving.repository import ModelRepository
from tests.serving_helpers import b64, save_toy_model


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return save_toy_model(tmp_path_factory.mktemp("toy") / "saved_model")


def test_model_sources_that_cannot_be_served(toy, tmp_path):
    cases = [
        ({"models": [f"a={toy}", f"a={toy}"]}, "model 'a' is given twice; give each model one source"),
        ({"base_path": str(tmp_path / "nowhere")}, "is not a folder"),
        (
            {"base_path": str(tmp_path)},
            f"--model-base-path {tmp_path} holds no <name>/<version>/saved_model.pb",
        ),
        (
            {"runs": str(tmp_path / "nowhere")},
            "is not a folder; train a project first (make train-mnist_cnn)",
        ),
        ({"runs": str(tmp_path)}, f"no run in {tmp_path} has an export (<name>/latest/saved_model)"),
    ]
    for arguments, message in cases:
        with pytest.raises(UserError) as refused:
            ModelRepository.load(**arguments)
        assert message in str(refused.value)


def test_a_saved_model_without_signatures_is_refused(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.weight = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "bare"))
    with pytest.raises(UserError, match=f"the SavedModel at {tmp_path / 'bare'} has no signatures to serve"):
        ModelRepository.load([f"bare={tmp_path / 'bare'}"])


def test_a_version_below_1_and_a_busy_port(toy, tmp_path):
    with pytest.raises(UserError, match="--version must be a positive whole number, not 0"):
        serving_version(tmp_path, "toy", 0)
    publish(toy, tmp_path, "toy", 1)
    assert serving_version(tmp_path, "toy", 4) == 4
    taken = bind("127.0.0.1", 0)
    taken.listen(1)
    try:
        with pytest.raises(
            UserError, match=r"cannot listen on 127\.0\.0\.1:\d+: .*; pick another --port or --host"
        ):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


@pytest.fixture(scope="module")
def client(toy):
    with TestClient(create_app(ModelRepository.load([f"toy={toy}"]), ServerSettings())) as test_client:
        yield test_client


def image_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixels never follow)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


COLUMNS = {"signature_name": "columns"}
REFUSED = [
    (
        "/v1/models/toy:predict",
        {**COLUMNS, "inputs": {"amount": [1.0, 2.0], "plan": ["a"], "months": [1], "active": [True]}},
        "the inputs hold different numbers of examples",
    ),
    (
        "/v1/models/toy:predict",
        {**COLUMNS, "instances": [{"amount": 1.0}, 2.0]},
        "some instances are objects naming inputs and some are not",
    ),
    (
        "/v1/models/toy:predict",
        {"signature_name": "image", "instances": [b64(image_header(20_000, 10_000))]},
        "input 'image_bytes', example 0: the image is over 40 megapixels",
    ),
    (
        "/v2/models/toy/infer",
        {"inputs": [{"name": "images", "shape": [1, 4, 4], "datatype": "UINT8", "data": [0] * 16}] * 2},
        '"inputs" names an input twice',
    ),
    (
        "/v2/models/toy/infer",
        {"inputs": [{"name": "images", "shape": [1, 4, 4], "datatype": "UINT8"}]},
        "input 'images' needs \"data\" or parameters.binary_data_size",
    ),
    ("/v2/models/toy/versions/x/infer", {"inputs": []}, "model version 'x' is not a whole number"),
]


@pytest.mark.parametrize(("path", "body", "message"), REFUSED)
def test_requests_the_protocols_refuse(client, path, body, message):
    reply = client.post(path, json=body)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


def test_binary_data_left_over_after_the_tensors_is_refused(client):
    tensor = {
        "name": "images",
        "shape": [1, 4, 4],
        "datatype": "UINT8",
        "parameters": {"binary_data_size": 16},
    }
    head = json.dumps({"inputs": [tensor]}).encode()
    reply = client.post(
        "/v2/models/toy/infer",
        content=head + bytes(16) + b"extra",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert (
        reply.status_code == 400
        and reply.json()["error"] == "the body holds 5 bytes after the tensors' binary data"
    )


def test_requests_still_queued_when_the_batcher_stops_get_503():
    async def model(inputs):
        await asyncio.sleep(0.2)
        return {"y": inputs["x"]}

    async def scenario():
        batcher = Batcher("toy", model, max_size=1, timeout=0.0, max_queue=4)
        batcher.start()
        running = batcher.submit({"x": np.ones(1)})
        await asyncio.sleep(0.01)
        waiting = batcher.submit({"x": np.ones(1)})
        await batcher.stop()
        running.cancel()
        return await asyncio.gather(waiting, return_exceptions=True)

    (refused,) = asyncio.run(scenario())
    assert isinstance(refused, ServingError) and refused.status == 503
    assert refused.message == "the server is shutting down"
