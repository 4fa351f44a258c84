"""keras-io's convolutional autoencoder on the NAB series autoencoder_anomaly evaluates, scored like it.

Source: "Timeseries anomaly detection using an Autoencoder" (keras-io). Kept: windows of 288 rows (a day at
5 minutes) moving one row at a time, normalised by the training rows' mean and std, the model, Adam(1e-3),
mse, batch 128, validation_split 0.1, EarlyStopping(val_loss, patience 5), 50 epochs (at most
budget.max_epochs), and its detection rule: a window's score is its mean absolute reconstruction error, and
a row is anomalous when every window containing it is, so a row's score is the minimum over its windows.

Changed from the source, and why:
- the data: keras-io trains on one clean series and tests on another. Here the training rows are the
  probationary part of the series (splits.info["probationary_rows"]), the mean and std are the project's
  (computed on those rows), and every row of the series is scored, as the project scores it;
- windows never cross an unusable (NaN) row (the project's `window_starts`); rows of a stretch shorter
  than a window get no score;
- the window is 288 rows, or half the longest usable probationary stretch (a multiple of 4, so the two
  stride-2 layers give the length back) when that is shorter: on a short series (the smoke series, 450
  probationary rows: 224) there would be too few windows to train and validate on;
- rows near a stretch's ends lie in fewer than 288 windows: keras-io leaves them unscored, here they take
  the minimum over the windows they are in;
- the score: test PR-AUC, `average_precision_score` on the rows after the probationary period that have a
  score, against "inside a NAB labelled window", exactly as the project's evaluate computes "pr_auc" (it
  uses the rows every one of its detectors scored: the same rows when no row is unusable). The project's
  `detection_scores` gives ROC-AUC and window-level F1 too, at keras-io's threshold (max training MAE).
"""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from benchmarks.references import Budget, Measured
from projects.autoencoder_anomaly.data import series_of
from projects.autoencoder_anomaly.evaluate import detection_scores
from projects.autoencoder_anomaly.series import stretches, window_starts
from shared.project import Splits

TITLE = "Timeseries anomaly detection using an Autoencoder"
SOURCE = "https://keras.io/examples/timeseries/timeseries_anomaly_detection/"
KIND = "final_metric"
TIME_STEPS = 288


def build_model(time_steps: int) -> keras.Model:
    model = keras.Sequential(
        [
            layers.Input(shape=(time_steps, 1)),
            layers.Conv1D(filters=32, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Dropout(rate=0.2),
            layers.Conv1D(filters=16, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Conv1DTranspose(filters=16, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Dropout(rate=0.2),
            layers.Conv1DTranspose(filters=32, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    return model


def window_mae(model: keras.Model, windows: np.ndarray) -> np.ndarray:
    """keras-io's score of each window: mean absolute error of its reconstruction."""
    rebuilt = model.predict(windows[..., np.newaxis], batch_size=1024, verbose=0)[..., 0]
    return np.mean(np.abs(rebuilt - windows), axis=1)


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    keras.utils.set_random_seed(seed)
    values, probationary, _, labels = series_of(splits)
    normalized = (values - splits.state.mean) / splits.state.std  # the project's scaler
    usable, rows = np.isfinite(normalized), splits.info["probationary_rows"]
    longest = max((b - a for a, b in stretches(usable[:rows], 1)), default=0)
    time_steps = min(TIME_STEPS, 4 * (longest // 8))  # a multiple of 4, at most half the stretch
    frames = np.lib.stride_tricks.sliding_window_view(np.nan_to_num(normalized), time_steps)

    # training windows: every window of the probationary rows, in time order (validation_split takes the
    # last 10% of them, before shuffling, as in keras-io)
    x_train = frames[window_starts(usable, time_steps, stop=rows)].astype(np.float32)
    model = build_model(time_steps)
    start = time.perf_counter()
    history = model.fit(
        x_train[..., np.newaxis],
        x_train[..., np.newaxis],
        epochs=min(50, budget.max_epochs),
        batch_size=128,
        validation_split=0.1,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    threshold = float(np.max(window_mae(model, x_train)))  # keras-io: the worst training window

    # a row's score: the minimum error of the windows containing it, within its stretch of usable rows
    scores = np.full(len(values), np.nan)
    for a, b in stretches(usable, time_steps):
        errors = window_mae(model, frames[a : b - time_steps + 1].astype(np.float32))
        padded = np.pad(errors, time_steps - 1, constant_values=np.inf)  # no window there
        scores[a:b] = np.lib.stride_tricks.sliding_window_view(padded, time_steps).min(axis=1)

    evaluated = ~probationary & np.isfinite(scores)  # the rows after the probationary period
    results = detection_scores(scores[evaluated], labels[evaluated], threshold)
    return Measured(
        "test PR-AUC",
        results["pr_auc"],
        seconds=round(seconds, 1),
        epochs=len(history.history["loss"]),
        details={
            "time_steps": time_steps,
            "batch_size": 128,
            "params": model.count_params(),
            "training_windows": len(x_train),
            "evaluated_rows": int(evaluated.sum()),
            "pr_auc_chance": float(labels[evaluated].mean()),
            **{key: results[key] for key in ("roc_auc", "precision", "recall", "f1", "threshold")},
        },
    )
