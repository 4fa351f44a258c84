"""mnist_cnn through its real command line, on generated digits (--smoke): no dataset, no network."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from projects.mnist_cnn.predict import to_mnist
from tests.conftest import REPO, cli_command, cli_env, last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.serving_helpers import check_served_like_in_process, request, running_server

SMOKE = ("--smoke", "--epochs", "3", "--batch-size", "64")


def check_finished_run(run_dir: Path, min_accuracy: float = 0.5) -> dict:
    for name in (
        "config.json",
        "hparams.json",
        "history.csv",
        "metrics.json",
        "model.keras",
        "report.md",
        "saved_model/saved_model.pb",
        "checkpoints/best.weights.h5",
        "plots/training_curves.png",
        "plots/confusion_matrix.png",
    ):
        assert (run_dir / name).exists(), f"missing {name}"
    assert any((run_dir / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert not (run_dir / "backup").exists(), "a finished run should leave no backup to resume"
    history = pd.read_csv(run_dir / "history.csv")
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["test_loss"])
    assert metrics["test_accuracy"] > min_accuracy, f"chance is 0.1; got {metrics['test_accuracy']}"
    assert "test_accuracy" in (run_dir / "report.md").read_text()
    return metrics


@pytest.fixture(scope="module")
def smoke_run(session_dir) -> Path:
    run_dir = session_dir / "mnist_one_device"
    result = run_cli("mnist_cnn", "train", *SMOKE, "--run-dir", str(run_dir), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir), "train must print the run folder last"
    return run_dir


def test_smoke_train_on_one_device(smoke_run):
    metrics = check_finished_run(smoke_run)
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["runtime"]["replicas"] == 1
    assert config["run"]["epochs"] == 3 and config["run"]["smoke"] is True
    assert metrics["epochs_trained"] == 3
    assert metrics["export_max_abs_diff_probabilities"] <= 1e-5


def test_smoke_train_on_two_cpu_replicas(tmp_path):
    run_dir = tmp_path / "mirrored"
    result = run_cli(
        "mnist_cnn",
        "train",
        *SMOKE,
        "--strategy",
        "mirrored",
        "--cpu-replicas",
        "2",
        "--run-dir",
        str(run_dir),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check_finished_run(run_dir)
    runtime = json.loads((run_dir / "config.json").read_text())["runtime"]
    assert runtime["strategy"] == "MirroredStrategy"
    assert runtime["replicas"] == 2 and runtime["global_batch_size"] == 128


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    run_dir = tmp_path / "killed"
    train = ("train", "--smoke", "--epochs", "4", "--batch-size", "32", "--run-dir", str(run_dir))
    process = subprocess.Popen(
        cli_command("mnist_cnn", *train),
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metadata, history = run_dir / "backup" / "training_metadata.json", run_dir / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if metadata.is_file() and history.is_file() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run must still be training when it is killed"
    assert json.loads(metadata.read_text())["epoch"] >= 1
    assert not (run_dir / "metrics.json").exists()
    before = pd.read_csv(history)

    result = run_cli("mnist_cnn", *train, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(resuming)" in result.stdout
    assert "Epoch 1/4" not in result.stdout, "the resumed run started again at epoch 0"
    assert "Epoch 4/4" in result.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_trained"] == 4
    after = pd.read_csv(run_dir / "history.csv")
    assert after["epoch"].tolist() == [0, 1, 2, 3], "each epoch once in the history"
    resumed = after[after["epoch"] == before["epoch"].max() + 1].iloc[0]
    # the weights and optimizer came back: training continues below where it started, not from scratch
    assert resumed["loss"] < before["loss"].iloc[0]
    assert after["val_accuracy"].max() >= before["val_accuracy"].max()


def test_a_finished_run_is_not_overwritten(smoke_run):
    result = run_cli("mnist_cnn", "train", *SMOKE, "--run-dir", str(smoke_run), cwd=smoke_run.parent)
    assert result.returncode == 2
    assert "holds a finished run" in result.stderr and "Traceback" not in result.stderr


def test_export_reloads_in_a_fresh_process_with_the_keras_answers(smoke_run, tmp_path):
    result = run_cli("mnist_cnn", "export", str(smoke_run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(smoke_run / "saved_model")

    import keras

    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    expected = keras.models.load_model(smoke_run / "model.keras").predict(images, verbose=0)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import numpy as np, tensorflow as tf, sys\n"
        f"sig = tf.saved_model.load({str(smoke_run / 'saved_model')!r}).signatures['serving_default']\n"
        f"out = sig(images=tf.constant(np.load({str(tmp_path / 'images.npy')!r})))\n"
        f"np.save({str(tmp_path / 'probs.npy')!r}, out['probabilities'].numpy())\n"
        f"np.save({str(tmp_path / 'digits.npy')!r}, out['digit'].numpy())\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(tmp_path), capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected, atol=1e-5)
    np.testing.assert_array_equal(np.load(tmp_path / "digits.npy"), expected.argmax(axis=1))


def test_evaluate_reproduces_the_training_metrics(smoke_run, tmp_path):
    before = json.loads((smoke_run / "metrics.json").read_text())
    result = run_cli("mnist_cnn", "evaluate", str(smoke_run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((smoke_run / "metrics.json").read_text())
    assert after["test_accuracy"] == pytest.approx(before["test_accuracy"], abs=1e-6)
    assert after["test_loss"] == pytest.approx(before["test_loss"], rel=1e-4)
    assert f"test_accuracy: {after['test_accuracy']}" in result.stdout


def test_tune_writes_best_hparams_that_train_accepts(tmp_path):
    search = tmp_path / "search"
    tune_args = (
        "tune",
        "--smoke",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--max-trials",
        "2",
        "--tuner",
        "hyperband",  # its trials carry tuner/* bookkeeping values, which best_hparams.json must not
        "--hp",
        "augment=false",  # pinned for the whole search
        "--run-dir",
        str(search),
    )
    result = run_cli("mnist_cnn", *tune_args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    best_file = search / "best_hparams.json"
    assert last_line(result.stdout) == str(best_file)
    best = json.loads(best_file.read_text())
    assert {"filters", "dense_units", "learning_rate"} <= set(best)
    assert not any(name.startswith("tuner/") for name in best)
    trials = pd.read_csv(search / "trials.csv")
    assert len(trials) == 2 and not trials["augment"].any() and best["augment"] is False

    rerun = run_cli("mnist_cnn", *tune_args, cwd=tmp_path)  # a rerun continues: no finished trial again
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "2 of 2 trials already done" in rerun.stdout
    assert len(pd.read_csv(search / "trials.csv")) == 2
    other = run_cli("mnist_cnn", *tune_args[:-2], "--seed", "1", "--run-dir", str(search), cwd=tmp_path)
    assert other.returncode == 2 and "seed: 42 -> 1" in other.stderr, "a different search in the same folder"

    run_dir = tmp_path / "tuned"
    train = run_cli(
        "mnist_cnn",
        "train",
        "--smoke",
        "--epochs",
        "1",
        "--hparams",
        str(best_file),
        "--run-dir",
        str(run_dir),
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    used = json.loads((run_dir / "hparams.json").read_text())
    assert {k: used[k] for k in best} == best


def draw_digit(
    text: str, size: tuple[int, int], dark_on_light: bool, colour: bool, offset=(0, 0)
) -> np.ndarray:
    background, ink = (235, 20) if dark_on_light else (10, 250)
    image = np.full((*size, 3) if colour else size, background, np.uint8)
    scale = min(size) / 40
    origin = (size[1] // 3 + offset[0], size[0] * 3 // 4 + offset[1])
    cv2.putText(
        image,
        text,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (ink,) * 3 if colour else ink,
        max(1, int(scale * 2.5)),
        cv2.LINE_AA,
    )
    return image


def test_predict_answers_good_files_and_names_bad_ones(smoke_run, tmp_path):
    good = tmp_path / "seven.png"
    cv2.imwrite(str(good), draw_digit("7", (120, 100), True, True))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((40, 40), 255, np.uint8))
    missing = tmp_path / "missing.png"
    result = run_cli(
        "mnist_cnn",
        "predict",
        str(smoke_run),
        str(good),
        str(text),
        str(empty),
        str(blank),
        str(missing),
        cwd=tmp_path,
    )
    assert result.returncode == 1, "some files failed: the exit code says so"
    answers = [line for line in result.stdout.splitlines() if line.startswith(str(good))]
    assert len(answers) == 1 and " (p=" in answers[0]
    errors = result.stderr.strip().splitlines()
    for bad, reason in (
        (text, "not an image"),
        (empty, "not an image"),
        (blank, "no digit"),
        (missing, "no such file"),
    ):
        assert any(line.startswith(f"error: {bad}: ") and reason in line for line in errors), (bad, errors)
    assert "Traceback" not in result.stderr


def test_predict_without_a_saved_model_is_a_clear_error(tmp_path):
    result = run_cli("mnist_cnn", "predict", str(tmp_path), str(REPO / "README.md"), cwd=tmp_path)
    assert result.returncode == 2 and "has no saved_model" in result.stderr


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(smoke_run, tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    check_served_like_in_process(smoke_run, "mnist_cnn", {"images": images}, cwd=tmp_path)


def test_concurrent_requests_batched_by_the_server_get_their_unbatched_answers(smoke_run, tmp_path):
    """The server joins them into batches; TensorFlow's CPU kernels may sum in another order at another
    batch size, so the probabilities agree to float32 rounding, and every digit is the same."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.serving_helpers import call_in_process

    images = np.random.default_rng(6).integers(0, 256, (48, 28, 28), dtype=np.uint8)
    alone = [
        call_in_process(smoke_run / "saved_model", "serving_default", {"images": images[i : i + 1]})
        for i in range(48)
    ]
    args = ("--model", f"mnist_cnn={smoke_run}", "--batch-max-size", "16", "--batch-timeout-ms", "20")
    with running_server(*args, cwd=tmp_path) as (url, _, _):
        with ThreadPoolExecutor(48) as pool:
            replies = list(
                pool.map(
                    lambda i: request(
                        f"{url}/v1/models/mnist_cnn:predict", {"instances": images[i : i + 1].tolist()}
                    ),
                    range(48),
                )
            )
        for (status, reply), expected in zip(replies, alone, strict=True):
            assert status == 200, reply
            np.testing.assert_allclose(
                reply["predictions"][0]["probabilities"], expected["probabilities"][0], atol=1e-6
            )
            assert reply["predictions"][0]["digit"] == expected["digit"][0]
        metrics = request_text(f"{url}/metrics")
        calls = float(metrics.split('serving_batch_size_count{model="mnist_cnn"} ')[1].split()[0])
        assert calls < 48  # fewer model calls than requests: they were joined


def request_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


def test_export_serving_dir_writes_tf_servings_layout_that_the_server_serves(smoke_run, tmp_path):
    models = tmp_path / "models"
    result = run_cli("mnist_cnn", "export", str(smoke_run), "--serving-dir", str(models), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(models / "mnist_cnn" / "1")
    assert (models / "mnist_cnn" / "1" / "saved_model.pb").is_file()
    assert "base_path: '/models/mnist_cnn'" in (models / "models.config").read_text()
    taken = run_cli(
        "mnist_cnn", "export", str(smoke_run), "--serving-dir", str(models), "--version", "1", cwd=tmp_path
    )
    assert taken.returncode == 2 and "versions are never overwritten" in taken.stderr
    with running_server("--model-base-path", str(models), cwd=tmp_path) as (url, _, _):
        status, reply = request(
            f"{url}/v1/models/mnist_cnn/versions/1:predict", {"instances": [[[0] * 28] * 28]}
        )
        assert status == 200 and len(reply["predictions"][0]["probabilities"]) == 10


def test_the_page_classifies_a_drawn_digit_and_a_dropped_file_like_the_rest_api(smoke_run, tmp_path):
    """In headless Chromium: a stroke of a 7 drawn on the canvas, then an image file chosen; the page shows
    what :predict answers for the page's own request, and makes MNIST's form as predict.py does."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests import browser

    def shown_matches_reply(count: int) -> np.ndarray:
        exchange = browser.settled(driver, count)[-1]
        reply = browser.same_reply_from_the_api(url, exchange)["predictions"][0]
        browser.wait_for(lambda: browser.text_of(driver, "#answer") == str(reply["digit"]), "the answer")
        shown = [float(v.text) for v in driver.find_elements(By.CSS_SELECTOR, "#bars .value")]
        np.testing.assert_allclose(shown, reply["probabilities"], atol=5e-4)
        return np.array(exchange["request"]["instances"][0])

    seven = tmp_path / "seven.png"
    cv2.imwrite(str(seven), draw_digit("7", (120, 100), True, True))
    (tmp_path / "notes.png").write_text("not an image")
    with browser.served_page("mnist_cnn", smoke_run, tmp_path) as (driver, url):
        pad = driver.find_element(By.ID, "pad")
        stroke = ActionChains(driver).move_to_element_with_offset(pad, -80, -90).click_and_hold()
        stroke.move_by_offset(160, 0).move_by_offset(-70, 180).release().perform()
        drawn = shown_matches_reply(1)
        assert drawn.shape == (28, 28) and drawn.max() > 200 and drawn[:3].max() < 60
        browser.screenshot(driver, "mnist_cnn")
        driver.find_element(By.ID, "file").send_keys(str(seven))
        sent = shown_matches_reply(len(browser.exchanges(driver)) + 1)
        expected = to_mnist(cv2.imread(str(seven), cv2.IMREAD_GRAYSCALE)).astype(float)
        assert np.corrcoef(sent.ravel(), expected.ravel())[0, 1] > 0.9, "the page's MNIST form differs"
        driver.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.png"))
        assert "notes.png is not an image" in browser.error_shown(driver)
        driver.find_element(By.ID, "clear").click()
        assert browser.text_of(driver, "#answer") == "-"
        browser.labelled(driver)
        browser.on_a_phone(driver, "mnist_cnn")


def test_the_run_folder_is_all_the_model_needs(smoke_run, tmp_path):
    check_run_folder_is_all_it_needs("mnist_cnn", smoke_run, tmp_path)
