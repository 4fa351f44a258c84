"""Test-set accuracy and ROC-AUC over all 25,000 test reviews, the curves, and the surest mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from shared import reporting
from shared.config import RunConfig
from shared.data import in_memory
from shared.project import Splits
from shared.runner import predict_split

MISTAKES_SHOWN = 10
SNIPPET = 400  # characters of each mistaken review in the table


def test_predictions(model: keras.Model, splits: Splits) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(texts, labels, probability positive) of the test split, through the training pipeline."""
    texts, labels = in_memory(splits.test)
    probabilities = predict_split(model, splits, "test", batch_size=512).astype(np.float64).reshape(-1)
    return [text.decode("utf-8") for text in texts], labels, probabilities


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    texts, labels, probabilities = test_predictions(model, splits)
    predicted = (probabilities >= 0.5).astype(int)
    plots = run_dir / "plots"
    reporting.plot_confusion_matrix(
        labels, predicted, splits.info["class_names"], plots / "confusion_matrix.png"
    )
    reporting.plot_score_curves(labels, {model.name: probabilities}, plots / "roc_curve.png", "roc")

    wrong = np.flatnonzero(predicted != labels)
    surest = wrong[np.argsort(-np.abs(probabilities[wrong] - 0.5))][:MISTAKES_SHOWN]
    reporting.write_table(
        run_dir,
        "most_confident_mistakes",
        {
            f"{rank + 1}": {
                "true": splits.info["class_names"][labels[i]],
                "positive_probability": round(float(probabilities[i]), 4),
                "review": " ".join(texts[i][:SNIPPET].split()) + ("..." if len(texts[i]) > SNIPPET else ""),
            }
            for rank, i in enumerate(surest)
        },
        columns=["true", "positive_probability", "review"],
    )
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_roc_auc": float(roc_auc_score(labels, probabilities)),
        "test_loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7))),
        "test_errors": len(wrong),
        "test_size": len(labels),
    }
