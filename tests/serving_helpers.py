"""Model-server test helpers: a toy SavedModel with one signature of each kind, a real server in a
subprocess, and a plain urllib client of the kind written for TF Serving."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import cli_env

# the toy model's example inputs: five 4x4 uint8 images
IMAGES = np.random.default_rng(0).integers(0, 256, (5, 4, 4)).astype(np.uint8)


def save_toy_model(path: Path, scale: float = 1.0) -> Path:
    """A SavedModel with one signature per kind of input the projects have: uint8 arrays (the default),
    text, several named columns, encoded images, and scalars (with a loop whose length sets how long it
    runs, and a check inside the graph)."""
    import tensorflow as tf

    class Toy(tf.Module):
        def __init__(self):
            super().__init__()
            self.weights = tf.Variable(np.arange(48, dtype=np.float32).reshape(16, 3) * scale / 100)

        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4], tf.uint8, name="images")])
        def classify(self, images):
            x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, 16])
            probabilities = tf.nn.softmax(x @ self.weights)
            return {
                "probabilities": probabilities,
                "digit": tf.argmax(probabilities, -1, output_type=tf.int32),
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def text(self, text):
            return {"length": tf.strings.length(text, unit="UTF8_CHAR"), "shout": tf.strings.upper(text)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="amount"),
                tf.TensorSpec([None], tf.string, name="plan"),
                tf.TensorSpec([None], tf.int64, name="months"),
                tf.TensorSpec([None], tf.bool, name="active"),
            ]
        )
        def columns(self, amount, plan, months, active):
            pro = tf.cast(tf.equal(plan, "pro"), tf.float32)
            score = amount * tf.cast(months, tf.float32) * scale + pro + tf.cast(active, tf.float32)
            return {"score": score}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def image(self, image_bytes):
            def size(data):
                return tf.shape(tf.io.decode_image(data, channels=3, expand_animations=False))[:2]

            sizes = tf.map_fn(size, image_bytes, fn_output_signature=tf.TensorSpec([2], tf.int32))
            return {"height": sizes[:, 0], "width": sizes[:, 1], "echo_bytes": image_bytes}

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.string, name="prompt"),
                tf.TensorSpec([], tf.int32, name="length"),
            ]
        )
        def generate(self, prompt, length):
            check = tf.debugging.assert_positive(length, "length must be at least 1")
            with tf.control_dependencies([check]):
                length = tf.identity(length)
            # a loop as long as asked: lets tests make a request that takes a while
            _, total = tf.while_loop(lambda i, t: i < length, lambda i, t: (i + 1, t * 0.999 + 1.0), (0, 0.0))
            return {"text": tf.strings.reduce_join(tf.repeat(prompt, tf.minimum(length, 5))), "total": total}

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.int32, name="count"),
                tf.TensorSpec([2], tf.float32, name="total"),
                tf.TensorSpec([], tf.float32, name="add"),
                tf.TensorSpec([], tf.int32, name="fail_at"),
            ]
        )
        def step(self, count, total, add, fail_at):
            """A step signature for :stream: carries `count` and `total` from step to step."""
            checks = [
                tf.debugging.assert_non_negative(add, "add must be at least 0"),
                tf.debugging.assert_none_equal(count, fail_at, message="the count reached fail_at"),
            ]
            with tf.control_dependencies(checks):
                count = tf.identity(count)
            carried = {"next_count": count + 1, "next_total": total + add}
            return {"seen": count, "sum": tf.reduce_sum(total), **carried}

    toy = Toy()
    signatures = {
        "step": toy.step,
        "serving_default": toy.classify,
        "text": toy.text,
        "columns": toy.columns,
        "image": toy.image,
        "generate": toy.generate,
    }
    tf.saved_model.save(toy, str(path), signatures=signatures)
    return path


def call_in_process(path: Path, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from shared.export import serve_saved_model

    outputs = serve_saved_model(path, inputs, signature)  # a scalar string comes back as bare bytes
    return {k: np.array(v, dtype=object) if isinstance(v, bytes) else v for k, v in outputs.items()}


def png_bytes(height: int, width: int, seed: int = 0) -> bytes:
    import cv2

    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode("ascii")}


# ---------------------------------------------------------------- a real server, a plain client


@contextmanager
def running_server(*args: str, cwd: Path, timeout: float = 180):
    """`python -m shared.serving --port 0 ARGS` until the block ends; yields (base URL, process, the lines it
    has printed so far, a list that keeps growing). The block's end sends SIGTERM and waits for the exit."""
    with tempfile.TemporaryFile(mode="w+") as errors:  # a file, not a pipe: a chatty server never blocks
        yield from _serve(args, cwd, timeout, errors)


def _serve(args: tuple[str, ...], cwd: Path, timeout: float, errors):
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.serving", "--port", "0", *args],
        cwd=cwd,
        env=cli_env(cwd),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("serving on "):
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not started.wait(0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                errors.seek(0)
                raise RuntimeError(
                    f"the server did not start (exit code {process.poll()}):\n{errors.read()[-3000:]}"
                )
        url = next(line for line in lines if line.startswith("serving on ")).split()[2]
        yield url, process, lines
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def request(url: str, body: Any = None, data: bytes | None = None, timeout: float = 60) -> tuple[int, Any]:
    """(status, parsed JSON reply) of a GET, or of a POST of `body` as JSON (or of raw `data`)."""
    if body is not None:
        data = json.dumps(body).encode("utf-8")
    http = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else text.decode("utf-8", "replace")


# ---------------------------------------------------------------- what a served project must answer


def json_value(array: np.ndarray, binary: bool) -> Any:
    """An input array as TF Serving JSON: numbers as lists, text as strings or b64 objects."""
    if array.dtype.kind in "SUO":
        items = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in np.asarray(array).reshape(-1)]
        values = [b64(x) if binary else x.decode("utf-8") for x in items]
        return np.array(values, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def assert_same_outputs(served: dict[str, Any], expected: dict[str, np.ndarray], where: str) -> None:
    assert set(served) == set(expected), f"{where}: outputs {sorted(served)}, expected {sorted(expected)}"
    for name, want in expected.items():
        got = served[name]
        if want.dtype.kind in "SO":  # text: a string each, or {"b64": ...} for an output named *_bytes
            items = np.asarray(got, dtype=object).reshape(-1).tolist()
            decoded = [base64.b64decode(g["b64"]) if name.endswith("_bytes") else g.encode() for g in items]
            assert decoded == [bytes(w) for w in want.reshape(-1)], f"{where}: {name}"
        else:  # JSON numbers go through a double, which holds every float32 exactly
            np.testing.assert_array_equal(np.asarray(got, dtype=want.dtype), want, err_msg=f"{where}: {name}")


def check_served_like_in_process(
    run_dir: Path, name: str, inputs: dict[str, np.ndarray], cwd: Path, signature: str = "serving_default"
) -> dict[str, np.ndarray]:
    """Serves a run and asks it, as a TF Serving client and as a KServe V2 client, for the answers the
    SavedModel gives in this process; returns those answers."""
    expected = call_in_process(run_dir / "saved_model", signature, inputs)
    binary = {k: k.endswith("_bytes") for k in inputs}
    columns = {k: json_value(v, binary[k]) for k, v in inputs.items()}
    with running_server("--model", f"{name}={run_dir}", "--batch-max-size", "8", cwd=cwd) as (url, _, _):
        base = f"{url}/v1/models/{name}"
        status, reply = request(f"{base}:predict", {"signature_name": signature, "inputs": columns})
        assert status == 200, reply
        outputs = reply["outputs"] if len(expected) > 1 else {next(iter(expected)): reply["outputs"]}
        assert_same_outputs(outputs, expected, "columnar format")

        batchable = all(np.ndim(v) >= 1 for v in inputs.values())
        if batchable:
            instances = [{k: columns[k][i] for k in inputs} for i in range(len(next(iter(inputs.values()))))]
        else:  # the request a row-format client would send
            instances = [columns]
        status, reply = request(f"{base}:predict", {"signature_name": signature, "instances": instances})
        if batchable:
            assert status == 200, reply
            rows = reply["predictions"]
            per_output = (
                {k: [row[k] for row in rows] for k in expected}
                if len(expected) > 1
                else {next(iter(expected)): rows}
            )
            assert_same_outputs(per_output, expected, "row format")
        else:  # a signature of whole tensors (no batch dimension) says to use the columnar format
            assert status == 400 and "columnar format" in reply["error"], reply

        v2_inputs = [
            {
                "name": k,
                "shape": list(np.shape(v)),
                "datatype": "BYTES" if v.dtype.kind in "SUO" else V2_TYPES[v.dtype.name],
                "data": np.ravel(np.asarray(columns[k], dtype=object)).tolist(),
            }
            for k, v in inputs.items()
        ]
        body = {"id": "check", "inputs": v2_inputs, "parameters": {"signature_name": signature}}
        status, reply = request(f"{url}/v2/models/{name}/infer", body)
        assert status == 200, reply
        assert reply["model_name"] == name and reply["id"] == "check"
        v2 = {
            o["name"]: np.reshape(np.asarray(o["data"], dtype=object), o["shape"]).tolist()
            for o in reply["outputs"]
        }
        assert_same_outputs(v2, expected, "KServe V2")
    return expected


V2_TYPES = {"uint8": "UINT8", "int32": "INT32", "int64": "INT64", "float32": "FP32", "bool": "BOOL"}


def client_for(repository, **settings):
    """An in-process test client of the server on `repository`, with these ServerSettings."""
    from starlette.testclient import TestClient

    from shared.serving.app import create_app
    from shared.serving.dataplane import ServerSettings

    return TestClient(create_app(repository, ServerSettings(**settings)))
