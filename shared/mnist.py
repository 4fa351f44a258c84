"""MNIST from `<data-dir>/mnist/mnist.npz` (checked), and look-alike digits drawn with OpenCV fonts for
tests and `--smoke` runs: a learnable 10-class task of the same shape that needs no download."""

from __future__ import annotations

import zipfile
import zlib

import cv2
import numpy as np

from shared.config import RunConfig, UserError
from shared.data import RemoteFile, locate

MNIST = RemoteFile(
    dataset="mnist",
    filename="mnist.npz",
    url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
)
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)


def load_arrays(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from `<data-dir>/mnist/mnist.npz`, checked for shape and type."""
    path = locate(MNIST, cfg.resolved_data_dir())
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = tuple(f[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise UserError(
            f"{path} is not a readable MNIST npz (keys x_train, y_train, x_test, y_test): {e}. "
            "Delete it and download it again, or replace it with a good copy."
        ) from e
    x_train, y_train, x_test, y_test = arrays
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8 or len(x) != len(y):
            raise UserError(
                f"{path}: {name} images must be uint8 [N, 28, 28] with N labels; got {x.dtype} {x.shape}"
            )
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise UserError(f"{path}: {name} labels must be digits 0-9; found {y.min()} to {y.max()}")
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def render_digits(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White digits drawn in random fonts, sizes and places on black 28x28 images, plus a little noise."""
    images = np.zeros((len(labels), 28, 28), np.uint8)
    for image, label in zip(images, labels, strict=True):
        font, scale, thickness = (
            FONTS[rng.integers(len(FONTS))],
            rng.uniform(0.65, 0.95),
            int(rng.integers(1, 3)),
        )
        (width, height), _ = cv2.getTextSize(str(label), font, scale, thickness)
        origin = ((28 - width) // 2 + int(rng.integers(-3, 4)), (28 + height) // 2 + int(rng.integers(-3, 4)))
        cv2.putText(image, str(label), origin, font, scale, 255, thickness, cv2.LINE_AA)
    noise = rng.integers(0, 40, images.shape, dtype=np.uint8)
    return np.maximum(images, noise)
