"""Serving signature: uint8 images [N, 28, 28] in; class probabilities and the predicted digit out."""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.data import in_memory
from shared.project import ServingEndpoint, Splits

EXAMPLES = 64


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(images, training=False)
        return {
            "probabilities": probabilities,
            "digit": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        }

    signature = [tf.TensorSpec([None, 28, 28], tf.uint8, name="images")]
    images, _ = in_memory(splits.test)
    return serve, signature, {"images": images[:EXAMPLES]}
