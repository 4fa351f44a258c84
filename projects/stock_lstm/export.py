"""Serving signature: the last days' raw prices in, the next day's forecast out.

`ohlcv` is [N, lookback + 20, 5]: per request, the most recent lookback + 20 days of adjusted Open, High,
Low, Close and Volume, oldest first (the features of a day need the 20 days before it). The features, the
scaler of the run's training days and the model are all inside the SavedModel; it returns the forecast
log return and the close it implies for the day after the last row.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from projects.stock_lstm.data import Scaler, options_of, table_of, walk_forward_folds
from projects.stock_lstm.features import COLUMNS, WARMUP, compute_features
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


def page_info(splits: Splits) -> dict[str, Any]:
    """What the page needs beyond the signature: the window's length, the run's own last days (so it can
    forecast with no data file) and the days its walk-forward test covered.

    The days are the series the run read (adjusted as training adjusted them), under its name without
    ".csv": SPY for stocks/SPY.csv. The model's test error and persistence's are not here: page_info sees
    only the splits, so the page reads them from the run's test_* metrics (evaluate.summarise).
    """
    lookback = int(splits.info["lookback"])
    days = lookback + WARMUP
    rows, _ = in_memory(splits.test)
    dates = rows["date"].astype("datetime64[D]")
    table = table_of(splits)
    folds = walk_forward_folds(table.samples, lookback, *options_of(splits.info))
    # the days forecast, as evaluate dates them: a sample's target is the day after it
    first, last = table.dates[folds[0].test[0] + 1], table.dates[folds[-1].test[1]]
    return {
        "window_days": days,
        "lookback": lookback,
        "warmup": WARMUP,
        "columns": list(COLUMNS),
        "test_period": [str(first), str(last)],
        "tickers": {
            str(splits.info["name"]).removesuffix(".csv"): {
                "dates": [str(day) for day in dates[-days:]],
                "ohlcv": rows["ohlcv"][-days:].tolist(),
            }
        },
    }
