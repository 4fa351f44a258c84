"""`predict RUN_DIR a.jpg b.png ...`: cat or dog for each image file, through the exported SavedModel.

The files are sent as they are (the signature decodes them). Each is checked first, so one bad file gets
its own error and the others are still answered: a missing or empty file, one that is not a JPEG, PNG,
GIF or BMP image, one too large to decode safely, and truncated or corrupt image data.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from projects.cats_dogs_vgg16.data import decode_image
from shared.cli import read_each
from shared.export import saved_model_of, serve_saved_model

# what tf.io.decode_image reads, as Pillow names them (MPO: a JPEG holding several pictures, as cameras write)
FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP", "JXL")
BATCH = 16  # files per call of the signature: a batch of 224x224 images through VGG16 takes ~0.2 GB each
MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to 120 MB; past that, resize the file first


class ImageError(ValueError):
    """One input file cannot be answered."""


def read_image_file(path: str) -> bytes:
    """The file's bytes, once they are known to decode to a picture of a sane size."""
    file = Path(path)
    if not file.is_file():
        raise ImageError("no such file")
    try:
        data = file.read_bytes()
    except OSError as e:  # a folder, no permission...
        raise ImageError(f"cannot be read ({e.strerror})") from e
    if not data:
        raise ImageError("empty file, not an image")
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height, kind = *image.size, image.format
    except Image.DecompressionBombError as e:
        raise ImageError(f"too large to decode safely ({e})") from e
    except (Image.UnidentifiedImageError, OSError) as e:
        raise ImageError("not an image file (JPEG, PNG, GIF, BMP and WebP are read)") from e
    if kind not in FORMATS:
        raise ImageError(f"a {kind} image; convert it to JPEG or PNG first")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit; resize it first")
    try:
        decode_image(tf.constant(data), 32)  # a full decode: truncated data fails here, not in the batch
    except tf.errors.InvalidArgumentError as e:
        reason = re.sub(r"\{\{.*?\}\}\s*", "", e.message).strip().splitlines()[0][:120]
        raise ImageError(f"truncated or corrupt {kind} data ({reason})") from e
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run folder (holding saved_model/)")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP, WebP), any size")


def run(args: argparse.Namespace) -> int:
    saved_model = saved_model_of(Path(args.run))
    readable, failed = read_each(args.images, read_image_file, ImageError)
    for start in range(0, len(readable), BATCH):
        chunk = readable[start : start + BATCH]
        files = np.array([data for _, data in chunk], dtype=object)  # object: bytes kept whole
        outputs = serve_saved_model(saved_model, {"image_bytes": files})
        for (path, _), label, probability in zip(
            chunk, outputs["label"], outputs["dog_probability"], strict=True
        ):
            print(f"{path}: {label.decode()} (p(dog)={probability:.3f})", flush=True)
    return 1 if failed else 0
