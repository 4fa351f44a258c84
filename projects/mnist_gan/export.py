"""Serving signature: latent vectors (and digits, when conditional) in, uint8 images [N, 28, 28] out.

It needs nothing from the data: the latent size and whether the model is conditional are the model's own,
and the export is checked on random latent vectors."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from shared.project import ServingEndpoint, Trained


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    generator, latent_dim = model.sampler, model.latent_dim
    latent_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="latent")
    rng = np.random.default_rng(0)
    examples = {"latent": rng.normal(size=(4, latent_dim)).astype(np.float32)}

    def to_uint8(images):
        return {"images": tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)}

    if not model.conditional:

        def serve(latent):
            return to_uint8(generator(latent, training=False))

        return serve, [latent_spec], examples

    def serve_conditional(latent, label):
        checks = [
            tf.debugging.assert_greater_equal(label, 0, "label must be a digit 0-9"),
            tf.debugging.assert_less_equal(label, 9, "label must be a digit 0-9"),
            tf.debugging.assert_equal(tf.shape(label)[0], tf.shape(latent)[0], "one label per latent vector"),
        ]
        with tf.control_dependencies(checks):  # in a graph the checks must run before the lookup
            label = tf.identity(label)
        return to_uint8(generator([latent, label], training=False))

    examples["label"] = np.array([0, 3, 7, 9], np.int32)
    return serve_conditional, [latent_spec, tf.TensorSpec([None], tf.int32, name="label")], examples
