"""Walk-forward evaluation of the LSTM against persistence, the historical mean and a linear model.

Fold by fold, in time order, a model with the run's hyperparameters is trained on every day before the
fold (the last fold's model is the run's own) and forecasts each test day's log return from the days up
to the one before. The baselines see exactly the same days:

- persistence: tomorrow's price is today's, a zero return (the random walk's best forecast);
- historical mean: the mean daily return of the fold's training days;
- linear: ridge regression on the same scaled windows, fitted on every day before the fold (the LSTM's
  validation days too: it needs no early stopping, so it gets them to fit on).

Reported over every test day of every fold: the RMSE of the return, its ratio to persistence (price
RMSE would flatter every forecaster, since prices barely move in a day) and a Diebold-Mariano p-value
for the difference; the share of days whose direction is right, with a 95% binomial (Clopper-Pearson)
interval and a one-sided binomial p-value against the share of up days (the accuracy of calling "up"
every day, the bar a direction call must clear); and a long/flat backtest: long for
a day whose forecast is positive, flat otherwise, against buy-and-hold, with `--cost-bps` charged on
every change of position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy.stats import binomtest, norm
from sklearn.linear_model import Ridge

from projects.stock_lstm.data import (
    fit_fold_index,
    fold_data,
    options_of,
    table_of,
    walk_forward_folds,
    windows,
)
from shared import reporting
from shared.callbacks import StopOnNaN, schedule_callback
from shared.config import RunConfig
from shared.data import batched
from shared.project import Splits
from shared.runner import hyperparameters
from shared.strategy import global_batch_size

TRADING_DAYS = 252
FORECASTS_FILE = "forecasts.csv"
FORECASTERS = ("lstm", "persistence", "historical_mean", "linear")


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from projects.stock_lstm.model import build_model

    table = table_of(splits)
    lookback = model.input_shape[1]
    folds = walk_forward_folds(table.samples, lookback, *options_of(splits.info))
    values = reporting.read_json(run_dir / "hparams.json")
    fitted = fit_fold_index(splits.info)
    parts, epochs = [], []
    for k, fold in enumerate(folds):
        scaler, train, validation = fold_data(table, fold, lookback)
        if k == fitted % len(folds):
            fold_model = model  # the run's model was trained on exactly this fold
        else:
            keras.utils.set_random_seed(cfg.seed + k + 1)
            with model.distribute_strategy.scope():
                fold_model = build_model(hyperparameters(values))
            epochs.append(fit_fold(fold_model, train, validation, cfg, values))
            print(f"fold {k + 1}/{len(folds)}: trained {epochs[-1]} epochs", flush=True)
        x_test, _ = windows(table, scaler, fold.test, lookback)
        scaled = fold_model.predict(x_test, batch_size=1024, verbose=0)[:, 0]
        x_seen, y_seen = windows(table, scaler, (fold.train[0], fold.test[0]), lookback)
        linear = Ridge(alpha=1.0).fit(x_seen.reshape(len(x_seen), -1), y_seen)
        start, stop = fold.test
        parts.append(
            pd.DataFrame(
                {
                    "date": np.datetime_as_string(table.dates[start + 1 : stop + 1]),  # the day forecast
                    "fold": k + 1,
                    "last_close": table.close[start:stop],
                    "actual": table.target[start:stop],
                    "lstm": scaler.target_mean + scaler.target_std * scaled,
                    "persistence": 0.0,
                    "historical_mean": scaler.target_mean,
                    "linear": scaler.target_mean
                    + scaler.target_std * linear.predict(x_test.reshape(len(x_test), -1)),
                }
            )
        )
    forecasts = pd.concat(parts, ignore_index=True)
    forecasts.to_csv(run_dir / FORECASTS_FILE, index=False)
    metrics = summarise(forecasts, float(splits.info.get("cost_bps", 0.0)))
    fold_table = per_fold(forecasts)
    reporting.write_table(run_dir, "folds", fold_table)
    metrics["other_fold_epochs"] = epochs  # the fold the run's model fits: epochs_trained
    plot_forecasts(forecasts, run_dir / "plots" / "forecast_vs_actual.png")
    plot_equity(forecasts, float(splits.info.get("cost_bps", 0.0)), run_dir / "plots" / "equity_curves.png")
    plot_errors(forecasts, run_dir / "plots" / "errors_per_fold.png")
    return metrics


def fit_fold(model: keras.Model, train: tuple, validation: tuple, cfg: RunConfig, values: dict) -> int:
    """Trains one earlier fold's model as the runner trains the run's: same batch, schedule, stopping,
    best epoch kept. Returns the epochs trained."""
    replicas = model.distribute_strategy.num_replicas_in_sync
    batch = global_batch_size(values.get("batch_size", cfg.batch_size), replicas, cfg.global_batch_size)

    def pipeline(data, shuffle):
        return batched(tf.data.Dataset.from_tensor_slices(data), batch, shuffle=shuffle, seed=cfg.seed)

    patience = cfg.early_stopping_patience or cfg.epochs
    callbacks = [
        StopOnNaN(),
        keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True),
    ]
    schedule = schedule_callback(cfg.lr_schedule, cfg.epochs, "val_loss", "min")
    if schedule:
        callbacks.insert(0, schedule)
    history = model.fit(
        pipeline(train, True),
        validation_data=pipeline(validation, False),
        epochs=cfg.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    return len(history.history["loss"])


def forecast_metrics(forecast: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """RMSE and MAE of the log return; the Diebold-Mariano p-value of its squared errors against
    persistence's (two-sided: is the difference more than luck?); direction accuracy and its 95% interval
    (None for a forecaster that never calls a direction, like persistence's zero return). A day whose
    return is exactly 0 counts as not up."""
    error = forecast - actual
    result: dict[str, Any] = {
        "rmse_return": float(np.sqrt(np.mean(error**2))),
        "mae_return": float(np.mean(np.abs(error))),
        "dm_pvalue_vs_persistence": diebold_mariano(error, -actual),
    }
    if np.all(forecast == 0):
        result.update(direction_accuracy=None, direction_ci_low=None, direction_ci_high=None)
        return result
    hits = int(np.sum((forecast > 0) == (actual > 0)))
    interval = binomtest(hits, len(actual)).proportion_ci(confidence_level=0.95)
    result.update(
        direction_accuracy=hits / len(actual),
        direction_ci_low=float(interval.low),
        direction_ci_high=float(interval.high),
    )
    return result


def diebold_mariano(error: np.ndarray, reference_error: np.ndarray) -> float | None:
    """Two-sided p-value that two one-step forecasts' mean squared errors are equal (Diebold and
    Mariano 1995; one-step errors need no autocorrelation correction). None when they never differ."""
    difference = error**2 - reference_error**2
    spread = difference.std(ddof=1)
    if not spread > 0:
        return None
    statistic = difference.mean() / (spread / np.sqrt(len(difference)))
    return float(2 * norm.sf(abs(statistic)))


def backtest(long: np.ndarray, actual: np.ndarray, cost_bps: float) -> dict[str, Any]:
    """Long (1) or flat (0) each day on the day's simple return; `cost_bps` per change of position.

    Returns the cumulative return, the annualised Sharpe ratio (no risk-free rate), the largest fall from
    a peak, the share of days invested and the number of trades, and the equity curve.
    """
    position = long.astype(np.float64)
    trades = np.abs(np.diff(position, prepend=0.0))  # buying on the first day is a trade too
    daily = position * np.expm1(actual) - trades * cost_bps / 1e4
    equity = np.cumprod(1.0 + daily)
    peaks = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    spread = daily.std()
    return {
        "cumulative_return": float(equity[-1] - 1.0),
        "sharpe": float(daily.mean() / spread * np.sqrt(TRADING_DAYS)) if spread > 0 else 0.0,
        "max_drawdown": float(np.max(1.0 - equity / peaks)),
        "exposure": float(position.mean()),
        "trades": int(trades.sum()),
        "equity": equity,
    }


def summarise(forecasts: pd.DataFrame, cost_bps: float) -> dict[str, Any]:
    actual = forecasts["actual"].to_numpy()
    scores = {name: forecast_metrics(forecasts[name].to_numpy(), actual) for name in FORECASTERS}
    persistence_rmse = scores["persistence"]["rmse_return"]
    for score in scores.values():
        score["rmse_ratio_to_persistence"] = score["rmse_return"] / persistence_rmse
    trading = {
        "lstm": backtest(forecasts["lstm"].to_numpy() > 0, actual, cost_bps),
        "linear": backtest(forecasts["linear"].to_numpy() > 0, actual, cost_bps),
        "buy_and_hold": backtest(np.ones(len(actual), bool), actual, cost_bps),
    }
    for name in ("lstm", "linear"):
        scores[name].update({f"strategy_{k}": v for k, v in trading[name].items() if k != "equity"})
    lstm = scores.pop("lstm")
    # is the LSTM right more often than "always up" (the share of up days), the call that needs no model?
    up_share, accuracy = float(np.mean(actual > 0)), lstm["direction_accuracy"]
    lstm["direction_pvalue_vs_always_up"] = (
        float(binomtest(round(accuracy * len(actual)), len(actual), up_share, alternative="greater").pvalue)
        if accuracy is not None and 0 < up_share < 1
        else None
    )
    baselines = {
        **scores,
        "buy_and_hold": {k: v for k, v in trading["buy_and_hold"].items() if k != "equity"},
    }
    return {
        **lstm,
        "test_days": len(actual),
        "first_test_date": str(forecasts["date"].iloc[0]),
        "last_test_date": str(forecasts["date"].iloc[-1]),
        "up_day_share": up_share,
        "cost_bps": cost_bps,
        "beats_persistence_rmse": lstm["rmse_ratio_to_persistence"] < 1.0,
        "beats_buy_and_hold_sharpe": lstm["strategy_sharpe"] > baselines["buy_and_hold"]["sharpe"],
        # test_* metrics are what the server lists with the model (its index and this project's page): the
        # model's error and the no-skill one, predicting no change, side by side
        "test_rmse_return": lstm["rmse_return"],
        "test_persistence_rmse_return": baselines["persistence"]["rmse_return"],
        "baselines": baselines,
    }


def per_fold(forecasts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    rows = {}
    for fold, part in forecasts.groupby("fold"):
        actual = part["actual"].to_numpy()
        row: dict[str, Any] = {"first_day": str(part["date"].iloc[0]), "last_day": str(part["date"].iloc[-1])}
        for name in FORECASTERS:
            row[f"rmse_{name}"] = float(np.sqrt(np.mean((part[name].to_numpy() - actual) ** 2)))
        row["direction_lstm"] = float(np.mean((part["lstm"].to_numpy() > 0) == (actual > 0)))
        row["up_day_share"] = float(np.mean(actual > 0))
        rows[f"fold {fold}"] = row
    return rows


def plot_forecasts(forecasts: pd.DataFrame, out: Path, days: int = 120) -> Path:
    """The last `days` test days as prices (forecast return applied to the day before's close), and every
    test day's forecast return against the actual one."""
    recent = forecasts.tail(days)
    dates = pd.to_datetime(recent["date"])
    fig, (prices, scatter) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    prices.plot(dates, recent["last_close"] * np.exp(recent["actual"]), label="actual close", color="black")
    for name, color in (("lstm", "tab:blue"), ("linear", "tab:orange")):
        forecast = recent["last_close"] * np.exp(recent[name])
        prices.plot(dates, forecast, label=f"{name} forecast", color=color, alpha=0.8, lw=1)
    prices.set(title=f"next-day close, last {len(recent)} test days", ylabel="adjusted close")
    prices.legend()
    scatter.scatter(forecasts["actual"], forecasts["lstm"], s=3, alpha=0.4)
    scatter.axhline(0, color="grey", lw=0.5)
    scatter.set(xlabel="actual log return", ylabel="LSTM forecast", title="every test day")
    return reporting.save_figure(fig, out)


def plot_equity(forecasts: pd.DataFrame, cost_bps: float, out: Path) -> Path:
    actual = forecasts["actual"].to_numpy()
    dates = pd.to_datetime(forecasts["date"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, long in (
        ("buy and hold", np.ones(len(actual), bool)),
        ("LSTM long/flat", forecasts["lstm"].to_numpy() > 0),
        ("linear long/flat", forecasts["linear"].to_numpy() > 0),
    ):
        result = backtest(long, actual, cost_bps)
        ax.plot(dates, result["equity"], label=f"{name} (Sharpe {result['sharpe']:.2f})")
    ax.set(title=f"growth of 1 over the test folds ({cost_bps:g} bps per trade)", ylabel="equity")
    ax.legend()
    return reporting.save_figure(fig, out)


def plot_errors(forecasts: pd.DataFrame, out: Path) -> Path:
    groups = list(forecasts.groupby("fold"))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for offset, (name, color) in enumerate((("lstm", "tab:blue"), ("persistence", "tab:grey"))):
        errors = [part[name].to_numpy() - part["actual"].to_numpy() for _, part in groups]
        positions = np.arange(len(groups)) * 3 + offset
        box = ax.boxplot(errors, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
        for patch in box["boxes"]:
            patch.set_facecolor(color)
        ax.plot([], [], color=color, lw=6, label=name)
    ax.set_xticks(np.arange(len(groups)) * 3 + 0.5, [f"fold {fold}" for fold, _ in groups])
    ax.set(title="forecast error per fold (log return)", ylabel="forecast - actual")
    ax.legend()
    return reporting.save_figure(fig, out)
