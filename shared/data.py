"""Finding dataset files in the data directory, downloading them when online, and tf.data pipelines.

Files are looked for at `<data-dir>/<dataset>/<file>`. A file found there is used as it is (loaders check
its contents), because mirrored copies can hold the same data in different bytes than the original download.
A missing file is downloaded with `keras.utils.get_file` and checked against the original's sha256 (never
with DATA_OFFLINE=1); offline, the error names the file, where it was looked for and how to get it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.config import UserError


class DatasetMissingError(UserError):
    """A dataset file is neither in the data directory nor downloadable."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: where it lives in the data directory and where the original can be downloaded."""

    dataset: str  # sub-folder of the data directory, e.g. "mnist"
    filename: str  # e.g. "mnist.npz"
    url: str | None = None
    sha256: str | None = None  # of the original download


def locate(remote: RemoteFile, data_dir: Path, download: bool = True) -> Path:
    """Returns `<data_dir>/<dataset>/<filename>`, downloading it first if it is missing and a URL is known."""
    path = Path(data_dir) / remote.dataset / remote.filename
    if path.is_file():
        return path
    problem = "it is not there"
    if os.environ.get("DATA_OFFLINE"):
        download, problem = False, "it is not there (DATA_OFFLINE is set, so no download was tried)"
    if download and remote.url:
        # into a side folder first: a download cut short must never sit where a dataset file is trusted
        partial_dir = Path(data_dir).resolve() / remote.dataset / ".download"
        try:
            # it must exist: get_file quietly falls back to /tmp/.keras for a folder it cannot write
            partial_dir.mkdir(parents=True, exist_ok=True)
            fetched = keras.utils.get_file(
                fname=remote.filename,
                origin=remote.url,
                file_hash=remote.sha256,
                cache_dir=str(partial_dir.parent),
                cache_subdir=partial_dir.name,
            )
            os.replace(fetched, path)  # only after get_file has checked the sha256
            return path
        except Exception as e:  # get_file raises bare Exception for network errors
            problem = f"it is not there and the download from {remote.url} failed ({_short(e)})"
    checksum = f" (sha256 {remote.sha256})" if remote.sha256 else ""
    source = f"download it from {remote.url}{checksum} and " if remote.url else ""
    raise DatasetMissingError(
        f"dataset file {remote.filename} not found: looked for {path}, and {problem}. "
        f"To fix: {source}put it at {path}, or point --data-dir (or DATA_DIR) at a folder holding "
        f"{remote.dataset}/{remote.filename}. For a quick check without data, add --smoke."
    )


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1][:200] if text else type(error).__name__


def in_memory(dataset: tf.data.Dataset) -> tuple[Any, np.ndarray]:
    """An unbatched `(features, label, ...)` split as NumPy, in order: features as an array (a dict of
    arrays for dict features; text stays bytes) and the labels."""
    batches = list(dataset.batch(100_000).as_numpy_iterator())
    labels = np.concatenate([batch[1] for batch in batches])
    if isinstance(batches[0][0], dict):
        return {name: np.concatenate([b[0][name] for b in batches]) for name in batches[0][0]}, labels
    return np.concatenate([batch[0] for batch in batches]), labels


def batched(
    dataset: tf.data.Dataset,
    global_batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    cache: bool = True,
    preprocess: Callable | None = None,
    bucket_by_length: tuple[Callable[[Any], tf.Tensor], tuple[int, ...]] | None = None,
) -> tf.data.Dataset:
    """cache -> shuffle -> batch (global size) -> preprocess -> prefetch, for one split of examples.

    `bucket_by_length` (the length of an example's features, bucket boundaries) batches examples of
    similar length together: every batch is still the global size, except the last one of each bucket.

    `preprocess` (a split's adapted preprocessor) maps each batch of raw features, leaving the label and
    any sample weight as they are; it runs batched because its lookups are much faster on batches.

    Sharding is set to DATA explicitly: the default AUTO policy falls back to it silently for in-memory
    data under MultiWorkerMirroredStrategy, and a stated policy is one nobody has to guess.
    """
    if cache:
        dataset = dataset.cache()
    if shuffle:
        size = int(dataset.cardinality())
        buffer = size if 0 < size <= 100_000 else 10_000
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if bucket_by_length is None:
        dataset = dataset.batch(global_batch_size)
    else:
        length, boundaries = bucket_by_length
        dataset = dataset.bucket_by_sequence_length(
            lambda features, *rest: tf.cast(length(features), tf.int32),
            list(boundaries),
            [global_batch_size] * (len(boundaries) + 1),
        )
    if preprocess is not None:
        dataset = dataset.map(
            lambda features, *rest: (preprocess(features), *rest), num_parallel_calls=tf.data.AUTOTUNE
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
