"""Serving signature: stretches of raw values in ([N, T]: N stretches of T values), a score and an anomaly
flag per value out ([N, T] each).

The scaler (fitted on the probationary rows), the window length and the threshold (chosen on the
held-out probationary rows' scores by the run's rule) are all inside the SavedModel, so a client sends
values as they are. They come from the run's state (state.json), never from the series again. The
stretch must be at least one window long and hold only finite numbers: `predict` splits a series at
unusable rows and sends each stretch on its own.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from projects.autoencoder_anomaly.data import series_of
from projects.autoencoder_anomaly.detect import reconstruction_scores
from projects.autoencoder_anomaly.series import stretches
from shared.project import ServingEndpoint, Splits, Trained


def examples(splits: Splits) -> dict[str, np.ndarray]:
    """One or two stretches of the series' last usable rows (they reach the test rows), kept in the run
    folder to check every export of the run with."""
    values, _, _, _ = series_of(splits)
    window = splits.state.window
    start, stop = stretches(np.isfinite(values), window)[-1]
    length = max(window, min(3 * window, (stop - start) // 2))  # two stretches of this length, if they fit
    rows = [values[stop - length : stop]]
    if stop - start >= 2 * length:
        rows.insert(0, values[stop - 2 * length : stop - length])
    return {"values": np.stack(rows).astype(np.float32)}


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    state = trained.state
    mean, std, window, threshold = state.mean, state.std, state.window, state.threshold

    def serve(values: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_greater_equal(
            tf.shape(values)[1], window, message=f"send at least one window ({window} values) per stretch"
        )
        tf.debugging.assert_all_finite(values, "every value must be a finite number; split at the others")
        standardised = (values - mean) / std
        score = reconstruction_scores(standardised, window, lambda frames: model(frames, training=False))
        return {"score": score, "anomaly": score > threshold}

    return serve, [tf.TensorSpec([None, None], tf.float32, name="values")], trained.examples


def page_info(trained: Trained) -> dict[str, Any]:
    """What the page tells a person that the signature ([N, T] values) does not: the window length (the
    fewest values a request may hold) and the series the model learnt what normal looks like from."""
    return {"window": trained.state.window, "series": trained.state.series}
