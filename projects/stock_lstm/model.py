"""The forecaster: a window of scaled daily features in, the next day's scaled log return out.

It never sees a price level: features are returns, ranges and ratios, and the target is the next day's
log return, standardised with the fold's training mean and spread (so predicting 0 is the historical
mean). Mean squared error is the loss because RMSE of the return is what evaluation reports.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from projects.stock_lstm.data import DEFAULT_LOOKBACK
from projects.stock_lstm.features import FEATURES
from shared.project import Splits


def build_model(hp: kt.HyperParameters, splits: Splits | None = None) -> keras.Model:
    lookback = hp.Int("lookback", 10, 60, step=10, default=DEFAULT_LOOKBACK)
    units = hp.Int("units", 16, 128, step=16, default=32)
    depth = hp.Int("layers", 1, 2, default=1)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)

    windows = keras.Input(shape=(lookback, len(FEATURES)), name="features")
    x = windows
    for i in range(depth):
        x = layers.LSTM(units, return_sequences=i < depth - 1, name=f"lstm{i + 1}")(x)
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, dtype="float32", name="next_return")(x)
    model = keras.Model(windows, outputs, name="lstm_forecaster")
    # clipnorm: a crash day's return is many standard deviations; one batch must not blow the weights up
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mse")
    return model
