"""keras-io's "Character-level text generation with LSTM" on char_lstm's splits: validation loss per epoch.

The model (LSTM(128), a softmax over the characters), RMSprop(learning_rate=0.01), categorical
cross-entropy, batch size 128, 40 epochs and the inputs (windows of 40 characters, one every 3, each
predicting the character after it) are the source's. What differs, and why:
- The text. keras-io reads Nietzsche, lower-cased, newlines made spaces, its vocabulary the characters it
  holds. Here the characters are char_lstm's ids, as they are (case and newlines kept), so the losses
  compare: `splits.test` holds every character's id in order (the training text's
  `splits.info["characters"]["train"]` first, then the validation text's), and the vocabulary is
  `splits.info["vocabulary"]`, whose id 0 stands for a character the training text lacks. The windows are
  cut from the training ids only; char_lstm's own training chunks are not used.
- The one-hot inputs. keras-io fills a boolean array of every window up front (windows x 40 x characters);
  here the pipeline gathers each batch's windows from the ids and one-hots them (`tf.one_hot`), which is
  the same input without holding every window in memory.
- The score. keras-io has no validation; here it is the mean cross-entropy of the next character (nats)
  over the windows of the validation text, cut the same way (40 characters of context, one window every
  3 characters), after each epoch. It is per character after exactly 40 characters of context, while
  char_lstm's validation loss is the mean over every position of 256-character chunks (contexts of 0 to
  255 characters): the two are in the same units, not over the same contexts.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from benchmarks.references import Budget, Measured, TimeToTarget, fit_to_target
from shared.project import Splits

TITLE = "Character-level text generation with LSTM"
SOURCE = "https://keras.io/examples/generative/lstm_character_level_text_generation/"
KIND = "time_to_target"
TARGET = 1.9  # validation nats per character, when the caller gives none
MAXLEN = 40  # characters of context per window
STEP = 3  # one window every 3 characters
EPOCHS = 40
BATCH_SIZE = 128
EVAL_BATCH_SIZE = 1024  # scoring only: larger batches for speed


def windows(ids: np.ndarray, n_chars: int, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """Batches of (one-hot 40 characters, one-hot next character), as keras-io's x and y."""
    ids = tf.constant(ids)
    # keras-io: `for i in range(0, len(text) - maxlen, step)`: text[i : i + maxlen] -> text[i + maxlen]
    starts = tf.data.Dataset.range(0, int(ids.shape[0]) - MAXLEN, STEP)
    if shuffle:  # keras-io's fit(x, y) shuffles all the windows every epoch
        starts = starts.shuffle(int(starts.cardinality()), reshuffle_each_iteration=True)

    def one_hot(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        chars = tf.gather(ids, start[:, None] + tf.range(MAXLEN + 1, dtype=tf.int64))
        return tf.one_hot(chars[:, :MAXLEN], n_chars), tf.one_hot(chars[:, MAXLEN], n_chars)

    batches = starts.batch(batch_size).map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    keras.utils.set_random_seed(seed)
    n_chars = splits.info["vocabulary_size"]
    ids = np.concatenate(list(splits.test.batch(1 << 20).as_numpy_iterator()))  # every id, in order
    train_size = splits.info["characters"]["train"]
    # the source's batch, whatever ours uses
    train = windows(ids[:train_size], n_chars, BATCH_SIZE, shuffle=True)
    scored = ids[train_size:]
    if budget.score_examples:  # --quick: the first windows of the validation text
        scored = scored[: budget.score_examples * STEP + MAXLEN + 1]
    validation = windows(scored, n_chars, EVAL_BATCH_SIZE, shuffle=False)

    model = keras.Sequential(
        [
            keras.Input(shape=(MAXLEN, n_chars)),
            layers.LSTM(128),
            layers.Dense(n_chars, activation="softmax"),
        ]
    )
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)

    def score() -> float:
        # the mean over windows: Keras weighs each batch's mean loss by its size
        return model.evaluate(validation, verbose=0, return_dict=True)["loss"]

    timer = TimeToTarget(score, TARGET if target is None else target, budget, higher_is_better=False)
    fit_to_target(model, train, timer, budget, EPOCHS)
    result = timer.measured("validation loss (nats per character)")
    result.details = {"batch_size": BATCH_SIZE, "params": model.count_params()}
    return result
