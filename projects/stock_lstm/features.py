"""The model's features, computed from the past only, in TensorFlow so training and serving share them.

Each trading day t gets six numbers from days t-20..t alone (WARMUP = 20 days of history before it):

- `return`: the log return log(C_t / C_{t-1});
- `range`: log(H_t / L_t), the day's high-low range;
- `body`: log(C_t / O_t), where the day closed against where it opened;
- `volume`: log(1 + V_t) minus its mean over the last 20 days, relative volume;
- `volatility`: the standard deviation of the last 20 log returns;
- `momentum`: log(C_t / C_{t-20}), the 20-day return.

The same function turns a whole price history into training features and a request's rows into the
SavedModel's input, so serving cannot drift from training.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
FEATURES = ("return", "range", "body", "volume", "volatility", "momentum")
WARMUP = 20  # days of history a day's features need before it


def compute_features(ohlcv: tf.Tensor) -> tf.Tensor:
    """[..., T, 5] Open/High/Low/Close/Volume rows, oldest first -> [..., T - WARMUP, 6] features.

    Row i of the result belongs to day i + WARMUP of the input.
    """
    frames = tf.signal.frame(tf.cast(ohlcv, tf.float32), WARMUP + 1, 1, axis=-2)  # [..., n, 21, 5]
    open_, high, low, close, volume = tf.unstack(frames, axis=-1)  # each [..., n, 21]
    log_close = tf.math.log(close)
    returns = log_close[..., 1:] - log_close[..., :-1]  # the 20 returns up to each day
    log_volume = tf.math.log1p(volume[..., 1:])
    return tf.stack(
        [
            returns[..., -1],
            tf.math.log(high[..., -1] / low[..., -1]),
            tf.math.log(close[..., -1] / open_[..., -1]),
            log_volume[..., -1] - tf.reduce_mean(log_volume, axis=-1),
            tf.math.reduce_std(returns, axis=-1),
            log_close[..., -1] - log_close[..., 0],
        ],
        axis=-1,
    )


def features_of(ohlcv: np.ndarray) -> np.ndarray:
    """`compute_features` of one history [T, 5] as float64 NumPy ([T - WARMUP, 6])."""
    if len(ohlcv) <= WARMUP:
        return np.zeros((0, len(FEATURES)))
    return compute_features(tf.constant(ohlcv, tf.float32)).numpy().astype(np.float64)
