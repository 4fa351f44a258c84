"""MNIST for the GAN: all 60,000 training digits to learn from, the 10,000 test digits to score against.

A GAN has no held-out loss to watch: validation generates one digit per test label (the requested digit
when conditional) and scores them against the *training* digits' statistics, so the test images
themselves are used only for the real-data floor in `evaluate`. The scoring classifier is trained here,
once per training set, and the training digits' feature statistics are computed with it.
`--smoke` uses digits drawn with OpenCV fonts: no download, a few seconds to score.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from projects.mnist_gan import scorer
from shared import options
from shared.config import RunConfig
from shared.mnist import load_arrays, render_digits
from shared.options import option
from shared.project import Splits

SMOKE_SIZES = {"train": 1_000, "test": 200}
REFERENCE = "reference.npz"  # the training digits' feature mean and covariance square root
MIN_SCORER_ACCURACY = 0.99
# the scoring classifier's epochs on the 900 smoke digits it fits on: fewer leave it unsure of real digits
SMOKE_SCORER_EPOCHS = 16


@dataclass(frozen=True)
class Options:
    conditional: bool = option(False, "train a class-conditional GAN (generate --digit D)")


def arrays_for(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    if cfg.smoke:
        rng = np.random.default_rng(cfg.seed)
        labels = {name: rng.integers(0, 10, size).astype(np.int32) for name, size in SMOKE_SIZES.items()}
        images = {name: render_digits(y, rng) for name, y in labels.items()}
        return images["train"], labels["train"], images["test"], labels["test"], "generated digits (--smoke)"
    return (*load_arrays(cfg), "MNIST")


def load(cfg: RunConfig) -> Splits:
    conditional = options.read(Options, cfg).conditional
    x_train, y_train, x_test, y_test, source = arrays_for(cfg)
    epochs = SMOKE_SCORER_EPOCHS if cfg.smoke else scorer.SCORER_EPOCHS
    path, accuracy = scorer.load_or_train(x_train, y_train, x_test, y_test, seed=0, epochs=epochs)
    if not cfg.smoke and accuracy < MIN_SCORER_ACCURACY:
        print(f"warning: the scoring classifier's test accuracy is {accuracy:.4f}, under 0.99", flush=True)
    reference = path.parent / REFERENCE
    if not reference.is_file():
        mean, covariance = reference_statistics(path, x_train)
        partial = reference.with_suffix(".partial.npz")
        np.savez(partial, mean=mean, covariance=covariance, root=scorer.symmetric_root(covariance))
        os.replace(partial, reference)
    # reseeded after the classifier's training and loading (both draw random numbers), which only a first
    # run does: the GAN then starts from the same weights whether the classifier was cached or not
    keras.utils.set_random_seed(cfg.seed)
    info = {
        "source": source,
        "conditional": conditional,
        "train_size": len(x_train),
        "test_size": len(x_test),
        "scorer": str(path),
        "scorer_test_accuracy": accuracy,
        "seed": cfg.seed,  # the generator's noise stream
    }
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    return Splits(
        train=tf.data.Dataset.from_tensor_slices((x_train, y_train)), validation=test, test=test, info=info
    )


def reference_statistics(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features, _ = scorer.features_and_probabilities(keras.models.load_model(str(path))).predict(
        images, batch_size=1024, verbose=0
    )
    return scorer.statistics(features)


def scorer_and_reference(splits: Splits) -> tuple[keras.Model, tuple[np.ndarray, np.ndarray]]:
    """The scoring model (features and probabilities out) and the training digits' (mean, cov root)."""
    path = Path(splits.info["scorer"])
    classifier = keras.models.load_model(str(path))
    classifier.trainable = False
    with np.load(path.parent / REFERENCE) as reference:
        return scorer.features_and_probabilities(classifier), (reference["mean"], reference["root"])
