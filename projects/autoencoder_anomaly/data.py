"""Numenta Anomaly Benchmark series: reading, NAB's labelled windows, the probationary split, the windows.

A series is read in row order, as NAB's own detectors read it. A row whose timestamp or value cannot be
used (unparseable, empty, not a finite number) is reported by its line and never scored; it splits the
series into stretches, and no window crosses it, so a NaN is never silently a zero or an anomaly. Gaps in
time and timestamps out of order are reported too, but do not stop scoring.

Only the first part of the series (NAB's probationary period, 15% by default) is ever trained on: the
scaler is fitted on it and its windows are the data. The last fifth of its windows, in time, is held out:
they are the validation windows, no training window overlaps them, and detection thresholds are chosen
on their rows. The labels are used only to evaluate.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.config import RunConfig, UserError
from shared.data import DatasetMissingError, RemoteFile, in_memory, locate
from shared.project import Splits

ARCHIVE = RemoteFile(dataset="nab", filename="NAB_data_labels.tar.gz")  # NAB's data/ and labels/ folders
NAB_COMMIT = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
NAB_RAW = f"https://raw.githubusercontent.com/numenta/NAB/{NAB_COMMIT}"
DEFAULT_SERIES = "realKnownCause/machine_temperature_system_failure.csv"
DEFAULT_WINDOW = 64
MAX_WINDOW, WINDOW_STEP = 256, 32  # the `window` hyperparameter's range
MIN_TRAIN_WINDOWS = 32
DEFAULT_THRESHOLD = "5sigma"  # chosen on generated clean series (false alarms), never on NAB's labels
TRAIN_FRACTION = 0.15  # NAB's probationary period
VALIDATION_SHARE = 0.2  # of the probationary windows: the last ones in time
GAP_FACTOR = 1.5  # a step longer than this many usual steps is reported as a gap
LISTED = 10  # problems named one by one in messages and metrics.json
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


@dataclass
class Series:
    """One series in row order. `values` is NaN where a row cannot be used; `labels` 1 inside a NAB window."""

    name: str
    timestamps: np.ndarray  # datetime64[s]; NaT where unparseable
    values: np.ndarray  # float64
    lines: np.ndarray  # the CSV line of each row
    raw_values: list[str] = field(default_factory=list)  # each row's value as written
    problems: dict[int, str] = field(default_factory=dict)  # line -> why the row is not used
    notes: list[str] = field(default_factory=list)  # gaps, order: reported, still scored
    step_seconds: float = 0.0  # the usual time between rows
    labels: np.ndarray | None = None
    windows: list[tuple[str, str]] = field(default_factory=list)  # NAB's labelled anomaly windows

    @property
    def usable(self) -> np.ndarray:
        return np.isfinite(self.values)


def parse_series(text: str, name: str) -> Series:
    """`timestamp,value` CSV text -> Series; bad rows recorded by line, a missing column is an error."""
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip().lstrip("\ufeff").lower() for cell in next(reader, [])]  # a BOM too
    if "timestamp" not in header or "value" not in header:
        raise UserError(f"{name}: the header must name the columns timestamp and value; found {header}")
    t_col, v_col = header.index("timestamp"), header.index("value")
    raw_times, raw_values, lines = [], [], []
    for row in reader:
        if not row:
            continue  # a blank line holds no row; a line of empty cells is a row with a problem
        raw_times.append(row[t_col].strip() if t_col < len(row) else "")
        raw_values.append(row[v_col].strip() if v_col < len(row) else "")
        lines.append(reader.line_num)
    timestamps = np.array([_timestamp(text) for text in raw_times], dtype="datetime64[s]").reshape(-1)
    values = np.array([_number(text) for text in raw_values], dtype=np.float64).reshape(-1)
    series = Series(name, timestamps, values, np.array(lines, dtype=np.int64), raw_values)
    for i, line in enumerate(series.lines):
        if np.isnat(timestamps[i]):
            series.problems[int(line)] = f"line {line}: timestamp {raw_times[i]!r} is not a date and time"
            values[i] = np.nan
        elif not np.isfinite(values[i]):
            series.problems[int(line)] = f"line {line}: value {raw_values[i]!r} is not a finite number"
            values[i] = np.nan  # inf too: one marker for every unusable row
    _note_time_steps(series)
    return series


def _timestamp(text: str) -> np.datetime64:
    """`YYYY-MM-DD[ HH:MM[:SS[.fff]]]` (NAB's form, or ISO with a T); anything else, NaT."""
    if not TIMESTAMP.fullmatch(text):
        return np.datetime64("NaT")
    try:
        return np.datetime64(text.replace(" ", "T", 1), "s")
    except ValueError:  # e.g. month 13
        return np.datetime64("NaT")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _note_time_steps(series: Series) -> None:
    """The usual step (the median one), then every gap and step backwards, by line."""
    known = ~np.isnat(series.timestamps)
    times, lines = series.timestamps[known].astype(np.int64), series.lines[known]
    steps = np.diff(times)
    if not len(steps):
        return
    series.step_seconds = float(np.median(steps))
    for i in np.flatnonzero((steps <= 0) | (steps > GAP_FACTOR * series.step_seconds)):
        if steps[i] <= 0:
            series.notes.append(f"line {lines[i + 1]}: timestamp is not after the previous row's")
        else:
            series.notes.append(
                f"line {lines[i + 1]}: gap of {_duration(steps[i])} "
                f"(usual step {_duration(series.step_seconds)})"
            )


def _duration(seconds: float) -> str:
    """1140 min -> '19 h', 55 min -> '55 min', 7 days 6 h -> '7 d 6 h'."""
    minutes = int(seconds // 60)
    days, hours, rest = minutes // 1440, minutes % 1440 // 60, minutes % 60
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{rest} min" if rest else ""]
    return " ".join(part for part in parts if part) or f"{int(seconds)} s"


def label_windows(series: Series, windows: list[list[str]]) -> Series:
    """1 for every row whose timestamp lies inside one of NAB's windows (both ends included)."""
    series.windows = [(start, end) for start, end in windows]
    labels = np.zeros(len(series.values), dtype=np.int32)
    for start, end in series.windows:
        labels |= (series.timestamps >= _timestamp(start[:19])) & (series.timestamps <= _timestamp(end[:19]))
    series.labels = labels
    return series


def stretches(usable: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, stop) of every run of usable rows at least `min_length` long."""
    edges = np.diff(np.concatenate([[0], usable.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b - a >= min_length]


def window_starts(usable: np.ndarray, window: int, stop: int | None = None) -> np.ndarray:
    """The first row of every window of `window` usable rows ending before `stop`, in order."""
    stop = len(usable) if stop is None else stop
    starts = [np.arange(a, b - window + 1) for a, b in stretches(usable[:stop], window)]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


# --- finding and reading the files --------------------------------------------------------------------


def read_nab(data_dir: Path, series_name: str) -> Series:
    """One NAB series with its labels, from the archive, or from NAB's files (downloaded when online)."""
    if not series_name.endswith(".csv") or series_name.count("/") != 1:
        raise UserError(
            f"--series must look like <category>/<name>.csv, e.g. {DEFAULT_SERIES}; got {series_name!r}"
        )
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


# --- generated data for --smoke and the tests ---------------------------------------------------------


def synthetic_series(n: int = 3_000, seed: int = 0, anomalies: bool = True) -> Series:
    """A daily-looking sine plus noise, every 5 minutes; with spikes and level shifts after the first 20%.

    Each anomaly gets a NAB-style labelled window around it, so the whole pipeline runs as on NAB.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 96) + rng.normal(0, 0.3, n)
    timestamps = np.datetime64("2020-01-01T00:00:00") + (t * 300).astype("timedelta64[s]")
    windows = []
    if anomalies:
        places = np.linspace(0.3 * n, 0.95 * n, 6).astype(int)
        for i, place in enumerate(places):
            if i % 2 == 0:
                values[place : place + 3] += rng.choice([-1, 1]) * 6  # a spike
            else:
                values[place : place + 40] += 4  # a level shift
            start, end = timestamps[max(place - 20, 0)], timestamps[min(place + 60, n - 1)]
            windows.append([str(start).replace("T", " "), str(end).replace("T", " ")])
    lines = "\n".join(
        f"{str(ts).replace('T', ' ')},{v:.5f}" for ts, v in zip(timestamps, values, strict=True)
    )
    series = parse_series("timestamp,value\n" + lines + "\n", "generated/sine_with_anomalies.csv")
    return label_windows(series, windows)


# --- the splits --------------------------------------------------------------------------------------


def series_for(cfg: RunConfig) -> Series:
    if cfg.smoke:
        return synthetic_series(seed=cfg.seed)
    return read_nab(cfg.resolved_data_dir(), cfg.options.get("series", DEFAULT_SERIES))


def load(cfg: RunConfig) -> Splits:
    """Windows of the probationary rows to train and validate on; every row of the series as `test`."""
    series = series_for(cfg)
    fraction = float(cfg.options.get("train_fraction", TRAIN_FRACTION))
    if not 0 < fraction < 1:
        raise UserError(f"--train-fraction must be between 0 and 1; got {fraction}")
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
        "threshold_rule": str(cfg.options.get("threshold", DEFAULT_THRESHOLD)),
        "mean": mean,
        "std": std,
        "step_seconds": series.step_seconds,
        "labelled_windows": len(series.windows),
        "unusable_rows": len(series.problems),
        "first_unusable_rows": list(series.problems.values())[:LISTED],
        "time_notes": len(series.notes),
        "largest_window": largest_window(series.usable, probationary_rows),
        "first_time_notes": series.notes[:LISTED],
    }
    # `for_hparams` makes the training and validation windows, once the model's window length is known
    series_only = Splits(train=test, validation=test, test=test, info=info)
    return for_hparams(series_only, {"window": cfg.hparams.get("window", default_window(series_only))})


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
    if splits.info.get("window") == window:
        return splits
    values_, probationary, _, _ = series_of(splits)
    standard = (values_ - splits.info["mean"]) / splits.info["std"]
    rows = int(probationary.sum())
    train_starts, validation_starts = split_windows(np.isfinite(standard), window, rows)
    if len(train_starts) < MIN_TRAIN_WINDOWS:
        raise UserError(
            f"{splits.info['series']}: its first {rows} rows leave {len(train_starts)} training windows of "
            f"{window} rows once the last fifth is held out; at least {MIN_TRAIN_WINDOWS} are needed. "
            f"Use a shorter window (--hp window=..., at most {splits.info['largest_window']} here) or a "
            "larger --train-fraction."
        )
    windows = np.lib.stride_tricks.sliding_window_view(standard, window).astype(np.float32)
    train = windows[train_starts][..., np.newaxis]  # [N, window, 1]
    validation = windows[validation_starts][..., np.newaxis]
    info = {
        **splits.info,
        "window": window,
        "windows": {"train": len(train), "validation": len(validation)},
        "held_out_from_row": int(validation_starts[0]),
    }
    return Splits(
        train=tf.data.Dataset.from_tensor_slices((train, train)),
        validation=tf.data.Dataset.from_tensor_slices((validation, validation)),
        test=splits.test,
        info=info,
    )


def default_window(splits: Splits) -> int:
    """DEFAULT_WINDOW, or the largest window that fits when the training part is too short for it."""
    return min(DEFAULT_WINDOW, splits.info["largest_window"])
