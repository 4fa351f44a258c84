"""The autoencoder: a window of the standardised series in, its reconstruction out.

`conv` (the default) is keras-io's convolutional autoencoder for time series: two strided Conv1D layers
down to `window / 4` steps of `latent` channels, two Conv1DTranspose layers back. `lstm` encodes the window
into one state of `latent` numbers and unrolls it again. Either learns what normal looks like on the
probationary windows only; a window it reconstructs badly is unusual.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from projects.autoencoder_anomaly.data import WINDOW_STEP, default_window
from shared.project import Splits


def build_model(hp: kt.HyperParameters, splits: Splits) -> keras.Model:
    # the longest window the series' training part has enough windows for (a search never tries longer):
    # `load` measures it, before any window is cut
    largest = splits.info["largest_window"]
    window = hp.Int("window", WINDOW_STEP, largest, step=WINDOW_STEP, default=default_window(splits))
    architecture = hp.Choice("architecture", ["conv", "lstm"], default="conv")
    filters = hp.Int("filters", 8, 64, step=8, default=32)  # conv filters, or LSTM units
    latent = hp.Int("latent", 4, 32, step=4, default=16)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)

    windows = keras.Input(shape=(window, 1), name="window")
    if architecture == "conv":
        conv = dict(kernel_size=7, strides=2, padding="same", activation="relu")
        x = layers.Conv1D(filters, **conv, name="encode1")(windows)
        x = layers.Dropout(dropout)(x)
        x = layers.Conv1D(latent, **conv, name="encode2")(x)  # the bottleneck: window/4 x latent
        x = layers.Conv1DTranspose(latent, **conv, name="decode1")(x)
        x = layers.Dropout(dropout)(x)
        x = layers.Conv1DTranspose(filters, **conv, name="decode2")(x)
        outputs = layers.Conv1DTranspose(1, 7, padding="same", dtype="float32", name="reconstruction")(x)
    else:
        x = layers.LSTM(filters, name="encode")(windows)
        x = layers.Dense(latent, activation="tanh", name="code")(x)  # the whole window in `latent` numbers
        x = layers.Dropout(dropout)(x)
        x = layers.RepeatVector(window)(x)
        x = layers.LSTM(filters, return_sequences=True, name="decode")(x)
        outputs = layers.Dense(1, dtype="float32", name="reconstruction")(x)

    model = keras.Model(windows, outputs, name=f"{architecture}_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model
