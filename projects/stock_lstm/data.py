"""The run's settings, its prices, walk-forward folds and windows.

Sample i is the window of feature rows ending at row i; its target is the next day's log return.
Walk-forward: the last `folds x fold_days` samples are the test folds, in time order. Fold k trains on
every sample before its first test sample (its last VALIDATION_DAYS for early stopping), with scalers
fitted on those rows alone, so nothing from a test day or after it ever reaches training.

What the run's model forecasts with (the fitted fold's scaler, the lookback, its last days, the days it
read) is its `StockState`, kept in the run folder as state.json: export, predict and the page never read
prices again, and `evaluate` reads only the days the run read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from projects.stock_lstm.features import WARMUP, features_of
from projects.stock_lstm.prices import (
    Prices,
    cache_path,
    download_prices,
    in_range,
    read_prices,
    synthetic_prices,
)
from shared import options
from shared.config import RunConfig, UserError
from shared.data import in_memory
from shared.options import option
from shared.project import Splits

DEFAULT_TICKER = "SPY"
DEFAULT_LOOKBACK = 30
VALIDATION_DAYS = 126  # the last half year before each fold: early stopping
MIN_TRAIN_DAYS = 250  # the first fold must train on at least about a year
LISTED = 10  # problems named one by one in messages and metrics.json


@dataclass(frozen=True)
class Options:
    ticker: str | None = option(
        None,
        "daily prices of this ticker from <data-dir>/stocks/<TICKER>.csv, downloaded with yfinance when "
        f"missing (default: {DEFAULT_TICKER})",
    )
    csv: str | None = option(None, "read a Date,Open,High,Low,Close,Volume CSV instead of --ticker")
    start: str | None = option(None, "first date to use, YYYY-MM-DD (default: the data's first)")
    end: str | None = option(None, "last date to use, YYYY-MM-DD (default: the data's last)")
    folds: int = option(5, "walk-forward test folds")
    fold_days: int = option(252, "trading days per test fold")
    fit_fold: str = option(
        "last",
        "the fold whose training days the run's model fits: last, the newest days, for the model export "
        "serves; first for tune, so its choices see no test day of any fold",
        choices=("last", "first"),
    )
    cost_bps: float = option(5.0, "backtest cost per change of position, in basis points")

    def __post_init__(self):
        if self.ticker and self.csv:
            raise UserError("--ticker and --csv are two sources of prices: give one of them, not both")
        for name, value in (("start", self.start), ("end", self.end)):
            try:
                if value is not None:
                    np.datetime64(value, "D")
            except ValueError as e:
                raise UserError(f"--{name} {value!r} is not a date (YYYY-MM-DD)") from e
        if self.folds < 1 or self.fold_days < 1:
            raise UserError(
                f"--folds and --fold-days must be positive; got {self.folds} and {self.fold_days}"
            )
        if not self.cost_bps >= 0:
            raise UserError(f"--cost-bps cannot be negative; got {self.cost_bps}")

    @property
    def source_ticker(self) -> str:
        """The ticker whose cached or downloaded prices the run reads (when it reads no --csv)."""
        return self.ticker or DEFAULT_TICKER


@dataclass(frozen=True)
class StockState:
    """What a trained model forecasts with, from the days it trained on; the run keeps it as state.json."""

    name: str  # the series the run read: SPY.csv for stocks/SPY.csv, or the generated series' name
    lookback: int  # days of features per window, the model's input length
    scaler: dict  # `Scaler.to_json()` of the fitted fold's training rows: the model's inputs and output scale
    last_dates: list[str]  # the run's last lookback + WARMUP days, oldest first: one forecast needs them
    last_ohlcv: list[list[float]]  # their adjusted Open, High, Low, Close, Volume
    test_period: list[str]  # the first and last day the walk-forward test forecast
    # the first and last day the run read: `evaluate` reads these days only, so a cached file that has
    # grown since (or a later --end) changes nothing
    days: list[str]


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
    """Expanding-window folds over samples 0..samples-1 (sample i needs rows i-lookback+1..i); `folds` and
    `fold_days` are positive (the options check them)."""
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


def history_of(splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """(dates, ohlcv) of every day the splits were made from, from the `test` split; with a trained run's
    state, only the days that run read (`StockState.days`), whatever the data holds now."""
    rows, _ = in_memory(splits.test)
    dates, ohlcv = rows["date"].astype("datetime64[D]"), rows["ohlcv"]
    if splits.state is None:
        return dates, ohlcv
    first, last = (np.datetime64(day, "D") for day in splits.state.days)
    kept = (dates >= first) & (dates <= last)
    if not kept.any() or dates[kept][0] != first or dates[kept][-1] != last:
        raise UserError(
            f"{splits.info['name']} no longer holds the days the run read, {first} to {last} "
            f"(it holds {dates[0]} to {dates[-1]}); point --data-dir at the data the run was trained on"
        )
    return dates[kept], ohlcv[kept]


def table_of(prices_or_splits: Prices | Splits) -> Table:
    if isinstance(prices_or_splits, Splits):
        return _table(*history_of(prices_or_splits))
    return _table(prices_or_splits.dates, prices_or_splits.ohlcv)


def _table(dates: np.ndarray, ohlcv: np.ndarray) -> Table:
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


def prices_for(cfg: RunConfig) -> Prices:
    """The run's prices: generated (--smoke), --csv, or the ticker's cached or downloaded CSV, in range."""
    settings = options.read(Options, cfg)
    if cfg.smoke:
        prices = synthetic_prices(seed=cfg.seed, autocorrelation=0.5)
    elif settings.csv:
        prices = read_prices(Path(settings.csv))
    else:
        path = cache_path(cfg.resolved_data_dir(), settings.source_ticker)
        if not path.is_file():
            download_prices(settings.source_ticker, settings.start, settings.end, path)
        prices = read_prices(path)
    return in_range(prices, settings.start, settings.end)


def load(cfg: RunConfig) -> Splits:
    """Every day's rows as `test` (evaluation walks forward over them); `for_hparams` makes the windows
    of the fold the run's model fits, once the lookback is known."""
    settings = options.read(Options, cfg)
    prices = prices_for(cfg)
    print(prices.summary(), flush=True)
    dates = prices.dates.astype(np.int64)  # days since 1970: tf.data has no datetime type
    next_return = np.append(np.diff(np.log(prices.ohlcv[:, 3])), np.nan)
    test = tf.data.Dataset.from_tensor_slices(({"date": dates, "ohlcv": prices.ohlcv}, next_return))
    info = {
        "name": prices.name,
        "days": len(prices.dates),
        "first_date": str(prices.dates[0]),
        "last_date": str(prices.dates[-1]),
        # what for_hparams cuts the folds by: it sees the splits, not the options
        "folds": settings.folds,
        "fold_days": settings.fold_days,
        "fit_fold": settings.fit_fold,
        "validation_days": VALIDATION_DAYS,
        "dropped_rows": len(prices.problems),
        "first_dropped_rows": prices.problems[:LISTED],
        "notes": len(prices.notes),
        "first_notes": prices.notes[:LISTED],
    }
    # train and validation hold every day until `for_hparams` cuts the windows
    return Splits(train=test, validation=test, test=test, info=info)


def fit_fold_index(fit_fold: str) -> int:
    """The fold the run's model fits (--fit-fold) as an index into the folds."""
    return 0 if fit_fold == "first" else -1


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
    if splits.state is not None and splits.state.lookback == lookback:
        return splits
    dates, ohlcv = history_of(splits)
    table = _table(dates, ohlcv)
    info = splits.info  # the run's --folds, --fold-days and --fit-fold, as load copied them
    folds = walk_forward_folds(table.samples, lookback, info["folds"], info["fold_days"])
    fold = folds[fit_fold_index(info["fit_fold"])]
    scaler, train, validation = fold_data(table, fold, lookback)
    days = lookback + WARMUP
    state = StockState(
        name=splits.info["name"],
        lookback=lookback,
        scaler=scaler.to_json(),
        last_dates=[str(day) for day in dates[-days:]],
        last_ohlcv=ohlcv[-days:].tolist(),
        # the days forecast, as evaluate dates them: a sample's target is the day after it
        test_period=[str(table.dates[folds[0].test[0] + 1]), str(table.dates[folds[-1].test[1]])],
        days=[str(dates[0]), str(dates[-1])],
    )
    info = {**splits.info, "windows": {"train": len(train[1]), "validation": len(validation[1])}}
    return Splits(
        train=tf.data.Dataset.from_tensor_slices(train),
        validation=tf.data.Dataset.from_tensor_slices(validation),
        test=splits.test,
        info=info,
        state=state,
    )
