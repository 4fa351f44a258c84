"""Inception Score and FID of 10,000 generated digits, placed between the real-data floor and noise.

Each score comes with its reference points, scored by the same classifier: real test digits against the
real training digits (the best a generator can hope for) and uniform noise images (what no learning
gives). A conditional model also gets the share of digits the classifier reads as the digit asked for.
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


def scores(model: keras.Model, images: np.ndarray, reference) -> tuple[float, float, np.ndarray]:
    """(inception score, FID to `reference`, predicted digits) of uint8 images."""
    features, probabilities = model.scorer.predict(images.astype(np.float32), batch_size=1000, verbose=0)
    fid = scorer.frechet_distance(scorer.statistics(features), reference)
    return scorer.inception_score(probabilities), fid, probabilities.argmax(axis=1)


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    x_test, _ = in_memory(splits.test)
    # the training digits' statistics the model carries (validation's reference): not recomputed here
    root = keras.ops.convert_to_numpy(model.real_root)
    reference = keras.ops.convert_to_numpy(model.real_mean), root @ root

    rng = np.random.default_rng(cfg.seed)
    latent = rng.normal(size=(GENERATED, model.latent_dim)).astype(np.float32)
    labels = np.arange(GENERATED) % 10 if model.conditional else None
    generated = samples.generate(model.sampler, latent, labels)
    noise = rng.integers(0, 256, size=(GENERATED, 28, 28), dtype=np.uint8)

    inception, fid, predicted = scores(model, generated, reference)
    real_inception, real_fid, _ = scores(model, x_test, reference)
    noise_inception, noise_fid, _ = scores(model, noise, reference)
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
    }
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
