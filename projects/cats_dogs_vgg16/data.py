"""Cats and dogs as uint8 images: the `cats_and_dogs_filtered` subset (default) or Kaggle's full PetImages.

Every file is decoded and resized once, by `decode_image`, the same TensorFlow function the SavedModel runs
for a client, so training and serving see the same pixels; the images then stay in memory as uint8 (the
cache after decoding). A file TensorFlow cannot decode (empty, truncated, not an image) is skipped and
counted, never fatal: `metrics.json` has `skipped_images` and names the first few files.

Splits, so the test number never chose an epoch, a trial or a threshold:
- filtered: `train/` trains (2,000); `validation/` is halved per class in file-name order: the first
  half validates (500), the second half tests (500).
- full: PetImages/{Cat,Dog}, 80 / 10 / 10 by a stable hash of the file name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import tensorflow as tf

from projects.cats_dogs_vgg16 import weights
from shared import options
from shared.config import RunConfig, UserError
from shared.data import RemoteFile, locate
from shared.options import option
from shared.project import Splits

CLASS_NAMES = ("cat", "dog")
FILTERED = RemoteFile(
    "cats_and_dogs",
    "cats_and_dogs_filtered.zip",
    url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
)
FULL = RemoteFile(
    "cats_and_dogs",
    "kagglecatsanddogs_5340.zip",
    url="https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
    "kagglecatsanddogs_5340.zip",
)
FULL_FOLDER = "PetImages"  # <data-dir>/cats_and_dogs/PetImages/{Cat,Dog}/*.jpg, the zip extracted
SMOKE_SIZES = {"train": 96, "validation": 32, "test": 32}
SKIPPED_NAMED = 20  # how many skipped files metrics.json names
DATASETS = ("filtered", "full")
IMAGE_SIZE, SMOKE_IMAGE_SIZE = 224, 64  # without --image-size


@dataclasses.dataclass(frozen=True)
class Options:
    dataset: str = option(
        "filtered",
        "filtered: the 3,000-image cats_and_dogs_filtered subset; full: Kaggle's PetImages (25,000)",
        choices=DATASETS,
    )
    weights: str | None = option(
        None,
        f"imagenet (Keras's cache, downloaded when online), a path to Keras's {weights.FILENAME}, or none "
        "(default: imagenet; none with --smoke)",
    )
    image_size: int | None = option(
        None,
        f"side of the square input images, 32-512 (default: {IMAGE_SIZE}; {SMOKE_IMAGE_SIZE} with --smoke)",
    )

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise UserError(f"--dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.image_size is not None and not 32 <= self.image_size <= 512:
            raise UserError(f"--image-size must be 32-512 (VGG16 needs at least 32); got {self.image_size}")


@dataclasses.dataclass(frozen=True)
class PetsState:
    """What a trained model needs from its data: kept in the run folder as state.json."""

    image_size: int  # the side of the square images it was trained on: the serving signatures resize to it


class Entry(NamedTuple):
    """One file of the dataset's class folders."""

    split: str  # train, validation or test
    label: int  # 0 cat, 1 dog
    name: str
    data: bytes  # encoded, as in the file


def decode_image(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """JPEG / PNG / GIF / BMP bytes -> uint8 [size, size, 3]: RGB, squashed to a square, antialiased."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image = tf.image.resize(image, (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def decode_all(encoded: list[bytes], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decodes in parallel; returns the images and the indices of the files that decoded."""
    images = np.empty((len(encoded), size, size, 3), np.uint8)  # filled in place: no second copy
    if not encoded:
        return images, np.zeros(0, np.int64)
    indexed = tf.data.Dataset.from_tensor_slices((np.arange(len(encoded)), tf.constant(encoded)))
    decoded = indexed.map(
        lambda i, data: (i, decode_image(data, size)), num_parallel_calls=tf.data.AUTOTUNE
    ).ignore_errors()  # a file that fails to decode drops out; its index is what tells us which
    kept = []
    for index, image in decoded.as_numpy_iterator():
        images[len(kept)] = image
        kept.append(index)
    return images[: len(kept)], np.asarray(kept, np.int64)


def filtered_entries(zip_path: Path) -> Iterator[Entry]:
    """cats_and_dogs_filtered/{train,validation}/{cats,dogs}/*: validation's second half per class tests."""
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(n for n in archive.namelist() if not n.endswith("/"))
        for folder in ("train", "validation"):
            for label, plural in enumerate(("cats", "dogs")):
                prefix = f"cats_and_dogs_filtered/{folder}/{plural}/"
                members = [n for n in names if n.startswith(prefix) and "/" not in n[len(prefix) :]]
                if not members:
                    raise UserError(f"{zip_path} has no {prefix} folder: not the cats_and_dogs_filtered zip")
                for i, name in enumerate(members):
                    held_out = "validation" if i < len(members) // 2 else "test"
                    yield Entry("train" if folder == "train" else held_out, label, name, archive.read(name))


def full_entries(root: Path | None, zip_path: Path | None) -> Iterator[Entry]:
    """PetImages/{Cat,Dog}/* from the folder or the zip. Named `Cat/1.jpg` either way, so the split, a
    stable hash of that name, is the same whether the zip was extracted or not."""
    if root is not None:
        files = sorted(p for p in root.glob("*/*") if p.is_file() and p.parent.name in ("Cat", "Dog"))
        for path in files:
            name = f"{path.parent.name}/{path.name}"
            yield Entry(hashed_split(name), int(path.parent.name == "Dog"), name, path.read_bytes())
        return
    with zipfile.ZipFile(zip_path) as archive:
        for member in sorted(archive.namelist()):
            parts = member.split("/")
            if len(parts) == 3 and parts[0] == FULL_FOLDER and parts[1] in ("Cat", "Dog") and parts[2]:
                name = f"{parts[1]}/{parts[2]}"
                yield Entry(hashed_split(name), int(parts[1] == "Dog"), name, archive.read(member))


def hashed_split(name: str) -> str:
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def entries_for(cfg: RunConfig, dataset: str) -> tuple[list[Entry], str]:
    data_dir = cfg.resolved_data_dir()
    if dataset == "filtered":
        path = locate(FILTERED, data_dir)
        return read_zip(path, filtered_entries), f"cats_and_dogs_filtered ({path})"
    folder = data_dir / FULL.dataset / FULL_FOLDER
    if folder.is_dir():
        return list(full_entries(folder, None)), f"PetImages ({folder})"
    path = locate(FULL, data_dir)
    return read_zip(path, lambda p: full_entries(None, p)), f"PetImages ({path})"


def read_zip(path: Path, entries: Callable[[Path], Iterator[Entry]]) -> list[Entry]:
    try:
        found = list(entries(path))
    except zipfile.BadZipFile as e:
        raise UserError(f"{path} is not a readable zip file ({e}); download it again") from e
    if not found:
        raise UserError(f"{path} holds no images in the expected folders")
    return found


def draw_pets(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Generated stand-ins a small CNN tells apart: reddish horizontal stripes for cats (0), bluish
    vertical ones for dogs (1), at random frequencies and phases, with noise."""
    images = np.empty((len(labels), size, size, 3), np.uint8)
    ramp = np.arange(size, dtype=np.float32)
    for i, label in enumerate(labels):
        waves = np.sin(ramp * rng.uniform(0.3, 0.9) + rng.uniform(0, 2 * np.pi))
        stripes = np.tile(waves[:, None], (1, size)) if label == 0 else np.tile(waves[None, :], (size, 1))
        colour = np.array([200, 90, 60] if label == 0 else [60, 110, 200], np.float32)
        image = colour * (0.6 + 0.4 * stripes[..., None]) + rng.normal(0, 20, (size, size, 3))
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return data.tobytes()


def smoke_entries(cfg: RunConfig) -> list[Entry]:
    rng = np.random.default_rng(cfg.seed)
    entries = []
    for split, count in SMOKE_SIZES.items():
        labels = np.arange(count) % 2
        for i, image in enumerate(draw_pets(labels, 64, rng)):
            entries.append(Entry(split, int(labels[i]), f"{split}/{i}.jpg", encode_jpeg(image)))
    return entries


def load(cfg: RunConfig) -> Splits:
    settings = options.read(Options, cfg)
    size = settings.image_size or (SMOKE_IMAGE_SIZE if cfg.smoke else IMAGE_SIZE)
    if cfg.smoke:
        entries, source = smoke_entries(cfg), "generated stripes (--smoke)"
    else:
        entries, source = entries_for(cfg, settings.dataset)
    images, kept = decode_all([entry.data for entry in entries], size)
    splits_of = np.array([entry.split for entry in entries])[kept]
    labels = np.array([entry.label for entry in entries], np.int32)[kept]
    skipped = sorted(set(range(len(entries))) - set(kept.tolist()))
    names = [entries[i].name for i in skipped]
    del entries  # the encoded files: the decoded images are all that is needed now
    if skipped:
        print(f"skipped {len(skipped)} file(s) that do not decode as images, e.g. {names[0]}")
    datasets, info = {}, {}
    for split in ("train", "validation", "test"):
        chosen = splits_of == split
        if not chosen.any():
            raise UserError(f"no readable {split} images in {source}")
        datasets[split] = tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen]))
        info[f"{split}_size"] = int(chosen.sum())
        info[f"{split}_dogs"] = int(labels[chosen].sum())
    info.update(
        source=source,
        class_names=list(CLASS_NAMES),
        weights=weights.chosen(settings.weights, cfg.smoke),
        skipped_images=len(skipped),
        skipped_files=names[:SKIPPED_NAMED],
    )
    # cache_train=False: the images are in memory already; a tf.data cache would only copy them
    return Splits(
        datasets["train"],
        datasets["validation"],
        datasets["test"],
        info=info,
        state=PetsState(image_size=size),
        cache_train=False,
    )
