"""Numenta Anomaly Benchmark series: the settings, NAB's files and labelled windows, the probationary
split, the windows.

A series is read in row order (`series.py`): a row that cannot be used is reported by its line and never
scored, and no window crosses it.

Only the first part of the series (NAB's probationary period, 15% by default) is ever trained on: the
scaler is fitted on it and its windows are the data. The last fifth of its windows, in time, is held out:
they are the validation windows, no training window overlaps them, and detection thresholds are chosen
on their rows. The labels are used only to evaluate. What a trained model scores with (the scaler, the
window, the threshold) is its `AnomalyState`, kept in the run folder as state.json.
"""

from __future__ import annotations

import json
import math
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from projects.autoencoder_anomaly.series import (
    Series,
    label_windows,
    parse_series,
    synthetic_series,
    window_starts,
)
from shared import options
from shared.config import RunConfig, UserError
from shared.data import DatasetMissingError, RemoteFile, in_memory, locate
from shared.options import option
from shared.project import Splits

ARCHIVE = RemoteFile(dataset="nab", filename="NAB_data_labels.tar.gz")  # NAB's data/ and labels/ folders
NAB_COMMIT = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
NAB_RAW = f"https://raw.githubusercontent.com/numenta/NAB/{NAB_COMMIT}"
DEFAULT_WINDOW = 64
MAX_WINDOW, WINDOW_STEP = 256, 32  # the `window` hyperparameter's range
MIN_TRAIN_WINDOWS = 32
VALIDATION_SHARE = 0.2  # of the probationary windows: the last ones in time
LISTED = 10  # problems named one by one in messages and metrics.json


@dataclass(frozen=True)
class Options:
    series: str = option(
        "realKnownCause/machine_temperature_system_failure.csv", "the NAB series, <category>/<name>.csv"
    )
    train_fraction: float = option(
        0.15, "the first part of the series to train on, NAB's probationary period"
    )
    # chosen on generated clean series (false alarms), never on NAB's labels
    threshold: str = option(
        "5sigma",
        "anomaly threshold from the held-out probationary rows' scores: max, a percentile such as 99.5, "
        "or <k>sigma, their mean + k standard deviations",
    )

    def __post_init__(self):
        if not self.series.endswith(".csv") or self.series.count("/") != 1:
            raise UserError(
                "--series must look like <category>/<name>.csv, e.g. realKnownCause/nyc_taxi.csv; "
                f"got {self.series!r}"
            )
        if not 0 < self.train_fraction < 1:
            raise UserError(f"--train-fraction must be between 0 and 1; got {self.train_fraction}")
        if not _is_threshold_rule(self.threshold):
            raise UserError(
                "--threshold must be max, a percentile in (0, 100] or <k>sigma (e.g. 5sigma); "
                f"got {self.threshold!r}"
            )


def _is_threshold_rule(text: str) -> bool:
    """`max`, a percentile in (0, 100], or `<k>sigma` with k > 0."""
    if text == "max":
        return True
    number, bound = (text[: -len("sigma")], math.inf) if text.endswith("sigma") else (text, 100.0)
    try:
        value = float(number)
    except ValueError:
        return False
    return math.isfinite(value) and 0 < value <= bound


@dataclass
class AnomalyState:
    """What a trained model scores with, chosen when it was trained; the run keeps it as state.json."""

    series: str  # the series whose probationary rows the model learnt what normal looks like from
    mean: float  # the scaler: mean and standard deviation of the probationary rows' values
    std: float
    threshold_rule: str  # --threshold: max, a percentile, or <k>sigma
    window: int = 0  # rows per window, the model's input length: set by `for_hparams`
    # a row scoring above it is an anomaly: the rule applied to the held-out rows' scores, chosen once the
    # model is fitted (`evaluate.choose_threshold`, the project's after_fit)
    threshold: float | None = None


# --- finding and reading the files --------------------------------------------------------------------


def read_nab(data_dir: Path, series_name: str) -> Series:
    """One NAB series with its labels, from the archive, or from NAB's files (downloaded when online)."""
    archive = Path(data_dir) / ARCHIVE.dataset / ARCHIVE.filename
    if archive.is_file():
        text, windows = _from_archive(archive, f"NAB/data/{series_name}"), _archive_windows(archive)
    else:
        text, windows = _from_files(Path(data_dir), series_name, archive)
    if series_name not in windows:
        raise UserError(f"{series_name} has no entry in NAB's combined_windows.json; is the name right?")
    return label_windows(parse_series(text, series_name), windows[series_name])


def category_series(data_dir: Path, category: str) -> list[str]:
    """Every labelled series of a NAB category, e.g. realKnownCause -> [realKnownCause/<name>.csv, ...]."""
    archive = Path(data_dir) / ARCHIVE.dataset / ARCHIVE.filename
    windows = (
        _archive_windows(archive) if archive.is_file() else _from_files(Path(data_dir), None, archive)[1]
    )
    names = sorted(name for name in windows if name.split("/")[0] == category)
    if not names:
        known = sorted({name.split("/")[0] for name in windows})
        raise UserError(f"NAB has no category {category!r}; it has {', '.join(known)}")
    return names


def _from_archive(archive: Path, member: str) -> str:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read().decode("utf-8", errors="replace")
    except KeyError as e:
        raise UserError(f"{archive} holds no {member}; is the series name right?") from e
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{archive} is not a readable tar.gz ({e}); download it again") from e


def _archive_windows(archive: Path) -> dict[str, list]:
    return json.loads(_from_archive(archive, "NAB/labels/combined_windows.json"))


def _from_files(data_dir: Path, series_name: str | None, archive: Path) -> tuple[str, dict[str, list]]:
    """NAB's own layout under <data-dir>/nab/ (data/<category>/<name>.csv, labels/combined_windows.json)."""
    files = [RemoteFile("nab/labels", "combined_windows.json", f"{NAB_RAW}/labels/combined_windows.json")]
    if series_name:
        category, name = series_name.split("/")
        files.append(RemoteFile(f"nab/data/{category}", name, f"{NAB_RAW}/data/{series_name}"))
    try:
        paths = [locate(remote, data_dir) for remote in files]
    except DatasetMissingError as e:
        raise DatasetMissingError(
            f"NAB data not found: looked for {archive}, then for NAB's own files. {e}"
        ) from e
    windows = json.loads(paths[0].read_text())
    text = paths[1].read_text(encoding="utf-8", errors="replace") if series_name else ""
    return text, windows


# --- the splits --------------------------------------------------------------------------------------


def series_for(cfg: RunConfig, settings: Options) -> Series:
    if cfg.smoke:
        return synthetic_series(seed=cfg.seed)
    return read_nab(cfg.resolved_data_dir(), settings.series)


def load(cfg: RunConfig) -> Splits:
    """Every row of the series as `test`, and the scaler; `for_hparams` makes the training and validation
    windows once the model's window length is known."""
    settings = options.read(Options, cfg)
    series = series_for(cfg, settings)
    fraction = settings.train_fraction
    probationary_rows = math.floor(fraction * len(series.values))
    train_values = series.values[:probationary_rows][series.usable[:probationary_rows]]
    if len(train_values) < 2:
        raise UserError(f"{series.name}: the first {fraction:.0%} holds {len(train_values)} usable rows")
    mean, std = float(train_values.mean()), float(train_values.std())
    std = std if std > 0 else 1.0  # a flat training part: scale by 1 rather than divide by zero
    probationary = np.arange(len(series.values)) < probationary_rows
    labels = series.labels if series.labels is not None else np.zeros(len(series.values), np.int32)
    test = tf.data.Dataset.from_tensor_slices(
        (
            {
                "value": series.values.astype(np.float32),
                "probationary": probationary,
                "timestamp": _seconds(series.timestamps),
            },
            labels,
        )
    )
    info = {
        "series": series.name,
        "rows": len(series.values),
        "probationary_rows": probationary_rows,
        "train_fraction": fraction,
        "step_seconds": series.step_seconds,
        "labelled_windows": len(series.windows),
        "unusable_rows": len(series.problems),
        "first_unusable_rows": list(series.problems.values())[:LISTED],
        "time_notes": len(series.notes),
        "largest_window": largest_window(series.usable, probationary_rows),
        "first_time_notes": series.notes[:LISTED],
    }
    state = AnomalyState(series.name, mean, std, settings.threshold)
    # train and validation hold the whole series until `for_hparams` cuts the windows
    return Splits(train=test, validation=test, test=test, info=info, state=state)


def _seconds(timestamps: np.ndarray) -> np.ndarray:
    seconds = timestamps.astype(np.int64)
    return np.where(np.isnat(timestamps), np.iinfo(np.int64).min, seconds)


def held_out(splits: Splits) -> np.ndarray:
    """The probationary rows no training window touches: thresholds are chosen on their scores."""
    rows = np.arange(splits.info["rows"])
    return (rows >= splits.info["held_out_from_row"]) & (rows < splits.info["probationary_rows"])


def series_of(splits: Splits) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, probationary, timestamps, labels) of the whole series, from the `test` split."""
    features, labels = in_memory(splits.test)
    return features["value"].astype(np.float64), features["probationary"], features["timestamp"], labels


def split_windows(usable: np.ndarray, window: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """First rows of the training and validation windows among the first `rows` rows.

    The last fifth of the windows (in time) is held out for validation, and no training window reaches
    into it, so the held-out rows are never trained on.
    """
    starts = window_starts(usable, window, stop=rows)
    validation = starts[-max(1, round(VALIDATION_SHARE * len(starts))) :]
    train = starts[starts + window <= validation[0]] if len(validation) else starts
    return train, validation


def largest_window(usable: np.ndarray, rows: int) -> int:
    """The longest window (a multiple of 32, at most MAX_WINDOW) that leaves enough training windows."""
    for window in range(MAX_WINDOW, WINDOW_STEP - 1, -WINDOW_STEP):
        if len(split_windows(usable, window, rows)[0]) >= MIN_TRAIN_WINDOWS:
            return window
    return WINDOW_STEP


def for_hparams(splits: Splits, values: dict) -> Splits:
    """Train / validation windows of the model's `window` length, standardised with the training scaler."""
    window = int(values.get("window", default_window(splits)))
    if splits.state.window == window:
        return splits
    values_, probationary, _, _ = series_of(splits)
    standard = (values_ - splits.state.mean) / splits.state.std
    rows = int(probationary.sum())
    train_starts, validation_starts = split_windows(np.isfinite(standard), window, rows)
    if len(train_starts) < MIN_TRAIN_WINDOWS:
        raise UserError(
            f"{splits.state.series}: its first {rows} rows leave {len(train_starts)} training windows of "
            f"{window} rows once the last fifth is held out; at least {MIN_TRAIN_WINDOWS} are needed. "
            f"Use a shorter window (--hp window=..., at most {splits.info['largest_window']} here) or a "
            "larger --train-fraction."
        )
    windows = np.lib.stride_tricks.sliding_window_view(standard, window).astype(np.float32)
    train = windows[train_starts][..., np.newaxis]  # [N, window, 1]
    validation = windows[validation_starts][..., np.newaxis]
    info = {
        **splits.info,
        "windows": {"train": len(train), "validation": len(validation)},
        "held_out_from_row": int(validation_starts[0]),
    }
    return Splits(
        train=tf.data.Dataset.from_tensor_slices((train, train)),
        validation=tf.data.Dataset.from_tensor_slices((validation, validation)),
        test=splits.test,
        info=info,
        state=replace(splits.state, window=window, threshold=None),
    )


def default_window(splits: Splits) -> int:
    """DEFAULT_WINDOW, or the largest window that fits when the training part is too short for it."""
    return min(DEFAULT_WINDOW, splits.info["largest_window"])
