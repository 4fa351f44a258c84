"""mnist_gan: the 1-vs-2-replica update, IS and FID on known cases, smoke training, serving, bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from projects.mnist_gan import data, generate, model, scorer
from projects.mnist_gan.evaluate import share_separated_fids, subsample_to_shares
from shared.config import RunConfig, UserError
from tests.conftest import run_cli, run_script
from tests.serving_helpers import check_served_like_in_process

SMOKE = ("--smoke", "--epochs", "2", "--batch-size", "64")


# --- the scores ------------------------------------------------------------------------------------


def test_inception_score_known_cases():
    sharp_and_even = np.eye(10)[np.arange(1000) % 10]
    assert scorer.inception_score(sharp_and_even) == pytest.approx(10.0, rel=1e-6)
    assert scorer.inception_score(np.full((1000, 10), 0.1)) == pytest.approx(1.0)
    assert scorer.inception_score(np.eye(10)[np.zeros(1000, int)]) == pytest.approx(1.0)  # all one digit
    assert scorer.inception_score(np.eye(10)[np.arange(1000) % 5]) == pytest.approx(5.0, rel=1e-6)


def test_frechet_distance_known_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 8)) @ rng.normal(size=(8, 8))
    stats = scorer.statistics(a)
    assert scorer.frechet_distance(stats, stats) == pytest.approx(0.0, abs=1e-6)
    shifted = scorer.statistics(a + 3.0)  # the same spread, the mean moved by 3 in each of 8 dimensions
    assert scorer.frechet_distance(stats, shifted) == pytest.approx(8 * 9.0, rel=1e-6)
    # against the textbook formula with a general matrix square root
    import scipy.linalg

    b = scorer.statistics(rng.normal(size=(4000, 8)) * 2.0)
    root = np.real(scipy.linalg.sqrtm(stats[1] @ b[1]))
    expected = np.sum((stats[0] - b[0]) ** 2) + np.trace(stats[1] + b[1] - 2 * root)
    assert scorer.frechet_distance(stats, b) == pytest.approx(expected, rel=1e-6)


def test_subsampling_to_shares_takes_each_digit_in_its_share_and_no_example_twice():
    labels = np.repeat(np.arange(10), [50, 300, 100, 100, 100, 100, 100, 100, 100, 100])
    shares = np.full(10, 0.1)
    picked = subsample_to_shares(labels, shares)
    assert len(set(picked)) == len(picked) == 500  # the 50 zeros set the size
    assert np.array_equal(np.bincount(labels[picked], minlength=10), np.full(10, 50))
    skewed = subsample_to_shares(labels, [0.0, 0.5] + [0.5 / 8] * 8)
    assert np.bincount(labels[skewed], minlength=10).tolist() == [0, 300] + [37] * 8


def test_share_separated_fids_tell_the_digit_mix_from_the_drawing():
    """Generated 'digits' drawn exactly as the real ones but with too many of one: their plain FID is
    large, evened out it is near a real sample's, and real digits given their mix score as badly."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(10, 6))

    def sample(counts):
        digits = np.repeat(np.arange(10), counts)
        return centres[digits] + rng.normal(size=(len(digits), 6)), digits

    reference = scorer.statistics(sample(np.full(10, 3000))[0])
    real = sample(np.full(10, 1000))
    generated = sample([500] * 9 + [5500])  # 55% nines
    plain = scorer.frechet_distance(scorer.statistics(generated[0]), reference)
    fids = share_separated_fids(generated, real, np.full(10, 0.1), reference)
    real_fid = scorer.frechet_distance(scorer.statistics(real[0]), reference)
    assert plain > 20 * real_fid
    assert fids["fid_at_real_shares"] < 3 * real_fid + 0.05
    assert fids["fid_at_real_shares_size"] == 5000
    assert fids["fid_real_at_generated_shares"] == pytest.approx(plain, rel=0.3)
    assert fids["fid_real_at_generated_shares_size"] == 1810  # 1,000 nines (55%), 90 of each other digit
    # a digit never drawn cannot be evened out: no number rather than a wrong one
    missing = share_separated_fids(sample([0] + [1000] * 9), real, np.full(10, 0.1), reference)
    assert missing["fid_at_real_shares"] is None and missing["fid_at_real_shares_size"] == 0
    assert missing["fid_real_at_generated_shares"] < 1.0  # real digits without zeros: still scored
    # nor can a digit drawn a few times: 30 zeros would leave 300 digits, too few to score
    rare = share_separated_fids(sample([30] + [1000] * 9), real, np.full(10, 0.1), reference)
    assert rare["fid_at_real_shares"] is None and rare["fid_at_real_shares_size"] == 300


def test_in_graph_metrics_equal_the_numpy_scores():
    rng = np.random.default_rng(1)
    reference = scorer.statistics(rng.normal(size=(3000, 6)))
    features = rng.normal(size=(2000, 6)) * 1.5 + 0.5
    import keras

    # variables, as in the GAN: resetting the metric (fit does, every epoch) must not zero the reference
    mean = keras.Variable(reference[0], dtype="float64", trainable=False)
    root = keras.Variable(scorer.symmetric_root(reference[1]), dtype="float64", trainable=False)
    fid = model.FrechetDistance(mean, root)
    fid.update_state(features[:10] * 100)
    fid.reset_state()
    for chunk in np.array_split(features, 7):  # accumulated batch by batch, as validation does
        fid.update_state(chunk)
    expected = scorer.frechet_distance(scorer.statistics(features), reference)
    assert float(fid.result()) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mean), reference[0])

    probabilities = rng.dirichlet(np.full(10, 0.3), size=2000)
    inception = model.InceptionScore()
    for chunk in np.array_split(probabilities, 5):
        inception.update_state(chunk)
    assert float(inception.result()) == pytest.approx(scorer.inception_score(probabilities), rel=1e-5)


@pytest.fixture(scope="module")
def smoke_splits(tmp_path_factory):
    """The smoke data and its scoring classifier, trained once in a temporary runs/ folder."""
    folder = tmp_path_factory.mktemp("gan")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        splits = data.load(RunConfig(project="mnist_gan", smoke=True, lr_schedule="constant"))
        splits.info["scorer"] = str(Path(splits.info["scorer"]).resolve())
        yield splits


def test_real_digits_score_near_the_floor_noise_and_constants_far(smoke_splits):
    import keras

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
    from projects.mnist_gan import PROJECT, export
    from shared.runner import build_checked

    splits = dataclasses.replace(smoke_splits, info={**smoke_splits.info, "conditional": True})
    gan, _ = build_checked(PROJECT, {"latent_dim": 32}, splits)
    serve, _, _ = export.serving_endpoint(gan, splits)
    latent, labels = tf.zeros((3, 32)), tf.constant([1, 2], tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one label per latent vector"):
        serve(latent, labels)
    assert serve(latent, tf.constant([1, 2, 3]))["images"].shape == (3, 28, 28)


def test_categorical_code_is_uniform_and_read_off_the_latent_vector():
    from projects.mnist_gan.model import CategoricalCode

    latent = np.random.default_rng(0).normal(size=(100_000, 8)).astype("float32")
    codes = np.asarray(CategoricalCode(10)(latent))
    shares = np.bincount(codes, minlength=10) / len(codes)
    assert codes.min() == 0 and codes.max() == 9 and np.abs(shares - 0.1).max() < 0.005
    assert (np.asarray(CategoricalCode(10)(latent)) == codes).all()  # a function of the vector
    assert set(np.asarray(CategoricalCode(10)(np.array([[-9.0], [9.0]], "float32")))) == {0, 9}


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_even_code_shares_pass_the_latent_vectors_unchanged(policy):
    from projects.mnist_gan.model import CodeShares

    latent = np.random.default_rng(0).normal(size=(20_000, 8)).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        passed = np.asarray(CodeShares(30)(latent))  # training draws the codes as before, bit for bit
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert (passed == latent.astype(passed.dtype)).all()


def test_fitted_code_shares_draw_each_code_in_its_share_from_its_training_slice():
    from scipy.special import ndtr

    from projects.mnist_gan.model import CategoricalCode, CodeShares

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
    from projects.mnist_gan.model import MinibatchStddev

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
    from projects.mnist_gan import PROJECT
    from shared.runner import build_checked

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
    from projects.mnist_gan import PROJECT
    from shared.runner import build_checked

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
from shared.runner import build_checked
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


# --- the command line ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_replica_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gan-cli")
    run_dir = folder / "run"
    args = (*SMOKE, "--strategy", "mirrored", "--cpu-replicas", "2", "--run-dir", str(run_dir))
    # served and scored: the generator's moving average; InfoGAN's code, read off the latent vector; and
    # the discriminator's minibatch standard deviation and R1 penalty
    args = (*args, "--hp", "ema_decay=0.999", "--hp", "latent_codes=10", "--hp", "stddev_group=4")
    args = (*args, "--hp", "r1_gamma=1.0")
    result = run_cli("mnist_gan", "train", *args, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, run_dir


def test_smoke_training_on_two_replicas_writes_scores_samples_and_a_checked_export(two_replica_run):
    _, run_dir = two_replica_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in ("inception_score", "fid", "fid_real_floor", "fid_noise", "scorer_test_accuracy"):
        assert np.isfinite(metrics[name]), name
    assert metrics["fid_real_floor"] < metrics["fid_noise"]
    # the mix-separated FIDs: the real side is a subsample of the 200 test digits, too few to score
    assert metrics["fid_real_at_generated_shares_size"] <= 200
    assert metrics["fid_real_at_generated_shares"] is None
    assert 0 <= metrics["fid_at_real_shares_size"] <= 10_000 and "fid_at_real_shares" in metrics
    import pandas as pd

    # validation's in-graph FID (200 digits, the mean of two replicas') is the same measure as evaluate's
    last = pd.read_csv(run_dir / "history.csv").iloc[-1]
    assert 0.25 < last["val_fid"] / metrics["fid"] < 4, (last["val_fid"], metrics["fid"])
    assert metrics["export_max_abs_diff_images"] == 0.0  # reloaded in a fresh process: the same digits
    history = (run_dir / "history.csv").read_text().splitlines()
    assert "val_fid" in history[0] and len(history) == 3
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["epoch_001.png", "epoch_002.png"]
    assert (run_dir / "plots" / "training.gif").is_file() and (run_dir / "plots" / "samples.png").is_file()
    assert list((run_dir / "logs" / "samples").glob("events.*"))  # the grids in TensorBoard
    # the InfoGAN codes' shares, fitted to the real digits after training, are what is scored and saved
    shares = np.array(metrics["code_shares"])
    assert shares.shape == (10,) and abs(shares.sum() - 1) < 1e-6 and np.abs(shares - 0.1).max() > 1e-3
    saved = keras.models.load_model(run_dir / "model.keras")
    for generator in (saved.generator, saved.sampler):  # the trained one and its moving average
        assert np.allclose(np.asarray(generator.get_layer("code_shares").shares), shares, atol=1e-5)
    assert np.isfinite(metrics["fid_even_codes"]) and len(metrics["digit_shares_even_codes"]) == 10


def test_generate_writes_a_grid_and_single_pngs_the_same_for_the_same_seed(two_replica_run, tmp_path):
    folder, run_dir = two_replica_run
    import cv2

    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.png"
        args = ("generate", str(run_dir), "--n", "12", "--seed", "3", "--out", str(out))
        result = run_cli("mnist_gan", *args, "--out-dir", str(tmp_path / name), cwd=folder)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(cv2.imread(str(out), cv2.IMREAD_GRAYSCALE))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    other = tmp_path / "other.png"
    result = run_cli(
        "mnist_gan", "generate", str(run_dir), "--n", "12", "--seed", "4", "--out", str(other), cwd=folder
    )
    assert result.returncode == 0 and not np.array_equal(
        cv2.imread(str(other), cv2.IMREAD_GRAYSCALE), outputs[0]
    )
    singles = sorted((tmp_path / "a").glob("*.png"))
    assert len(singles) == 12 and cv2.imread(str(singles[0]), cv2.IMREAD_GRAYSCALE).shape == (28, 28)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--n", "0"), "--n must be 1 to 10000; got 0"),
        (("--digit", "7"), "--digit needs a class-conditional model"),
        (("--seed", "-1"), "--seed must be 0 or more; got -1"),
        (("--out", "grid.txt"), "--out grid.txt: give a .png"),
    ],
)
def test_generate_refuses_bad_requests(two_replica_run, args, message):
    folder, run_dir = two_replica_run
    result = run_cli("mnist_gan", "generate", str(run_dir), *args, cwd=folder)
    assert result.returncode != 0 and message in result.stderr


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gan-conditional")
    run_dir = folder / "run"
    result = run_cli("mnist_gan", "train", *SMOKE, "--conditional", "--run-dir", str(run_dir), cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_conditional_model_draws_the_digit_asked_for_and_refuses_others(conditional_run, tmp_path):
    import cv2

    from shared.export import serve_saved_model

    run_dir = conditional_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["conditional_accuracy_per_digit"]) == 10
    assert metrics["conditional_accuracy"] == pytest.approx(
        np.mean(metrics["conditional_accuracy_per_digit"])
    )

    out = tmp_path / "sevens.png"
    args = ("generate", str(run_dir), "--digit", "7", "--n", "5", "--seed", "2", "--out", str(out))
    result = run_cli("mnist_gan", *args, "--out-dir", str(tmp_path / "sevens"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    saved_model = run_dir / "saved_model"
    latent = np.random.default_rng(2).normal(size=(5, 64)).astype(np.float32)
    sevens = serve_saved_model(saved_model, {"latent": latent, "label": np.full(5, 7, np.int32)})
    singles = sorted((tmp_path / "sevens").glob("*.png"))
    written = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in singles])
    np.testing.assert_array_equal(written, sevens["images"])  # the digit asked for, not another
    ones = serve_saved_model(saved_model, {"latent": latent, "label": np.full(5, 1, np.int32)})
    assert not np.array_equal(ones["images"], sevens["images"])  # the label changes the image

    result = run_cli("mnist_gan", "generate", str(run_dir), "--digit", "12", cwd=tmp_path)
    assert result.returncode != 0 and "--digit must be 0-9; got 12" in result.stderr
    # the SavedModel checks its own inputs too: a label outside 0-9 is refused, not looked up
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be a digit 0-9"):
        serve_saved_model(saved_model, {"latent": latent[:1], "label": np.array([10], np.int32)})


def test_a_first_run_that_trains_the_scoring_classifier_trains_as_a_later_one_that_finds_it(tmp_path):
    losses, trained = [], []
    for run in ("first", "cached"):  # one working folder: the second run finds the first's classifier
        args = ("--smoke", "--epochs", "1", "--batch-size", "64", "--hp", "latent_codes=0")
        result = run_cli("mnist_gan", "train", *args, "--run-dir", str(tmp_path / run), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        trained.append("training the scoring classifier" in result.stdout)
        history = (tmp_path / run / "history.csv").read_text().splitlines()
        row = dict(zip(history[0].split(","), history[1].split(","), strict=True))
        losses.append((row["d_loss"], row["g_loss"]))
    assert trained == [True, False]
    assert losses[0] == losses[1]


def test_a_learning_rate_schedule_is_refused(tmp_path):
    args = ("--smoke", "--lr-schedule", "cosine", "--run-dir", str(tmp_path / "r"))
    result = run_cli("mnist_gan", "train", *args, cwd=tmp_path)
    assert result.returncode != 0 and "use --lr-schedule constant (got cosine)" in result.stderr


def test_request_checks():
    with pytest.raises(UserError, match="--n must be 1 to"):
        generate.check_request(20_000, None, False)
    generate.check_request(5, 3, True)


def test_missing_mnist_names_the_file(tmp_path):
    result = run_cli("mnist_gan", "train", "--epochs", "1", "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode != 0
    assert "mnist.npz" in result.stderr and str(tmp_path / "no-data") in result.stderr
    assert not (tmp_path / "r").exists()


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(two_replica_run):
    import tensorflow as tf

    folder, run_dir = two_replica_run
    signature = tf.saved_model.load(str(run_dir / "saved_model")).signatures["serving_default"]
    latent_dim = signature.structured_input_signature[1]["latent"].shape[1]
    latent = np.random.default_rng(4).normal(size=(5, latent_dim)).astype(np.float32)
    expected = check_served_like_in_process(run_dir, "mnist_gan", {"latent": latent}, cwd=folder)
    assert expected["images"].shape == (5, 28, 28) and expected["images"].dtype == np.uint8


# --- the page ----------------------------------------------------------------------------------------

DRAWN = """return [...document.querySelectorAll('#grid canvas')].map((canvas) =>
  Array.from(canvas.getContext('2d').getImageData(0, 0, 28, 28).data).filter((_, i) => i % 4 === 0))"""


def generated_on_the_page(driver, url: str) -> dict:
    """Clicks Generate; checks the page drew, canvas pixel for pixel, what the REST API gives for the page's
    own request, and that the latents look drawn from normal(0, 1); returns the request's inputs."""
    from selenium.webdriver.common.by import By

    from tests.browser import exchanges, same_reply_from_the_api, wait_for

    sent = len(exchanges(driver))
    wait_for(lambda: driver.find_element(By.ID, "generate").is_enabled(), "the Generate button")
    driver.find_element(By.ID, "generate").click()
    exchange = wait_for(lambda: exchanges(driver)[sent:], "the generated digits")[0]
    images = np.array(same_reply_from_the_api(url, exchange)["outputs"], np.uint8)
    assert images.shape == (16, 28, 28)
    np.testing.assert_array_equal(np.array(driver.execute_script(DRAWN)).reshape(-1, 28, 28), images)
    latent = np.array(exchange["request"]["inputs"]["latent"])
    assert latent.shape[0] == 16 and abs(latent.mean()) < 0.2 and 0.8 < latent.std() < 1.2
    return exchange["request"]["inputs"]


def test_page_draws_the_digits_the_unconditional_model_generates(two_replica_run):
    from selenium.webdriver.common.by import By

    from tests.browser import labelled, screenshot, served_page, text_of

    folder, run_dir = two_replica_run
    with served_page("mnist_gan", run_dir, folder) as (driver, url):
        inputs = generated_on_the_page(driver, url)
        assert set(inputs) == {"latent"} and len(inputs["latent"][0]) == 64  # from the signature
        assert "unconditional" in text_of(driver, "#about")
        assert not driver.find_element(By.ID, "digit").is_displayed()  # no digit to choose
        again = generated_on_the_page(driver, url)
        assert again["latent"] != inputs["latent"]  # fresh latents at each click
        labelled(driver)
        screenshot(driver, "mnist_gan-unconditional")


def test_page_draws_the_digit_chosen_from_the_conditional_model(conditional_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.browser import error_shown, labelled, on_a_phone, screenshot, served_page, text_of, wait_for

    with served_page("mnist_gan", conditional_run, tmp_path) as (driver, url):
        wait_for(lambda: "class-conditional" in text_of(driver, "#about"), "the signature read")
        digit = Select(driver.find_element(By.ID, "digit"))
        digit.select_by_visible_text("7")
        assert generated_on_the_page(driver, url)["label"] == [7] * 16
        captions = driver.find_elements(By.CSS_SELECTOR, "#grid figcaption")
        assert [caption.text for caption in captions] == ["7"] * 16  # under each digit, the one asked for
        digit.select_by_value("any")
        labels = generated_on_the_page(driver, url)["label"]
        assert set(labels) <= set(range(10)) and len(set(labels)) > 1  # a random digit for each image

        # an option the page does not offer, slipped into the form: the server's refusal is shown
        driver.execute_script("document.getElementById('digit').append(new Option('12', '12'))")
        digit.select_by_value("12")
        driver.find_element(By.ID, "generate").click()
        assert "label must be a digit 0-9" in error_shown(driver)
        digit.select_by_visible_text("3")
        assert generated_on_the_page(driver, url)["label"] == [3] * 16
        assert not driver.find_element(By.ID, "error").is_displayed()
        labelled(driver)
        screenshot(driver, "mnist_gan")
        on_a_phone(driver, "mnist_gan")
