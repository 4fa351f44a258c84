"""Serving signature: a batch of raw review strings in, the probability that each is positive out.

The adapted TextVectorization is inside the SavedModel, so a client sends text as it is; reviews longer than
training's are truncated the same way.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from shared.project import ServingEndpoint, Splits, Trained

EXAMPLES = 32


def examples(splits: Splits) -> dict[str, np.ndarray]:
    """The first test reviews as text, kept in the run folder to check every export of the run with."""
    texts = [text.decode("utf-8") for text, _ in splits.test.take(EXAMPLES).as_numpy_iterator()]
    return {"text": np.array(texts)}  # str, not object: .npz keeps it without pickling


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    vectorizer = trained.preprocessor  # the one the run adapted, from preprocessor.keras

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = tf.reshape(model(vectorizer(text), training=False), [-1])
        return {"positive_probability": probability}

    return serve, [tf.TensorSpec([None], tf.string, name="text")], trained.examples
