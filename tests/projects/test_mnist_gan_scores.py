"""mnist_gan's judge: the Inception Score and FID on known cases, in NumPy and in the graph, the FIDs that
tell the digit mix from the drawing, and how the scoring classifier is fitted."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from projects.mnist_gan import scorer
from projects.mnist_gan.evaluate import share_separated_fids, subsample_to_shares
from shared.fitting import TrainingDivergedError
from shared.mnist import render_digits

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
    # variables, as in the GAN: resetting the metric (fit does, every epoch) must not zero the reference
    mean = keras.Variable(reference[0], dtype="float64", trainable=False)
    root = keras.Variable(scorer.symmetric_root(reference[1]), dtype="float64", trainable=False)
    fid = scorer.FrechetDistance(mean, root)
    fid.update_state(features[:10] * 100)
    fid.reset_state()
    for chunk in np.array_split(features, 7):  # accumulated batch by batch, as validation does
        fid.update_state(chunk)
    expected = scorer.frechet_distance(scorer.statistics(features), reference)
    assert float(fid.result()) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mean), reference[0])

    probabilities = rng.dirichlet(np.full(10, 0.3), size=2000)
    inception = scorer.InceptionScore()
    for chunk in np.array_split(probabilities, 5):
        inception.update_state(chunk)
    assert float(inception.result()) == pytest.approx(scorer.inception_score(probabilities), rel=1e-5)


def test_the_scorer_fits_on_nine_tenths_of_the_training_digits_and_keeps_the_best_epoch(
    tmp_path, monkeypatch
):
    """The last tenth of the training digits validates and chooses the epoch kept; the test digits only
    measure the classifier. A second call finds it cached."""
    monkeypatch.chdir(tmp_path)  # the cache: runs/mnist_gan/scorer/ under the working folder
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300).astype(np.int32)
    images = render_digits(labels, rng)
    arguments = dict(x_train=images, y_train=labels, x_test=images[:60], y_test=labels[:60], seed=0, epochs=3)
    path, accuracy = scorer.load_or_train(**arguments)
    record = json.loads((path.parent / "scorer.json").read_text())
    assert record["train_size"] == 270 and record["validation_size"] == 30 and 1 <= record["epoch_kept"] <= 3
    kept = keras.models.load_model(path)
    held_out = kept.evaluate(images[270:], labels[270:], verbose=0, return_dict=True)["accuracy"]
    assert held_out == pytest.approx(record["validation_accuracy"])  # the best epoch's weights were saved
    assert record["test_accuracy"] == accuracy
    assert scorer.load_or_train(**arguments) == (path, accuracy)  # cached


def test_a_scorer_whose_loss_becomes_nan_is_an_error_and_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = scorer.build_classifier

    def exploding() -> keras.Model:  # a step size no network survives: its loss becomes infinite or NaN
        classifier = built()
        classifier.compile(
            keras.optimizers.SGD(1e20), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return classifier

    monkeypatch.setattr(scorer, "build_classifier", exploding)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400).astype(np.int32)
    images = render_digits(labels, rng)
    with pytest.raises(TrainingDivergedError, match="scoring classifier's loss became NaN or infinite"):
        scorer.load_or_train(images, labels, images, labels, seed=0, epochs=3)
    assert not list(tmp_path.glob("runs/mnist_gan/scorer/*/*.keras"))
