"""Inception Score and FID of 10,000 generated digits, placed between the real-data floor and noise.

Each score comes with its reference points, scored by the same classifier: real test digits against the
real training digits (the best a generator can hope for) and uniform noise images (what no learning
gives). A conditional model also gets the share of digits the classifier reads as the digit asked for.

FID mixes two things: which digits are drawn and how well. Two more numbers pull them apart: the FID of
the generated digits subsampled to the training digits' shares (how well, whatever the mix) and the FID of
real test digits subsampled to the generated digits' shares (what the mix alone costs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from projects.mnist_gan import samples, scorer
from shared.config import RunConfig
from shared.data import in_memory
from shared.project import Splits

GENERATED = 10_000
MIN_SUBSAMPLE = 1_000  # the FID of fewer digits is mostly its small-sample bias: not reported


def scores(model: keras.Model, images: np.ndarray, reference) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(inception score, FID to `reference`, predicted digits, features) of uint8 images."""
    features, probabilities = model.scorer.predict(images.astype(np.float32), batch_size=1000, verbose=0)
    fid = scorer.frechet_distance(scorer.statistics(features), reference)
    return scorer.inception_score(probabilities), fid, probabilities.argmax(axis=1), features


def subsample_to_shares(labels: np.ndarray, shares: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices of as many examples as `labels` allows, drawn without replacement, whose digits come in
    `shares` (10 numbers summing to 1): the digit with the fewest examples for its share sets the size."""
    counts = np.bincount(labels, minlength=10)
    wanted = np.asarray(shares, np.float64)
    size = min(counts[d] / wanted[d] for d in range(10) if wanted[d] > 0)
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(labels == d), int(wanted[d] * size), replace=False) for d in range(10)
    ]
    return np.sort(np.concatenate(picked))


def share_separated_fids(
    generated: tuple[np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray],
    training_shares: np.ndarray,
    reference,
) -> dict[str, float | int | None]:
    """FIDs with the digit mix set to the training digits' or imposed on the real ones: (features, digit)
    pairs for generated and real test digits. None where a digit the other side needs is (nearly) never
    drawn, so that fewer than MIN_SUBSAMPLE digits would be scored."""
    (generated_features, generated_digits), (real_features, real_digits) = generated, real
    generated_shares = np.bincount(generated_digits, minlength=10) / len(generated_digits)
    evened = subsample_to_shares(generated_digits, training_shares)
    imposed = subsample_to_shares(real_digits, generated_shares)

    def distance(features: np.ndarray) -> float | None:
        if len(features) < MIN_SUBSAMPLE:
            return None
        return scorer.frechet_distance(scorer.statistics(features), reference)

    return {
        "fid_at_real_shares": distance(generated_features[evened]),
        "fid_at_real_shares_size": len(evened),
        "fid_real_at_generated_shares": distance(real_features[imposed]),
        "fid_real_at_generated_shares_size": len(imposed),
    }


def even_code_scores(model: keras.Model, latent: np.ndarray, reference) -> dict[str, Any]:
    """IS, FID and digit shares with the InfoGAN codes drawn evenly, as in training: beside the scores of
    the codes' fitted shares, what fitting them changed. {} without codes."""
    if not model.codes or "code_shares" not in [layer.name for layer in model.sampler.layers]:
        return {}  # no codes, or a model saved before their shares were fitted
    shares = model.sampler.get_layer("code_shares").shares
    fitted = keras.ops.convert_to_numpy(shares)
    shares.assign(np.full_like(fitted, 1.0 / len(fitted)))
    try:
        images = samples.generate(model.sampler, latent, None)
    finally:
        shares.assign(fitted)
    inception, fid, predicted, _ = scores(model, images, reference)
    return {
        "inception_score_even_codes": inception,
        "fid_even_codes": fid,
        "digit_shares_even_codes": (np.bincount(predicted, minlength=10) / len(images)).tolist(),
    }


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    x_test, y_test = in_memory(splits.test)
    _, y_train = in_memory(splits.train)
    # the training digits' statistics the model carries (validation's reference): not recomputed here
    root = keras.ops.convert_to_numpy(model.real_root)
    reference = keras.ops.convert_to_numpy(model.real_mean), root @ root

    rng = np.random.default_rng(cfg.seed)
    latent = rng.normal(size=(GENERATED, model.latent_dim)).astype(np.float32)
    labels = np.arange(GENERATED) % 10 if model.conditional else None
    generated = samples.generate(model.sampler, latent, labels)
    noise = rng.integers(0, 256, size=(GENERATED, 28, 28), dtype=np.uint8)

    inception, fid, predicted, features = scores(model, generated, reference)
    real_inception, real_fid, _, real_features = scores(model, x_test, reference)
    noise_inception, noise_fid, *_ = scores(model, noise, reference)
    metrics = {
        "inception_score": inception,
        "fid": fid,
        "fid_real_floor": real_fid,
        "inception_score_real": real_inception,
        "fid_noise": noise_fid,
        "inception_score_noise": noise_inception,
        "fid_over_floor": fid / real_fid,
        "scorer_test_accuracy": splits.info["scorer_test_accuracy"],
        "generated": GENERATED,
        # how evenly the digits come out: the classifier's reading of each, as shares
        "digit_shares": (np.bincount(predicted, minlength=10) / GENERATED).tolist(),
        **share_separated_fids(
            (features, predicted),
            (real_features, y_test),
            np.bincount(y_train, minlength=10) / len(y_train),
            reference,
        ),
    }
    metrics.update(even_code_scores(model, latent, reference))
    if model.conditional:
        hits = predicted == labels
        metrics["conditional_accuracy"] = float(hits.mean())
        metrics["conditional_accuracy_per_digit"] = [float(hits[labels == d].mean()) for d in range(10)]

    latent_grid, labels_grid = samples.fixed_inputs(model.latent_dim, model.conditional)
    samples.write_png(
        samples.grid(samples.generate(model.sampler, latent_grid, labels_grid)),
        run_dir / "plots" / "samples.png",
    )
    samples.training_gif(run_dir / "samples", run_dir / "plots" / "training.gif")
    return metrics
