"""Serving signature: a batch of raw review strings in, the probability that each is positive out.

The adapted TextVectorization is inside the SavedModel, so a client sends text as it is; reviews longer than
training's are truncated the same way.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from shared.project import ServingEndpoint, Splits

EXAMPLES = 32


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    vectorizer = splits.preprocessor

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = tf.reshape(model(vectorizer(text), training=False), [-1])
        return {"positive_probability": probability}

    texts = [t.decode("utf-8") for t, _ in splits.test.take(EXAMPLES).as_numpy_iterator()]
    return serve, [tf.TensorSpec([None], tf.string, name="text")], {"text": np.array(texts)}
