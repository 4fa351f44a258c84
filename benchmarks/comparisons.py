"""What `make bench` compares each project with: a reference recipe, the figure, and the target.

A `time_to_target` figure trains ours (its default recipe: model, batch, learning-rate schedule over its
default epochs) and the reference from scratch, scoring both after every epoch on the same split, and
reports the training seconds until the target is reached. `step_time` compares training examples per
second at ours' default batch size; `final_metric` runs both whole recipes and compares their scores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    reference: str  # a module of benchmarks.references
    kind: str  # time_to_target | step_time | final_metric
    metric: str  # the figure, in words
    target: float | None = None  # time_to_target: the score to reach
    quick_target: float | None = None  # the same with --quick's smaller budget
    higher_is_better: bool = True
    split: str = "test"  # time_to_target: where ours is scored
    key: str = ""  # ours' score: a compiled metric (time_to_target) or a metrics.json key (final_metric)


COMPARISONS = {
    "mnist_cnn": Comparison("mnist_convnet", "time_to_target", "test accuracy", 0.99, 0.97, key="accuracy"),
    "imdb_gru": Comparison(
        "bidirectional_lstm_imdb", "time_to_target", "test accuracy", 0.85, 0.70, key="accuracy"
    ),
    "char_lstm": Comparison(
        "lstm_text_generation",
        "time_to_target",
        "validation loss (nats per character)",
        1.70,
        2.60,
        higher_is_better=False,
        split="validation",
        key="loss",
    ),
    "mnist_gan": Comparison("dcgan", "step_time", "training examples per second"),
    "cats_dogs_vgg16": Comparison("transfer_learning", "step_time", "training examples per second"),
    "autoencoder_anomaly": Comparison(
        "timeseries_anomaly_detection", "final_metric", "test PR-AUC", key="pr_auc"
    ),
    "churn_ann": Comparison("logistic_regression", "final_metric", "test ROC-AUC", key="test_roc_auc"),
    # stock_lstm: no keras-io recipe forecasts returns; its own persistence baseline is in its README
}
