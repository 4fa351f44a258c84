"""cats_dogs_vgg16 on generated stripe images: a data folder with bad files in it, both training phases,
the bytes-in SavedModel, predict's bad inputs, and the weights and data errors. VGG16 with --weights none
at 32x32 pixels: no download, a few seconds an epoch."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from projects.cats_dogs_vgg16 import data, model, weights
from shared.config import RunConfig, UserError
from tests.conftest import last_line, run_cli
from tests.serving_helpers import b64, check_served_like_in_process, request, running_server

PER_CLASS = {"train": 40, "validation": 12}
BAD_FILES = {  # member of the zip -> its bytes: every one must be skipped and counted
    "cats_and_dogs_filtered/train/cats/cat.empty.jpg": b"",
    "cats_and_dogs_filtered/validation/cats/cat.text.jpg": b"not an image at all",
}


def pets(label: int, count: int, seed: int) -> list[bytes]:
    images = data.draw_pets(np.full(count, label), 48, np.random.default_rng(seed))
    return [data.encode_jpeg(image) for image in images]


def make_filtered_zip(data_dir: Path) -> Path:
    path = data_dir / "cats_and_dogs" / "cats_and_dogs_filtered.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in PER_CLASS.items():
            for label, plural in enumerate(("cats", "dogs")):
                for i, encoded in enumerate(pets(label, count, seed=len(split) * 10 + label)):
                    archive.writestr(
                        f"cats_and_dogs_filtered/{split}/{plural}/{plural[:3]}.{i:03d}.jpg", encoded
                    )
        truncated = pets(1, 1, seed=99)[0]
        archive.writestr(
            "cats_and_dogs_filtered/train/dogs/dog.truncated.jpg", truncated[: len(truncated) // 2]
        )
        for name, content in BAD_FILES.items():
            archive.writestr(name, content)
    return path


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


def test_both_phases_are_in_the_history(trained):
    history = pd.read_csv(trained[1] / "history.csv")
    assert history["phase"].tolist() == [1, 1, 2, 2]
    assert np.allclose(history["learning_rate"], [1e-3, 1e-3, 1e-5, 1e-5])


def test_test_split_is_the_second_half_of_validation(tmp_path):
    entries = list(data.filtered_entries(make_filtered_zip(tmp_path)))
    held_out = {split: {name for s, _, name, _ in entries if s == split} for split in ("validation", "test")}
    assert not held_out["validation"] & held_out["test"]
    cats = sorted(n for n in held_out["validation"] | held_out["test"] if "/cats/" in n)
    assert set(cats[: len(cats) // 2]) <= held_out["validation"]
    assert set(cats[len(cats) // 2 :]) <= held_out["test"]


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


class Recorder(keras.callbacks.Callback):
    """Copies of every weight and the trainable flags, at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.weights, self.trainable = [], []

    def on_epoch_end(self, epoch, logs=None):
        network = self.model.network
        self.weights.append({w.path: np.array(w) for w in network.weights})
        self.trainable.append({layer.name: layer.trainable for layer in network.layers})


def test_each_phase_trains_only_its_layers():
    keras.utils.set_random_seed(0)
    splits = type("S", (), {"info": {"image_size": 32, "weights": "none"}})()
    hp = keras_tuner_values(feature_epochs=1, fine_tune_blocks=1)
    classifier = model.build_model(hp, splits)
    before = {w.path: np.array(w) for w in classifier.network.weights}
    images = data.draw_pets(np.arange(32) % 2, 32, np.random.default_rng(0))
    recorder = Recorder()
    classifier.fit(images, np.arange(32) % 2, epochs=2, batch_size=16, verbose=0, callbacks=[recorder])

    def changed(a: dict, b: dict, prefix: str) -> bool:
        names = [n for n in a if n.startswith(prefix)]
        assert names, prefix
        return any(not np.array_equal(a[n], b[n]) for n in names)

    after_phase_1, after_phase_2 = recorder.weights
    assert changed(before, after_phase_1, "head_dense")
    for block in range(1, 6):  # phase 1: the whole base frozen
        assert not changed(before, after_phase_1, f"block{block}_conv")
    assert changed(after_phase_1, after_phase_2, "block5_conv")  # phase 2: the last block learns
    for block in range(1, 5):
        assert not changed(after_phase_1, after_phase_2, f"block{block}_conv")
    assert not recorder.trainable[0]["block5_conv3"] and recorder.trainable[1]["block5_conv3"]
    assert not recorder.trainable[1]["block4_conv3"]
    # phase 2 began with a fresh optimizer state, as a new optimizer would: its 2 steps are all it counts
    assert int(classifier.optimizer.iterations) == 2
    assert float(classifier.optimizer.learning_rate) == pytest.approx(1e-5)


def keras_tuner_values(**values):
    from shared.runner import hyperparameters

    return hyperparameters(values)


def test_weights_errors_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("DATA_OFFLINE", "1")
    with pytest.raises(UserError) as error:
        weights.resolve("imagenet")
    message = str(error.value)
    for part in (
        weights.FILENAME,
        weights.URL,
        weights.MD5,
        str(tmp_path / "keras" / "models"),
        "--weights none",
    ):
        assert part in message
    with pytest.raises(UserError, match="is not a file"):
        weights.resolve(str(tmp_path / "nowhere.h5"))
    assert weights.resolve("none") is None


def test_data_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_OFFLINE", "1")
    cfg = RunConfig(
        project="cats_dogs_vgg16", data_dir=str(tmp_path), lr_schedule="constant", options={"weights": "none"}
    )
    with pytest.raises(UserError, match=r"cats_and_dogs_filtered\.zip not found: looked for"):
        data.load(cfg)
    (tmp_path / "cats_and_dogs").mkdir()
    (tmp_path / "cats_and_dogs" / "cats_and_dogs_filtered.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="is not a readable zip file"):
        data.load(cfg)
    with pytest.raises(UserError, match="--lr-schedule constant"):
        data.load(RunConfig(project="cats_dogs_vgg16", data_dir=str(tmp_path), options={"weights": "none"}))
    with pytest.raises(UserError, match="--image-size must be 32-512"):
        data.load(RunConfig(project="x", lr_schedule="constant", options={"image_size": 16}))


class KilledAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("killed")


def test_a_run_killed_in_phase_2_resumes_in_phase_2(tmp_path):
    splits = type("S", (), {"info": {"image_size": 32, "weights": "none"}})()
    images = data.draw_pets(np.arange(32) % 2, 32, np.random.default_rng(0))
    labels = np.arange(32) % 2

    def fit(callbacks):
        keras.utils.set_random_seed(0)
        classifier = model.build_model(keras_tuner_values(feature_epochs=1), splits)
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
        history = classifier.fit(
            images, labels, epochs=3, batch_size=16, verbose=0, callbacks=[backup, *callbacks]
        )
        return classifier, history

    with pytest.raises(RuntimeError, match="killed"):
        fit([KilledAfter(1)])  # epochs 0 (phase 1) and 1 (phase 2) done and backed up
    recorder = Recorder()
    classifier, history = fit([recorder])
    assert history.epoch == [2], "only the epoch not yet done runs again"
    assert history.history["phase"] == [2]
    assert recorder.trainable[0]["block5_conv3"] and not recorder.trainable[0]["block4_conv3"]
    assert float(classifier.optimizer.learning_rate) == pytest.approx(1e-5)
    # restored from the backup, not reset: epoch 1's 2 steps, then epoch 2's (a reset would leave 2)
    assert int(classifier.optimizer.iterations) == 4


def test_full_petimages_splits_the_same_from_its_folder_or_its_zip(tmp_path):
    """Kaggle's layout, its Thumbs.db and an empty file included: split 80/10/10 by name, bad files
    counted; the zip and the folder it extracts to give every file the same split."""
    files = {}
    for label, kind in enumerate(("Cat", "Dog")):
        for i, encoded in enumerate(pets(label, 30, seed=label)):
            files[f"PetImages/{kind}/{i}.jpg"] = encoded
    files["PetImages/Cat/666.jpg"] = b""  # as in the real set: an empty file, and Windows' thumbnail cache
    files["PetImages/Dog/Thumbs.db"] = b"\xd0\xcf\x11\xe0 not an image"
    zipped = tmp_path / "zipped" / "cats_and_dogs"
    zipped.mkdir(parents=True)
    with zipfile.ZipFile(zipped / data.FULL.filename, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    folder = tmp_path / "folder" / "cats_and_dogs"
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)

    def splits_of(entries) -> dict[str, str]:
        return {entry.name: entry.split for entry in entries}

    from_zip = splits_of(data.full_entries(None, zipped / data.FULL.filename))
    assert from_zip == splits_of(data.full_entries(folder / data.FULL_FOLDER, None))
    assert len(from_zip) == 62 and set(from_zip.values()) == {"train", "validation", "test"}

    options = {"dataset": "full", "weights": "none", "image_size": 32}
    cfg = RunConfig(project="x", data_dir=str(tmp_path / "zipped"), lr_schedule="constant", options=options)
    info = data.load(cfg).info
    assert info["skipped_images"] == 2 and sorted(info["skipped_files"]) == ["Cat/666.jpg", "Dog/Thumbs.db"]
    assert info["train_size"] + info["validation_size"] + info["test_size"] == 60


def test_evaluate_reloads_a_finished_run_without_the_weights_file(trained):
    root, run_dir = trained
    before = json.loads((run_dir / "metrics.json").read_text())
    result = run_cli("cats_dogs_vgg16", "evaluate", str(run_dir), cwd=root, KERAS_HOME=str(root / "empty"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipping variable loading for optimizer" not in result.stderr
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["test_accuracy"] == before["test_accuracy"]


def test_smoke_needs_no_weights_file():
    from projects.cats_dogs_vgg16 import PROJECT
    from shared.cli import build_parser, config_from_args

    for command in ("train", "tune"):
        args = build_parser(PROJECT).parse_args([command, "--smoke"])
        assert weights.option(config_from_args(PROJECT, args)) == "none", command
    assert weights.option(RunConfig(project="x", smoke=True)) == "none"
    assert weights.option(RunConfig(project="x")) == "imagenet"
    assert weights.option(RunConfig(project="x", smoke=True, options={"weights": "imagenet"})) == "imagenet"


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
