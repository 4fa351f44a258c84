"""The one way a model is fitted here: `train`, every `tune` trial, stock_lstm's walk-forward refits and
mnist_gan's scorer all call `fit`, so they share the learning-rate schedule, the NaN stop, early stopping and
keeping the best epoch.

With a run folder, `fit` also writes what a run keeps (best checkpoint, history.csv, TensorBoard logs) and a
backup a killed run resumes from; without one (a trial, a refit) the best epoch is kept in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from shared import callbacks as cb
from shared.config import RunConfig, UserError
from shared.project import Project


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite and training stopped."""


@dataclass(frozen=True)
class Fitted:
    history: keras.callbacks.History
    diverged: bool  # a NaN or infinite number stopped it: its weights are not to be used

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.history.values()), []))


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the logs, so history.csv holds the training time even across resumes."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


def settings(project: Project, cfg: RunConfig) -> dict[str, Any]:
    """`fit`'s settings for a run of `project` with `cfg`: its epochs, objective, schedule and patience."""
    return {
        "epochs": cfg.epochs,
        "monitor": project.objective,
        "mode": project.objective_direction,
        "lr_schedule": cfg.lr_schedule,
        "patience": cfg.early_stopping_patience,
    }


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int,
    monitor: str,
    mode: str,
    lr_schedule: str = "cosine",
    patience: int = 0,
    run_dir: Path | None = None,
    callbacks: list[keras.callbacks.Callback] | tuple = (),
    initial_epoch: int = 0,
    verbose: str | int = "auto",
) -> Fitted:
    """Fits on batched datasets and leaves the best epoch's weights (by `monitor`) in the model.

    `patience`: early-stopping patience in epochs, 0 for none. `callbacks`: the caller's own (samples
    after each epoch, keras-tuner's), run before the standard ones so that BackupAndRestore marks an
    epoch done last. `initial_epoch`: where a trial continued by Hyperband starts.
    """
    if run_dir is not None:
        standard = cb.standard_callbacks(
            run_dir, epochs=epochs, monitor=monitor, mode=mode, lr_schedule=lr_schedule, patience=patience
        )
    else:
        schedule = cb.schedule_callback(lr_schedule, epochs, monitor, mode)
        stop = keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience or epochs, restore_best_weights=True
        )
        standard = [*([schedule] if schedule else []), cb.StopOnNaN(), stop]
    every = [EpochTimer(), *callbacks, *standard]
    # shuffle=False: the tf.data pipeline shuffles; Keras would only warn that it cannot
    history = model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=every,
        shuffle=False,
        verbose=verbose,
    )
    diverged = any(isinstance(c, cb.StopOnNaN) and c.fired for c in every)
    if run_dir is not None and not diverged:
        load_best_weights(model, run_dir / "checkpoints" / "best.weights.h5")
    return Fitted(history, diverged)


def load_best_weights(model: keras.Model, best: Path) -> bool:
    """Loads the epoch with the best validation objective (not the last); False if there is none to load."""
    if not best.is_file():
        return False
    try:
        model.load_weights(str(best))
        return True
    except (OSError, ValueError) as e:  # e.g. killed while it was being written
        print(f"warning: {best} is unreadable ({e}); keeping the last epoch's weights", flush=True)
        return False
