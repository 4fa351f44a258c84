"""What the server adds for pages: `:stream` (server-sent events of a step signature) on the toy model's
`step` signature, and the index, models.json and each model's page folder, with their security headers."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import pytest
from starlette.testclient import TestClient

from shared import reporting
from shared.export import publish
from shared.serving.app import create_app
from shared.serving.dataplane import ServerSettings
from shared.serving.repository import ModelRepository
from tests.serving_helpers import request, running_server, save_toy_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as `train` leaves it: saved_model/ (with assets.extra/page.json) and metrics.json."""
    run = tmp_path_factory.mktemp("run")
    save_toy_model(run / "saved_model")
    reporting.write_json(run / "saved_model" / "assets.extra" / "page.json", {"project": "demo", "hint": 3})
    reporting.write_json(run / "metrics.json", {"test_accuracy": 0.75, "test_size": 40, "epochs": 2})
    return run


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    (root / "demo" / "page").mkdir(parents=True)
    (root / "demo" / "page" / "index.html").write_text("<!doctype html><title>demo page</title>")
    (root / "demo" / "page" / "page.js").write_text("export const answer = 42;")
    return root


@pytest.fixture(scope="module")
def client(run_dir, pages, tmp_path_factory):
    served = tmp_path_factory.mktemp("served")
    publish(run_dir / "saved_model", served, "published", 3)  # carries metrics.json inside it
    bare = save_toy_model(tmp_path_factory.mktemp("bare") / "model")  # no run around it, no page.json
    repository = ModelRepository.load(models=[f"mine={run_dir}", f"bare={bare}"], base_path=str(served))
    app = create_app(repository, ServerSettings(max_stream_steps=50, pages_dir=str(pages)))
    with TestClient(app) as test_client:
        yield test_client


def events_of(text: str) -> list[tuple[str, dict]]:
    """(kind, data) of each server-sent event."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines.get("event", "message"), json.loads(lines["data"])))
    return found


def stream(client, body: dict, model: str = "mine"):
    return client.post(f"/v1/models/{model}:stream", json={"signature_name": "step", **body})


def test_a_stream_feeds_each_steps_next_outputs_back_and_starts_left_out_ones_at_zero(client):
    response = stream(client, {"inputs": {"add": 1.5, "fail_at": -1}, "steps": 4})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.text)
    # count and total start at zeros; total grows by `add` on both of its values each step
    assert events[:-1] == [("message", {"seen": i, "sum": 3.0 * i}) for i in range(4)]
    assert events[-1] == ("end", {"steps": 4})


def test_a_stream_takes_given_carried_inputs_and_a_version(client):
    body = {"inputs": {"count": 10, "total": [1, 2], "add": 0, "fail_at": -1}, "steps": 2}
    response = client.post("/v1/models/published/versions/3:stream", json={"signature_name": "step", **body})
    assert [data for kind, data in events_of(response.text) if kind == "message"] == [
        {"seen": 10, "sum": 3.0},
        {"seen": 11, "sum": 3.0},
    ]


def test_a_step_that_fails_mid_stream_ends_it_with_an_error_event(client):
    events = events_of(stream(client, {"inputs": {"add": 1, "fail_at": 2}, "steps": 5}).text)
    assert [data["seen"] for kind, data in events if kind == "message"] == [0, 1]
    kind, data = events[-1]
    assert kind == "error" and "the count reached fail_at" in data["error"] and data["code"] == 400
    assert client.app.state.plane.in_flight == 0  # its place among the requests is given back


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputs": {"add": -1, "fail_at": -1}, "steps": 3}, "add must be at least 0"),
        ({"inputs": {"add": 1, "fail_at": -1}, "steps": 0}, '"steps" must be a whole number from 1 to 50'),
        ({"inputs": {"add": 1, "fail_at": -1}, "steps": 51}, "from 1 to 50; got 51"),
        ({"inputs": {"add": 1, "fail_at": -1}, "steps": True}, "got True"),
        ({"inputs": {"add": 1}, "steps": 3}, "missing input(s) ['fail_at']"),
        ({"inputs": [1, 2], "steps": 3}, '"inputs" must be an object'),
        ({"signature_name": "text", "inputs": {"text": ["a"]}, "steps": 3}, "carries nothing from step"),
        ({"signature_name": "nope", "inputs": {}, "steps": 3}, 'signature name: "nope" not found'),
    ],
)
def test_a_bad_stream_request_is_a_4xx_before_any_event(client, body, message):
    response = stream(client, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_models_json_lists_each_model_with_its_measured_result_and_its_page(client):
    models = {entry["name"]: entry for entry in client.get("/pages/models.json").json()}
    assert sorted(models) == ["bare", "mine", "published"]
    mine = models["mine"]
    assert mine["project"] == "demo" and mine["info"] == {"project": "demo", "hint": 3}
    assert mine["metrics"] == {"test_accuracy": 0.75}  # test results only, not counts
    assert mine["page"] == "/pages/mine/" and "step" in mine["signatures"]
    assert models["published"]["metrics"] == {"test_accuracy": 0.75}  # from the copy inside the version
    assert models["published"]["version"] == 3
    bare = models["bare"]  # a SavedModel outside a run folder: nothing measured, no project, no page
    assert (bare["metrics"], bare["info"], bare["project"], bare["page"]) == ({}, {}, "bare", None)
    assert client.get("/pages/bare/").status_code == 404


def test_pages_are_served_with_a_policy_that_refuses_other_origins(client):
    index = client.get("/")
    assert index.status_code == 200 and "Models served" in index.text
    page = client.get("/pages/mine/")
    assert page.status_code == 200 and "demo page" in page.text
    for response in (index, page, client.get("/pages/mine/page.js"), client.get("/static/pages.js")):
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/pages/mine/page.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/pages/mine/../../../etc/passwd").status_code == 404
    assert client.get("/pages/mine/missing.js").status_code == 404


def test_the_shared_page_files_exist_and_every_project_page_loads_only_local_files():
    from shared.serving.pages import PROJECTS, STATIC

    for name in ("index.html", "index.js", "pages.js", "pages.css"):
        assert (STATIC / name).is_file()
    for html in PROJECTS.glob("*/page/*.html"):
        text = html.read_text()
        for attribute in ("src=", "href="):
            for value in text.split(attribute)[1:]:
                link = value[1:].split(value[0])[0]
                assert not urllib.parse.urlparse(link).netloc, f"{html} loads {link} from another origin"
        assert "style=" not in text and "<style" not in text, f"{html}: inline styles are refused by the CSP"


def test_a_client_that_goes_away_stops_its_stream(run_dir, tmp_path):
    """A page's stop button aborts its request: the server stops stepping and gives back its place."""
    # a million steps would take minutes: a place given back within seconds means the stepping stopped
    server = running_server("--model", f"mine={run_dir}", "--max-stream-steps", "1000000", cwd=tmp_path)
    with server as (url, _, _):
        host, port = urllib.parse.urlparse(url).netloc.split(":")
        body = json.dumps(
            {"signature_name": "step", "inputs": {"add": 1, "fail_at": -1}, "steps": 1_000_000}
        ).encode()
        with socket.create_connection((host, int(port))) as connection:
            connection.sendall(
                b"POST /v1/models/mine:stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            received = b""
            while b"data: " not in received:  # the stream has started
                received += connection.recv(4096)
        deadline = time.monotonic() + 20
        while True:
            _, metrics = request_text(url + "/metrics")
            if "serving_in_flight_requests 0.0" in metrics:
                break
            assert time.monotonic() < deadline, "the stream kept its place after its client went away"
            time.sleep(0.2)
        status, reply = request(url + "/v1/models/mine:predict", {"instances": [[[0] * 4] * 4]})
        assert status == 200, reply


def request_text(url: str) -> tuple[int, str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def test_the_index_page_lists_the_models_with_their_results_and_links_in_a_browser(run_dir, pages, tmp_path):
    from selenium.webdriver.common.by import By

    from tests import browser

    args = ("--model", f"mine={run_dir}", "--pages", str(pages))
    with running_server(*args, cwd=tmp_path) as (url, _, _), browser.chromium() as driver:
        driver.get(url + "/")
        rows = lambda: driver.find_elements(By.CSS_SELECTOR, "tr[data-model=mine]")  # noqa: E731
        row = browser.wait_for(rows, "the model's row")
        cells = [cell.text for cell in row[0].find_elements(By.TAG_NAME, "td")]
        assert cells[:3] == ["mine", "1", "accuracy 75.00%"] and "step" in cells[3]
        browser.labelled(driver)
        browser.screenshot(driver, "index")
        browser.on_a_phone(driver, "index")
        row[0].find_element(By.LINK_TEXT, "mine").click()
        browser.wait_for(lambda: driver.title == "demo page", "the model's page")
        browser.check_console(driver)


def test_a_project_name_that_is_a_path_gets_no_page(run_dir, pages, tmp_path):
    from shared.serving.pages import page_folder

    model = ModelRepository.load(models=[f"mine={run_dir}"]).get("mine")
    assert page_folder(model, pages) == pages / "demo" / "page"
    (pages / "outside" / "page").mkdir(parents=True)
    (pages / "outside" / "page" / "index.html").write_text("not a project's page")
    # without the check, pages/demo/../outside/page would be served as the page
    for project in ("../outside", "demo/../outside"):
        copied = ModelRepository.load(models=[f"x={run_dir}"]).get("x")
        object.__setattr__(copied, "path", tmp_path.parent / "fake")
        (tmp_path.parent / "fake" / "assets.extra").mkdir(parents=True, exist_ok=True)
        (tmp_path.parent / "fake" / "assets.extra" / "page.json").write_text(json.dumps({"project": project}))
        assert page_folder(copied, pages / "demo") is None
