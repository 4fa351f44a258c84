"""The fixed MNIST classifier that scores generated digits, and the Inception Score and FID it gives: in
NumPy for `evaluate`, and as Keras metrics accumulated batch by batch for validation (`val_fid`).

The Inception network of the original scores knows nothing of handwritten digits, so, as is usual for
MNIST GANs, a small CNN trained on the real training digits stands in for it: the Inception Score comes
from its softmax and the Frechet distance from its 128 penultimate features. It is fitted as every model
here is (`shared.fitting.fit`): the last tenth of the training digits validates and the epoch with the
best validation accuracy is kept, so the test digits choose nothing. It is trained once per training set
(and seed), cached under runs/mnist_gan/scorer/, and its test accuracy reported with the scores, so a
reader knows what judged them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from shared import fitting, reporting
from shared.data import batched
from shared.run_folder import RUNS_ROOT

FEATURES = "features"  # the penultimate layer FID reads
SCORER_EPOCHS = 4
VALIDATION_SHARE = 0.1  # the last tenth of the training digits: it chooses the epoch kept
BATCH = 128
# in the cache folder's name: a classifier fitted by an earlier recipe (on all the training digits, its
# last epoch kept) is not taken for one of this recipe
RECIPE = "v2"


def build_classifier() -> keras.Model:
    """uint8-range images [N, 28, 28] in, class probabilities out; `features` is the 128-wide layer."""
    images = keras.Input((28, 28), name="images")
    x = layers.Rescaling(1 / 255)(layers.Reshape((28, 28, 1))(images))
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(layers.Flatten()(x))
    features = layers.Dense(128, activation="relu", name=FEATURES)(x)
    probabilities = layers.Dense(10, activation="softmax", name="probabilities")(
        layers.Dropout(0.5)(features)
    )
    model = keras.Model(images, probabilities, name="mnist_scorer")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def features_and_probabilities(classifier: keras.Model) -> keras.Model:
    """The classifier with two outputs: the penultimate features and the softmax."""
    return keras.Model(classifier.input, [classifier.get_layer(FEATURES).output, classifier.output])


def load_or_train(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int, epochs: int
) -> tuple[Path, float]:
    """The cached classifier for this training set, trained first if there is none; (path, test accuracy)."""
    key = hashlib.sha256(x_train.tobytes() + y_train.tobytes()).hexdigest()[:12]
    folder = RUNS_ROOT / "mnist_gan" / "scorer" / f"{key}-s{seed}-e{epochs}-{RECIPE}"
    path, record = folder / "classifier.keras", folder / "scorer.json"
    if path.is_file() and record.is_file():
        return path, float(reporting.read_json(record)["test_accuracy"])
    print(f"training the scoring classifier ({epochs} epochs); cached in {folder}", flush=True)
    classifier, summary = train_classifier(x_train, y_train, seed, epochs)
    accuracy = float(classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "classifier-partial.keras"  # a run killed while saving leaves no half-written cache
    classifier.save(str(partial))
    os.replace(partial, path)
    reporting.write_json(record, {"test_accuracy": accuracy, **summary})
    return path, accuracy


def train_classifier(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> tuple[keras.Model, dict]:
    """The classifier fitted on the first 90% of the training digits, its epoch chosen by its accuracy on
    the last 10%; with what to record of it. A loss that became NaN is an error: nothing is cached."""
    keras.utils.set_random_seed(seed)
    start = len(x) - max(1, round(VALIDATION_SHARE * len(x)))
    digits = tf.data.Dataset.from_tensor_slices((x, y))
    pipeline = dict(seed=seed, cache=False)  # in memory already
    classifier = build_classifier()
    fitted = fitting.fit(
        classifier,
        batched(digits.take(start), BATCH, shuffle=True, **pipeline),
        batched(digits.skip(start), BATCH, shuffle=False, **pipeline),
        epochs=epochs,
        monitor="val_accuracy",
        mode="max",
        lr_schedule="constant",
        verbose=2,
    )
    if fitted.diverged:
        raise fitting.TrainingDivergedError(
            "the scoring classifier's loss became NaN or infinite, so it was not cached; check the "
            "training digits (their pixels must be numbers 0-255)"
        )
    validation = fitted.history.history["val_accuracy"]
    summary = {
        "validation_accuracy": float(max(validation)),
        "epoch_kept": int(np.argmax(validation)) + 1,
        "epochs": epochs,
        "train_size": start,
        "validation_size": len(x) - start,
    }
    return classifier, summary


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of [N, D] features, in float64."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def symmetric_root(covariance: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance (dead features make it singular: that is fine)."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """FID between two (mean, covariance) pairs: |mu_a - mu_b|^2 + tr(Sa + Sb - 2 (Sa Sb)^1/2).

    tr((Sa Sb)^1/2) is the sum of the square roots of the eigenvalues of Ra Sb Ra (Ra = Sa^1/2): the same
    spectrum, from a symmetric matrix, so no complex rounding as with a general matrix square root."""
    (mean_a, cov_a), (mean_b, cov_b) = a, b
    root = symmetric_root(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def inception_score(probabilities: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 10 for sharp predictions spread evenly over the 10 digits, 1 at worst."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


class FrechetDistance(keras.metrics.Metric):
    """FID of the features seen so far to a reference (mean, covariance square root), in float64.

    tr((S_ref S)^1/2) is computed as the sum of the square roots of the eigenvalues of R S R, R the
    reference covariance's symmetric square root: the same number, from a symmetric matrix."""

    def __init__(self, reference_mean, reference_root, name="fid", **kwargs):
        super().__init__(name=name, **kwargs)
        # a function, not attributes: a metric tracks (and `reset_state` zeroes) every variable it holds
        self.reference = lambda: (reference_mean, reference_root)
        width = reference_mean.shape[0]
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")
        self.total = self.add_variable((width,), "zeros", dtype="float64", name="total")
        self.outer = self.add_variable((width, width), "zeros", dtype="float64", name="outer")

    def update_state(self, features):
        features = tf.cast(features, tf.float64)
        self.count.assign_add(tf.cast(tf.shape(features)[0], tf.float64))
        self.total.assign_add(tf.reduce_sum(features, axis=0))
        self.outer.assign_add(tf.matmul(features, features, transpose_a=True))

    def result(self):
        n = tf.maximum(tf.convert_to_tensor(self.count), 2.0)
        mean = self.total / n
        cov = (self.outer - n * tf.tensordot(mean, mean, axes=0)) / (n - 1)
        reference_mean, reference_root = self.reference()
        root = tf.convert_to_tensor(reference_root)
        eigenvalues = tf.linalg.eigvalsh(root @ cov @ root)
        cross = tf.reduce_sum(tf.sqrt(tf.maximum(eigenvalues, 0.0)))
        distance = tf.reduce_sum(tf.square(mean - reference_mean))
        return tf.cast(distance + tf.linalg.trace(root @ root) + tf.linalg.trace(cov) - 2 * cross, tf.float32)


class InceptionScore(keras.metrics.Metric):
    """exp(E_x sum_y p log p - sum_y p(y) log p(y)) over the class probabilities seen so far."""

    def __init__(self, name="inception_score", **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")
        self.total = self.add_variable((10,), "zeros", dtype="float64", name="total")
        self.negentropy = self.add_variable((), "zeros", dtype="float64", name="negentropy")

    def update_state(self, probabilities):
        p = tf.clip_by_value(tf.cast(probabilities, tf.float64), 1e-12, 1.0)
        self.count.assign_add(tf.cast(tf.shape(p)[0], tf.float64))
        self.total.assign_add(tf.reduce_sum(p, axis=0))
        self.negentropy.assign_add(tf.reduce_sum(p * tf.math.log(p)))

    def result(self):
        n = tf.maximum(tf.convert_to_tensor(self.count), 1.0)
        marginal = tf.clip_by_value(self.total / n, 1e-12, 1.0)
        return tf.cast(
            tf.exp(self.negentropy / n - tf.reduce_sum(marginal * tf.math.log(marginal))), tf.float32
        )
