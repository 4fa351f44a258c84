"""Serving signature: uint8 images [N, 28, 28] in; class probabilities and the predicted digit out."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from shared.data import in_memory
from shared.project import ServingEndpoint, Splits, Trained

EXAMPLES = 64


def examples(splits: Splits) -> dict[str, np.ndarray]:
    """The first test digits, kept in the run folder to check every export of the run with."""
    images, _ = in_memory(splits.test.take(EXAMPLES))
    return {"images": images}


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(images, training=False)
        return {
            "probabilities": probabilities,
            "digit": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        }

    signature = [tf.TensorSpec([None, 28, 28], tf.uint8, name="images")]
    return serve, signature, trained.examples
