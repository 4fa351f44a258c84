"""The fixed MNIST classifier that scores generated digits, and the Inception Score and FID it gives.

The Inception network of the original scores knows nothing of handwritten digits, so, as is usual for
MNIST GANs, a small CNN trained on the real training digits stands in for it: the Inception Score comes
from its softmax and the Frechet distance from its 128 penultimate features. It is trained once per
training set (and seed), cached under runs/mnist_gan/scorer/, and its test accuracy reported with
the scores, so a reader knows what judged them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from shared import reporting
from shared.runner import RUNS_ROOT

FEATURES = "features"  # the penultimate layer FID reads
SCORER_EPOCHS = 4


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
    folder = RUNS_ROOT / "mnist_gan" / "scorer" / f"{key}-s{seed}-e{epochs}"
    path, record = folder / "classifier.keras", folder / "scorer.json"
    if path.is_file() and record.is_file():
        return path, float(reporting.read_json(record)["test_accuracy"])
    print(f"training the scoring classifier ({epochs} epochs); cached in {folder}", flush=True)
    keras.utils.set_random_seed(seed)
    classifier = build_classifier()
    classifier.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=2)
    accuracy = float(classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "classifier-partial.keras"  # a run killed while saving leaves no half-written cache
    classifier.save(str(partial))
    os.replace(partial, path)
    reporting.write_json(record, {"test_accuracy": accuracy, "epochs": epochs, "train_size": len(x_train)})
    return path, accuracy


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
