"""A wide & deep network over the FeatureSpace encoding: depth x (Dense, ReLU, Dropout) plus a linear path.

Tabular data this size rewards regularisation more than capacity: L2 on every kernel and dropout keep the
network from memorising 5,000 customers. The input is the adapted FeatureSpace's output, so its width
comes from the data (`splits`); the preprocessor itself runs in tf.data and in the serving export.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from projects.churn_ann.data import encoded_width
from shared.project import Splits


def build_model(hp: kt.HyperParameters, splits: Splits) -> keras.Model:
    depth = hp.Int("layers", 1, 4, default=2)
    width = hp.Int("units", 16, 256, step=16, default=64)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.3)
    l2 = hp.Float("l2", 1e-6, 1e-2, sampling="log", default=1e-4)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    wide = hp.Boolean("wide", default=True)
    hp.Choice("batch_size", [32, 64, 128, 256], default=64)  # per replica; the runner batches with it

    inputs = keras.Input(shape=(encoded_width(splits),), name="encoded_customer")
    x = inputs
    for i in range(depth):
        x = layers.Dense(
            width, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name=f"dense{i + 1}"
        )(x)
        x = layers.Dropout(dropout, name=f"dropout{i + 1}")(x)
    logit = layers.Dense(1, name="deep_logit")(x)
    if wide:  # wide & deep: a linear path beside the deep one, as strong as logistic regression on its own
        linear = layers.Dense(1, kernel_regularizer=keras.regularizers.L2(l2), name="wide_logit")(inputs)
        logit = layers.Add(name="logit")([logit, linear])
    outputs = layers.Activation("sigmoid", dtype="float32", name="churn_probability")(logit)

    model = keras.Model(inputs, outputs, name="churn_ann")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[
            keras.metrics.AUC(name="auc"),
            keras.metrics.AUC(curve="PR", name="pr_auc"),
            keras.metrics.BinaryAccuracy(name="accuracy"),
        ],
    )
    return model
