"""Embeddings of words and of word pairs -> (bidirectional) recurrent layers -> max and mean pooling ->
sigmoid, over token ids; trained with adversarial pushes on the embeddings (`ReviewClassifier`).

The vectorizer is adapted once, with room to spare (MAX_TOKENS words, MAX_LENGTH tokens). `vocab_size` and
`sequence_length` are hyperparameters all the same: `Truncate` keeps the first `sequence_length` tokens and
sends words past the `vocab_size` most frequent to the out-of-vocabulary id, so a search can try them
without adapting the vectorizer again for every trial.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
import tensorflow as tf
from keras import layers, ops
from keras.src.losses.loss import unscale_loss_for_distribution

from projects.imdb_gru.data import MAX_LENGTH, MAX_TOKENS
from shared.config import UserError
from shared.project import Splits

CELLS = {"gru": layers.GRU, "lstm": layers.LSTM, "simple_rnn": layers.SimpleRNN}
OOV_ID = 1  # TextVectorization: 0 pads, 1 is the out-of-vocabulary token


@keras.saving.register_keras_serializable(package="imdb_gru")
class Truncate(layers.Layer):
    """Token ids [N, MAX_LENGTH] -> [N, T]: the first `length` of them at most, ids >= `vocab_size` as OOV.

    T is also cut to the longest review in the batch: the vectorizer pads every review to MAX_LENGTH at
    the end, and a recurrent layer would step over those columns of padding for nothing (the mask keeps
    its states unchanged there). Training batches reviews of about the same length together to make the
    most of it.
    """

    def __init__(self, vocab_size: int, length: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.length = vocab_size, length

    def call(self, ids):
        longest = ops.max(ops.sum(ops.cast(ids[:, : self.length] != 0, "int32"), axis=1))
        ids = ids[:, : ops.maximum(longest, 1)]
        return ops.where(ids < self.vocab_size, ids, ops.full_like(ids, OOV_ID))

    def compute_output_spec(self, ids):
        # token ids, whatever the dtype policy's float type (Keras would declare the output float16 under
        # mixed precision)
        return keras.KerasTensor((ids.shape[0], None), dtype=ids.dtype)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "length": self.length}


@keras.saving.register_keras_serializable(package="imdb_gru")
class MaxAndMeanPooling(layers.Layer):
    """States [N, T, F] -> [N, 2F]: their max and mean over the real tokens only, zeros for a text with none.

    Keras's global pooling layers will not do: GlobalMaxPooling1D ignores the mask (and a bidirectional
    layer's states are 0 at padding), GlobalAveragePooling1D divides by zero on an all-padding row.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, states, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(states)[:2], dtype="bool")
        real = ops.expand_dims(ops.cast(mask, states.dtype), -1)
        count = ops.sum(real, axis=1)
        mean = ops.sum(states * real, axis=1) / ops.maximum(count, 1.0)
        lowest = ops.full_like(states, -1e9)
        maximum = ops.where(count > 0, ops.max(ops.where(real > 0, states, lowest), axis=1), 0.0)
        return ops.concatenate([maximum, mean], axis=-1)

    def compute_mask(self, states, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[2])


@keras.saving.register_keras_serializable(package="imdb_gru")
class BigramIds(layers.Layer):
    """Token ids [N, T] -> the id of the word pair ending at each position: the exact pair (previous id x
    MAX_TOKENS + id, the first word paired with the start) hashed into 1..buckets - 1 by Keras's Hashing
    (FarmHash), as fastText hashes its word pairs; 0 at padding, as the words' ids."""

    def __init__(self, buckets: int, **kwargs):
        super().__init__(**kwargs)
        self.buckets = buckets
        self.hashing = layers.Hashing(buckets - 1)

    def build(self, input_shape):
        self.hashing.build(input_shape)  # no weights, but Keras warns about a sublayer left unbuilt

    def call(self, ids):
        ids = ops.cast(ids, "int64")
        previous = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
        pair = ops.cast(self.hashing(previous * MAX_TOKENS + ids), "int64") + 1
        return ops.where(ids > 0, pair, ops.zeros_like(pair))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets}


@keras.saving.register_keras_serializable(package="imdb_gru")
class RealTokens(layers.Layer):
    """Token ids -> True where there is a word (the mask that `mask_zero` gives the embedding's output)."""

    def call(self, tokens):
        return ops.not_equal(tokens, 0)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="imdb_gru")
class ReviewClassifier(keras.Model):
    """The `embedder` (token ids -> embedded words, dropouts applied) then the `recurrent` part.

    With `adversarial_epsilon` > 0, each training step also fits the batch with its embeddings pushed the
    way that raises the loss the most (Miyato et al. 2017, "Adversarial training methods for
    semi-supervised text classification"): the push is `adversarial_epsilon` times the norm of each
    review's embedded words, so larger embeddings cannot shrink it, and it lands after the dropouts, on
    what the recurrent part reads. Scoring is unchanged. TensorFlow backend (the train_step uses tapes).
    """

    def __init__(self, *args, adversarial_epsilon: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.adversarial_epsilon = adversarial_epsilon

    def train_step(self, data):
        if not self.adversarial_epsilon:
            return super().train_step(data)
        ids, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        embedder, recurrent = self.get_layer("embedder"), self.get_layer("recurrent")
        with tf.GradientTape() as embedding_tape:
            embedded, tokens = embedder(ids, training=True)
        # the clean loss's backward pass gives its gradients for the recurrent weights and for the
        # embedded words at once; the push follows the latter
        # (losses scaled inside the tapes: under mixed precision the scaling is an op the tape must see)
        with tf.GradientTape() as tape:
            tape.watch(embedded)
            loss, predicted = self.loss_at(embedded, tokens, labels, sample_weight)
            scaled = self.optimizer.scale_loss(loss)
        *clean, towards_higher_loss = tape.gradient(scaled, [*recurrent.trainable_weights, embedded])
        pushed = embedded + tf.stop_gradient(self.push_along(towards_higher_loss, embedded, tokens))
        with tf.GradientTape() as tape:
            tape.watch(pushed)
            adversarial_loss, _ = self.loss_at(pushed, tokens, labels, sample_weight)
            scaled = self.optimizer.scale_loss(adversarial_loss)
        *adversarial, at_pushed = tape.gradient(scaled, [*recurrent.trainable_weights, pushed])
        # both losses reach the embedding tables through the same embedded words: summing there first
        # gives the gradient of their sum, one row per word (as a single backward pass would)
        embedding_gradients = embedding_tape.gradient(
            embedded, embedder.trainable_weights, output_gradients=towards_higher_loss + at_pushed
        )
        recurrent_gradients = [a + b for a, b in zip(clean, adversarial, strict=True)]
        self.optimizer.apply_gradients(
            zip(
                [*embedding_gradients, *recurrent_gradients],
                [*embedder.trainable_weights, *recurrent.trainable_weights],
                strict=True,
            )
        )
        # as Keras's own train_step: the tracked loss (the clean one) undoes compute_loss's division by
        # the replicas
        self._loss_tracker.update_state(unscale_loss_for_distribution(loss), sample_weight=tf.shape(ids)[0])
        return self.compute_metrics(ids, labels, predicted, sample_weight=sample_weight)

    def loss_at(self, embedded, tokens, labels, sample_weight=None):
        """The loss (per replica, as `compute_loss` gives it) and the predictions from embedded reviews."""
        predicted = self.get_layer("recurrent")([embedded, tokens], training=True)
        return self.compute_loss(y=labels, y_pred=predicted, sample_weight=sample_weight), predicted

    def push_along(self, gradient, embedded, tokens):
        """The push on the embeddings that raises the loss the most, to first order: along the loss's
        `gradient` for them, `adversarial_epsilon` x the norm of each review's embedded words long
        (padding, where the gradient is 0, does not count)."""
        # in float32: under mixed precision the gradient is of a scaled-up loss, and a float16 sum of its
        # squares would overflow (and 1e-12 is 0 in float16)
        gradient, words = tf.cast(gradient, tf.float32), tf.cast(embedded, tf.float32)
        real = tf.cast(tf.not_equal(tokens, 0), tf.float32)[:, :, None]
        length = self.adversarial_epsilon * _per_review_norm(words * real)
        return tf.cast(length * gradient / (_per_review_norm(gradient) + 1e-12), embedded.dtype)

    def get_config(self):
        return {**super().get_config(), "adversarial_epsilon": self.adversarial_epsilon}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        epsilon = config.pop("adversarial_epsilon", 0.0)
        model = super().from_config(config, custom_objects=custom_objects)
        model.adversarial_epsilon = epsilon
        return model


def _per_review_norm(x: tf.Tensor) -> tf.Tensor:
    """[N, T, D] -> [N, 1, 1]: the L2 norm of each review's vectors taken together."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=[1, 2], keepdims=True))


def build_model(hp: kt.HyperParameters, splits: Splits | None = None) -> keras.Model:
    """The recurrent classifier for `hp`; the input is the vectorizer's fixed-size id matrix."""
    vocab_size = hp.Int("vocab_size", 5_000, MAX_TOKENS, step=5_000, default=20_000)
    sequence_length = hp.Int("sequence_length", 100, MAX_LENGTH, step=50, default=500)
    embedding_dim = hp.Int("embedding_dim", 32, 256, step=32, default=128)
    # word pairs hashed into this many buckets, each with an embedding added to its second word's (0: none)
    bigram_buckets = hp.Int("bigram_buckets", 0, 200_000, step=50_000, default=100_000)
    # the share of word pairs zeroed in training, a fresh choice per review and epoch
    bigram_dropout = hp.Float("bigram_dropout", 0.0, 0.8, step=0.1, default=0.5)
    cell = hp.Choice("cell", list(CELLS), default="gru")
    units = hp.Int("units", 16, 128, step=16, default=64)
    bidirectional = hp.Boolean("bidirectional", default=True)
    depth = hp.Int("layers", 1, 2, default=1)
    embedding_dropout = hp.Float("embedding_dropout", 0.0, 0.5, step=0.1, default=0.5)
    word_dropout = hp.Float("word_dropout", 0.0, 0.5, step=0.05, default=0.3)
    pooling = hp.Choice("pooling", ["last", "max_and_mean"], default="max_and_mean")
    dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=0.5)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    # decoupled weight decay (AdamW's): every step shrinks each weight by learning_rate x weight_decay of it
    weight_decay = hp.Float("weight_decay", 0.0, 2.0, step=0.25, default=0.0)
    # adversarial training: the size of the push on each review's embeddings, relative to their norm (0: off)
    adversarial_epsilon = hp.Float("adversarial_epsilon", 0.0, 0.1, step=0.01, default=0.05)
    if bigram_buckets < 0 or bigram_buckets == 1:
        raise UserError(f"bigram_buckets must be 0 (no word pairs) or at least 2; got {bigram_buckets}")
    if not 0 <= bigram_dropout < 1:
        raise UserError(
            f"bigram_dropout is the share of word pairs dropped: 0 or more, below 1; got {bigram_dropout}"
        )
    if adversarial_epsilon < 0:
        raise UserError(f"adversarial_epsilon must be 0 (off) or more; got {adversarial_epsilon}")
    if weight_decay < 0:
        raise UserError(f"weight_decay must be 0 or more; got {weight_decay}")

    ids = keras.Input(shape=(MAX_LENGTH,), dtype="int64", name="token_ids")
    tokens = Truncate(vocab_size, sequence_length, name="truncate")(ids)
    x = layers.Embedding(vocab_size, embedding_dim, name="embedding")(tokens)
    if bigram_buckets:
        pairs = BigramIds(bigram_buckets, name="bigram_ids")(tokens)
        pair_vectors = layers.Embedding(bigram_buckets, embedding_dim, name="bigram_embedding")(pairs)
        if bigram_dropout:  # whole pairs zeroed, so the words must carry a review too: the pairs overfit
            pair_vectors = layers.Dropout(bigram_dropout, noise_shape=(None, None, 1), name="bigram_dropout")(
                pair_vectors
            )
        x = layers.Add(name="words_and_pairs")([x, pair_vectors])
    # the same embedding channels dropped at every position of a review, then whole words zeroed (they
    # still count as positions: the mask is the tokens', so the GRU and the mean pooling step over them)
    x = layers.SpatialDropout1D(embedding_dropout, name="embedding_dropout")(x)
    if word_dropout:
        x = layers.Dropout(word_dropout, noise_shape=(None, None, 1), name="word_dropout")(x)
    embedder = keras.Model(ids, [x, tokens], name="embedder")

    # the recurrent part takes the embedded review and its token ids (for the mask) as two inputs, so
    # adversarial training can perturb the embeddings between the two parts
    embedded = keras.Input(shape=(None, embedding_dim), dtype=x.dtype, name="embedded")
    token_ids = keras.Input(shape=(None,), dtype=tokens.dtype, name="tokens")
    mask = RealTokens(name="real_tokens")(token_ids)
    x = embedded
    for i in range(depth):
        sequences = i < depth - 1 or pooling == "max_and_mean"
        layer = CELLS[cell](units, return_sequences=sequences, name=f"{cell}{i + 1}")
        layer = layers.Bidirectional(layer, name=f"bidirectional{i + 1}") if bidirectional else layer
        x = layer(x, mask=mask)
    if pooling == "max_and_mean":  # every position's state, not only the last one
        x = MaxAndMeanPooling(name="max_and_mean")(x, mask=mask)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="positive_probability")(x)
    recurrent = keras.Model([embedded, token_ids], outputs, name="recurrent")

    model = ReviewClassifier(
        ids,
        recurrent(embedder(ids)),
        adversarial_epsilon=adversarial_epsilon,
        name=f"imdb_{'bi' if bidirectional else ''}{cell}",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, weight_decay=weight_decay or None),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
