"""`predict RUN_DIR a.png b.jpg ...`: the digit in any image file, through the exported SavedModel.

Photos and scans are turned into MNIST's form the way MNIST itself was made: grey, a bright digit on a dark
background, the digit scaled to fit 20x20 and centred by its centre of mass in a 28x28 frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from shared.cli import read_each
from shared.export import saved_model_of, serve_saved_model


class ImageError(ValueError):
    """One input file could not be turned into a digit image."""


def to_mnist(image: np.ndarray) -> np.ndarray:
    """A grey uint8 image of one digit, any size or background -> MNIST-style uint8 [28, 28]."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if np.median(border) > 127:  # dark digit on a light background: MNIST digits are light on black
        image = 255 - image
    threshold, mask = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0 or image.max() - image.min() < 30:
        raise ImageError("no digit found (the image is blank or has almost no contrast)")
    digit = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    digit = np.clip((digit - threshold / 2) * 255.0 / max(1.0, digit.max() - threshold / 2), 0, 255)
    scale = 20.0 / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    digit = cv2.resize(digit, size, interpolation=cv2.INTER_AREA)
    frame = np.zeros((28, 28), np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    moments = cv2.moments(frame)
    if moments["m00"] > 0:  # shift the centre of mass to the centre, as MNIST did
        shift = np.float32(
            [[1, 0, 14 - moments["m10"] / moments["m00"]], [0, 1, 14 - moments["m01"] / moments["m00"]]]
        )
        frame = cv2.warpAffine(frame, shift, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    return np.clip(frame, 0, 255).astype(np.uint8)


def read_digit(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise ImageError("no such file")
    encoded = np.fromfile(path, dtype=np.uint8)
    if encoded.size == 0:
        raise ImageError("empty file, not an image")
    # decoding from bytes: no OpenCV warnings on stderr, and any file name works
    image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)  # colour, grey, 16-bit, alpha: all 8-bit grey
    if image is None:
        raise ImageError("not an image OpenCV can read (PNG, JPEG, BMP, TIFF, WebP...)")
    return to_mnist(image)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run folder (holding saved_model/)")
    parser.add_argument("images", nargs="+", help="image files, any size, colour or grey")


def run(args: argparse.Namespace) -> int:
    saved_model = saved_model_of(Path(args.run))
    readable, failed = read_each(args.images, read_digit, ImageError)
    if readable:
        outputs = serve_saved_model(saved_model, {"images": np.stack([image for _, image in readable])})
        for (path, _), digit, probabilities in zip(
            readable, outputs["digit"], outputs["probabilities"], strict=True
        ):
            print(f"{path}: {digit} (p={probabilities[digit]:.3f})")
    return 1 if failed else 0
