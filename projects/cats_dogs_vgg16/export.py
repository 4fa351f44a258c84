"""Serving signature: encoded image files in (JPEG, PNG, GIF, BMP bytes, as a client has them); the
probability that each shows a dog, and its label, out. Decoding and resizing happen inside, with the
function the training images went through."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.cats_dogs_vgg16.data import CLASS_NAMES, decode_image, encode_jpeg
from shared.data import in_memory
from shared.project import ServingEndpoint, Splits

EXAMPLES = 6


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    size = int(splits.info["image_size"])

    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            lambda data: decode_image(data, size),
            image_bytes,
            fn_output_signature=tf.TensorSpec((size, size, 3), tf.uint8),
        )
        probability = model(images, training=False)[:, 0]
        label = tf.gather(tf.constant(CLASS_NAMES), tf.cast(probability >= 0.5, tf.int32))
        return {"dog_probability": probability, "label": label}

    signature = [tf.TensorSpec([None], tf.string, name="image_bytes")]
    images, _ = in_memory(splits.test.take(EXAMPLES))
    files = [encode_jpeg(image) for image in images[:-1]]
    files.append(tf.io.encode_png(images[-1]).numpy())  # PNG too: the signature takes either
    # fixed-width bytes (an .npz holds object arrays only pickled) drop trailing NULs: safe for JPEG and
    # PNG, which end in a marker and a checksum
    return serve, signature, {"image_bytes": np.array(files, dtype=object).astype(bytes)}
