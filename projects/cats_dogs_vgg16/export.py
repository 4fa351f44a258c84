"""Serving signatures: encoded image files in (JPEG, PNG, GIF, BMP bytes, as a client has them), decoded and
resized inside with the function the training images went through.
- serving_default: the probability that each shows a dog, and its label;
- gradcam: the same, and a Grad-CAM heat map of the predicted class on VGG16's last convolution (the page
  draws it over the photo)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from projects.cats_dogs_vgg16.data import CLASS_NAMES, decode_image, encode_jpeg
from projects.cats_dogs_vgg16.model import LAST_CONV, grad_cam, grad_cam_probe
from shared.data import in_memory
from shared.project import ServingEndpoint, Splits, Trained

EXAMPLES = 6


def decode_batch(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """[N] encoded files -> uint8 [N, size, size, 3]."""
    return tf.map_fn(
        lambda data: decode_image(data, size),
        image_bytes,
        fn_output_signature=tf.TensorSpec((size, size, 3), tf.uint8),
    )


def label_of(probability: tf.Tensor) -> tf.Tensor:
    return tf.gather(tf.constant(CLASS_NAMES), tf.cast(probability >= 0.5, tf.int32))


def example_files(splits: Splits) -> dict[str, np.ndarray]:
    """A few test images, JPEG and PNG (the signatures take either), kept in the run folder to check every
    export of the run with."""
    images, _ = in_memory(splits.test.take(EXAMPLES))
    files = [encode_jpeg(image) for image in images[:-1]]
    files.append(tf.io.encode_png(images[-1]).numpy())
    # fixed-width bytes (an .npz holds object arrays only pickled) drop trailing NULs: safe for JPEG and
    # PNG, which end in a marker and a checksum
    return {"image_bytes": np.array(files, dtype=object).astype(bytes)}


INPUT_SIGNATURE = [tf.TensorSpec([None], tf.string, name="image_bytes")]


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    size = trained.state.image_size

    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        probability = model(decode_batch(image_bytes, size), training=False)[:, 0]
        return {"dog_probability": probability, "label": label_of(probability)}

    return serve, INPUT_SIGNATURE, trained.examples


def gradcam_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    """The heat map is `heatmap` float32 [N, h, w] in [0, 1], LAST_CONV's grid (14x14 for 224x224 images):
    row 0 is the top of the image as the model sees it (squashed to a square)."""
    size = trained.state.image_size
    probe = grad_cam_probe(model.network)  # the same layers and weights as `model`'s

    def gradcam(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        heatmap, probability = grad_cam(probe, decode_batch(image_bytes, size))
        return {"dog_probability": probability, "label": label_of(probability), "heatmap": heatmap}

    return gradcam, INPUT_SIGNATURE, trained.examples


def extra_endpoints(model: keras.Model, trained: Trained) -> dict[str, ServingEndpoint]:
    return {"gradcam": gradcam_endpoint(model, trained)}


def page_info(trained: Trained) -> dict[str, Any]:
    return {
        "image_size": trained.state.image_size,
        "class_names": list(CLASS_NAMES),
        "heatmap_layer": LAST_CONV,
    }
