"""Test-set metrics and plots: accuracy, loss, per-digit accuracy, confusion matrix, worst mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from shared import reporting
from shared.config import RunConfig
from shared.data import in_memory
from shared.project import Splits

WORST_SHOWN = 32


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    images, labels = in_memory(splits.test)
    probabilities = model.predict(images, batch_size=1024, verbose=0)
    predicted = probabilities.argmax(axis=1)
    # the same cross-entropy Keras computes (probabilities clipped at 1e-7)
    true_probability = probabilities[np.arange(len(labels)), labels]
    test_loss = float(-np.mean(np.log(np.clip(true_probability, 1e-7, 1.0))))
    wrong = np.flatnonzero(predicted != labels)

    plots = run_dir / "plots"
    names = splits.info["class_names"]
    reporting.plot_confusion_matrix(labels, predicted, names, plots / "confusion_matrix.png")
    worst = wrong[np.argsort(true_probability[wrong])][:WORST_SHOWN]  # least belief in the true digit first
    if len(worst):
        titles = [f"{labels[i]} as {predicted[i]} ({probabilities[i, predicted[i]]:.2f})" for i in worst]
        reporting.image_grid(images[worst], titles, plots / "worst_misclassified.png")
    per_digit = {
        name: float(np.mean(predicted[labels == d] == d))
        for d, name in enumerate(names)
        if (labels == d).any()
    }
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_loss": test_loss,
        "test_errors": len(wrong),
        "test_size": len(labels),
        "test_accuracy_per_digit": per_digit,
    }
