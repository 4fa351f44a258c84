"""Serving signature: the whole generation loop inside the SavedModel.

`prompt` (a string), `length`, `temperature`, `top_k` (0: off) and `seed` in; `text`, the `length`
characters that follow the prompt, out. The loop runs in TensorFlow with the recurrent states carried
from step to step, and samples with a stateless RNG seeded by (`seed`, step), so the same request gives
the same text in any process. An empty prompt, a character outside the vocabulary, a temperature <= 0 or
a length outside 1..100,000 fail with an error that says so. Top-k keeps characters tied with the k-th.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.char_lstm.generate import MAX_LENGTH, MIN_TEMPERATURE, Generator
from shared.project import ServingEndpoint, Splits


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    vocabulary = splits.info["vocabulary"]
    generator = Generator(model)
    characters = tf.constant(list(vocabulary))

    def serve(prompt, length, temperature, top_k, seed):
        # each character's id: its place in the vocabulary, 0 for one the model never saw (no lookup
        # table: a plain comparison needs no resource for the SavedModel to track)
        same = tf.equal(tf.strings.unicode_split(prompt, "UTF-8")[:, None], characters[None, 1:])
        ids = tf.where(tf.reduce_any(same, axis=1), tf.argmax(same, axis=1, output_type=tf.int32) + 1, 0)
        checks = [
            tf.debugging.assert_positive(tf.size(ids), "the prompt is empty; give at least one character"),
            tf.debugging.assert_positive(ids, "the prompt has a character the model never saw in training"),
            tf.debugging.assert_greater_equal(
                temperature, MIN_TEMPERATURE, f"temperature must be above 0, at least {MIN_TEMPERATURE}"
            ),
            tf.debugging.assert_positive(length, "length must be at least 1"),
            tf.debugging.assert_less_equal(length, MAX_LENGTH, f"length must be at most {MAX_LENGTH}"),
        ]
        with tf.control_dependencies(checks):  # in a graph, ops run in any order: the checks go first
            ids, length, temperature = tf.identity(ids), tf.identity(length), tf.identity(temperature)

        states = generator.initial_states(1)
        logits = tf.zeros([1, len(vocabulary)])
        for_prompt = tf.while_loop(
            lambda i, *_: i < tf.size(ids),
            lambda i, logits, states: (i + 1, *generator.step(tf.reshape(ids[i], [1]), states)),
            (0, logits, states),
        )
        _, logits, states = for_prompt

        def write(i, logits, states, written):
            scaled = logits / temperature
            scaled = tf.concat([tf.fill([1, 1], -np.inf), scaled[:, 1:]], axis=1)  # never id 0
            k = tf.minimum(top_k, len(vocabulary))
            kth = tf.cond(
                k > 0, lambda: tf.math.top_k(scaled, k).values[:, -1:], lambda: tf.fill([1, 1], -np.inf)
            )
            scaled = tf.where(scaled < kth, -np.inf, scaled)
            next_id = tf.random.stateless_categorical(scaled, 1, seed=tf.stack([seed, i]), dtype=tf.int32)[
                :, 0
            ]
            return (i + 1, *generator.step(next_id, states), written.write(i, next_id[0]))

        written = tf.TensorArray(tf.int32, size=length)
        *_, written = tf.while_loop(lambda i, *_: i < length, write, (0, logits, states, written))
        return {"text": tf.strings.reduce_join(tf.gather(characters, written.stack()))}

    signature = [
        tf.TensorSpec([], tf.string, name="prompt"),
        tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.int32, name="seed"),
    ]
    prompt = vocabulary[1 : min(len(vocabulary), 6)]
    examples = {
        "prompt": np.array(prompt.encode("utf-8")),
        "length": np.array(40, np.int32),
        "temperature": np.array(0.8, np.float32),
        "top_k": np.array(0, np.int32),
        "seed": np.array(7, np.int32),
    }
    return serve, signature, examples
