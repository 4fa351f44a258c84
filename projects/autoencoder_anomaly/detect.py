"""From reconstructions to a score per row, a threshold chosen without labels, and detections.

A window's error is its mean absolute reconstruction error (a mean over the window, so noise that no
model can predict averages out); a row's score is the mean error of every window that covers it (windows
move one row at a time), so each row gets one score however long the window is. Only stretches
of usable rows at least one window long are scored; every other row's score is NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from projects.autoencoder_anomaly.series import stretches

# windows [N, window, 1] -> reconstructions of the same shape (a model call, or model.predict)
Reconstruct = Callable[[tf.Tensor], tf.Tensor]


def overlap_average(per_window: tf.Tensor) -> tf.Tensor:
    """[..., N, window] numbers per window position -> [..., N + window - 1]: each row's mean over its
    windows."""
    per_window = tf.convert_to_tensor(per_window, tf.float32)
    total = tf.signal.overlap_and_add(per_window, frame_step=1)
    return total / tf.signal.overlap_and_add(tf.ones_like(per_window), frame_step=1)


def reconstruction_scores(standardised: tf.Tensor, window: int, reconstruct: Reconstruct) -> tf.Tensor:
    """Scores of stretches of usable, standardised rows, T >= window: [T], or [N, T] for N stretches of one
    length. Every window of every stretch goes through `reconstruct` in one call."""
    frames = tf.signal.frame(
        tf.cast(standardised, tf.float32), window, frame_step=1
    )  # [..., T - window + 1, window]
    rebuilt = tf.cast(reconstruct(tf.reshape(frames, [-1, window, 1])), tf.float32)  # float16 too
    rebuilt = tf.reshape(rebuilt, tf.shape(frames))
    window_errors = tf.reduce_mean(tf.abs(rebuilt - frames), axis=-1, keepdims=True)  # [..., frames, 1]
    return overlap_average(tf.broadcast_to(window_errors, tf.shape(frames)))


def series_scores(
    standardised: np.ndarray, window: int, score_stretch: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """`score_stretch` on every stretch of finite rows at least `window` long; NaN elsewhere."""
    scores = np.full(len(standardised), np.nan)
    for start, stop in stretches(np.isfinite(standardised), window):
        scores[start:stop] = np.asarray(score_stretch(standardised[start:stop]))
    return scores


def threshold_from(scores: np.ndarray, rule: str) -> float:
    """From scores of normal rows: `max`, a percentile (`99.5`), or `<k>sigma`: mean + k standard deviations.

    The held-out rows are a small sample: their maximum or a high percentile is often exceeded by normal
    rows later on, while mean + k sigma extrapolates past the sample.
    """
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        raise ValueError("no scored rows to choose a threshold from")
    if rule == "max":
        return float(scores.max())
    if rule.endswith("sigma"):
        return float(scores.mean() + float(rule[: -len("sigma")]) * scores.std())
    return float(np.percentile(scores, float(rule)))


def events(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of consecutive flagged rows: one detection each."""
    return stretches(np.asarray(flags, dtype=bool), 1)
