"""Binary classification on a test split, evaluated one way for every project that has one (cats_dogs_vgg16,
imdb_gru): accuracy at 0.5, ROC-AUC, log loss, the confusion matrix and ROC curve plots, and the mistakes the
model was surest of (each project shows those its own way: images, review text)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from shared import reporting


@dataclass(frozen=True)
class BinaryEvaluation:
    metrics: dict[str, Any]  # test_accuracy, test_roc_auc, test_loss, test_errors, test_size
    predicted: np.ndarray  # 0/1 at the 0.5 threshold
    surest_mistakes: np.ndarray  # indices of wrong answers, the most confident first


def evaluate_binary(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    plots: Path,
    model_name: str,
    mistakes: int = 10,
) -> BinaryEvaluation:
    """`probabilities` of class 1 for each test example; writes confusion_matrix.png and roc_curve.png."""
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    predicted = (probabilities >= 0.5).astype(int)
    reporting.plot_confusion_matrix(labels, predicted, class_names, plots / "confusion_matrix.png")
    reporting.plot_score_curves(labels, {model_name: probabilities}, plots / "roc_curve.png", "roc")
    wrong = np.flatnonzero(predicted != labels)
    surest = wrong[np.argsort(-np.abs(probabilities[wrong] - 0.5), kind="stable")][:mistakes]
    metrics = {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_roc_auc": float(roc_auc_score(labels, probabilities)),
        "test_loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "test_errors": len(wrong),
        "test_size": len(labels),
    }
    return BinaryEvaluation(metrics, predicted, surest)
