"""Serving signature: stretches of raw values in ([N, T]: N stretches of T values), a score and an anomaly
flag per value out ([N, T] each).

The scaler (fitted on the probationary rows), the window length and the threshold (chosen on the
held-out probationary rows' scores by the run's rule) are all inside the SavedModel, so a client sends
values as they are. The stretch must be at least one window long and hold only finite numbers:
`predict` splits a series at unusable rows and sends each stretch on its own.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.autoencoder_anomaly.data import series_of, stretches
from projects.autoencoder_anomaly.detect import reconstruction_scores
from projects.autoencoder_anomaly.evaluate import autoencoder_scores, held_out_threshold
from shared.project import ServingEndpoint, Splits


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    values, _, _, _ = series_of(splits)
    mean, std = splits.info["mean"], splits.info["std"]
    window = model.input_shape[1]
    scorer = lambda series: autoencoder_scores(model, series)  # noqa: E731
    threshold = held_out_threshold(scorer, (values - mean) / std, splits)  # as evaluate chose it

    def serve(values: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_greater_equal(
            tf.shape(values)[1], window, message=f"send at least one window ({window} values) per stretch"
        )
        tf.debugging.assert_all_finite(values, "every value must be a finite number; split at the others")
        standardised = (values - mean) / std
        score = reconstruction_scores(standardised, window, lambda frames: model(frames, training=False))
        return {"score": score, "anomaly": score > threshold}

    start, stop = stretches(np.isfinite(values), window)[-1]  # the last stretch: it reaches the test rows
    length = max(window, min(3 * window, (stop - start) // 2))  # two stretches of this length, if they fit
    rows = [values[stop - length : stop]]
    if stop - start >= 2 * length:
        rows.insert(0, values[stop - 2 * length : stop - length])
    examples = {"values": np.stack(rows).astype(np.float32)}
    return serve, [tf.TensorSpec([None, None], tf.float32, name="values")], examples
