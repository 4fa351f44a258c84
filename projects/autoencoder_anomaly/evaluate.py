"""The autoencoder against a rolling z-score and an IsolationForest on NAB's labelled windows.

Every detector scores every row and picks its threshold by the same rule (`--threshold`: by default the
mean + 5 standard deviations of its scores on the held-out probationary rows), so no label ever chooses
anything; the IsolationForest, like the autoencoder, is fitted on the training windows only. The
autoencoder's threshold is chosen once, when the run is trained (`choose_threshold`), and kept in its
state; the baselines are fitted again at each evaluation. Only the rows after the probationary period
are evaluated:

- point-wise ROC-AUC and PR-AUC of the score against "inside a labelled window";
- window-level detection: consecutive flagged rows are one detection; a labelled window counts as found
  when a detection touches it; a detection touching no window is a false alarm. precision = detections
  that touch a window / detections, recall = windows found / windows, F1 of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score

from projects.autoencoder_anomaly.data import held_out, series_of
from projects.autoencoder_anomaly.detect import (
    events,
    overlap_average,
    reconstruction_scores,
    series_scores,
    threshold_from,
)
from projects.autoencoder_anomaly.series import stretches
from shared import reporting
from shared.config import RunConfig
from shared.project import Splits

DETECTORS = ("autoencoder", "rolling_zscore", "isolation_forest")
SCORES_FILE = "scores.csv"


def autoencoder_scores(model: keras.Model, standardised: np.ndarray) -> np.ndarray:
    window = model.input_shape[1]

    def reconstruct(frames):
        return model.predict(frames, batch_size=1024, verbose=0)

    return series_scores(standardised, window, lambda s: reconstruction_scores(s, window, reconstruct))


def rolling_zscore(standardised: np.ndarray, window: int) -> np.ndarray:
    """|x - mean| / std of the `window` rows before each row (fewer at a stretch's start; 0 for its first
    two rows, which have too little past to compare with)."""

    def score(stretch: np.ndarray) -> np.ndarray:
        past = pd.Series(stretch).rolling(window, min_periods=2)
        mean, std = past.mean().shift(1), past.std().shift(1)
        z = (pd.Series(stretch) - mean).abs() / np.maximum(std, 1e-3)
        return z.fillna(0.0).to_numpy()  # the first rows have no past to compare with

    return series_scores(standardised, 1, score)


def isolation_forest_scorer(
    standardised: np.ndarray, training_rows: np.ndarray, window: int, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """IsolationForest fitted on the training windows; it scores a row by the mean score of its windows."""
    frames = np.lib.stride_tricks.sliding_window_view
    training = [
        frames(standardised[a:b], window)
        for a, b in stretches(np.isfinite(standardised) & training_rows, window)
    ]
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(np.concatenate(training))

    def score(stretch: np.ndarray) -> np.ndarray:
        per_window = -forest.score_samples(frames(stretch, window))  # higher: more anomalous
        return overlap_average(np.repeat(per_window[:, None], window, axis=1)).numpy()

    return lambda series: series_scores(series, window, score)


def held_out_threshold(
    scorer: Callable[[np.ndarray], np.ndarray], standardised: np.ndarray, splits: Splits
) -> float:
    """The rule applied to the held-out rows' scores, computed on the probationary rows alone: no
    window reaching past them, into the evaluated rows, moves the threshold."""
    rows = splits.info["probationary_rows"]
    scores = scorer(standardised[:rows])[held_out(splits)[:rows]]
    return threshold_from(scores, splits.state.threshold_rule)


def standardised_series(splits: Splits) -> np.ndarray:
    """The whole series' values scaled as the model was trained on them."""
    values, _, _, _ = series_of(splits)
    return (values - splits.state.mean) / splits.state.std


def choose_threshold(model: keras.Model, splits: Splits) -> dict[str, Any]:
    """After fitting: the autoencoder's threshold, set on the state so the export and every later
    evaluation of the run use the threshold it was trained with."""
    scorer = lambda series: autoencoder_scores(model, series)  # noqa: E731
    splits.state.threshold = held_out_threshold(scorer, standardised_series(splits), splits)
    return {}  # evaluate reports the threshold


def detection_scores(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Point-wise AUCs and window-level precision / recall / F1 on the (evaluated) rows given."""
    scored = np.isfinite(scores)
    both_classes = len(np.unique(labels[scored])) == 2
    flags = scored & (np.nan_to_num(scores, nan=-np.inf) > threshold)
    detections = events(flags)
    hits = [labels[a:b].any() for a, b in detections]
    windows = stretches(labels.astype(bool), 1)
    found = [flags[a:b].any() for a, b in windows]
    precision = float(np.mean(hits)) if detections else None
    recall = float(np.mean(found)) if windows else None
    f1 = None  # no labelled window to find: F1 says nothing
    if recall is not None:  # nothing detected, or nothing right: F1 0
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "roc_auc": float(roc_auc_score(labels[scored], scores[scored])) if both_classes else None,
        "pr_auc": float(average_precision_score(labels[scored], scores[scored])) if both_classes else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "detections": len(detections),
        "false_alarms": len(detections) - int(np.sum(hits)),
        "windows": len(windows),
        "windows_found": int(np.sum(found)),
        "flagged_rows": int(flags.sum()),
        "threshold": threshold,
    }


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    values, probationary, timestamps, labels = series_of(splits)
    standardised = standardised_series(splits)
    window = model.input_shape[1]
    training_rows = np.arange(len(values)) < splits.info["held_out_from_row"]
    scorers = {
        "autoencoder": lambda series: autoencoder_scores(model, series),
        "rolling_zscore": lambda series: rolling_zscore(series, window),
        "isolation_forest": isolation_forest_scorer(standardised, training_rows, window, cfg.seed),
    }
    scores = {name: scorer(standardised) for name, scorer in scorers.items()}
    # the rows after the probationary period that every detector scored: one set for every AUC
    evaluated = ~probationary & np.all([np.isfinite(score) for score in scores.values()], axis=0)
    thresholds = {name: held_out_threshold(scorers[name], standardised, splits) for name in DETECTORS[1:]}
    thresholds["autoencoder"] = splits.state.threshold  # as the run chose it, when it was trained
    results = {
        name: detection_scores(score[evaluated], labels[evaluated], thresholds[name])
        for name, score in scores.items()
    }

    reporting.write_table(run_dir, "scores_of_every_detector", results)
    table = pd.DataFrame({"timestamp": _dates(timestamps), "value": values, "in_labelled_window": labels})
    for name, score in scores.items():
        table[f"{name}_score"] = score
        table[f"{name}_flag"] = np.nan_to_num(score, nan=-np.inf) > results[name]["threshold"]
    table["probationary"] = probationary
    table.to_csv(run_dir / SCORES_FILE, index=False)
    plot_series(table, results["autoencoder"]["threshold"], splits.state.series, run_dir / "plots")

    return {
        **results["autoencoder"],
        "threshold_rule": splits.state.threshold_rule,
        "evaluated_rows": int(evaluated.sum()),
        "unscored_rows": int((~probationary & ~evaluated).sum()),
        "pr_auc_chance": float(labels[evaluated].mean()),
        "baselines": {name: results[name] for name in DETECTORS[1:]},
    }


def _dates(seconds: np.ndarray) -> pd.Series:
    known = seconds != np.iinfo(np.int64).min
    return pd.Series(pd.to_datetime(np.where(known, seconds, 0), unit="s")).where(known)


def plot_series(table: pd.DataFrame, threshold: float, name: str, plots: Path) -> Path:
    """The series with the labelled windows shaded and the detections marked; the score and threshold."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6), sharex=True)
    x = table["timestamp"]
    top.plot(x, table["value"], lw=0.6, color="tab:blue")
    bottom.plot(x, table["autoencoder_score"], lw=0.6, color="tab:purple", label="score")
    bottom.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    for a, b in stretches(table["in_labelled_window"].to_numpy().astype(bool), 1):
        for ax in (top, bottom):
            ax.axvspan(x.iloc[a], x.iloc[b - 1], color="tab:orange", alpha=0.25, lw=0)
    flagged = table["autoencoder_flag"].to_numpy()
    top.scatter(x[flagged], table["value"][flagged], s=6, color="tab:red", zorder=3, label="detection")
    end = int(table["probationary"].sum())
    for ax in (top, bottom):
        ax.axvline(x.iloc[end - 1], color="gray", lw=1)  # training data to its left
    top.set_title(f"{name}: labelled windows shaded, training part left of the grey line")
    top.legend(loc="upper left")
    bottom.set_yscale("log")
    bottom.legend(loc="upper left")
    return reporting.save_figure(fig, plots / "series_scores.png")
