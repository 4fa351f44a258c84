"""The model server as a user runs it (`python -m shared.serving` in its own process, a plain urllib
client): startup, models that do not load, draining on SIGTERM, 200 malformed requests, 64 concurrent
requests joined into batches; and the batcher's and the data plane's limits in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from shared.export import publish
from shared.serving.__main__ import exposure_warning
from shared.serving.batching import Batcher
from shared.serving.dataplane import DataPlane, ServerSettings
from shared.serving.errors import ServingError
from shared.serving.metrics import ServingMetrics
from shared.serving.repository import ModelRepository
from tests.conftest import cli_env
from tests.serving_helpers import call_in_process, request, running_server, save_toy_model

IMAGES = np.random.default_rng(1).integers(0, 256, (64, 4, 4)).astype(np.uint8)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return save_toy_model(tmp_path_factory.mktemp("toy") / "saved_model")


def test_startup_lists_models_and_signatures_and_sigterm_drains_requests_in_flight(toy, tmp_path):
    with running_server("--model", f"toy={toy}", cwd=tmp_path) as (url, process, lines):
        assert re.fullmatch(r"serving on http://127\.0\.0\.1:\d+ .*", lines[-1])
        assert f"model toy version 1 ({toy})" in lines
        assert (
            "  serving_default(images: uint8[-1, 4, 4]) -> (digit: int32[-1], probabilities: float32[-1, 3])"
            in lines
        )
        assert "  generate(length: int32[], prompt: string[]) -> (text: string[], total: float32[])" in lines
        slow = {"signature_name": "generate", "inputs": {"prompt": "a", "length": 500_000}}
        started = time.monotonic()
        duration = _timed(lambda: request(f"{url}/v1/models/toy:predict", slow))
        replies = []
        worker = threading.Thread(
            target=lambda: replies.append(request(f"{url}/v1/models/toy:predict", slow))
        )
        worker.start()
        time.sleep(min(0.3, duration / 3))  # the request is in flight
        process.send_signal(signal.SIGTERM)
        worker.join(timeout=120)
        assert process.wait(timeout=120) == 0
        assert replies and replies[0][0] == 200, replies  # answered, not cut off
        time.sleep(0.5)  # the reader thread takes the last lines
        assert lines[-1] == "stopped"
        assert time.monotonic() - started < 120


def test_a_request_that_outlives_the_drain_does_not_keep_the_server_alive(toy, tmp_path):
    with running_server("--model", f"toy={toy}", "--drain-seconds", "1", cwd=tmp_path) as (url, process, _):
        slow = {"signature_name": "generate", "inputs": {"prompt": "a", "length": 3_000_000}}  # ~10 s
        worker = threading.Thread(
            target=lambda: _ignore_errors(request, f"{url}/v1/models/toy:predict", slow)
        )
        worker.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert time.monotonic() - signalled < 5  # the drain's 1 s, not the request's 10
        worker.join(timeout=60)


def _ignore_errors(call, *args):
    with contextlib.suppress(OSError):  # the connection is cut when the drain ends: expected here
        call(*args)


def _timed(call) -> float:
    start = time.monotonic()
    status, _ = call()
    assert status == 200
    return time.monotonic() - start


def test_models_that_do_not_load_stop_the_server_naming_the_model_and_the_path(toy, tmp_path):
    def serve(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "shared.serving", "--port", "0", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300
        )

    missing = serve("--model", f"digits={tmp_path / 'nowhere'}")
    assert (
        missing.returncode == 2
        and f"error: model digits: {tmp_path / 'nowhere'} does not exist" in missing.stderr
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = serve("--model", f"digits={empty}")
    assert result.returncode == 2 and "holds no SavedModel" in result.stderr and "export" in result.stderr
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"\x00not a protobuf" * 10)
    result = serve("--model", f"digits={corrupt}")
    assert result.returncode == 2
    assert f"error: model digits version 1: cannot load the SavedModel at {corrupt}" in result.stderr
    assert "NAME=PATH" in serve("--model", "digits").stderr
    assert "no models to serve" in serve().stderr
    assert (
        "--batch-max-queue must be positive" in serve("--model", f"t={toy}", "--batch-max-queue", "0").stderr
    )


def test_binding_beyond_this_machine_warns():
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert exposure_warning("::1") is None
    assert "other machines can reach this server" in exposure_warning("0.0.0.0")


def nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def malformed_requests(seed: int = 0) -> list[tuple[str, bytes]]:
    """200 requests a careless or hostile client sends: random bytes, truncated JSON, huge and deep arrays,
    wrong dtypes and shapes, wrong signatures, to every route."""
    rng = random.Random(seed)
    good = json.dumps({"instances": IMAGES[:2].tolist()})
    bodies = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))),
        lambda: good[: rng.randint(0, len(good) - 1)].encode(),
        lambda: json.dumps({"instances": [[0] * rng.randint(1000, 200_000)]}).encode(),
        lambda: json.dumps({"inputs": [[[rng.choice([1.5, "x", None, True, -7, 1e300])] * 4] * 4]}).encode(),
        lambda: ("[" * rng.randint(500, 50_000)).encode(),
        lambda: json.dumps(
            {
                "signature_name": rng.choice(["text", "columns", "image", "generate", "x"]),
                "instances": [rng.choice([{}, {"b64": "%%%"}, [1], "a", None])],
            }
        ).encode(),
        lambda: json.dumps(
            {"inputs": {"prompt": None, "length": "many"}, "signature_name": "generate"}
        ).encode(),
        lambda: json.dumps(
            {"inputs": [{"name": "images", "shape": [-1], "datatype": "UINT8", "data": "x"}]}
        ).encode(),
        lambda: json.dumps(
            {
                "inputs": [
                    {
                        "name": rng.choice(["images", "text", 3, None]),
                        "shape": rng.choice([[0, 4, 4], [2**40], [1] * 70, "x", [True], [-1, 4, 4]]),
                        "datatype": rng.choice(["UINT8", "BYTES", "FP32", 5]),
                        "data": rng.choice([[], [0] * 16, "a", None, [{}]]),
                        "parameters": rng.choice(
                            [{}, "x", {"binary_data_size": rng.choice([-1, 10**9, "a"])}]
                        ),
                    }
                ],
                "outputs": rng.choice([None, [], [{"name": []}], [{"name": "digit", "parameters": 1}], "x"]),
                "parameters": rng.choice([None, {}, "x", {"signature_name": rng.choice(["x", 1, None])}]),
            }
        ).encode(),
        lambda: json.dumps(
            {"signature_name": "text", "inputs": {"text": nested("a", rng.randint(33, 900))}}
        ).encode(),
        lambda: json.dumps({"inputs": {"images": rng.choice([[], [[]], [[[]]], {}])}}).encode(),
    ]
    paths = ["/v1/models/toy:predict", "/v2/models/toy/infer", "/v1/models/toy/versions/1:predict"]
    return [(rng.choice(paths), rng.choice(bodies)()) for _ in range(200)]


def test_200_malformed_requests_get_4xx_and_the_server_still_answers_correctly(toy, tmp_path):
    expected = call_in_process(toy, "serving_default", {"images": IMAGES[:3]})
    args = ("--model", f"toy={toy}", "--batch-max-size", "16", "--request-timeout-ms", "3000")
    with running_server(*args, cwd=tmp_path) as (url, process, _):
        assert b"408" in half_sent_body(url)  # a client that stops sending gives its place back
        for path, body in malformed_requests():
            status, reply = request(url + path, data=body)
            assert 400 <= status < 500, (path, body[:200], status, reply)
            assert isinstance(reply, dict) and reply["error"], reply
        assert process.poll() is None
        status, reply = request(f"{url}/v1/models/toy:predict", {"instances": IMAGES[:3].tolist()})
        assert status == 200
        np.testing.assert_array_equal(
            np.float32([p["probabilities"] for p in reply["predictions"]]), expected["probabilities"]
        )


def test_64_concurrent_requests_are_batched_and_each_gets_its_unbatched_answer(toy, tmp_path):
    sizes = [1 + i % 3 for i in range(64)]
    starts = np.cumsum([0, *sizes])
    images = np.random.default_rng(2).integers(0, 256, (int(starts[-1]), 4, 4)).astype(np.uint8)
    requests_ = [images[starts[i] : starts[i + 1]] for i in range(64)]
    alone = [call_in_process(toy, "serving_default", {"images": r}) for r in requests_]
    args = ("--model", f"toy={toy}", "--batch-max-size", "32", "--batch-timeout-ms", "20")
    with running_server(*args, cwd=tmp_path) as (url, _, _):
        barrier = threading.Barrier(64)

        def ask(index: int):
            barrier.wait()
            return request(f"{url}/v1/models/toy:predict", {"instances": requests_[index].tolist()})

        with ThreadPoolExecutor(64) as pool:
            replies = list(pool.map(ask, range(64)))
        for index, (status, reply) in enumerate(replies):
            assert status == 200, reply
            got = {k: np.array([p[k] for p in reply["predictions"]]) for k in ("probabilities", "digit")}
            np.testing.assert_array_equal(
                got["probabilities"].astype(np.float32), alone[index]["probabilities"]
            )
            np.testing.assert_array_equal(got["digit"], alone[index]["digit"])
        metrics = urllib_text(f"{url}/metrics")
        calls = float(re.search(r'serving_batch_size_count\{model="toy"\} (\S+)', metrics).group(1))
        examples = float(re.search(r'serving_batch_size_sum\{model="toy"\} (\S+)', metrics).group(1))
        assert examples == sum(sizes) and calls < 64  # fewer model calls than requests: they were joined


def half_sent_body(url: str) -> bytes:
    """The status line of the reply to a request whose body stops halfway."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        head = "POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        connection.sendall(head.encode() + b'{"instances": ')
        return connection.recv(200).split(b"\r\n")[0]


def urllib_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


# ---------------------------------------------------------------- the batcher and limits, in-process


def run_async(coroutine):
    return asyncio.run(coroutine)


def test_a_request_the_model_refuses_fails_alone_in_its_batch():
    calls = []

    async def model(inputs):
        calls.append(len(inputs["x"]))
        await asyncio.sleep(0.01)
        if (inputs["x"] < 0).any():
            raise ServingError(400, "x must not be negative")
        return {"y": inputs["x"] * 2}

    async def scenario():
        batcher = Batcher("test", model, max_size=8, timeout=0.05, max_queue=10)
        batcher.start()
        answers = [batcher.submit({"x": np.array(v)}) for v in ([1, 2], [-1], [3])]
        results = await asyncio.gather(*answers, return_exceptions=True)
        await batcher.stop()
        return results

    good, bad, other = run_async(scenario())
    assert good["y"].tolist() == [2, 4] and other["y"].tolist() == [6]
    assert isinstance(bad, ServingError) and bad.message == "x must not be negative"
    assert calls[0] == 4  # first tried as one batch of all three requests


def test_a_full_batch_queue_answers_429_and_requests_of_other_shapes_wait_for_their_own_batch():
    async def model(inputs):
        await asyncio.sleep(0.05)
        return {"y": inputs["x"].sum(axis=tuple(range(1, inputs["x"].ndim)))}

    async def scenario():
        batcher = Batcher("toy", model, max_size=4, timeout=0.0, max_queue=2)
        batcher.start()
        first = batcher.submit({"x": np.ones((1, 3))})
        await asyncio.sleep(0.01)  # the first is running; the next two wait
        waiting = [batcher.submit({"x": np.ones((1, 3))}), batcher.submit({"x": np.ones((1, 2))})]
        with pytest.raises(ServingError) as full:
            batcher.submit({"x": np.ones((1, 3))})
        results = await asyncio.gather(first, *waiting)
        await batcher.stop()
        return full.value, results

    full, results = run_async(scenario())
    assert full.status == 429 and "the batch queue is full (2 requests waiting)" in full.message
    assert [r["y"].tolist() for r in results] == [[3.0], [3.0], [2.0]]


def test_past_the_in_flight_limit_requests_get_503(toy):
    repository = ModelRepository.load([f"toy={toy}"])

    async def scenario():
        plane = DataPlane(repository, ServerSettings(max_in_flight=1), ServingMetrics())
        model = plane.model("toy")
        signature = plane.signature(model, "generate")
        slow = {"prompt": np.array(b"a", dtype=object), "length": np.array(500_000, np.int32)}

        async def ask():
            async with plane.slot() as slot:
                return await plane.predict(model, signature, slow, slot)

        running = asyncio.ensure_future(ask())
        await asyncio.sleep(0.05)
        with pytest.raises(ServingError) as refused:
            await ask()
        await running
        await plane.stop()
        return refused.value

    refused = run_async(scenario())
    assert refused.status == 503 and "limit of 1 requests" in refused.message


def test_model_base_path_serves_the_newest_version_and_every_version_by_number(toy, tmp_path):
    for version in (3, 10):
        publish(toy, tmp_path / "models", "toy", version)
    with running_server("--model-base-path", str(tmp_path / "models"), cwd=tmp_path) as (url, _, lines):
        assert "model toy version 10" in " ".join(lines) and "model toy version 3" in " ".join(lines)
        assert request(f"{url}/v1/models/toy")[1]["model_version_status"][0]["version"] == "10"
        assert request(f"{url}/v1/models/toy/metadata")[1]["model_spec"]["version"] == "10"
        assert request(f"{url}/v1/models/toy/versions/3/metadata")[1]["model_spec"]["version"] == "3"
