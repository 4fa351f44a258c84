"""Serving signature: the last days' raw prices in, the next day's forecast out.

`ohlcv` is [N, lookback + 20, 5]: per request, the most recent lookback + 20 days of adjusted Open, High,
Low, Close and Volume, oldest first (the features of a day need the 20 days before it). The features, the
scaler of the run's training days and the model are all inside the SavedModel; it returns the forecast
log return and the close it implies for the day after the last row.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.stock_lstm.data import Scaler
from projects.stock_lstm.features import WARMUP, compute_features
from shared.data import in_memory
from shared.project import ServingEndpoint, Splits


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    lookback = model.input_shape[1]
    scaler = Scaler.from_json(splits.info["scaler"])
    mean, std = tf.constant(scaler.mean, tf.float32), tf.constant(scaler.std, tf.float32)
    days = lookback + WARMUP

    def serve(ohlcv: tf.Tensor) -> dict[str, tf.Tensor]:
        checks = [
            tf.debugging.assert_all_finite(ohlcv, "every price and volume must be a finite number"),
            tf.debugging.assert_positive(ohlcv[..., :4], "prices must be positive"),
        ]
        with tf.control_dependencies(checks):  # in a graph, ops run in any order: the checks go first
            ohlcv = tf.identity(ohlcv)
        scaled = (compute_features(ohlcv) - mean) / std  # [N, lookback, 6]
        forecast = model(scaled, training=False)[:, 0]
        log_return = scaler.target_mean + scaler.target_std * tf.cast(forecast, tf.float32)
        return {"log_return": log_return, "close_forecast": ohlcv[:, -1, 3] * tf.exp(log_return)}

    rows, _ = in_memory(splits.test)
    history = rows["ohlcv"].astype(np.float32)
    examples = {"ohlcv": np.stack([history[-days - i : len(history) - i] for i in (2, 1, 0)])}
    return serve, [tf.TensorSpec([None, days, 5], tf.float32, name="ohlcv")], examples
