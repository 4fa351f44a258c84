"""Daily prices: the cached CSV or a yfinance download, checked row by row; walk-forward folds; windows.

Prices come from `<data-dir>/stocks/<TICKER>.csv` (the Yahoo layout: Date, Open, High, Low, Close,
[Adj Close,] Volume), downloaded once with yfinance when missing, or from `--csv PATH`. With an Adj Close
column, Open/High/Low/Close are scaled by Adj Close / Close and Volume by its inverse, so a split is not a
price or volume jump (files whose Close is unadjusted, like Quandl's, have splits in that ratio; yfinance
downloads come adjusted already). A row that cannot be used (a bad date, a missing or non-numeric value,
a price <= 0, the wrong number of fields) is dropped and reported by its line; repeated dates, rows out
of order and gaps of more than a week are reported too.

Sample i is the window of feature rows ending at row i; its target is the next day's log return.
Walk-forward: the last `folds x fold_days` samples are the test folds, in time order. Fold k trains on
every sample before its first test sample (its last VALIDATION_DAYS for early stopping), with scalers
fitted on those rows alone, so nothing from a test day or after it ever reaches training.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from projects.stock_lstm.features import COLUMNS, WARMUP, features_of
from shared.config import RunConfig, UserError
from shared.data import DatasetMissingError, in_memory
from shared.project import Splits

DATASET = "stocks"
DEFAULT_TICKER = "SPY"
DOWNLOAD_START = "2000-01-01"  # when downloading without --start
DEFAULT_FOLDS, DEFAULT_FOLD_DAYS = 5, 252  # five test years
DEFAULT_LOOKBACK = 30
VALIDATION_DAYS = 126  # the last half year before each fold: early stopping
MIN_TRAIN_DAYS = 250  # the first fold must train on at least about a year
GAP_DAYS = 6  # calendar days between rows beyond which a gap is reported (a long weekend is 4)
LISTED = 10  # problems named one by one in messages and metrics.json
NETWORK_HINTS = ("resolve", "connect", "timed out", "timeout", "network", "curl", "ssl", "proxy")
REFUSAL_HINTS = ("rate limit", "too many requests", "unauthorized", "forbidden")


@dataclass
class Prices:
    """Adjusted daily rows in date order: `ohlcv` [T, 5] (Open, High, Low, Close, Volume)."""

    name: str
    dates: np.ndarray  # datetime64[D]
    ohlcv: np.ndarray
    problems: list[str] = field(default_factory=list)  # rows dropped, by line
    notes: list[str] = field(default_factory=list)  # repeats, order, gaps: reported, rows kept

    def summary(self) -> str:
        text = f"{self.name}: {len(self.dates)} days, {self.dates[0]} to {self.dates[-1]}"
        for kind, items in (("row(s) dropped", self.problems), ("note(s)", self.notes)):
            if items:
                listed = "; ".join(items[:3]) + ("; ..." if len(items) > 3 else "")
                text += f"; {len(items)} {kind}: {listed}"
        return text


def read_prices(path: Path) -> Prices:
    """A Date/Open/High/Low/Close/Volume CSV -> Prices; unusable rows dropped and named by line."""
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = [cell.strip().lstrip("\ufeff") for cell in next(reader, [])]
        by_lower = {cell.lower().replace("_", " "): i for i, cell in enumerate(header)}
        missing = [c for c in ("Date", *COLUMNS) if c.lower() not in by_lower]
        if missing:
            raise UserError(
                f"{path}: no column {', '.join(missing)}; the header must name Date, Open, High, Low, "
                f"Close, Volume (Adj Close optional); found {header or 'an empty file'}"
            )
        rows, lines, ragged = [], [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line is no row
            if len(row) != len(header):
                ragged.append(f"line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
                continue
            rows.append(row)
            lines.append(reader.line_num)
    wanted = [c for c in ("Date", *COLUMNS, "Adj Close") if c.lower() in by_lower]
    raw = pd.DataFrame({c: [row[by_lower[c.lower()]].strip() for row in rows] for c in wanted}, dtype=str)
    raw["line"] = lines
    return _checked(raw, path.name, ragged)


def _checked(raw: pd.DataFrame, name: str, problems: list[str]) -> Prices:
    numeric = [c for c in (*COLUMNS, "Adj Close") if c in raw]
    frame = pd.DataFrame({"line": raw["line"].to_numpy(dtype=int)})
    # the calendar day as written: a time or a UTC offset after it (yfinance's history()) must not move it
    day = pd.to_datetime(raw["Date"].str[:10], format="%Y-%m-%d", errors="coerce")
    frame["Date"] = day.where(raw["Date"].str[10:].str.fullmatch(r"([ T].*)?")).to_numpy()
    for column in numeric:
        frame[column] = pd.to_numeric(raw[column], errors="coerce").to_numpy()
    texts = {c: raw[c].to_numpy() for c in ("Date", *numeric)}
    usable = np.ones(len(frame), bool)
    for i, line in enumerate(frame["line"].to_numpy()):
        reason = _row_problem(pd.isna(frame["Date"].iat[i]), {c: frame[c].iat[i] for c in numeric}, texts, i)
        if reason:
            problems.append(f"line {line}: {reason}")
            usable[i] = False
    problems.sort(key=lambda text: int(text.split(":")[0].removeprefix("line ")))
    frame = frame[usable]
    if len(frame) < 2:
        raise UserError(f"{name}: {len(frame)} usable row(s)" + (f"; {problems[0]}" if problems else ""))
    notes = []
    if not frame["Date"].is_monotonic_increasing:
        first = frame["line"].to_numpy()[
            np.flatnonzero(np.diff(frame["Date"].to_numpy()) < np.timedelta64(0))[0] + 1
        ]
        notes.append(f"dates out of order from line {first}; sorted by date")
        frame = frame.sort_values("Date", kind="stable")
    repeated = frame["Date"].duplicated(keep="first")
    for line, date in frame.loc[repeated, ["line", "Date"]].itertuples(index=False):
        notes.append(f"line {line} repeats {date.date()}; the first row of that date is kept")
    frame = frame[~repeated]
    dates = frame["Date"].to_numpy().astype("datetime64[D]")
    steps = np.diff(dates).astype(int)
    for i in np.flatnonzero(steps > GAP_DAYS):
        notes.append(f"no rows from {dates[i]} to {dates[i + 1]} ({steps[i]} days)")
    prices = frame[list(COLUMNS)].to_numpy(np.float64)
    if "Adj Close" in frame:  # split- and dividend-adjusted: scale O/H/L/C by the same factor
        factor = frame["Adj Close"].to_numpy() / frame["Close"].to_numpy()
        prices[:, :4] *= factor[:, None]
        prices[:, 4] /= factor  # volume in today's shares, as Yahoo reports it: a split is no volume jump
    return Prices(name, dates, prices, problems, notes)


def _row_problem(
    bad_date: bool, values: dict[str, float], texts: dict[str, np.ndarray], i: int
) -> str | None:
    if bad_date:
        return f"Date {texts['Date'][i]!r} is not a date (YYYY-MM-DD)"
    for column, value in values.items():
        if not np.isfinite(value):
            return f"{column} {texts[column][i]!r} is not a number"
        if column != "Volume" and value <= 0:
            return f"{column} is {texts[column][i]}: prices must be positive"
        if value < 0:
            return f"Volume is {texts[column][i]}: it cannot be negative"
    return None


def cache_path(data_dir: Path, ticker: str) -> Path:
    return Path(data_dir) / DATASET / f"{ticker.upper()}.csv"


def prices_for(cfg: RunConfig) -> Prices:
    """The run's prices: generated (--smoke), --csv, or the ticker's cached or downloaded CSV, in range."""
    options = cfg.options
    if cfg.smoke:
        prices = synthetic_prices(seed=cfg.seed, autocorrelation=0.5)
    elif options.get("csv"):
        prices = read_prices(Path(options["csv"]))
    else:
        ticker = options.get("ticker") or DEFAULT_TICKER
        path = cache_path(cfg.resolved_data_dir(), ticker)
        if not path.is_file():
            download_prices(ticker, options.get("start"), options.get("end"), path)
        prices = read_prices(path)
    prices = in_range(prices, options.get("start"), options.get("end"))
    if not cfg.smoke:
        # the days this run used, recorded in config.json: `evaluate` and `export` read the same days
        # (and so fit the same scalers and folds) even after the cached file has grown
        options["start"], options["end"] = str(prices.dates[0]), str(prices.dates[-1])
    return prices


def in_range(prices: Prices, start: str | None, end: str | None) -> Prices:
    """The rows from `start` to `end` (both included); a range the data does not reach is an error."""
    keep = np.ones(len(prices.dates), bool)
    for bound, compare in ((start, np.greater_equal), (end, np.less_equal)):
        if bound:
            try:
                keep &= compare(prices.dates, np.datetime64(bound, "D"))
            except ValueError as e:
                raise UserError(f"{bound!r} is not a date (YYYY-MM-DD)") from e
    if keep.sum() < 2:
        raise UserError(
            f"{prices.name} holds {prices.dates[0]} to {prices.dates[-1]}: nothing from "
            f"{start or 'its start'} to {end or 'its end'}. "
            "A cached file is used as it is: delete it to download another range."
        )
    return Prices(prices.name, prices.dates[keep], prices.ohlcv[keep], prices.problems, prices.notes)


class _Collect(logging.Handler):
    """yfinance logs why a download failed instead of raising; this keeps those messages."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def download_prices(ticker: str, start: str | None, end: str | None, path: Path) -> Path:
    """Downloads adjusted daily OHLCV with yfinance into `path`. yfinance returns an empty frame, not an
    error, when offline or for an unknown ticker: that is an error here saying which it looks like."""
    hint = (
        f"To fix: put a Date,Open,High,Low,Close,Volume CSV for {ticker} at {path}, point --data-dir "
        "(or DATA_DIR) at a folder holding stocks/<TICKER>.csv, or pass --csv PATH."
    )
    if os.environ.get("DATA_OFFLINE"):
        raise DatasetMissingError(
            f"{path} is not there and DATA_OFFLINE is set, so no download was tried. {hint}"
        )
    import yfinance as yf

    # yfinance's end is exclusive; without one, up to yesterday (UTC), so a session still trading today
    # is never cached as a finished day
    stop = pd.Timestamp(end) + pd.Timedelta(days=1) if end else pd.Timestamp.now(tz="UTC").normalize()
    last = stop.strftime("%Y-%m-%d")
    collect, logger = _Collect(), logging.getLogger("yfinance")
    logger.addHandler(collect)
    try:
        frame = yf.download(
            ticker,
            start=start or DOWNLOAD_START,
            end=last,
            auto_adjust=True,
            progress=False,
            threads=False,
            multi_level_index=False,
        )
    finally:
        logger.removeHandler(collect)
    if frame is None or frame.dropna(how="all").empty:
        said = " ".join(collect.messages)[-300:]
        if any(word in said.lower() for word in NETWORK_HINTS):
            cause = "yfinance could not reach Yahoo Finance (no network?)"
        elif any(word in said.lower() for word in REFUSAL_HINTS):
            cause = "Yahoo Finance refused the request (rate limited?); try again later"
        elif said:
            cause = f"yfinance found no prices for {ticker!r}: an unknown ticker, or none in that range"
        else:
            cause = f"yfinance returned no rows for {ticker!r}: offline, or an unknown ticker"
        raise DatasetMissingError(
            f"{path} is not there and {cause}" + (f" (it said: {said})" if said else "") + f". {hint}"
        )
    frame = frame[list(COLUMNS)].dropna()
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")
    frame.index.name = "Date"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    frame.to_csv(partial)
    os.replace(partial, path)  # never a half-written file where a cache is trusted
    print(f"downloaded {len(frame)} days of {ticker} into {path}", flush=True)
    return path


def synthetic_prices(
    n: int = 2_000, seed: int = 0, autocorrelation: float = 0.0, volatility: float = 0.01
) -> Prices:
    """Generated business days: log returns r_t = a * r_{t-1} + noise (a random walk for a = 0)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, volatility, n)
    returns = np.zeros(n)
    for t in range(n):
        returns[t] = autocorrelation * (returns[t - 1] if t else 0.0) + noise[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, volatility / 4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, n)))
    volume = np.round(rng.lognormal(13.0, 0.3, n))
    dates = pd.bdate_range("2000-01-03", periods=n).to_numpy().astype("datetime64[D]")
    name = "random walk" if autocorrelation == 0 else f"AR(1) returns, a={autocorrelation}"
    return Prices(name, dates, np.stack([open_, high, low, close, volume], axis=1))


@dataclass(frozen=True)
class Fold:
    """Sample indexes (rows of the feature table) of one walk-forward fold: [start, stop) each."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]

    @property
    def fitted_rows(self) -> tuple[int, int]:
        """Feature rows the scalers are fitted on: every row before the first test sample."""
        return 0, self.test[0]


def walk_forward_folds(samples: int, lookback: int, folds: int, fold_days: int) -> list[Fold]:
    """Expanding-window folds over samples 0..samples-1 (sample i needs rows i-lookback+1..i)."""
    if folds < 1 or fold_days < 1:
        raise UserError(f"--folds and --fold-days must be positive; got {folds} and {fold_days}")
    first_test = samples - folds * fold_days
    if first_test - VALIDATION_DAYS - (lookback - 1) < MIN_TRAIN_DAYS:
        raise UserError(
            f"{samples + WARMUP + 1} days give {samples} samples; {folds} test folds of {fold_days} days "
            f"leave {max(0, first_test - VALIDATION_DAYS - lookback + 1)} training days for the first fold "
            f"(at least {MIN_TRAIN_DAYS} are needed, after {VALIDATION_DAYS} validation days and a "
            f"{lookback}-day window). Use fewer --folds, shorter --fold-days, a shorter window or a longer "
            "date range."
        )
    result = []
    for k in range(folds):
        start = first_test + k * fold_days
        validation_start = start - VALIDATION_DAYS
        result.append(
            Fold((lookback - 1, validation_start), (validation_start, start), (start, start + fold_days))
        )
    return result


@dataclass
class Table:
    """The features and next-day targets of a price history, as evaluation and for_hparams use them."""

    dates: np.ndarray  # of each feature row's day
    close: np.ndarray
    features: np.ndarray  # [n, 6]
    target: np.ndarray  # [n] the next day's log return; NaN for the last day

    @property
    def samples(self) -> int:
        return len(self.target) - 1  # the last row has no next day


def table_of(prices_or_splits: Prices | Splits) -> Table:
    if isinstance(prices_or_splits, Splits):
        rows, _ = in_memory(prices_or_splits.test)
        dates, ohlcv = rows["date"].astype("datetime64[D]"), rows["ohlcv"]
    else:
        dates, ohlcv = prices_or_splits.dates, prices_or_splits.ohlcv
    log_close = np.log(ohlcv[WARMUP:, 3])
    target = np.append(np.diff(log_close), np.nan)
    return Table(dates[WARMUP:], ohlcv[WARMUP:, 3], features_of(ohlcv), target)


@dataclass(frozen=True)
class Scaler:
    """Feature means and standard deviations, and the target's, from a fold's training rows alone."""

    mean: np.ndarray
    std: np.ndarray
    target_mean: float
    target_std: float

    @classmethod
    def fit(cls, table: Table, fold: Fold) -> Scaler:
        start, stop = fold.fitted_rows
        features, target = table.features[start:stop], table.target[start:stop]
        std = features.std(axis=0)
        return cls(
            features.mean(axis=0), np.where(std > 0, std, 1.0), float(target.mean()), float(target.std())
        )

    def to_json(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_json(cls, data: dict) -> Scaler:
        return cls(np.array(data["mean"]), np.array(data["std"]), data["target_mean"], data["target_std"])


def windows(
    table: Table, scaler: Scaler, samples: tuple[int, int], lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled feature windows [N, lookback, 6] ending at each sample, and their scaled targets [N]."""
    scaled = ((table.features - scaler.mean) / scaler.std).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(scaled, lookback, axis=0).transpose(0, 2, 1)
    start, stop = samples  # the frame starting at row i - lookback + 1 ends at sample i
    x = frames[start - lookback + 1 : stop - lookback + 1]
    y = ((table.target[start:stop] - scaler.target_mean) / scaler.target_std).astype(np.float32)
    return np.ascontiguousarray(x), y


def options_of(cfg_or_info: RunConfig | dict) -> tuple[int, int]:
    source = cfg_or_info.options if isinstance(cfg_or_info, RunConfig) else cfg_or_info
    return int(source.get("folds") or DEFAULT_FOLDS), int(source.get("fold_days") or DEFAULT_FOLD_DAYS)


def load(cfg: RunConfig) -> Splits:
    """Every day's rows as `test` (evaluation walks forward over them); the last fold's windows to train."""
    prices = prices_for(cfg)
    print(prices.summary(), flush=True)
    folds, fold_days = options_of(cfg)
    dates = prices.dates.astype(np.int64)  # days since 1970: tf.data has no datetime type
    next_return = np.append(np.diff(np.log(prices.ohlcv[:, 3])), np.nan)
    test = tf.data.Dataset.from_tensor_slices(({"date": dates, "ohlcv": prices.ohlcv}, next_return))
    info = {
        "name": prices.name,
        "days": len(prices.dates),
        "first_date": str(prices.dates[0]),
        "last_date": str(prices.dates[-1]),
        "folds": folds,
        "fold_days": fold_days,
        "fit_fold": cfg.options.get("fit_fold") or "last",
        "validation_days": VALIDATION_DAYS,
        "cost_bps": float(cfg.options.get("cost_bps", 0.0) or 0.0),
        "dropped_rows": len(prices.problems),
        "first_dropped_rows": prices.problems[:LISTED],
        "notes": len(prices.notes),
        "first_notes": prices.notes[:LISTED],
    }
    whole = Splits(train=test, validation=test, test=test, info=info)
    return for_hparams(whole, {"lookback": cfg.hparams.get("lookback", DEFAULT_LOOKBACK)})


def fit_fold_index(info: dict) -> int:
    return 0 if info.get("fit_fold") == "first" else -1


def fold_data(table: Table, fold: Fold, lookback: int) -> tuple[Scaler, tuple, tuple]:
    """A fold's scaler and its (x, y) training and validation windows."""
    scaler = Scaler.fit(table, fold)
    return (
        scaler,
        windows(table, scaler, fold.train, lookback),
        windows(table, scaler, fold.validation, lookback),
    )


def for_hparams(splits: Splits, values: dict) -> Splits:
    """The training and validation windows of the fold the run's model fits (`--fit-fold`: the last by
    default, the newest days; the first for `tune`, whose choices must not see any test day)."""
    lookback = int(values.get("lookback", DEFAULT_LOOKBACK))
    if splits.info.get("lookback") == lookback:
        return splits
    table = table_of(splits)
    folds = walk_forward_folds(table.samples, lookback, *options_of(splits.info))
    fold = folds[fit_fold_index(splits.info)]
    scaler, train, validation = fold_data(table, fold, lookback)
    info = {
        **splits.info,
        "lookback": lookback,
        "scaler": scaler.to_json(),
        "windows": {"train": len(train[1]), "validation": len(validation[1])},
    }
    return Splits(
        train=tf.data.Dataset.from_tensor_slices(train),
        validation=tf.data.Dataset.from_tensor_slices(validation),
        test=splits.test,
        info=info,
    )
