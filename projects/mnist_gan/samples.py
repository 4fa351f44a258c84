"""Digits from a generator: uint8 images, grids of them, the grid after each epoch, the training GIF."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

GRID_SIDE = 10  # 10 x 10 digits; when conditional, row r holds the digit r


def generate(generator: keras.Model, latent: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """uint8 [N, 28, 28] digits for these latent vectors (and labels), as the SavedModel serves them.

    The generator is called batch by batch, not through `predict`: under a multi-worker strategy
    `predict` gathers from every worker, and the per-epoch grid runs on the chief alone."""
    batches = []
    for start in range(0, len(latent), 1000):
        batch = latent[start : start + 1000]
        inputs = batch if labels is None else [batch, labels[start : start + 1000].astype(np.int32)]
        batches.append(np.asarray(generator(inputs, training=False)))
    images = np.concatenate(batches)
    return np.round(np.clip((images + 1.0) * 127.5, 0, 255)).astype(np.uint8)


def grid(images: np.ndarray, columns: int = GRID_SIDE, gap: int = 2) -> np.ndarray:
    """One uint8 image of the digits in rows of `columns`, `gap` pixels apart."""
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (28 + gap) + gap, columns * (28 + gap) + gap), 64, np.uint8)
    for i, image in enumerate(images):
        top, left = gap + (i // columns) * (28 + gap), gap + (i % columns) * (28 + gap)
        canvas[top : top + 28, left : left + 28] = image
    return canvas


def write_png(image: np.ndarray, path: Path, scale: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if not cv2.imwrite(str(path), big):
        raise OSError(f"could not write {path}")
    return path


def fixed_inputs(latent_dim: int, conditional: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """The same 100 latent vectors every epoch (and row r asks for digit r), so the grids compare."""
    latent = np.random.default_rng(seed).normal(size=(GRID_SIDE * GRID_SIDE, latent_dim)).astype(np.float32)
    labels = np.repeat(np.arange(10), GRID_SIDE) if conditional else None
    return latent, labels


class SampleGrid(keras.callbacks.Callback):
    """After each epoch: a grid from fixed noise into samples/epoch_NNN.png and TensorBoard images."""

    def __init__(self, run_dir: Path, conditional: bool):
        super().__init__()
        self.folder, self.conditional = run_dir / "samples", conditional
        self.logs_dir = run_dir / "logs" / "samples"
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(str(self.logs_dir))

    def on_train_end(self, logs=None):
        self.writer.close()

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and not np.isfinite((logs or {}).get("g_loss", 0.0)):
            return  # diverged: nothing worth drawing
        latent, labels = fixed_inputs(self.model.latent_dim, self.conditional)
        image = grid(generate(self.model.sampler, latent, labels))
        write_png(image, self.folder / f"epoch_{epoch + 1:03d}.png")
        with self.writer.as_default():
            tf.summary.image("samples", image[None, :, :, None], step=epoch + 1)
        self.writer.flush()


def training_gif(folder: Path, out: Path, seconds_per_frame: float = 0.4) -> Path | None:
    """The per-epoch grids as an animated GIF (the last frame held longer); None if there are none."""
    from PIL import Image

    frames = [Image.open(path) for path in sorted(folder.glob("epoch_*.png"))]
    if not frames:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    durations = [int(seconds_per_frame * 1000)] * (len(frames) - 1) + [3000]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return out
