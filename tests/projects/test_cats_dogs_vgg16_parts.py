"""cats_dogs_vgg16 without its command line: the splits of both datasets, the bad files skipped, the weights
and data errors, the options checked before any data is read, and the two training phases (each trains
only its layers; a run killed in phase 2 resumes in it). VGG16 with random weights at 32x32 pixels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from projects.cats_dogs_vgg16 import PROJECT, data, model, weights
from shared import options
from shared.config import RunConfig, UserError
from shared.hparams import hyperparameters
from shared.project import Splits
from tests.conftest import run_cli

PER_CLASS = {"train": 40, "validation": 12}
# what build_model reads: the image size and the weights (random), no images
SMALL_SPLITS = Splits(None, None, None, info={"weights": "none"}, state=data.PetsState(image_size=32))
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


def test_test_split_is_the_second_half_of_validation(tmp_path):
    entries = list(data.filtered_entries(make_filtered_zip(tmp_path)))
    held_out = {split: {name for s, _, name, _ in entries if s == split} for split in ("validation", "test")}
    assert not held_out["validation"] & held_out["test"]
    cats = sorted(n for n in held_out["validation"] | held_out["test"] if "/cats/" in n)
    assert set(cats[: len(cats) // 2]) <= held_out["validation"]
    assert set(cats[len(cats) // 2 :]) <= held_out["test"]


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
    hp = hyperparameters({"feature_epochs": 1, "fine_tune_blocks": 1})
    classifier = model.build_model(hp, SMALL_SPLITS)
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
    cfg = RunConfig(project="cats_dogs_vgg16", data_dir=str(tmp_path), options={"weights": "none"})
    with pytest.raises(UserError, match=r"cats_and_dogs_filtered\.zip not found: looked for"):
        data.load(cfg)
    (tmp_path / "cats_and_dogs").mkdir()
    (tmp_path / "cats_and_dogs" / "cats_and_dogs_filtered.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="is not a readable zip file"):
        data.load(cfg)


def test_bad_options_are_refused_before_any_data_is_read(tmp_path):
    with pytest.raises(UserError, match="--image-size must be 32-512"):
        data.Options(image_size=16)
    with pytest.raises(UserError, match="--dataset must be one of filtered, full; got 'all'"):
        data.Options(dataset="all")
    with pytest.raises(UserError, match="--image-size must be 32-512"):  # a config.json edited by hand
        data.load(RunConfig(project="cats_dogs_vgg16", options={"image_size": 16}))
    # no dataset in the working folder: a check made after reading would name the missing zip instead
    for args, message in (
        (("--image-size", "16"), "--image-size must be 32-512 (VGG16 needs at least 32); got 16"),
        (
            ("--lr-schedule", "cosine"),  # the phases set the rate: the runner refuses a schedule
            "cats_dogs_vgg16 sets its own learning rates, which a schedule would overwrite; "
            "use --lr-schedule constant (got cosine)",
        ),
    ):
        result = run_cli("cats_dogs_vgg16", "train", *args, "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert not (tmp_path / "r").exists()


class KilledAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("killed")


def test_a_run_killed_in_phase_2_resumes_in_phase_2(tmp_path):
    images = data.draw_pets(np.arange(32) % 2, 32, np.random.default_rng(0))
    labels = np.arange(32) % 2

    def fit(callbacks):
        keras.utils.set_random_seed(0)
        classifier = model.build_model(hyperparameters({"feature_epochs": 1}), SMALL_SPLITS)
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
    cfg = RunConfig(project="x", data_dir=str(tmp_path / "zipped"), options=options)
    info = data.load(cfg).info
    assert info["skipped_images"] == 2 and sorted(info["skipped_files"]) == ["Cat/666.jpg", "Dog/Thumbs.db"]
    assert info["train_size"] + info["validation_size"] + info["test_size"] == 60


def test_smoke_needs_no_weights_file():
    from shared.cli import build_parser, config_from_args

    for command in ("train", "tune"):
        cfg = config_from_args(PROJECT, build_parser(PROJECT).parse_args([command, "--smoke"]))
        assert weights.chosen(options.read(data.Options, cfg).weights, cfg.smoke) == "none", command
    assert weights.chosen(None, smoke=True) == "none"
    assert weights.chosen(None, smoke=False) == "imagenet"
    assert weights.chosen("imagenet", smoke=True) == "imagenet"


def test_a_dog_past_the_sigmoids_precision_still_has_a_heat_map():
    """p(dog) rounds to 1.0 and its gradient to 0: the map comes from the logit's gradient, not all zeros."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    network = model.build_network(32, None, units=8, dropout=0.0)
    network.get_layer("dog_probability").bias.assign([100.0])
    images = tf.constant(data.draw_pets(np.array([1, 1]), 32, np.random.default_rng(0)))
    probe = model.grad_cam_probe(network)
    with tf.GradientTape() as tape:
        features, _, probability = probe(images, training=False)
    assert (probability.numpy() == 1.0).all() and not tape.gradient(probability, features).numpy().any()
    heatmap, _ = model.grad_cam(probe, images)
    assert (heatmap.numpy().max(axis=(1, 2)) == 1).all(), heatmap
