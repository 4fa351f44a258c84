"""MNIST: 60,000 training and 10,000 test digits, 28x28 uint8.

The last 5,000 training digits are held out for validation (checkpoint choice, early stopping, tuning), so
the test set is used for the reported number only. `--smoke` renders digits with OpenCV fonts instead:
a learnable 10-class task of the same shape that needs no download.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from shared.config import RunConfig
from shared.mnist import load_arrays, render_digits
from shared.project import Splits

VALIDATION_SIZE = 5_000
CLASS_NAMES = [str(digit) for digit in range(10)]
SMOKE_SIZES = {"train": 2_000, "validation": 400, "test": 400}


def generated_splits(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    splits = {}
    for name, size in SMOKE_SIZES.items():
        labels = rng.integers(0, 10, size).astype(np.int32)
        splits[name] = (render_digits(labels, rng), labels)
    return splits


def load(cfg: RunConfig) -> Splits:
    if cfg.smoke:
        arrays = generated_splits(cfg.seed)
        source = "generated digits (--smoke)"
    else:
        x_train, y_train, x_test, y_test = load_arrays(cfg)
        arrays = {
            "train": (x_train[:-VALIDATION_SIZE], y_train[:-VALIDATION_SIZE]),
            "validation": (x_train[-VALIDATION_SIZE:], y_train[-VALIDATION_SIZE:]),
            "test": (x_test, y_test),
        }
        source = "MNIST"
    datasets = {name: tf.data.Dataset.from_tensor_slices(xy) for name, xy in arrays.items()}
    info = {
        "source": source,
        "class_names": CLASS_NAMES,
        **{f"{n}_size": len(xy[1]) for n, xy in arrays.items()},
    }
    return Splits(datasets["train"], datasets["validation"], datasets["test"], info)
