"""The shared binary evaluation: its numbers worked out by hand, its plots, its surest mistakes first."""

from __future__ import annotations

import numpy as np
import pytest

from shared.classification import evaluate_binary


def test_metrics_plots_and_the_surest_mistakes_first(tmp_path):
    labels = np.array([0, 0, 1, 1, 1, 0])
    probabilities = np.array([0.1, 0.95, 0.8, 0.3, 0.6, 0.55])
    result = evaluate_binary(labels, probabilities, ["cat", "dog"], tmp_path, "demo", mistakes=2)
    assert result.predicted.tolist() == [0, 1, 1, 0, 1, 1]
    # wrong: 0.95 (a cat, surest), 0.3 (a dog), 0.55 (a cat): the two surest
    assert result.surest_mistakes.tolist() == [1, 3]
    assert result.metrics["test_accuracy"] == pytest.approx(3 / 6)
    assert result.metrics["test_errors"] == 3 and result.metrics["test_size"] == 6
    # 9 (dog, cat) pairs: the dog scores higher in 5 (0.8 and 0.6 over 0.1 and 0.55; 0.3 over 0.1)
    assert result.metrics["test_roc_auc"] == pytest.approx(5 / 9)
    expected_loss = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert result.metrics["test_loss"] == pytest.approx(expected_loss)
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    assert (tmp_path / "roc_curve.png").stat().st_size > 0
