"""Serving signatures: the whole generation loop, and one step of it for streaming.

`generate` (also `serving_default`): `prompt` (a string), `length`, `temperature`, `top_k` (0: off) and
`seed` in; `text`, the `length` characters that follow the prompt, out. The loop runs in TensorFlow with the
recurrent states carried from step to step, and samples with a stateless RNG seeded by (`seed`, step), so
the same request gives the same text in any process. An empty prompt, a character outside the vocabulary,
a temperature <= 0 or a length outside 1..100,000 fail with an error that says so. Top-k keeps characters
tied with the k-th.

`generate_step`: one character of that loop, for the server's :stream (its outputs `next_X` are fed back
as inputs `X`). It reads `text` (the prompt at the first step, then the character just written) on top of
`state` (every recurrent layer's states packed into one vector, zeros to start) and samples the next
character exactly as `generate` samples its character number `position`, so streaming N steps gives
`generate`'s text.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projects.char_lstm.generate import MAX_LENGTH, MIN_TEMPERATURE, Generator
from shared.project import ServingEndpoint, Trained


def checked_ids(text: tf.Tensor, temperature: tf.Tensor, characters: tf.Tensor) -> tf.Tensor:
    """The text's character ids, once the request's checks have passed: a non-empty text of characters
    the model knows, a temperature it can divide by."""
    # each character's id: its place in the vocabulary, 0 for one the model never saw (no lookup table:
    # a plain comparison needs no resource for the SavedModel to track)
    same = tf.equal(tf.strings.unicode_split(text, "UTF-8")[:, None], characters[None, 1:])
    ids = tf.where(tf.reduce_any(same, axis=1), tf.argmax(same, axis=1, output_type=tf.int32) + 1, 0)
    checks = [
        tf.debugging.assert_positive(tf.size(ids), "the prompt is empty; give at least one character"),
        tf.debugging.assert_positive(ids, "the prompt has a character the model never saw in training"),
        tf.debugging.assert_greater_equal(
            temperature, MIN_TEMPERATURE, f"temperature must be above 0, at least {MIN_TEMPERATURE}"
        ),
    ]
    with tf.control_dependencies(checks):  # in a graph, ops run in any order: the checks go first
        return tf.identity(ids)


def read(generator: Generator, ids: tf.Tensor, states: list) -> tuple[tf.Tensor, list]:
    """The logits after reading every id on top of `states`, and the states then."""
    logits = tf.zeros([1, generator.output.units])
    _, logits, states = tf.while_loop(
        lambda i, *_: i < tf.size(ids),
        lambda i, logits, states: (i + 1, *generator.step(tf.reshape(ids[i], [1]), states)),
        (0, logits, states),
    )
    return logits, states


def sample(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, seed: tf.Tensor, i) -> tf.Tensor:
    """Character number `i`'s id [1]: seeded by (seed, i), never id 0, among the top_k likeliest when
    top_k > 0 (ties with the k-th kept)."""
    scaled = logits / temperature
    scaled = tf.concat([tf.fill([1, 1], -np.inf), scaled[:, 1:]], axis=1)  # never id 0
    k = tf.minimum(top_k, tf.shape(logits)[1])
    kth = tf.cond(k > 0, lambda: tf.math.top_k(scaled, k).values[:, -1:], lambda: tf.fill([1, 1], -np.inf))
    scaled = tf.where(scaled < kth, -np.inf, scaled)
    return tf.random.stateless_categorical(scaled, 1, seed=tf.stack([seed, i]), dtype=tf.int32)[:, 0]


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    vocabulary = trained.state.vocabulary
    generator = Generator(model)
    characters = tf.constant(list(vocabulary))

    def serve(prompt, length, temperature, top_k, seed):
        ids = checked_ids(prompt, temperature, characters)
        checks = [
            tf.debugging.assert_positive(length, "length must be at least 1"),
            tf.debugging.assert_less_equal(length, MAX_LENGTH, f"length must be at most {MAX_LENGTH}"),
        ]
        with tf.control_dependencies(checks):
            length = tf.identity(length)
        logits, states = read(generator, ids, generator.initial_states(1))

        def write(i, logits, states, written):
            next_id = sample(logits, temperature, top_k, seed, i)
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
    examples = {
        "prompt": np.array(example_prompt(vocabulary).encode("utf-8")),
        "length": np.array(40, np.int32),
        "temperature": np.array(0.8, np.float32),
        "top_k": np.array(0, np.int32),
        "seed": np.array(7, np.int32),
    }
    return serve, signature, examples


def example_prompt(vocabulary: str) -> str:
    return vocabulary[1 : min(len(vocabulary), 6)]


def step_endpoint(model: keras.Model, trained: Trained) -> dict[str, ServingEndpoint]:
    """{"generate_step": one step of `generate`, with the states carried by the caller}."""
    vocabulary = trained.state.vocabulary
    generator = Generator(model)
    characters = tf.constant(list(vocabulary))
    start = generator.initial_states(1)  # the structure (per layer, per state) to unpack into
    sizes = [int(s.shape[-1]) for s in tf.nest.flatten(start)]

    def step(text, state, position, temperature, top_k, seed):
        ids = checked_ids(text, temperature, characters)
        parts = [
            tf.reshape(part, [1, size]) for part, size in zip(tf.split(state, sizes), sizes, strict=True)
        ]
        logits, states = read(generator, ids, tf.nest.pack_sequence_as(start, parts))
        next_id = sample(logits, temperature, top_k, seed, position)
        next_text = tf.gather(characters, next_id[0])
        return {
            "text": next_text,
            "next_text": next_text,
            "next_state": tf.concat([tf.reshape(s, [-1]) for s in tf.nest.flatten(states)], axis=0),
            "next_position": position + 1,
        }

    signature = [
        tf.TensorSpec([], tf.string, name="text"),
        tf.TensorSpec([sum(sizes)], tf.float32, name="state"),
        tf.TensorSpec([], tf.int32, name="position"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.int32, name="seed"),
    ]
    # a state that is not zeros and a later position: the check covers the unpacking and the seeding
    examples = {
        "text": np.array(example_prompt(vocabulary).encode("utf-8")),
        "state": np.linspace(-0.5, 0.5, sum(sizes), dtype=np.float32),
        "position": np.array(3, np.int32),
        "temperature": np.array(0.8, np.float32),
        "top_k": np.array(0, np.int32),
        "seed": np.array(7, np.int32),
    }
    return {"generate_step": (step, signature, examples)}
