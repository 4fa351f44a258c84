"""imdb_gru's model without its command line: the hyperparameters it refuses, the pooling, the hashed word
pairs and their dropout, and adversarial training on the embeddings (the push, one step, two replicas)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from shared.config import UserError
from tests.conftest import run_script


def test_weight_decay_reaches_the_optimizer():
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    hp = kt.HyperParameters()
    hp.Fixed("weight_decay", 0.5)
    assert build_model(hp).optimizer.weight_decay == 0.5
    assert build_model(kt.HyperParameters()).optimizer.weight_decay is None  # off by default


def test_bad_weight_decay_and_word_pair_settings_are_refused_with_the_reason():
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    hp = kt.HyperParameters()
    hp.Fixed("weight_decay", -0.5)
    with pytest.raises(UserError, match=r"weight_decay must be 0 or more; got -0\.5"):
        build_model(hp)
    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1)
    with pytest.raises(UserError, match=r"bigram_buckets must be 0 \(no word pairs\) or at least 2; got 1"):
        build_model(hp)
    hp = kt.HyperParameters()
    hp.Fixed("bigram_dropout", 1.0)
    with pytest.raises(
        UserError, match=r"bigram_dropout is the share of word pairs dropped: .* below 1; got 1\.0"
    ):
        build_model(hp)


def test_negative_word_pair_settings_are_refused_with_the_reason():
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    for name, value, message in (
        ("bigram_buckets", -5, r"bigram_buckets must be 0 \(no word pairs\) or at least 2; got -5"),
        ("bigram_dropout", -0.1, r"bigram_dropout is the share of word pairs dropped: .*; got -0\.1"),
    ):
        hp = kt.HyperParameters()
        hp.Fixed(name, value)
        with pytest.raises(UserError, match=message):
            build_model(hp)


def test_max_and_mean_pooling_sees_only_real_tokens():
    from projects.imdb_gru.model import MaxAndMeanPooling

    states = np.array([[[1, -2], [-3, -4], [9, 9]], [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]], "float32")
    mask = np.array([[True, True, False], [False, False, False]])  # row 2: a text with no words at all
    pooled = np.asarray(MaxAndMeanPooling()(states, mask=mask))
    np.testing.assert_allclose(pooled, [[1.0, -2.0, -1.0, -3.0], [0.0, 0.0, 0.0, 0.0]])


def test_word_pairs_are_hashed_per_position_and_masked_as_the_words():
    import keras_tuner as kt

    from projects.imdb_gru.model import BigramIds, build_model

    ids = np.zeros((2, 600), "int64")
    ids[0, :5], ids[1, :3] = [5, 6, 7, 5, 6], [5, 6, 7]
    pairs = np.asarray(BigramIds(1000)(ids))
    assert (pairs[:, 0] > 0).all() and (pairs[0, 5:] == 0).all() and (pairs[1, 3:] == 0).all()
    assert pairs[0, 1] == pairs[0, 4] == pairs[1, 1] != pairs[0, 2]  # (5, 6) is one pair wherever it is
    assert pairs.min() >= 0 and pairs.max() < 1000
    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1000)
    model = build_model(hp)
    # padding stays masked: the shorter review scores the same alone as beside the longer one
    np.testing.assert_allclose(np.asarray(model(ids))[1], np.asarray(model(ids[1:]))[0], atol=1e-6)


def test_bigram_dropout_drops_whole_pairs_in_training_only():
    import keras
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1000)
    hp.Fixed("bigram_dropout", 0.3)
    embedder = build_model(hp).get_layer("embedder")
    assert embedder.get_layer("words_and_pairs").input[1] is embedder.get_layer("bigram_dropout").output
    pairs = keras.Model(embedder.input, embedder.get_layer("bigram_embedding").output)
    dropped = keras.Model(embedder.input, embedder.get_layer("bigram_dropout").output)
    ids = np.tile(np.random.default_rng(0).integers(2, 20_000, (1, 600)), (4, 1))  # one review, 4 times
    kept = np.asarray(pairs(ids)) / 0.7  # what a kept pair's vector becomes (scaled by 1 / (1 - 0.3))
    out = np.asarray(dropped(ids, training=True))
    zero, whole = (out == 0).all(-1), np.isclose(out, kept, atol=1e-6).all(-1)
    assert (zero | whole).all()  # every pair is dropped or kept as a whole vector
    assert (abs(zero.mean(1) - 0.3) < 0.1).all()  # 30% of them, in every review
    assert all((zero[0] != zero[i]).any() for i in (1, 2, 3))  # a fresh choice for each review
    np.testing.assert_allclose(np.asarray(dropped(ids)), np.asarray(pairs(ids)))  # none dropped to predict


NO_DROPOUT = {"bigram_dropout": 0.0, "embedding_dropout": 0.0, "word_dropout": 0.0, "dropout": 0.0}


def small_adversarial_model(epsilon: float, **values):
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    # no dropout after the embeddings: two passes over the same reviews must see the same network
    values = {"embedding_dim": 16, "units": 8, "bigram_buckets": 500, "dropout": 0.0, **values}
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    hp.Fixed("adversarial_epsilon", epsilon)
    return build_model(hp)


def short_reviews(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, 600), "int64")
    for i in range(count):
        ids[i, : 4 + 5 * i] = rng.integers(2, 20_000, 4 + 5 * i)
    return ids


def test_the_adversarial_push_raises_the_loss_and_is_epsilon_of_each_reviews_norm():
    import keras

    keras.utils.set_random_seed(0)
    model = small_adversarial_model(0.05)
    ids = short_reviews(6)
    labels = np.array([0, 1, 0, 1, 1, 0], "float32")
    embedded, tokens = model.get_layer("embedder")(ids)
    with tf.GradientTape() as tape:
        tape.watch(embedded)
        loss, _ = model.loss_at(embedded, tokens, labels)
    push = model.push_along(tape.gradient(loss, embedded), embedded, tokens)
    real = (np.asarray(tokens) != 0)[:, :, None]
    norm = lambda x: np.sqrt((np.asarray(x) ** 2).sum(axis=(1, 2)))  # noqa: E731
    np.testing.assert_allclose(norm(push), 0.05 * norm(np.asarray(embedded) * real), rtol=1e-4)
    assert (np.asarray(push)[~real[:, :, 0]] == 0).all()  # padding is neither pushed nor counted
    pushed, _ = model.loss_at(embedded + push, tokens, labels)
    pulled, _ = model.loss_at(embedded - push, tokens, labels)
    assert float(pushed) > float(loss) > float(pulled)  # along the gradient: up; against it: down


def test_an_adversarial_step_descends_the_clean_plus_the_pushed_loss(tmp_path):
    """One `fit` step with plain SGD moves every weight by the learning rate x the gradient of the clean
    loss plus the loss at the pushed embeddings, computed here in one plain backward pass."""
    import keras

    keras.utils.set_random_seed(0)
    model = small_adversarial_model(0.05, **NO_DROPOUT)
    model.compile(keras.optimizers.SGD(0.5), keras.losses.BinaryCrossentropy())
    ids, labels = short_reviews(8, seed=1), (np.arange(8) % 2).astype("float32")
    before = [np.asarray(w) for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        embedded, tokens = model.get_layer("embedder")(ids)
        with tf.GradientTape() as inner:
            inner.watch(embedded)
            loss, _ = model.loss_at(embedded, tokens, labels)
        push = tf.stop_gradient(model.push_along(inner.gradient(loss, embedded), embedded, tokens))
        total = loss + model.loss_at(embedded + push, tokens, labels)[0]
    expected = [
        w - 0.5 * np.asarray(tf.convert_to_tensor(g))
        for w, g in zip(before, tape.gradient(total, model.trainable_weights), strict=True)
    ]
    dataset = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    for weight, want in zip(model.trainable_weights, expected, strict=True):
        np.testing.assert_allclose(np.asarray(weight), want, atol=1e-5, err_msg=weight.path)
    assert history.history["loss"][0] == pytest.approx(float(loss), rel=1e-5)  # the clean loss is reported
    model.save(tmp_path / "model.keras")
    assert keras.saving.load_model(tmp_path / "model.keras").adversarial_epsilon == 0.05


def test_bad_adversarial_epsilon_is_refused_with_the_reason():
    with pytest.raises(UserError, match=r"adversarial_epsilon must be 0 \(off\) or more; got -0\.1"):
        small_adversarial_model(-0.1)


ADVERSARIAL_REPLICA_CHECK = r"""
import contextlib, json
import numpy as np
import tensorflow as tf
from shared.strategy import make_strategy
strategy = make_strategy("mirrored", 2)  # first: it splits the CPU
import keras
from projects.imdb_gru import PROJECT
from shared.project import Splits
from shared.hparams import build_checked

# no dropout, so every model sees the same network and their steps can be compared
values = {"embedding_dim": 16, "units": 8, "bigram_buckets": 500, "bigram_dropout": 0.0,
          "embedding_dropout": 0.0, "word_dropout": 0.0, "dropout": 0.0}
rng = np.random.default_rng(0)
ids = np.zeros((16, 600), "int64")
for i in range(16):
    ids[i, : 5 + 3 * i] = rng.integers(2, 20_000, 5 + 3 * i)
dataset = tf.data.Dataset.from_tensor_slices((ids, (np.arange(16) % 2).astype("float32"))).batch(16)
splits = Splits(None, None, None)
keras.utils.set_random_seed(0)
start = build_checked(PROJECT, values, splits)[0].get_weights()

def one_step(epsilon, scope):
    with scope:
        model = build_checked(PROJECT, {**values, "adversarial_epsilon": epsilon}, splits)[0]
        model.set_weights(start)
        # plain SGD: its step is proportional to the gradient, so a gradient twice too big shows
        model.compile(keras.optimizers.SGD(0.5), keras.losses.BinaryCrossentropy())
    model.fit(dataset, epochs=1, verbose=0)
    return model.get_weights()

def largest_gap(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

one = one_step(0.05, contextlib.nullcontext())
two = one_step(0.05, strategy.scope())
plain = one_step(0.0, contextlib.nullcontext())
plain_two = one_step(0.0, strategy.scope())
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "moved": largest_gap(one, start),
                  "gap": largest_gap(one, two), "adversarial_part": largest_gap(one, plain),
                  "plain_gap": largest_gap(plain, plain_two)}))
"""


def test_an_adversarial_step_on_two_replicas_updates_as_one_step_on_one(tmp_path):
    """The same weights and global batch of 16: one adversarial step on one device and one on two
    replicas (8 reviews each) must leave the same weights; a loss averaged over the replica's batch
    instead of the global one would double the step. The adversarial part must change the step."""
    outcome = run_script(ADVERSARIAL_REPLICA_CHECK, cwd=tmp_path)
    assert outcome["replicas"] == 2
    assert outcome["moved"] > 1e-3, outcome
    assert outcome["gap"] < 1e-5, outcome
    assert outcome["adversarial_part"] > 1e-4, outcome
    assert outcome["plain_gap"] < 1e-5, outcome  # and so do plain steps
