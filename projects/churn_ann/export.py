"""Serving signature: one tensor per raw column (strings, int64 flags, float32 numbers) in, churn out.

The adapted FeatureSpace is inside the SavedModel, so a server sends customer rows as they are in the CSV;
a category never seen in training falls into the out-of-vocabulary bucket instead of failing, and a blank
`TotalCharges` sent as NaN is filled by the rule training used (`tenure * MonthlyCharges`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.churn_ann.data import DATASETS, frame_of
from shared.project import ServingEndpoint, Splits

EXAMPLES = 64


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    preprocessor = splits.preprocessor
    blank_fills = DATASETS[splits.info["dataset"]].blank_fills

    def serve(columns: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        columns = dict(columns)
        for name, fill in blank_fills.items():  # NaN where the CSV is blank: the rule training used
            columns[name] = tf.where(tf.math.is_nan(columns[name]), fill(columns), columns[name])
        churn = model(preprocessor(columns), training=False)
        return {"churn_probability": tf.reshape(churn, [-1])}

    features, _ = frame_of(splits.test.take(EXAMPLES))
    examples = {name: _plain(features[name].to_numpy()) for name in features.columns}
    signature = {
        name: tf.TensorSpec([None], tf.string if values.dtype.kind in "OUS" else values.dtype, name)
        for name, values in examples.items()
    }
    return serve, [signature], examples


def _plain(values: np.ndarray) -> np.ndarray:
    """Text as a fixed-width unicode array: it saves to .npz without pickling, unlike object arrays."""
    return values.astype(str) if values.dtype == object else values
