"""Test-set accuracy and ROC-AUC, the two phases' curves, the surest mistakes, and Grad-CAM heat maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from projects.cats_dogs_vgg16.data import CLASS_NAMES
from projects.cats_dogs_vgg16.model import grad_cam, grad_cam_probe
from shared import reporting
from shared.classification import evaluate_binary
from shared.config import RunConfig
from shared.data import in_memory
from shared.project import Splits

MISTAKES_SHOWN = 16
GRAD_CAM_SHOWN = 8


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    images, labels = in_memory(splits.test)
    probabilities = model.predict(images, batch_size=64, verbose=0).astype(np.float64).reshape(-1)
    names, plots = CLASS_NAMES, run_dir / "plots"
    # accuracy, ROC-AUC, log loss; confusion_matrix.png and roc_curve.png
    found = evaluate_binary(labels, probabilities, list(names), plots, "VGG16", mistakes=MISTAKES_SHOWN)
    plot_phases(run_dir / "history.csv", plots / "phases.png")
    surest, predicted = found.surest_mistakes, found.predicted
    if len(surest):
        titles = [
            f"{names[labels[i]]} as {names[predicted[i]]}, p(dog) {probabilities[i]:.2f}" for i in surest
        ]
        reporting.image_grid(images[surest], titles, plots / "most_confident_mistakes.png")
    shown = np.arange(min(GRAD_CAM_SHOWN, len(labels)))
    overlays = grad_cam_overlays(model, images[shown])
    titles = [f"{names[labels[i]]}: p(dog) {probabilities[i]:.2f}" for i in shown]
    reporting.image_grid(overlays, titles, plots / "grad_cam.png", columns=4)
    return {**found.metrics, "skipped_images": int(splits.info["skipped_images"])}


def grad_cam_overlays(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The images with their Grad-CAM maps laid over them in the jet colours (uint8 RGB)."""
    maps, _ = grad_cam(grad_cam_probe(model.network), tf.constant(images))
    maps = tf.image.resize(maps[..., None], images.shape[1:3]).numpy()[..., 0]
    heat = plt.get_cmap("jet")(np.clip(maps, 0, 1))[..., :3] * 255
    return np.clip(0.6 * images + 0.4 * heat, 0, 255).astype(np.uint8)


def plot_phases(history_csv: Path, out: Path) -> Path | None:
    """Loss and accuracy over both phases, the switch to fine-tuning marked."""
    if not history_csv.is_file():
        return None
    history = pd.read_csv(history_csv)
    epochs = history["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, name in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[name], marker="o", label="train")
        ax.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        if "phase" in history and (history["phase"] == 2).any():
            ax.axvline(epochs[history["phase"] == 2].min() - 0.5, color="grey", linestyle="--")
            ax.text(0.98, 0.5, "fine-tuning ->", transform=ax.transAxes, ha="right", color="grey")
        ax.set_title(f"{name}: feature extraction, then fine-tuning")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return reporting.save_figure(fig, out)
