"""cats_dogs_vgg16 on its command line: one run on 2 CPU replicas from a data folder with bad files in it
(both phases, the bytes-in SavedModel and its gradcam signature), predict's bad inputs, evaluate without
the weights file, serving and the page. VGG16 with --weights none at 32x32 pixels: no download, a few
seconds an epoch."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from projects.cats_dogs_vgg16 import PROJECT, data, export
from shared import trained as run_folder
from tests.browser import (
    error_shown,
    exchanges,
    labelled,
    on_a_phone,
    same_reply_from_the_api,
    screenshot,
    served_page,
    text_of,
    wait_for,
)
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.projects.test_cats_dogs_vgg16_parts import BAD_FILES, make_filtered_zip, pets
from tests.serving_helpers import b64, check_served_like_in_process, request, running_server


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """One run on 2 CPU replicas from a data folder with three bad files: 2 epochs of each phase."""
    root = tmp_path_factory.mktemp("cats_dogs")
    make_filtered_zip(root / "data")
    run_dir = root / "run"
    result = run_cli(
        "cats_dogs_vgg16",
        "train",
        *("--data-dir", str(root / "data"), "--weights", "none", "--image-size", "32"),
        *("--epochs", "4", "--hp", "feature_epochs=2", "--batch-size", "16"),
        *("--strategy", "mirrored", "--cpu-replicas", "2", "--run-dir", str(run_dir)),
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return root, run_dir


def test_bad_files_are_skipped_and_counted_and_the_splits_kept_apart(trained):
    _, run_dir = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["skipped_images"] == 3
    assert sorted(metrics["data"]["skipped_files"]) == sorted(
        [*BAD_FILES, "cats_and_dogs_filtered/train/dogs/dog.truncated.jpg"]
    )
    # validation/ is halved per class in name order: 6 + 6 validate, 6 + 6 test (the text file, last of
    # the cats, fell in the test half)
    assert metrics["data"]["train_size"] == 80
    assert metrics["data"]["test_size"] == 12 and metrics["data"]["test_dogs"] == 6
    assert metrics["data"]["validation_size"] == 12
    assert metrics["test_accuracy"] >= 0.9, metrics  # stripes: an easy task, even from random features
    assert metrics["export_max_abs_diff_dog_probability"] <= 1e-5
    assert metrics["export_max_abs_diff_label"] == 0.0
    for plot in (
        "phases.png",
        "grad_cam.png",
        "confusion_matrix.png",
        "roc_curve.png",
        "training_curves.png",
    ):
        assert (run_dir / "plots" / plot).is_file(), plot


def test_the_run_folder_keeps_the_image_size_and_the_test_files_each_export_is_checked_with(trained):
    import tensorflow as tf

    _, run_dir = trained
    kept = run_folder.load(PROJECT, run_dir)
    assert kept.state == data.PetsState(image_size=32)
    files = kept.examples["image_bytes"]  # JPEGs and a PNG, as a client sends them
    assert len(files) == export.EXAMPLES and files[0][:2] == b"\xff\xd8" and files[-1][:4] == b"\x89PNG"
    for file in files:  # whole: the .npz's fixed-width bytes lost nothing that decoding needs
        assert data.decode_image(tf.constant(file), 32).shape == (32, 32, 3)
    page = json.loads((run_dir / "saved_model" / "assets.extra" / "page.json").read_text())
    assert page["image_size"] == 32


def test_both_phases_are_in_the_history(trained):
    history = pd.read_csv(trained[1] / "history.csv")
    assert history["phase"].tolist() == [1, 1, 2, 2]
    assert np.allclose(history["learning_rate"], [1e-3, 1e-3, 1e-5, 1e-5])


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixels never follow)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_predict_answers_good_files_and_names_each_bad_one(trained):
    root, run_dir = trained
    folder = root / "predict"
    folder.mkdir()
    cat, dog = pets(0, 1, seed=7)[0], pets(1, 1, seed=8)[0]
    files = {
        "cat.jpg": cat,
        "dog.png": None,  # written below as a PNG
        "empty.jpg": b"",
        "notes.jpg": b"hello",
        "truncated.jpg": dog[: len(dog) // 2],
        "huge.png": png_header(8000, 6000),
    }
    for name, content in files.items():
        if content is not None:
            (folder / name).write_bytes(content)
    import cv2

    cv2.imwrite(str(folder / "dog.png"), cv2.imdecode(np.frombuffer(dog, np.uint8), cv2.IMREAD_COLOR))
    paths = [str(folder / name) for name in files] + [str(folder / "missing.jpg")]
    result = run_cli("cats_dogs_vgg16", "predict", str(run_dir), *paths, cwd=root)
    assert result.returncode == 1, result.stderr[-2000:]
    answers = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert answers[str(folder / "cat.jpg")].startswith("cat (p(dog)=")
    assert answers[str(folder / "dog.png")].startswith("dog (p(dog)=")
    errors = result.stderr
    assert f"{folder / 'empty.jpg'}: empty file" in errors
    assert f"{folder / 'notes.jpg'}: not an image file" in errors
    assert f"{folder / 'truncated.jpg'}: truncated or corrupt JPEG" in errors
    assert f"{folder / 'huge.png'}: 8000x6000 pixels is over" in errors
    assert f"{folder / 'missing.jpg'}: no such file" in errors


def test_evaluate_reloads_a_finished_run_without_the_weights_file(trained):
    root, run_dir = trained
    before = json.loads((run_dir / "metrics.json").read_text())
    result = run_cli("cats_dogs_vgg16", "evaluate", str(run_dir), cwd=root, KERAS_HOME=str(root / "empty"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipping variable loading for optimizer" not in result.stderr
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["test_accuracy"] == before["test_accuracy"]


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process_and_huge_photos_refused(trained):
    import cv2

    root, run_dir = trained
    photos = [*pets(0, 1, seed=21), *pets(1, 1, seed=22)]
    photos.append(cv2.imencode(".png", np.full((30, 50, 3), 200, np.uint8))[1].tobytes())
    inputs = {"image_bytes": np.array(photos, dtype=object)}
    check_served_like_in_process(run_dir, "cats_dogs_vgg16", inputs, cwd=root)
    with running_server("--model", f"pets={run_dir}", cwd=root) as (url, _, _):
        for photo, message in (
            (png_header(8000, 6000), "the image is 8000x6000, 48.0 megapixels; at most 40 are accepted"),
            (photos[0][:100], "not a readable image file"),
        ):
            status, reply = request(
                f"{url}/v1/models/pets:predict", {"instances": [b64(photos[1]), b64(photo)]}
            )
            assert status == 400 and reply["error"].startswith("input 'image_bytes', example 1: "), reply
            assert message in reply["error"]


def test_gradcam_signature_answers_like_serving_default_with_the_papers_heat_map(trained):
    """The exported `gradcam` signature: serving_default's answers, and heat maps equal to Grad-CAM computed
    here by the paper's recipe (the probability's gradient), on block5_conv3's 2x2 grid (32 / 16)."""
    import tensorflow as tf

    _, run_dir = trained
    files = [*pets(0, 3, seed=41), *pets(1, 3, seed=42)]
    saved = tf.saved_model.load(str(run_dir / "saved_model"))
    served = saved.signatures["serving_default"](image_bytes=tf.constant(files))
    explained = saved.signatures["gradcam"](image_bytes=tf.constant(files))
    np.testing.assert_array_equal(explained["dog_probability"], served["dog_probability"])
    np.testing.assert_array_equal(explained["label"], served["label"])
    heatmap = explained["heatmap"].numpy()
    assert heatmap.dtype == np.float32 and heatmap.shape == (6, 2, 2)
    assert heatmap.min() >= 0 and heatmap.max() <= 1

    network = keras.models.load_model(run_dir / "model.keras", compile=False).network
    probe = keras.Model(network.inputs, [network.get_layer("block5_conv3").output, network.output])
    with tf.GradientTape() as tape:
        features, probability = probe(tf.stack([data.decode_image(f, 32) for f in files]), training=False)
        score = tf.where(probability >= 0.5, probability, 1 - probability)
    gradients = tape.gradient(score, features).numpy()
    assert (np.abs(gradients).max(axis=(1, 2, 3)) > 0).all(), "each image has a gradient to map"
    maps = np.maximum((features.numpy() * gradients.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    peak = maps.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(
        heatmap, np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0), atol=1e-5
    )
    assert (heatmap.max(axis=(1, 2)) == 1).all() and (heatmap.min(axis=(1, 2)) < 1).all(), heatmap


def jet(value: float) -> np.ndarray:
    """The page's colour map (heatmap.js), 0-255."""
    return np.round(255 * np.clip(1.5 - np.abs(4 * np.clip(value, 0, 1) - np.array([3, 2, 1])), 0, 1))


def upsampled(grid: np.ndarray, width: int, height: int, x: int, y: int) -> float:
    """The grid's value at pixel (x, y) of a width x height image: bilinear between cell centres."""
    gy = np.clip((y + 0.5) * grid.shape[0] / height - 0.5, 0, grid.shape[0] - 1)
    gx = np.clip((x + 0.5) * grid.shape[1] / width - 0.5, 0, grid.shape[1] - 1)
    y0, x0 = int(gy), int(gx)
    y1, x1 = min(y0 + 1, grid.shape[0] - 1), min(x0 + 1, grid.shape[1] - 1)
    top = grid[y0, x0] * (1 - (gx - x0)) + grid[y0, x1] * (gx - x0)
    bottom = grid[y1, x0] * (1 - (gx - x0)) + grid[y1, x1] * (gx - x0)
    return top * (1 - (gy - y0)) + bottom * (gy - y0)


CANVAS_PIXELS = """const c = document.getElementById('view');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
const rgb = ([x, y]) => [...d.slice(4 * (y * c.width + x), 4 * (y * c.width + x) + 3)];
return [c.width, c.height, arguments[0].map(rgb)];"""


def check_the_canvas(driver, heatmap: np.ndarray, width: int, height: int) -> None:
    """The photo at its own size, and over it the heat map in jet colours at opacity 0.45: taking the photo
    alone (the overlay switched off) out of the blend leaves the colour of the upsampled map at each pixel."""
    from selenium.webdriver.common.by import By

    points = [(x, y) for y in range(2, height, 9) for x in range(3, width, 11)]
    size_x, size_y, blended = driver.execute_script(CANVAS_PIXELS, points)
    assert (size_x, size_y) == (width, height)
    switch = driver.find_element(By.ID, "overlay")
    switch.click()
    _, _, photo = driver.execute_script(CANVAS_PIXELS, points)
    switch.click()
    blended, photo = np.array(blended, float), np.array(photo, float)
    assert photo.std() > 10, "the photo is drawn"
    heat = (blended - 0.55 * photo) / 0.45
    expected = np.array([jet(upsampled(heatmap, width, height, x, y)) for x, y in points])
    assert np.abs(heat - expected).max() <= 8, np.abs(heat - expected).max()


def check_the_answer(driver, url: str, photo: Path, count: int) -> None:
    """The page's answer, probability and heat map are the REST API's for the page's own request."""
    from selenium.webdriver.common.by import By

    result = driver.find_element(By.ID, "result")
    wait_for(
        lambda: len(exchanges(driver)) == count and result.is_displayed(), f"the answer for {photo.name}"
    )
    exchange = exchanges(driver)[-1]
    assert exchange["request"]["signature_name"] == "gradcam"
    assert b64(photo.read_bytes()) == exchange["request"]["instances"][0], "the file is sent as it is"
    prediction = same_reply_from_the_api(url, exchange)["predictions"][0]
    label, dog = prediction["label"], prediction["dog_probability"]
    assert text_of(driver, "#answer") == label
    assert float(text_of(driver, "#probability")) == pytest.approx(
        dog if label == "dog" else 1 - dog, abs=5e-4
    )
    heatmap = np.array(prediction["heatmap"])
    assert heatmap.shape == (2, 2) and heatmap.max() == 1
    check_the_canvas(driver, heatmap, 150, 100)


def test_page_shows_the_answer_and_where_the_model_looked(trained, tmp_path):
    import cv2
    from selenium.webdriver.common.by import By

    root, run_dir = trained
    photos = {"dog.jpg": 1, "cat.png": 0}  # 150x100 photos: not the model's square, not its size
    for name, label in photos.items():
        image = data.draw_pets(np.array([label]), 48, np.random.default_rng(label + 50))[0]
        wide = cv2.resize(image, (150, 100), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    (tmp_path / "photo.jpg").write_text("a shopping list, not a photo")
    (tmp_path / "huge.png").write_bytes(png_header(8000, 6000))
    with served_page("cats_dogs_vgg16", run_dir, root) as (driver, url):
        upload = driver.find_element(By.ID, "file")
        upload.send_keys(str(tmp_path / "dog.jpg"))
        check_the_answer(driver, url, tmp_path / "dog.jpg", 1)
        for bad, message in (("photo.jpg", "not a readable image file"), ("huge.png", "48.0 megapixels")):
            upload.send_keys(str(tmp_path / bad))
            assert message in error_shown(driver)
            assert not driver.find_element(By.ID, "result").is_displayed(), "no answer beside the error"
        upload.send_keys(str(tmp_path / "cat.png"))
        check_the_answer(driver, url, tmp_path / "cat.png", 2)
        assert not driver.find_element(By.ID, "error").is_displayed()
        labelled(driver)
        screenshot(driver, "cats_dogs_vgg16")
        on_a_phone(driver, "cats_dogs_vgg16")


def test_the_run_folder_is_all_the_model_needs(trained, tmp_path):
    check_run_folder_is_all_it_needs("cats_dogs_vgg16", trained[1], tmp_path)
