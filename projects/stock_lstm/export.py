"""Serving signature: the last days' raw prices in, the next day's forecast out.

`ohlcv` is [N, lookback + 20, 5]: per request, the most recent lookback + 20 days of adjusted Open, High,
Low, Close and Volume, oldest first (the features of a day need the 20 days before it). The features, the
scaler of the run's training days and the model are all inside the SavedModel; it returns the forecast
log return and the close it implies for the day after the last row. The scaler, the lookback and the page's
days come from the run's state (state.json), never from the prices again.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from projects.stock_lstm.data import Scaler, history_of
from projects.stock_lstm.features import COLUMNS, WARMUP, compute_features
from shared.project import ServingEndpoint, Splits, Trained


def examples(splits: Splits) -> dict[str, np.ndarray]:
    """Three requests ending at each of the run's last three days, kept in the run folder to check every
    export of the run with."""
    _, history = history_of(splits)
    days = splits.state.lookback + WARMUP
    history = history.astype(np.float32)
    return {"ohlcv": np.stack([history[-days - i : len(history) - i] for i in (2, 1, 0)])}


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    scaler = Scaler.from_json(trained.state.scaler)
    mean, std = tf.constant(scaler.mean, tf.float32), tf.constant(scaler.std, tf.float32)
    days = trained.state.lookback + WARMUP

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

    return serve, [tf.TensorSpec([None, days, 5], tf.float32, name="ohlcv")], trained.examples


def page_info(trained: Trained) -> dict[str, Any]:
    """What the page needs beyond the signature: the window's length, the run's own last days (so it can
    forecast with no data file) and the days its walk-forward test covered.

    The days are the series the run read (adjusted as training adjusted them), under its name without
    ".csv": SPY for stocks/SPY.csv. The model's test error and persistence's are not here: the page reads
    them from the run's test_* metrics (evaluate.summarise), which the server lists with the model.
    """
    state = trained.state
    return {
        "window_days": state.lookback + WARMUP,
        "lookback": state.lookback,
        "warmup": WARMUP,
        "columns": list(COLUMNS),
        "test_period": state.test_period,
        "tickers": {
            state.name.removesuffix(".csv"): {"dates": state.last_dates, "ohlcv": state.last_ohlcv},
        },
    }
