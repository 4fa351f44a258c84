"""mnist_cnn's bad inputs (a missing or cut-short dataset, unknown hyperparameters, an uneven global batch),
its determinism, and the preprocessing that makes any photo of a digit look like MNIST."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from projects.mnist_cnn.predict import to_mnist
from tests.conftest import run_cli
from tests.projects.test_mnist_cnn import draw_digit


def test_missing_dataset_offline_names_the_path(tmp_path):
    data_dir = tmp_path / "empty"
    result = run_cli(
        "mnist_cnn", "train", "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "r"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert str(data_dir / "mnist" / "mnist.npz") in result.stderr
    assert "--smoke" in result.stderr and "Traceback" not in result.stderr


def test_unknown_hparam_and_indivisible_global_batch_are_clear_errors(tmp_path):
    unknown = run_cli(
        "mnist_cnn",
        "train",
        "--smoke",
        "--epochs",
        "1",
        "--hp",
        "filtres=8",
        "--run-dir",
        str(tmp_path / "a"),
        cwd=tmp_path,
    )
    assert unknown.returncode == 2 and "unknown hyperparameter(s) filtres" in unknown.stderr
    uneven = run_cli(
        "mnist_cnn",
        "train",
        "--smoke",
        "--epochs",
        "1",
        "--strategy",
        "mirrored",
        "--cpu-replicas",
        "2",
        "--global-batch-size",
        "65",
        "--run-dir",
        str(tmp_path / "b"),
        cwd=tmp_path,
    )
    assert uneven.returncode == 2
    assert "global batch 65 does not divide across 2 replicas" in uneven.stderr
    assert "Traceback" not in uneven.stderr + unknown.stderr


def test_the_same_seed_gives_the_same_run(tmp_path):
    def history(seed: str, name: str) -> pd.DataFrame:
        args = ("train", "--smoke", "--epochs", "1", "--deterministic", "--seed", seed, "--run-dir")
        result = run_cli("mnist_cnn", *args, str(tmp_path / name), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return pd.read_csv(tmp_path / name / "history.csv")[["loss", "val_loss", "accuracy", "val_accuracy"]]

    first, again, other = history("7", "a"), history("7", "b"), history("8", "c")
    pd.testing.assert_frame_equal(first, again)
    assert first["loss"].iloc[0] != other["loss"].iloc[0], "another seed should train differently"


def test_a_corrupt_dataset_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    buffer = tmp_path / "full.npz"
    arrays = {
        k: np.zeros(s, np.uint8)
        for k, s in (("x_train", (8, 28, 28)), ("y_train", (8,)), ("x_test", (4, 28, 28)), ("y_test", (4,)))
    }
    np.savez_compressed(buffer, **arrays)
    (folder / "mnist.npz").write_bytes(buffer.read_bytes()[:300])  # a download cut short
    result = run_cli(
        "mnist_cnn",
        "train",
        "--data-dir",
        str(tmp_path / "data"),
        "--run-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert f"{folder / 'mnist.npz'} is not a readable MNIST npz" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists(), "a failed start leaves no run folder behind"


def test_preprocessing_makes_any_image_look_like_mnist():
    light = to_mnist(cv2.cvtColor(draw_digit("7", (300, 240), True, True, (30, -20)), cv2.COLOR_BGR2GRAY))
    dark = to_mnist(draw_digit("7", (60, 50), False, False))
    for image in (light, dark):
        assert image.shape == (28, 28) and image.dtype == np.uint8
        assert image[:3].max() < 60 and image[:, :3].max() < 60, "the digit must sit inside a dark frame"
        rows, _cols = np.nonzero(image > 50)
        assert 16 <= rows.max() - rows.min() + 1 <= 21, "the digit's box must fit 20x20, as in MNIST"
        assert abs(np.average(np.arange(28), weights=image.sum(1)) - 14) < 1.5
    assert np.corrcoef(light.ravel(), dark.ravel())[0, 1] > 0.8
