"""The model server's APIs in-process (Starlette's test client) on a toy SavedModel with two versions:
TF Serving's REST formats and KServe V2 against the SavedModel called directly, every bad input with its
status and message, metrics, CORS and the layout `export --serving-dir` writes."""

from __future__ import annotations

import numpy as np
import pytest

from shared.export import serving_version
from tests.serving_helpers import (
    IMAGES,
    assert_same_outputs,
    b64,
    call_in_process,
    json_value,
    png_bytes,
)


def test_the_layout_and_its_models_config(layout):
    assert sorted(p.name for p in (layout / "toy").iterdir()) == ["1", "2"]  # no staging folder left
    config = (layout / "models.config").read_text()
    assert "name: 'toy'" in config and "base_path: '/models/toy'" in config
    assert "model_platform: 'tensorflow'" in config and "model_version_policy { all {} }" in config
    with pytest.raises(Exception, match="versions are never overwritten"):
        serving_version(layout, "toy", 2)
    assert serving_version(layout, "toy") == 3


def test_status_and_metadata_in_tf_servings_shapes(client):
    reply = client.get("/v1/models/toy").json()
    assert [s["version"] for s in reply["model_version_status"]] == ["2", "1"]  # newest first
    assert reply["model_version_status"][0]["status"] == {"error_code": "OK", "error_message": ""}
    assert client.get("/v1/models/toy/versions/1").json()["model_version_status"][0]["state"] == "AVAILABLE"

    metadata = client.get("/v1/models/toy/metadata").json()
    assert metadata["model_spec"] == {"name": "toy", "signature_name": "", "version": "2"}
    default = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    images = default["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8" and images["tensor_shape"]["unknown_rank"] is False
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "4", "4"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert client.get("/v1/models/toy/versions/1/metadata").json()["model_spec"]["version"] == "1"


@pytest.mark.parametrize("version", [None, 1, 2])
def test_row_columnar_and_v2_answers_equal_the_saved_models(client, layout, version):
    newest = 2 if version is None else version
    expected = call_in_process(layout / "toy" / str(newest), "serving_default", {"images": IMAGES})
    path = "/v1/models/toy" + (f"/versions/{version}" if version else "")
    rows = client.post(f"{path}:predict", json={"instances": IMAGES.tolist()}).json()["predictions"]
    assert_same_outputs({k: [r[k] for r in rows] for k in expected}, expected, "row format")
    columns = client.post(f"{path}:predict", json={"inputs": {"images": IMAGES.tolist()}}).json()["outputs"]
    assert_same_outputs(columns, expected, "columnar format")
    v2_path = "/v2/models/toy" + (f"/versions/{version}" if version else "")
    tensor = {"name": "images", "shape": [5, 4, 4], "datatype": "UINT8", "data": IMAGES.reshape(-1).tolist()}
    reply = client.post(f"{v2_path}/infer", json={"inputs": [tensor]}).json()
    assert reply["model_version"] == str(newest)
    v2 = {o["name"]: np.reshape(o["data"], o["shape"]).tolist() for o in reply["outputs"]}
    assert_same_outputs(v2, expected, "KServe V2")
    assert not np.array_equal(  # the versions really differ: the test could tell them apart
        call_in_process(layout / "toy" / "1", "serving_default", {"images": IMAGES})["probabilities"],
        call_in_process(layout / "toy" / "2", "serving_default", {"images": IMAGES})["probabilities"],
    )


def test_text_columns_images_and_scalars(client, layout):
    newest = layout / "toy" / "2"
    cases = {
        "text": {"text": np.array(["héllo wörld", "", "TF"], dtype=object)},
        "columns": {
            "amount": np.array([1.5, 2.0], np.float32),
            "plan": np.array(["pro", "basic"], dtype=object),
            "months": np.array([3, 12], np.int64),
            "active": np.array([True, False]),
        },
        "image": {"image_bytes": np.array([png_bytes(5, 7), png_bytes(3, 2, seed=1)], dtype=object)},
    }
    for signature, inputs in cases.items():
        expected = call_in_process(newest, signature, inputs)
        binary = {k: k.endswith("_bytes") for k in inputs}
        columns = {k: json_value(v, binary[k]) for k, v in inputs.items()}
        rows = [{k: columns[k][i] for k in inputs} for i in range(len(next(iter(columns.values()))))]
        reply = client.post("/v1/models/toy:predict", json={"signature_name": signature, "instances": rows})
        predictions = reply.json()["predictions"]
        if len(expected) == 1:
            predictions = [{next(iter(expected)): p} for p in predictions]
        assert_same_outputs({k: [p[k] for p in predictions] for k in expected}, expected, signature)
        reply = client.post("/v1/models/toy:predict", json={"signature_name": signature, "inputs": columns})
        outputs = reply.json()["outputs"]
        outputs = outputs if len(expected) > 1 else {next(iter(expected)): outputs}
        assert_same_outputs(outputs, expected, signature)
    echoed = client.post(
        "/v1/models/toy:predict", json={"signature_name": "image", "instances": [b64(png_bytes(2, 2))]}
    ).json()["predictions"][0]
    assert set(echoed["echo_bytes"]) == {"b64"}  # an output named *_bytes comes back as b64

    scalars = {"signature_name": "generate", "inputs": {"prompt": "ab", "length": 3}}
    assert client.post("/v1/models/toy:predict", json=scalars).json()["outputs"]["text"] == "ababab"
    rows = client.post(
        "/v1/models/toy:predict", json={**scalars, "inputs": None, "instances": [{"prompt": "a"}]}
    )
    assert rows.status_code == 400 and "columnar format" in rows.json()["error"]


BAD_REQUESTS = [
    # (path, JSON body or raw bytes, status, what the message must say)
    (
        ":predict",
        {"instances": [[1, 2]]},
        400,
        "input 'images' has shape [1, 2]; the signature takes [-1, 4, 4]",
    ),
    (
        ":predict",
        {"instances": [[[0.5] * 4] * 4]},
        400,
        "(uint8, written without a decimal point); it was sent 0.5",
    ),
    (
        ":predict",
        {"instances": [[[300] * 4] * 4]},
        400,
        "takes uint8 values, 0 to 255; it was sent 300 to 300",
    ),
    (":predict", {"instances": [[["a"] * 4] * 4]}, 400, "takes uint8 numbers; it was sent text"),
    (
        ":predict",
        {"instances": [[[2**70] * 4] * 4]},
        400,
        "it was sent 1.1805916207174113e+21",
    ),
    (":predict", {"instances": [[[1] * 4] * 4, [[1] * 3] * 4]}, 400, "nested lists of different lengths"),
    (":predict", {"inputs": {"pixels": [[[1] * 4] * 4]}}, 400, "unknown input(s) ['pixels']; signature"),
    (
        ":predict",
        {"signature_name": "columns", "inputs": {"amount": [1.0]}},
        400,
        "missing input(s) ['active'",
    ),
    (":predict", {"signature_name": "nope", "instances": [1]}, 400, 'signature name: "nope" not found'),
    (":predict", {"signature_name": 3, "instances": [1]}, 400, "'signature_name' must be a string value"),
    (
        ":predict",
        {"instances": [1], "inputs": [1]},
        400,
        "only one of 'inputs' (columnar format) or 'instances'",
    ),
    (":predict", {"examples": []}, 400, "Missing 'inputs' or 'instances' key"),
    (":predict", {"instances": []}, 400, '"instances" must be a non-empty list'),
    (":predict", [1, 2], 400, 'must be a JSON object holding "instances" or "inputs"'),
    (":predict", b"{bad json", 400, "the request body is not valid JSON"),
    (":predict", b"", 400, "the request body is empty"),
    (":predict", b"\xff\xfe{}", 400, "is not UTF-8 text"),
    (":predict", b"[" * 100_000, 400, "nested too deeply"),
    (":predict", {"signature_name": "text", "instances": [{"b64": "***"}]}, 400, "not valid base64"),
    (":predict", {"signature_name": "text", "instances": [3]}, 400, 'takes strings or {"b64"'),
    (
        ":predict",
        {"signature_name": "columns", "instances": [{"amount": 1, "plan": "a", "months": 2, "active": 1}]},
        400,
        "takes true/false values; it was sent numbers",
    ),
    (
        ":predict",
        {"signature_name": "columns", "instances": [{"amount": 1}, {"plan": "a"}]},
        400,
        "every instance must name the same inputs",
    ),
    (":predict", {"signature_name": "columns", "instances": [1.0]}, 400, "has several inputs"),
    (
        ":predict",
        {"signature_name": "generate", "inputs": {"prompt": "a", "length": 0}},
        400,
        "length must be at least 1",
    ),
    (
        ":predict",
        {"signature_name": "image", "instances": [b64(b"GIF89a not really")]},
        400,
        "input 'image_bytes', example 0: not a readable image file",
    ),
    ("/versions/7:predict", {"instances": [1]}, 404, "Servable not found for request: Specific(toy, 7)"),
    ("/versions/7", None, 404, "Could not find version 7 of model toy"),
    ("/labels/stable", None, 400, "Unrecognized servable version label: stable"),
    (":classify", {"examples": []}, 501, "needs tf.Example inputs"),
    ("/metadata:predict", {"instances": [1]}, 400, "Malformed request: POST /v1/models/toy/metadata:predict"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_tf_servings_status_and_a_message_naming_the_problem(
    client, path, body, status, message
):
    if path.endswith(("predict", "classify")):
        raw = body if isinstance(body, bytes) else None
        reply = client.post(f"/v1/models/toy{path}", content=raw, json=None if raw is not None else body)
    else:
        reply = client.get(f"/v1/models/toy{path}")
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


def test_unknown_models_paths_and_v2_errors(client):
    assert client.get("/v1/models/nope").json() == {"error": "Could not find any versions of model nope"}
    reply = client.post("/v1/models/nope:predict", json={"instances": [1]})
    assert (
        reply.status_code == 404 and reply.json()["error"] == "Servable not found for request: Latest(nope)"
    )
    assert client.get("/v1/models").json()["error"] == "Missing model name in request."
    assert client.get("/v1/foo").status_code == 400
    assert client.get("/nothing").status_code == 404 and "error" in client.get("/nothing").json()
    bad_type = {"inputs": [{"name": "images", "shape": [1, 4, 4], "datatype": "FP32", "data": [0] * 16}]}
    reply = client.post("/v2/models/toy/infer", json=bad_type)
    assert (
        reply.status_code == 400
        and reply.json()["error"] == "input 'images' is UINT8; the request says 'FP32'"
    )
    bad_shape = {"inputs": [{"name": "images", "shape": [2, 4, 4], "datatype": "UINT8", "data": [0] * 16}]}
    assert (
        "does not fit its 16 value(s)" in client.post("/v2/models/toy/infer", json=bad_shape).json()["error"]
    )
    unknown_output = {**bad_shape, "outputs": [{"name": "logits"}]}
    unknown_output["inputs"][0]["shape"] = [1, 4, 4]
    assert (
        "unknown output(s) ['logits']"
        in client.post("/v2/models/toy/infer", json=unknown_output).json()["error"]
    )
    assert client.get("/v2/models/nope").status_code == 404


def images_tensor(shape, **changes) -> dict:
    return {"name": "images", "shape": shape, "datatype": "UINT8", "data": [], **changes}


V2_BAD_REQUESTS = [
    # tiny requests that would otherwise allocate without bound, crash a conversion, or hang a worker
    (
        {"inputs": [images_tensor([0, 10_000_000])]},
        "has shape [0, 10000000]; the signature takes [-1, 4, 4]",
    ),
    ({"inputs": [images_tensor([0, 4, 4])]}, "input 'images' holds no values"),
    ({"inputs": [images_tensor([2**32, 2**32])]}, "a list of at most 32 sizes, each from 0 to 2^31 - 1"),
    ({"inputs": [images_tensor([1] * 65)]}, "a list of at most 32 sizes"),
    ({"inputs": [images_tensor([1, 4, 4], parameters="x")]}, 'with a "name" (and "parameters": {})'),
    (
        {"inputs": [images_tensor([1, 4, 4], data=[0] * 16)], "outputs": [{"name": []}]},
        '"outputs" must be a list',
    ),
    (
        {
            "inputs": [images_tensor([1, 4, 4], data=[0] * 16)],
            "outputs": [{"name": "digit", "parameters": "x"}],
        },
        '"outputs" must be a list',
    ),
    (
        {"inputs": [images_tensor([1, 4, 4], data=[0] * 16)], "parameters": "x"},
        '"parameters" must be an object',
    ),
    (
        {"inputs": [images_tensor([2000, 4, 4], data=[0] * 32000)]},
        "at most 1024 examples; this one holds 2000",
    ),
]


@pytest.mark.parametrize(("body", "message"), V2_BAD_REQUESTS)
def test_v2_requests_that_could_blow_up_get_a_400(client, body, message):
    reply = client.post("/v2/models/toy/infer", json=body)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


def test_deeply_nested_text_and_empty_inputs_get_a_400(client):
    deep: object = "a"
    for _ in range(900):
        deep = [deep]
    reply = client.post("/v1/models/toy:predict", json={"signature_name": "text", "inputs": {"text": deep}})
    assert reply.status_code == 400 and "nested more than 32 lists deep" in reply.json()["error"]
    reply = client.post("/v1/models/toy:predict", json={"inputs": {"images": []}})
    assert reply.status_code == 400 and "shape [0]; the signature takes [-1, 4, 4]" in reply.json()["error"]


def test_v2_health_metadata_and_requested_outputs(client):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/toy/ready").json() == {"name": "toy", "ready": True}
    assert client.get("/v2/models/toy/versions/1/ready").status_code == 200
    metadata = client.get("/v2/models/toy").json()
    assert metadata["versions"] == ["1", "2"] and metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, 4, 4]}]
    tensor = {"name": "images", "shape": [1, 4, 4], "datatype": "UINT8", "data": [[[1] * 4] * 4]}  # nested
    reply = client.post(
        "/v2/models/toy/infer", json={"id": "7", "inputs": [tensor], "outputs": [{"name": "digit"}]}
    )
    assert reply.json()["id"] == "7" and [o["name"] for o in reply.json()["outputs"]] == ["digit"]
