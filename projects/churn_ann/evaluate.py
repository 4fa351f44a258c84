"""The network against logistic regression and gradient boosting, on the same split, in the same run.

Each model's decision threshold is chosen on the validation split (the F1-best one, or the cheapest for
`--false-negative-cost`), then every number is measured once on the test split. The network's is chosen
once, right after fitting, and kept in the run's state, so a later `evaluate` measures the threshold the run
serves with. The baselines are scikit-learn pipelines over the same cleaned columns, with the same class
weighting as the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from projects.churn_ann.data import ChurnState, Options, columns_of, frame_of
from projects.churn_ann.table import DatasetSpec
from shared import options, reporting
from shared.config import RunConfig
from shared.project import Splits
from shared.runner import predict_split

IMPORTANCE_REPEATS = 5


def choose_threshold(labels: np.ndarray, scores: np.ndarray, false_negative_cost: float | None) -> float:
    """The F1-best threshold, or with a cost, the one minimising cost x missed churners + false alarms."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if false_negative_cost is None:
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        return float(thresholds[np.argmax(f1)])
    positives = labels.sum()
    flagged = np.array([(scores >= t).sum() for t in thresholds])
    true_positives = recall * positives
    cost = false_negative_cost * (positives - true_positives) + (flagged - true_positives)
    return float(thresholds[np.argmin(cost)])


def choose_network_threshold(model: keras.Model, splits: Splits) -> dict[str, Any]:
    """After fitting (`Project.after_fit`): the network's threshold, chosen on the validation split, into
    the state that state.json keeps."""
    state: ChurnState = splits.state
    _, labels = frame_of(splits.validation)
    scores = predict_split(model, splits, "validation").reshape(-1)
    state.threshold = choose_threshold(labels, scores, state.false_negative_cost)
    return {}  # evaluate reports it with the scores measured at it


def scores_at(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    decisions = (probabilities >= threshold).astype(int)
    return {
        "test_roc_auc": roc_auc_score(labels, probabilities),
        "test_pr_auc": average_precision_score(labels, probabilities),
        "test_f1": f1_score(labels, decisions, zero_division=0),
        "test_precision": precision_score(labels, decisions, zero_division=0),
        "test_recall": recall_score(labels, decisions, zero_division=0),
        "test_accuracy": accuracy_score(labels, decisions),
        "test_brier": brier_score_loss(labels, probabilities),
        "threshold": threshold,
    }


def baselines(chosen: Options, seed: int) -> dict[str, Any]:
    """Unfitted scikit-learn pipelines over the raw columns: one-hot categories, standardised numbers."""
    spec = chosen.spec
    weight = "balanced" if chosen.class_weight == "balanced" else None

    def encoder() -> ColumnTransformer:
        return ColumnTransformer(
            [
                ("categories", OneHotEncoder(handle_unknown="ignore"), list(spec.strings + spec.integers)),
                ("numbers", StandardScaler(), list(spec.numbers)),
            ]
        )

    return {
        "logistic_regression": make_pipeline(
            encoder(), LogisticRegression(max_iter=2000, class_weight=weight)
        ),
        "gradient_boosting": make_pipeline(
            encoder(), HistGradientBoostingClassifier(class_weight=weight, random_state=seed)
        ),
    }


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """The trained network (FeatureSpace + model) as a scikit-learn classifier of raw-column frames."""

    def __init__(
        self, model: keras.Model | None = None, splits: Splits | None = None, spec: DatasetSpec | None = None
    ):
        self.model, self.splits, self.spec = model, splits, spec

    def fit(self, features: pd.DataFrame, labels: np.ndarray | None = None) -> NetworkClassifier:
        self.classes_ = np.array([0, 1])  # already trained: fit only declares the classes
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        encoded = self.splits.preprocessor(columns_of(features, self.spec))
        churn = np.asarray(self.model.predict(encoded, batch_size=4096, verbose=0)).reshape(-1)
        return np.stack([1 - churn, churn], axis=1)


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    state: ChurnState = splits.state
    chosen = options.read(Options, cfg)
    train_x, train_y = frame_of(splits.train)
    val_x, val_y = frame_of(splits.validation)
    test_x, test_y = frame_of(splits.test)

    # the network at the threshold it serves with, chosen after fitting; each baseline at its own
    test_probabilities = {"network": predict_split(model, splits, "test").reshape(-1)}
    comparison = {"network": scores_at(test_y, test_probabilities["network"], state.threshold)}
    for name, pipeline in baselines(chosen, cfg.seed).items():
        pipeline.fit(train_x, train_y)
        val_p, test_p = (pipeline.predict_proba(x)[:, 1] for x in (val_x, test_x))
        threshold = choose_threshold(val_y, val_p, state.false_negative_cost)
        comparison[name] = scores_at(test_y, test_p, threshold)
        test_probabilities[name] = test_p
    network = comparison["network"]
    reporting.write_table(run_dir, "test_scores_of_every_model", comparison)

    plots = run_dir / "plots"
    for kind, filename in (("roc", "roc_curves"), ("pr", "pr_curves"), ("calibration", "calibration")):
        reporting.plot_score_curves(test_y, test_probabilities, plots / f"{filename}.png", kind)
    decisions = (test_probabilities["network"] >= state.threshold).astype(int)
    reporting.plot_confusion_matrix(test_y, decisions, ["stays", "churns"], plots / "confusion_matrix.png")
    importance = permutation_importance(
        NetworkClassifier(model, splits, chosen.spec).fit(test_x),
        test_x,
        test_y,
        scoring="roc_auc",
        n_repeats=IMPORTANCE_REPEATS,
        random_state=cfg.seed,
    )
    drops = pd.Series(importance.importances_mean, index=test_x.columns).sort_values(ascending=False)
    spread = pd.Series(importance.importances_std, index=test_x.columns)[drops.index]
    plot_importance(drops, spread.to_numpy(), plots)

    return {
        **network,
        "threshold_chosen_by": state.threshold_chosen_by,
        "test_size": len(test_y),
        "baselines": {name: comparison[name] for name in comparison if name != "network"},
        "permutation_importance_roc_auc": {name: round(float(v), 4) for name, v in drops.items()},
    }


def plot_importance(drops: pd.Series, spread: np.ndarray, plots: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(drops) + 1.2))
    ax.barh(drops.index[::-1], drops.to_numpy()[::-1], xerr=spread[::-1], color="tab:blue")
    ax.set_xlabel("test ROC-AUC lost when the column is shuffled")
    ax.set_title("Permutation importance (network)")
    reporting.save_figure(fig, plots / "permutation_importance.png")
