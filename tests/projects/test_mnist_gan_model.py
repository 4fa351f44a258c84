"""mnist_gan's parts: the GAN built on the smoke data, its InfoGAN codes and their fitted shares, the
minibatch standard deviation, the R1 penalty, bad hyperparameters, and one step on two replicas against
one step on one device."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from projects.mnist_gan import PROJECT, data, export, model, scorer
from projects.mnist_gan.networks import CategoricalCode, CodeShares, MinibatchStddev
from shared.config import RunConfig, UserError
from shared.hparams import build_checked
from shared.project import Trained
from tests.conftest import run_script


@pytest.fixture(scope="module")
def smoke_splits(tmp_path_factory):
    """The smoke data and its scoring classifier, trained once in a temporary runs/ folder."""
    folder = tmp_path_factory.mktemp("gan")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        splits = data.load(RunConfig(project="mnist_gan", smoke=True))
        splits.info["scorer"] = str(Path(splits.info["scorer"]).resolve())
        yield splits


def test_real_digits_score_near_the_floor_noise_and_constants_far(smoke_splits):
    classifier = keras.models.load_model(smoke_splits.info["scorer"])
    score_model = scorer.features_and_probabilities(classifier)
    x_train = np.stack([x for x, _ in smoke_splits.train.as_numpy_iterator()])
    x_test = np.stack([x for x, _ in smoke_splits.test.as_numpy_iterator()])
    reference = scorer.statistics(score_model.predict(x_train.astype("float32"), verbose=0)[0])

    def scores(images):
        features, probabilities = score_model.predict(images.astype("float32"), verbose=0)
        return scorer.inception_score(probabilities), scorer.frechet_distance(
            scorer.statistics(features), reference
        )

    rng = np.random.default_rng(0)
    real_is, real_fid = scores(x_test)
    noise_is, noise_fid = scores(rng.integers(0, 256, x_test.shape).astype(np.uint8))
    constant_is, constant_fid = scores(np.full(x_test.shape, 128, np.uint8))
    assert real_is > 6.0 and noise_is < 2.0 and constant_is < 1.1
    assert noise_fid > 10 * real_fid and constant_fid > 10 * real_fid


def test_the_conditional_signature_wants_one_label_per_latent_vector(smoke_splits):
    splits = dataclasses.replace(smoke_splits, info={**smoke_splits.info, "conditional": True})
    gan, _ = build_checked(PROJECT, {"latent_dim": 32}, splits)
    serve, _, _ = export.serving_endpoint(gan, Trained())  # the run folder holds nothing it needs
    latent, labels = tf.zeros((3, 32)), tf.constant([1, 2], tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one label per latent vector"):
        serve(latent, labels)
    assert serve(latent, tf.constant([1, 2, 3]))["images"].shape == (3, 28, 28)


def test_categorical_code_is_uniform_and_read_off_the_latent_vector():
    latent = np.random.default_rng(0).normal(size=(100_000, 8)).astype("float32")
    codes = np.asarray(CategoricalCode(10)(latent))
    shares = np.bincount(codes, minlength=10) / len(codes)
    assert codes.min() == 0 and codes.max() == 9 and np.abs(shares - 0.1).max() < 0.005
    assert (np.asarray(CategoricalCode(10)(latent)) == codes).all()  # a function of the vector
    assert set(np.asarray(CategoricalCode(10)(np.array([[-9.0], [9.0]], "float32")))) == {0, 9}


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_even_code_shares_pass_the_latent_vectors_unchanged(policy):
    latent = np.random.default_rng(0).normal(size=(20_000, 8)).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        passed = np.asarray(CodeShares(30)(latent))  # training draws the codes as before, bit for bit
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert (passed == latent.astype(passed.dtype)).all()


def test_fitted_code_shares_draw_each_code_in_its_share_from_its_training_slice():
    from scipy.special import ndtr

    latent = np.random.default_rng(0).normal(size=(100_000, 8)).astype("float32")
    layer = CodeShares(4)
    wanted = np.array([0.5, 0.3, 0.15, 0.05], "float32")
    layer.shares.assign(wanted)
    mapped = np.asarray(layer(latent))
    codes = np.asarray(CategoricalCode(4)(mapped))
    assert np.abs(np.bincount(codes, minlength=4) / len(codes) - wanted).max() < 0.005
    # code c takes the CDF slice [b_c, b_c + share_c) and moves it onto c's even slice [c/4, (c+1)/4),
    # keeping the order: what the generator sees within a code is what it saw in training
    bounds = np.concatenate([[0.0], np.cumsum(wanted / wanted.sum())])
    uniform = ndtr(latent[:, 0].astype(np.float64))
    expected = (codes + (uniform - bounds[codes]) / (wanted[codes] / wanted.sum())) / 4
    assert np.abs(ndtr(mapped[:, 0].astype(np.float64)) - expected).max() < 1e-5
    assert (mapped[:, 1:] == latent[:, 1:]).all()


def test_em_recovers_the_class_shares_behind_readings_made_under_even_classes():
    rng = np.random.default_rng(0)
    true_shares = np.array([0.6, 0.3, 0.1])
    classes = rng.choice(3, size=20_000, p=true_shares)
    points = rng.normal(loc=classes * 1.5, scale=1.0)  # overlapping classes: readings are often unsure
    likelihoods = np.exp(-0.5 * (points[:, None] - np.array([0.0, 1.5, 3.0])) ** 2)
    readings = likelihoods / likelihoods.sum(axis=1, keepdims=True)  # a classifier's posterior, even prior
    shares, iterations = model.shares_by_em(readings)
    assert np.abs(shares - true_shares).max() < 0.02 and 1 < iterations < 1000
    assert np.abs(readings.mean(axis=0) - true_shares).max() > 0.05  # averaging the readings alone is off


def test_minibatch_stddev_is_the_spread_within_each_group_of_consecutive_examples():
    maps = np.random.default_rng(0).normal(size=(8, 7, 7, 3)).astype("float32")
    maps[4:] = maps[4]  # the second group: four identical examples
    out = np.asarray(MinibatchStddev(4)(maps))
    assert out.shape == (8, 7, 7, 4) and (out[..., :3] == maps).all()
    np.testing.assert_allclose(out[:4, ..., 3], maps[:4].std(axis=0).mean(), rtol=1e-4)
    assert (out[4:, ..., 3] < 1e-3).all()  # alike digits show as (almost) no spread
    # a batch that does not divide by the group: groups of one, no spread, no error
    assert (np.asarray(MinibatchStddev(4)(maps[:6]))[..., 3] < 1e-3).all()
    # features alike across a group (MNIST's black borders) must not make the gradient infinite
    constant = tf.Variable(np.zeros((8, 7, 7, 3), "float32"))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(MinibatchStddev(4)(constant))
    assert np.isfinite(tape.gradient(total, constant).numpy()).all()
    # nor under mixed precision (GPUs' default), where 1e-8 would round to 0 in float16
    half = tf.Variable(np.zeros((8, 7, 7, 3), "float16"))
    with tf.GradientTape() as tape:
        out = MinibatchStddev(4, dtype="mixed_float16")(half)
        total = tf.reduce_sum(tf.cast(out, "float32"))
    assert out.dtype == tf.float16 and np.isfinite(tape.gradient(total, half).numpy()).all()


def test_r1_penalty_is_half_gamma_times_the_squared_slope_on_each_real_digit(smoke_splits):
    gan, _ = build_checked(PROJECT, {"r1_gamma": 10.0, "filters": 32}, smoke_splits)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28)).astype("float32"))
    logits, penalty = gan.judge_real(real, None)
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(gan.judge(real, None)[0])  # the real-or-generated logit (not the codes)
    slopes = tape.gradient(total, real).numpy()
    assert logits.shape == (4, 1) and penalty.shape == (4,)
    np.testing.assert_allclose(penalty, 5.0 * (slopes**2).sum(axis=(1, 2)), rtol=1e-5)
    assert (penalty.numpy() > 0).all()
    gan.r1_gamma = 0.0
    assert gan.judge_real(real, None)[1] == 0.0  # off


@pytest.mark.parametrize(
    "values, message",
    [
        ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
        ({"latent_codes": 1}, "latent_codes must be 0 \\(none\\) or at least 2"),
        ({"stddev_group": -4}, "stddev_group must be 0 \\(none\\) or a group size"),
        ({"r1_gamma": -1.0}, "r1_gamma must be 0 \\(no penalty\\) or more; got -1.0"),
    ],
)
def test_bad_gan_hyperparameters_are_refused_with_the_reason(smoke_splits, values, message):
    with pytest.raises(UserError, match=message):
        build_checked(PROJECT, values, smoke_splits)


# --- distribution ------------------------------------------------------------------------------------

REPLICA_CHECK = r"""
import json, sys
import numpy as np
import tensorflow as tf
from shared.strategy import make_strategy
strategy = make_strategy("mirrored", 2)  # first: it splits the CPU
import keras
from projects.mnist_gan import PROJECT, model
from shared.project import Splits
from shared.hparams import build_checked
info = json.loads(sys.argv[1])
images = np.random.default_rng(0).integers(0, 256, (16, 28, 28)).astype(np.uint8)
labels = (np.arange(16) % 10).astype(np.int32)
splits = Splits(None, None, None, info)
projection = tf.constant(np.random.default_rng(1).normal(size=(784, 32)).astype("float32") / 28)

def latent_from_images(self, like, step, stream):
    # the noise as a function of each example, so both runs give every example the same noise
    flat = tf.reshape(tf.cast(like, tf.float32), [-1, 784])
    return tf.tanh(flat @ projection + tf.cast(stream, tf.float32))

model.GAN.sample_latent = latent_from_images
values = {"dropout": 0.0, "latent_dim": 32, "filters": 32, "ema_decay": 0.99, "latent_codes": 10,
          "stddev_group": 4, "r1_gamma": 1.0}
keras.utils.set_random_seed(0)
one, _ = build_checked(PROJECT, values, splits)
with strategy.scope():
    two, _ = build_checked(PROJECT, values, splits)
two.set_weights(one.get_weights())
# plain SGD: its step is proportional to the gradient, so a gradient twice too big shows (Adam's first
# step is nearly the same whatever the gradient's scale)
one.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
with strategy.scope():
    two.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
for gan in (one, two):
    gan.fit(dataset, epochs=1, verbose=0)
parts = ("generator", "discriminator", "average")
before = keras.utils.set_random_seed(0) or build_checked(PROJECT, values, splits)[0]
moved = max(float(np.abs(a - b).max()) for p in parts
            for a, b in zip(getattr(one, p).get_weights(), getattr(before, p).get_weights()))
gap = max(float(np.abs(a - b).max()) for p in parts
          for a, b in zip(getattr(one, p).get_weights(), getattr(two, p).get_weights()))
# after step 0 the average's decay is min(0.99, 1/10): 0.1 of the old weights, 0.9 of the new ones;
# batch-norm statistics are copied
def expected(old, new, trainable):
    return 0.1 * np.asarray(old) + 0.9 * np.asarray(new) if trainable else np.asarray(new)

average_error = max(
    float(np.abs(np.asarray(a) - expected(b, g, g.trainable)).max())
    for a, b, g in zip(one.average.weights, before.generator.weights, one.generator.weights)
)
print(json.dumps({"replicas": two.distribute_strategy.num_replicas_in_sync, "moved": moved, "gap": gap,
                  "average_error": average_error}))
"""


def test_one_step_on_two_replicas_updates_as_one_step_on_one(smoke_splits, tmp_path):
    """The same weights, the same global batch of 16 and the same noise per example: one step on one
    device and one on two replicas (8 examples each) must leave the same weights. A loss averaged over
    the replica's batch instead of the global one would double the step; BatchNormalization statistics
    per replica would differ too."""
    outcome = run_script(REPLICA_CHECK, json.dumps(smoke_splits.info), cwd=tmp_path)
    assert outcome["replicas"] == 2
    assert outcome["moved"] > 1e-4  # the step did change the weights
    assert outcome["gap"] < 1e-5, outcome  # the generator's moving average included
    assert outcome["average_error"] < 1e-6, outcome
