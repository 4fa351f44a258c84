"""One `timestamp,value` series, read as NAB's own detectors read it: in row order, every row kept.

A row whose timestamp or value cannot be used (unparseable, empty, not a finite number, the wrong number
of fields) is reported by its line and never scored: its value is NaN, it splits the series into
stretches, and no window crosses it, so a NaN is never silently a zero or an anomaly. Gaps in time and
timestamps out of order are reported too, but do not stop scoring.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.csv_rows import read_rows

GAP_FACTOR = 1.5  # a step longer than this many usual steps is reported as a gap
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


def parse_series(source: Path | str, name: str) -> Series:
    """A `timestamp,value` CSV file (a Path) or its text -> Series; bad rows recorded by line, a missing
    column (in any case) is an error."""
    rows = read_rows(
        source, ("timestamp", "value"), name=name, key=str.lower, hint="A series is a timestamp,value CSV."
    )
    raw_times, raw_values = list(rows.cells["timestamp"]), list(rows.cells["value"])
    timestamps = np.array([_timestamp(text) for text in raw_times], dtype="datetime64[s]").reshape(-1)
    values = np.array([_number(text) for text in raw_values], dtype=np.float64).reshape(-1)
    series = Series(name, timestamps, values, rows.cells["line"].to_numpy(np.int64), raw_values)
    for i, line in enumerate(series.lines):
        if i in rows.ragged:
            series.problems[int(line)] = rows.ragged[i]
        elif np.isnat(timestamps[i]):
            series.problems[int(line)] = f"line {line}: timestamp {raw_times[i]!r} is not a date and time"
        elif not np.isfinite(values[i]):
            series.problems[int(line)] = f"line {line}: value {raw_values[i]!r} is not a finite number"
        if int(line) in series.problems:
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
