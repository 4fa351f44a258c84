"""Where VGG16's ImageNet weights come from: `--weights imagenet` (Keras's cache, downloaded when online),
`--weights PATH` (a local copy of Keras's file) or `--weights none` (random initial weights)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras

from shared.config import UserError

FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg16/{FILENAME}"
MD5 = "6d6bbae143d832006294945121d1f1fc"  # the hash keras.applications.VGG16 checks


def keras_cache() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def missing_message(problem: str) -> str:
    return (
        f"VGG16's ImageNet weights are not available: {problem}. The file is {FILENAME} "
        f"(58.9 MB, md5 {MD5}) from {URL}. To fix: put it at {keras_cache() / FILENAME}, or pass "
        "--weights PATH to a copy of it, or train without them with --weights none (much lower accuracy)."
    )


def chosen(given: str | None, smoke: bool) -> str:
    """--weights as given; unset, `imagenet`, or `none` under --smoke (which needs no files at all)."""
    return given if given is not None else ("none" if smoke else "imagenet")


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(option: str) -> str | None:
    """The weights file to load (None for random weights); an unavailable file is a UserError.

    Called by `build_model` (train and tune), never by `evaluate` or `export`: a trained run's
    model.keras holds every weight it needs."""
    if option == "none":
        return None
    if option != "imagenet":
        path = Path(option).expanduser()
        if not path.is_file():
            raise UserError(missing_message(f"--weights {option} is not a file"))
        if md5(path) != MD5:
            print(f"warning: {path} is not Keras's {FILENAME} (its md5 differs); loading it anyway")
        return str(path.resolve())
    cached = keras_cache() / FILENAME
    if cached.is_file():
        if md5(cached) != MD5:  # e.g. a download cut short
            raise UserError(missing_message(f"{cached} is there but its md5 is {md5(cached)}"))
        return str(cached)
    if os.environ.get("DATA_OFFLINE"):
        raise UserError(missing_message(f"it is not in {keras_cache()} and DATA_OFFLINE is set"))
    try:
        return keras.utils.get_file(FILENAME, URL, cache_subdir="models", file_hash=MD5)
    except Exception as e:  # get_file raises bare Exception for network errors
        raise UserError(missing_message(f"the download failed ({str(e).strip()[:200]})")) from e
