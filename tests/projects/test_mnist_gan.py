"""mnist_gan on its command line: smoke training on two replicas (scores, samples, the checked export, the
fitted code shares), generate, the conditional model, the cached scoring classifier, refusals, serving
and the page."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from projects.mnist_gan import generate
from shared.config import UserError
from tests.conftest import run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.serving_helpers import check_served_like_in_process

SMOKE = ("--smoke", "--epochs", "2", "--batch-size", "64")


# --- the command line ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_replica_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gan-cli")
    run_dir = folder / "run"
    args = (*SMOKE, "--strategy", "mirrored", "--cpu-replicas", "2", "--run-dir", str(run_dir))
    # served and scored: the generator's moving average; InfoGAN's code, read off the latent vector; and
    # the discriminator's minibatch standard deviation and R1 penalty
    args = (*args, "--hp", "ema_decay=0.999", "--hp", "latent_codes=10", "--hp", "stddev_group=4")
    args = (*args, "--hp", "r1_gamma=1.0")
    result = run_cli("mnist_gan", "train", *args, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, run_dir


def test_smoke_training_on_two_replicas_writes_scores_samples_and_a_checked_export(two_replica_run):
    _, run_dir = two_replica_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in ("inception_score", "fid", "fid_real_floor", "fid_noise", "scorer_test_accuracy"):
        assert np.isfinite(metrics[name]), name
    assert metrics["fid_real_floor"] < metrics["fid_noise"]
    # the mix-separated FIDs: the real side is a subsample of the 200 test digits, too few to score
    assert metrics["fid_real_at_generated_shares_size"] <= 200
    assert metrics["fid_real_at_generated_shares"] is None
    assert 0 <= metrics["fid_at_real_shares_size"] <= 10_000 and "fid_at_real_shares" in metrics
    import pandas as pd

    # validation's in-graph FID (200 digits, the mean of two replicas') is the same measure as evaluate's
    last = pd.read_csv(run_dir / "history.csv").iloc[-1]
    assert 0.25 < last["val_fid"] / metrics["fid"] < 4, (last["val_fid"], metrics["fid"])
    assert metrics["export_max_abs_diff_images"] == 0.0  # reloaded in a fresh process: the same digits
    history = (run_dir / "history.csv").read_text().splitlines()
    assert "val_fid" in history[0] and len(history) == 3
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["epoch_001.png", "epoch_002.png"]
    assert (run_dir / "plots" / "training.gif").is_file() and (run_dir / "plots" / "samples.png").is_file()
    assert list((run_dir / "logs" / "samples").glob("events.*"))  # the grids in TensorBoard
    # the InfoGAN codes' shares, fitted to the real digits after training, are what is scored and saved
    shares = np.array(metrics["code_shares"])
    assert shares.shape == (10,) and abs(shares.sum() - 1) < 1e-6 and np.abs(shares - 0.1).max() > 1e-3
    saved = keras.models.load_model(run_dir / "model.keras")
    for generator in (saved.generator, saved.sampler):  # the trained one and its moving average
        assert np.allclose(np.asarray(generator.get_layer("code_shares").shares), shares, atol=1e-5)
    assert np.isfinite(metrics["fid_even_codes"]) and len(metrics["digit_shares_even_codes"]) == 10


def test_generate_writes_a_grid_and_single_pngs_the_same_for_the_same_seed(two_replica_run, tmp_path):
    folder, run_dir = two_replica_run
    import cv2

    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.png"
        args = ("generate", str(run_dir), "--n", "12", "--seed", "3", "--out", str(out))
        result = run_cli("mnist_gan", *args, "--out-dir", str(tmp_path / name), cwd=folder)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(cv2.imread(str(out), cv2.IMREAD_GRAYSCALE))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    other = tmp_path / "other.png"
    result = run_cli(
        "mnist_gan", "generate", str(run_dir), "--n", "12", "--seed", "4", "--out", str(other), cwd=folder
    )
    assert result.returncode == 0 and not np.array_equal(
        cv2.imread(str(other), cv2.IMREAD_GRAYSCALE), outputs[0]
    )
    singles = sorted((tmp_path / "a").glob("*.png"))
    assert len(singles) == 12 and cv2.imread(str(singles[0]), cv2.IMREAD_GRAYSCALE).shape == (28, 28)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--n", "0"), "--n must be 1 to 10000; got 0"),
        (("--digit", "7"), "--digit needs a class-conditional model"),
        (("--seed", "-1"), "--seed must be 0 or more; got -1"),
        (("--out", "grid.txt"), "--out grid.txt: give a .png"),
    ],
)
def test_generate_refuses_bad_requests(two_replica_run, args, message):
    folder, run_dir = two_replica_run
    result = run_cli("mnist_gan", "generate", str(run_dir), *args, cwd=folder)
    assert result.returncode != 0 and message in result.stderr


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gan-conditional")
    run_dir = folder / "run"
    result = run_cli("mnist_gan", "train", *SMOKE, "--conditional", "--run-dir", str(run_dir), cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_conditional_model_draws_the_digit_asked_for_and_refuses_others(conditional_run, tmp_path):
    import cv2

    from shared.export import serve_saved_model

    run_dir = conditional_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["conditional_accuracy_per_digit"]) == 10
    assert metrics["conditional_accuracy"] == pytest.approx(
        np.mean(metrics["conditional_accuracy_per_digit"])
    )

    out = tmp_path / "sevens.png"
    args = ("generate", str(run_dir), "--digit", "7", "--n", "5", "--seed", "2", "--out", str(out))
    result = run_cli("mnist_gan", *args, "--out-dir", str(tmp_path / "sevens"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    saved_model = run_dir / "saved_model"
    latent = np.random.default_rng(2).normal(size=(5, 64)).astype(np.float32)
    sevens = serve_saved_model(saved_model, {"latent": latent, "label": np.full(5, 7, np.int32)})
    singles = sorted((tmp_path / "sevens").glob("*.png"))
    written = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in singles])
    np.testing.assert_array_equal(written, sevens["images"])  # the digit asked for, not another
    ones = serve_saved_model(saved_model, {"latent": latent, "label": np.full(5, 1, np.int32)})
    assert not np.array_equal(ones["images"], sevens["images"])  # the label changes the image

    result = run_cli("mnist_gan", "generate", str(run_dir), "--digit", "12", cwd=tmp_path)
    assert result.returncode != 0 and "--digit must be 0-9; got 12" in result.stderr
    # the SavedModel checks its own inputs too: a label outside 0-9 is refused, not looked up
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be a digit 0-9"):
        serve_saved_model(saved_model, {"latent": latent[:1], "label": np.array([10], np.int32)})


def test_a_first_run_that_trains_the_scoring_classifier_trains_as_a_later_one_that_finds_it(tmp_path):
    losses, trained = [], []
    for run in ("first", "cached"):  # one working folder: the second run finds the first's classifier
        args = ("--smoke", "--epochs", "1", "--batch-size", "64", "--hp", "latent_codes=0")
        result = run_cli("mnist_gan", "train", *args, "--run-dir", str(tmp_path / run), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        trained.append("training the scoring classifier" in result.stdout)
        history = (tmp_path / run / "history.csv").read_text().splitlines()
        row = dict(zip(history[0].split(","), history[1].split(","), strict=True))
        losses.append((row["d_loss"], row["g_loss"]))
    assert trained == [True, False]
    assert losses[0] == losses[1]


def test_a_learning_rate_schedule_is_refused(tmp_path):
    args = ("--smoke", "--lr-schedule", "cosine", "--run-dir", str(tmp_path / "r"))
    result = run_cli("mnist_gan", "train", *args, cwd=tmp_path)
    assert result.returncode != 0 and "use --lr-schedule constant (got cosine)" in result.stderr


def test_request_checks():
    with pytest.raises(UserError, match="--n must be 1 to"):
        generate.check_request(20_000, None, False)
    generate.check_request(5, 3, True)


def test_missing_mnist_names_the_file(tmp_path):
    result = run_cli("mnist_gan", "train", "--epochs", "1", "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode != 0
    assert "mnist.npz" in result.stderr and str(tmp_path / "no-data") in result.stderr
    assert not (tmp_path / "r").exists()


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(two_replica_run):
    folder, run_dir = two_replica_run
    signature = tf.saved_model.load(str(run_dir / "saved_model")).signatures["serving_default"]
    latent_dim = signature.structured_input_signature[1]["latent"].shape[1]
    latent = np.random.default_rng(4).normal(size=(5, latent_dim)).astype(np.float32)
    expected = check_served_like_in_process(run_dir, "mnist_gan", {"latent": latent}, cwd=folder)
    assert expected["images"].shape == (5, 28, 28) and expected["images"].dtype == np.uint8


# --- the page ----------------------------------------------------------------------------------------

DRAWN = """return [...document.querySelectorAll('#grid canvas')].map((canvas) =>
  Array.from(canvas.getContext('2d').getImageData(0, 0, 28, 28).data).filter((_, i) => i % 4 === 0))"""


def generated_on_the_page(driver, url: str) -> dict:
    """Clicks Generate; checks the page drew, canvas pixel for pixel, what the REST API gives for the page's
    own request, and that the latents look drawn from normal(0, 1); returns the request's inputs."""
    from selenium.webdriver.common.by import By

    from tests.browser import exchanges, same_reply_from_the_api, wait_for

    sent = len(exchanges(driver))
    wait_for(lambda: driver.find_element(By.ID, "generate").is_enabled(), "the Generate button")
    driver.find_element(By.ID, "generate").click()
    exchange = wait_for(lambda: exchanges(driver)[sent:], "the generated digits")[0]
    images = np.array(same_reply_from_the_api(url, exchange)["outputs"], np.uint8)
    assert images.shape == (16, 28, 28)
    np.testing.assert_array_equal(np.array(driver.execute_script(DRAWN)).reshape(-1, 28, 28), images)
    latent = np.array(exchange["request"]["inputs"]["latent"])
    assert latent.shape[0] == 16 and abs(latent.mean()) < 0.2 and 0.8 < latent.std() < 1.2
    return exchange["request"]["inputs"]


def test_page_draws_the_digits_the_unconditional_model_generates(two_replica_run):
    from selenium.webdriver.common.by import By

    from tests.browser import labelled, screenshot, served_page, text_of

    folder, run_dir = two_replica_run
    with served_page("mnist_gan", run_dir, folder) as (driver, url):
        inputs = generated_on_the_page(driver, url)
        assert set(inputs) == {"latent"} and len(inputs["latent"][0]) == 64  # from the signature
        assert "unconditional" in text_of(driver, "#about")
        assert not driver.find_element(By.ID, "digit").is_displayed()  # no digit to choose
        again = generated_on_the_page(driver, url)
        assert again["latent"] != inputs["latent"]  # fresh latents at each click
        labelled(driver)
        screenshot(driver, "mnist_gan-unconditional")


def test_page_draws_the_digit_chosen_from_the_conditional_model(conditional_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.browser import error_shown, labelled, on_a_phone, screenshot, served_page, text_of, wait_for

    with served_page("mnist_gan", conditional_run, tmp_path) as (driver, url):
        wait_for(lambda: "class-conditional" in text_of(driver, "#about"), "the signature read")
        digit = Select(driver.find_element(By.ID, "digit"))
        digit.select_by_visible_text("7")
        assert generated_on_the_page(driver, url)["label"] == [7] * 16
        captions = driver.find_elements(By.CSS_SELECTOR, "#grid figcaption")
        assert [caption.text for caption in captions] == ["7"] * 16  # under each digit, the one asked for
        digit.select_by_value("any")
        labels = generated_on_the_page(driver, url)["label"]
        assert set(labels) <= set(range(10)) and len(set(labels)) > 1  # a random digit for each image

        # an option the page does not offer, slipped into the form: the server's refusal is shown
        driver.execute_script("document.getElementById('digit').append(new Option('12', '12'))")
        digit.select_by_value("12")
        driver.find_element(By.ID, "generate").click()
        assert "label must be a digit 0-9" in error_shown(driver)
        digit.select_by_visible_text("3")
        assert generated_on_the_page(driver, url)["label"] == [3] * 16
        assert not driver.find_element(By.ID, "error").is_displayed()
        labelled(driver)
        screenshot(driver, "mnist_gan")
        on_a_phone(driver, "mnist_gan")


def test_the_run_folder_is_all_the_model_needs(conditional_run, tmp_path):
    check_run_folder_is_all_it_needs("mnist_gan", conditional_run, tmp_path)
