"""The standard callbacks every run gets, and the learning-rate schedules.

Order matters: the schedule reads the compiled learning rate in `on_train_begin`, so it sits before
`BackupAndRestore`, which restores the optimizer (and its decayed rate) when a killed run resumes.
BackupAndRestore is last of all: see `standard_callbacks`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import keras
import numpy as np

from shared.config import UserError


class CosineDecayByEpoch(keras.callbacks.Callback):
    """Cosine decay from the compiled learning rate to `final_fraction` of it over `epochs`.

    It depends on the epoch index alone, so a resumed run continues the same curve.
    """

    def __init__(self, epochs: int, final_fraction: float = 0.01):
        super().__init__()
        self.epochs, self.final_fraction = max(1, epochs), final_fraction
        self.base_rate: float | None = None

    def on_train_begin(self, logs=None):
        self.base_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def rate(self, epoch: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
        return self.base_rate * (self.final_fraction + (1 - self.final_fraction) * cosine)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.rate(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class StopOnNaN(keras.callbacks.Callback):
    """`TerminateOnNaN` for every logged number, not `loss` alone (a GAN logs `d_loss` and `g_loss`),
    that also remembers it fired, so the runner can fail the run loudly."""

    fired = False

    def on_batch_end(self, batch, logs=None):
        bad = sorted(name for name, value in (logs or {}).items() if not _finite(value))
        if bad:
            print(f"Batch {batch}: {', '.join(bad)} not finite; stopping training", flush=True)
            self.model.stop_training = self.fired = True


def _finite(value) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    except (TypeError, ValueError):  # not a number: nothing to check
        return True


def earlier_values(history_csv: Path, monitor: str, from_epoch: int = 0) -> list[float]:
    """The finite `monitor` values, epoch by epoch from `from_epoch`, of an earlier part of this run
    (empty for a new run)."""
    if not history_csv.is_file():
        return []
    with history_csv.open(newline="") as f:
        values = [
            float(row[monitor])
            for row in csv.DictReader(f)
            if row.get(monitor) not in (None, "") and int(row.get("epoch") or 0) >= from_epoch
        ]
    return [v for v in values if np.isfinite(v)]


def best_so_far(history_csv: Path, monitor: str, mode: str) -> float | None:
    """The best `monitor` value in an earlier part of this run (for a resumed best-checkpoint)."""
    values = earlier_values(history_csv, monitor)
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience also counts the epochs before a resume, replayed from history.csv."""

    def __init__(self, history_csv: Path, **kwargs):
        super().__init__(**kwargs)
        self.history_csv = history_csv

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # the epochs before `start_from_epoch` never counted, as in EarlyStopping.on_epoch_end
        earlier = earlier_values(self.history_csv, self.monitor, self.start_from_epoch)
        if earlier and self.monitor_op is None:
            self._set_monitor_op()  # needs no model: the mode is always given
        for value in earlier:  # the same bookkeeping as EarlyStopping.on_epoch_end
            self.wait += 1
            if self._is_improvement(value, self.best):
                self.best, self.wait = value, 0


def schedule_callback(name: str, epochs: int, monitor: str, mode: str) -> keras.callbacks.Callback | None:
    """The learning-rate schedule for `--lr-schedule` (None for constant)."""
    if name == "cosine":
        return CosineDecayByEpoch(epochs)
    if name == "plateau":
        return keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=2)
    if name != "constant":
        raise UserError(f"--lr-schedule must be cosine, plateau or constant; got {name!r}")
    return None


def standard_callbacks(
    run_dir: Path,
    *,
    epochs: int,
    monitor: str,
    mode: str,
    lr_schedule: str = "cosine",
    patience: int = 0,
) -> list[keras.callbacks.Callback]:
    """LR schedule, NaN stop, early stopping, best checkpoint, CSV history, TensorBoard, BackupAndRestore.

    BackupAndRestore comes last, so an epoch counts as done for a resume only after its history row and
    its checkpoint are written (a kill in between repeats the epoch; the runner trims its history row).
    """
    callbacks: list[keras.callbacks.Callback] = []
    schedule = schedule_callback(lr_schedule, epochs, monitor, mode)
    if schedule:
        callbacks.append(schedule)
    callbacks.append(StopOnNaN())
    history = run_dir / "history.csv"
    if patience > 0:
        callbacks.append(ResumableEarlyStopping(history, monitor=monitor, mode=mode, patience=patience))
    callbacks += [
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.weights.h5"),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far(history, monitor, mode),
        ),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
        # double_checkpoint: a run killed while writing its backup falls back to the one before
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False
        ),  # the runner removes it once everything is saved
    ]
    return callbacks
