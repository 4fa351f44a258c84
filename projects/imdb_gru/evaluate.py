"""Test-set accuracy and ROC-AUC over all 25,000 test reviews, the curves, and the surest mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from projects.imdb_gru.data import CLASS_NAMES
from shared import reporting
from shared.classification import evaluate_binary
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
    evaluation = evaluate_binary(
        labels, probabilities, CLASS_NAMES, run_dir / "plots", model.name, mistakes=MISTAKES_SHOWN
    )
    reporting.write_table(
        run_dir,
        "most_confident_mistakes",
        {
            f"{rank + 1}": {
                "true": CLASS_NAMES[labels[i]],
                "positive_probability": round(float(probabilities[i]), 4),
                "review": " ".join(texts[i][:SNIPPET].split()) + ("..." if len(texts[i]) > SNIPPET else ""),
            }
            for rank, i in enumerate(evaluation.surest_mistakes)
        },
        columns=["true", "positive_probability", "review"],
    )
    return evaluation.metrics
