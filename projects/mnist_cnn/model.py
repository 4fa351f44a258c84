"""A VGG-style CNN with batch normalisation and light augmentation: about 99.5% on the MNIST test set.

Two blocks of two 3x3 convolutions (each with batch norm), max pooling and dropout, then a dense layer.
The model takes uint8 images as they come: rescaling and augmentation (inactive at inference) are layers,
so the exported model needs no preprocessing outside it.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from shared.project import Splits


def conv_block(x, filters: int, dropout_rate: float, name: str, convs: int = 2):
    for i in range(1, convs + 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        # momentum 0.9: the moving statistics settle within tens of steps, so short runs evaluate well too
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.MaxPooling2D(name=f"{name}_pool")(x)
    return layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)


def build_model(hp: kt.HyperParameters, splits: Splits | None = None) -> keras.Model:
    """The CNN for `hp`; MNIST's shapes are fixed, so it needs nothing from `splits`."""
    # the convolutions are nearly all of a step's time on a CPU, growing with their width (a batch of 128:
    # about 70, 80, 115 and 350 ms at 16, 24, 32 and 64 filters): hence 24 (README: where the time goes)
    filters = hp.Int("filters", 16, 64, step=8, default=24)
    dense_units = hp.Int("dense_units", 64, 512, step=64, default=256)
    conv_dropout = hp.Float("conv_dropout", 0.0, 0.4, step=0.05, default=0.1)
    dense_dropout = hp.Float("dense_dropout", 0.0, 0.6, step=0.1, default=0.2)
    convs = hp.Int("convs_per_block", 1, 2, default=2)  # 1: a 2x faster step, but 99.3% in 12 epochs
    augment = hp.Boolean("augment", default=True)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=3e-3)

    inputs = keras.Input(shape=(28, 28), dtype="uint8", name="images")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Reshape((28, 28, 1), name="add_channel")(x)
    if augment:  # small shifts, turns and zooms: what handwriting varies by
        x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="shift")(x)
        x = layers.RandomRotation(0.03, fill_mode="constant", name="rotate")(x)
        x = layers.RandomZoom(0.1, fill_mode="constant", name="zoom")(x)
    x = conv_block(x, filters, conv_dropout, "block1", convs)
    x = conv_block(x, filters * 2, conv_dropout, "block2", convs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(momentum=0.9, name="dense_bn")(x)
    x = layers.ReLU(name="dense_relu")(x)
    x = layers.Dropout(dense_dropout, name="dense_dropout")(x)
    # float32 output: stable softmax under a mixed-precision policy
    outputs = layers.Dense(10, activation="softmax", dtype="float32", name="probabilities")(x)

    model = keras.Model(inputs, outputs, name="mnist_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
