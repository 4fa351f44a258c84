"""char_lstm on its command line: learning a repeating text, the state a run keeps, stateful generation
against the full-prefix computation, seeded determinism, the generate signature in a fresh process, bad
requests, tune over the sequence length, two replicas, the generate_step signature streamed by the
server, and the page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from projects.char_lstm import PROJECT, data
from projects.char_lstm.generate import Generator, check_request, generate
from shared.config import RunConfig
from shared.trained import load_state
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.serving_helpers import check_served_like_in_process

SMALL = ("--hp", "units=128", "--hp", "layers=1", "--batch-size", "16")
VERSE = data.repeating_text(200)


@pytest.fixture(scope="module")
def trained(session_dir) -> Path:
    run_dir = session_dir / "char_run"
    args = ("train", "--smoke", *SMALL, "--epochs", "8", "--run-dir", str(run_dir))
    result = run_cli("char_lstm", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def model(trained):
    import keras

    return keras.models.load_model(str(trained / "model.keras"), compile=False)


def test_learns_the_repeating_text_far_below_the_unigram_entropy(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["val_bpc"] < 0.25 * metrics["unigram_bpc"], metrics
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss_nats"] / np.log(2))
    assert metrics["export_max_abs_diff_text"] == 0  # the generate signature, reloaded in a fresh process
    assert metrics["export_max_abs_diff_generate_step_text"] == 0  # and the step signature for :stream
    assert (trained / "samples" / "epoch_008.txt").is_file() and (trained / "samples.txt").is_file()
    assert list((trained / "logs" / "samples").glob("events.out.tfevents.*"))  # TensorBoard text


@pytest.fixture(scope="module")
def vocabulary(trained) -> str:
    return load_state(PROJECT, trained).vocabulary


def test_the_state_json_holds_what_training_made_and_the_page_shows(trained, vocabulary):
    made = data.load(RunConfig(project="char_lstm", smoke=True)).state
    assert load_state(PROJECT, trained) == made
    assert made.sample_prompt == VERSE[:40] + "\n"  # the first line, cut at 40 characters
    page = json.loads((trained / "saved_model" / "assets.extra" / "page.json").read_text())
    assert page["sample_prompt"] == made.sample_prompt and page["vocabulary"] == vocabulary[1:]


def test_greedy_generation_reproduces_the_text(model, vocabulary):
    text = generate(Generator(model), vocabulary, VERSE[:30], 120, top_k=1)
    assert text == VERSE[30:150]


def test_stateful_steps_match_the_full_prefix(model, vocabulary):
    import tensorflow as tf

    ids = check_request(VERSE[:25], 1.0, vocabulary)
    generator = Generator(model)
    states = generator.initial_states()
    full = model(np.array([ids]), training=False).numpy()[0]  # logits after every prefix at once
    for t, i in enumerate(ids):
        logits, states = generator.step(tf.constant([i]), states)
        np.testing.assert_allclose(logits.numpy()[0], full[t], atol=1e-4)


def test_a_seed_gives_the_same_text(trained, session_dir):
    def run(seed: str) -> str:
        args = ("generate", str(trained), "--prompt", "to be", "--length", "80", "--temperature", "1.5")
        result = run_cli("char_lstm", *args, "--seed", seed, cwd=session_dir)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    first = run("3")
    assert first.startswith("to be") and len(first) == 86  # the prompt, 80 characters, a newline
    assert run("3") == first and run("4") != first


def test_the_signature_generates_in_tensorflow(trained, model, vocabulary):
    import tensorflow as tf

    signature = tf.saved_model.load(str(trained / "saved_model")).signatures["generate"]

    def serve(prompt, length=60, temperature=1.0, top_k=1, seed=0):
        return (
            signature(
                prompt=tf.constant(prompt),
                length=tf.constant(length),
                temperature=tf.constant(temperature),
                top_k=tf.constant(top_k),
                seed=tf.constant(seed),
            )["text"]
            .numpy()
            .decode("utf-8")
        )

    # greedy in TensorFlow equals greedy in Python; sampled text is seeded
    assert serve(VERSE[:30]) == generate(Generator(model), vocabulary, VERSE[:30], 60, top_k=1)
    sampled = serve("to be", 80, 1.5, 0, 5)
    assert len(sampled) == 80 and serve("to be", 80, 1.5, 0, 5) == sampled != serve("to be", 80, 1.5, 0, 6)
    for prompt, temperature, message in (
        ("", 1.0, "the prompt is empty"),
        ("to be!", 1.0, "never saw in training"),
        ("to be", 0.0, "temperature must be above 0"),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            serve(prompt, temperature=temperature)
    with pytest.raises(tf.errors.InvalidArgumentError, match="length must be at most 100000"):
        serve("to be", length=10**9)


def test_generate_command_names_bad_requests(trained, session_dir):
    for args, message in (
        (("--prompt", ""), "the prompt is empty"),
        (("--prompt", "ROMEO:"), "never saw in training: 'EMOR'"),
        (("--temperature", "0"), "--temperature must be above 0"),
        (("--prompt", "to", "--top-k", "-1"), "--top-k must be 0 (off) or positive"),
    ):
        result = run_cli("char_lstm", "generate", str(trained), *args, cwd=session_dir)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-1000:]


def test_tune_searches_the_sequence_length(tmp_path, session_dir):
    folder = tmp_path / "search"
    args = (
        "--smoke",
        *SMALL,
        "--epochs",
        "1",
        "--max-trials",
        "3",
        "--tuner",
        "random",
        "--run-dir",
        str(folder),
    )
    result = run_cli("char_lstm", "tune", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    import pandas as pd

    trials = pd.read_csv(folder / "trials.csv")
    assert (trials["status"] == "COMPLETED").all() and trials["seq_length"].nunique() > 1


def test_trains_on_two_cpu_replicas(tmp_path, session_dir):
    run_dir = tmp_path / "mirrored"
    args = ("--smoke", *SMALL, "--epochs", "1", "--strategy", "mirrored", "--cpu-replicas", "2")
    # 23 validation chunks: a global batch of 16, not 32, so the first batch shares out over the replicas
    args = (*args, "--batch-size", "8", "--run-dir", str(run_dir))
    result = run_cli("char_lstm", "train", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"]["replicas"] == 2 and config["runtime"]["global_batch_size"] == 16


def test_missing_text_names_the_file(tmp_path):
    result = run_cli("char_lstm", "train", cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "no-data" / "shakespeare" / "input.txt") in result.stderr


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(trained, tmp_path):
    inputs = {
        "prompt": np.array(VERSE[:12].encode("utf-8"), dtype=object),
        "length": np.array(50, np.int32),
        "temperature": np.array(0.8, np.float32),
        "top_k": np.array(0, np.int32),
        "seed": np.array(11, np.int32),
    }
    expected = check_served_like_in_process(trained, "char_lstm", inputs, cwd=tmp_path, signature="generate")
    assert len(expected["text"].item().decode("utf-8")) == 50


def sse_events(body: str) -> list[tuple[str, dict]]:
    """(kind, data) of each server-sent event."""
    found = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines.get("event", "message"), json.loads(lines["data"])))
    return found


def test_the_servers_stream_of_generate_step_is_the_text_generate_serves(trained):
    """Without a browser: :stream's events (the state fed back on the server) join into the text :predict's
    generate gives; a prompt with a character the model never saw is a 400 before any event."""
    from starlette.testclient import TestClient

    from shared.serving.app import create_app
    from shared.serving.dataplane import ServerSettings
    from shared.serving.repository import ModelRepository

    repository = ModelRepository.load(models=[f"char_lstm={trained}"])
    settings = {"temperature": 1.3, "top_k": 4, "seed": 12}
    with TestClient(create_app(repository, ServerSettings())) as client:
        body = {"signature_name": "generate_step", "inputs": {"text": VERSE[:9], **settings}, "steps": 70}
        events = sse_events(client.post("/v1/models/char_lstm:stream", json=body).text)
        inputs = {"prompt": VERSE[:9], "length": 70, **settings}
        reply = client.post(
            "/v1/models/char_lstm:predict", json={"signature_name": "generate", "inputs": inputs}
        )
        assert reply.status_code == 200, reply.text
        assert events[-1] == ("end", {"steps": 70}) and all(kind == "message" for kind, _ in events[:-1])
        assert "".join(data["text"] for _, data in events[:-1]) == reply.json()["outputs"]
        assert set(events[0][1]) == {"text"}  # what is fed back stays on the server
        body["inputs"]["text"] = "to be?"
        refused = client.post("/v1/models/char_lstm:stream", json=body)
        assert refused.status_code == 400 and "never saw in training" in refused.json()["error"]


def fill(driver, **values: object) -> None:
    """Types each value into the control of that id, as a person would."""
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        field = driver.find_element(By.ID, name)
        field.clear()
        field.send_keys(str(value))


def written(driver) -> str:
    return driver.execute_script("return document.getElementById('written').textContent")


def status(driver) -> str:
    from tests.browser import text_of

    return text_of(driver, "#status")


def streams_what_generate_serves(driver, url: str) -> str:
    """Generate clicked: 60 characters, shown as they come, the text :predict's `generate` answers."""
    from selenium.webdriver.common.by import By

    from tests import browser
    from tests.serving_helpers import request

    fill(driver, prompt=VERSE[:20], length=60, temperature=1.2, seed=5)  # top-k left empty: off
    # the text's length at each change of the page: it must grow while the characters stream in
    driver.execute_script(
        """window.lengths = []; const written = document.getElementById('written');
           new MutationObserver(() => window.lengths.push(written.textContent.length))
             .observe(written, {childList: true, characterData: true, subtree: true});"""
    )
    driver.find_element(By.ID, "generate").click()
    browser.wait_for(lambda: "Wrote 60" in status(driver), "the text to be written")
    inputs = {"prompt": VERSE[:20], "length": 60, "temperature": 1.2, "top_k": 0, "seed": 5}
    code, reply = request(
        f"{url}/v1/models/char_lstm:predict", {"signature_name": "generate", "inputs": inputs}
    )
    assert code == 200 and written(driver) == reply["outputs"] and len(reply["outputs"]) == 60, reply
    exchange = browser.exchanges(driver)[-1]
    assert exchange["path"] == "/v1/models/char_lstm:stream" and len(exchange["events"]) == 60
    sent = {"text": VERSE[:20], "temperature": 1.2, "top_k": 0, "seed": 5}
    assert exchange["request"] == {"signature_name": "generate_step", "inputs": sent, "steps": 60}
    lengths = driver.execute_script("return window.lengths")
    assert len(set(lengths) - {0, 60}) >= 3, f"the text did not grow as it streamed: {lengths}"
    return reply["outputs"]


def stops_when_asked(driver, url: str) -> None:
    """Stop clicked early in 5000 characters: the page stops, and so does the server."""
    from selenium.webdriver.common.by import By

    from tests import browser

    fill(driver, length=5000)
    driver.find_element(By.ID, "generate").click()
    browser.wait_for(lambda: len(written(driver)) >= 5, "the long text to start")
    driver.find_element(By.ID, "stop").click()
    browser.wait_for(lambda: "Stopped after" in status(driver), "the page to stop")
    stopped = len(written(driver))
    assert 5 <= stopped < 5000 and f"Stopped after {stopped} of 5000" in status(driver)
    # the server gives back the request's place once its client has gone: well before 5000 steps could
    # have been written (about 7 s on 2 cores)
    idle = lambda: "serving_in_flight_requests 0.0" in request_text(f"{url}/metrics")  # noqa: E731
    browser.wait_for(idle, "the server to end the stream its client left", timeout=3)
    assert len(written(driver)) == stopped and not driver.find_element(By.ID, "error").is_displayed()


def test_the_page_streams_the_text_generate_serves_stops_and_names_unknown_characters(trained, tmp_path):
    """In headless Chromium: a prompt typed and Generate clicked; the text grows as it streams and is what
    :predict's generate signature answers; Stop ends a long one early; a character the model never saw."""
    from selenium.webdriver.common.by import By

    from tests import browser

    with browser.served_page("char_lstm", trained, tmp_path) as (driver, url):
        prompt = browser.wait_for(
            lambda: driver.find_element(By.ID, "prompt").get_attribute("value"), "prompt"
        )
        assert prompt.rstrip("\n") in VERSE, prompt  # page.json's sample prompt: from the training text
        expected = streams_what_generate_serves(driver, url)
        browser.screenshot(driver, "char_lstm")
        stops_when_asked(driver, url)

        fill(driver, prompt="to be? " + VERSE[:5])  # '?' is not in the smoke text
        driver.find_element(By.ID, "generate").click()
        shown = browser.error_shown(driver)
        assert "never saw in training" in shown and '"?"' in shown, shown
        assert written(driver) == "" and "Nothing written" in status(driver)
        fill(driver, prompt=VERSE[:20], length=60)  # and it still works: the same request, the same text
        driver.find_element(By.ID, "generate").click()
        browser.wait_for(lambda: "Wrote 60" in status(driver), "the text again")
        assert written(driver) == expected and not driver.find_element(By.ID, "error").is_displayed()
        browser.labelled(driver)
        browser.on_a_phone(driver, "char_lstm")


def request_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def test_the_run_folder_is_all_the_model_needs(trained, tmp_path):
    check_run_folder_is_all_it_needs("char_lstm", trained, tmp_path)
