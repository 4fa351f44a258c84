"""The scores of a walk-forward evaluation, over every test day of every fold.

- the RMSE of the forecast log return, its ratio to persistence's (a zero return: price RMSE would
  flatter every forecaster, since prices barely move in a day) and a Diebold-Mariano p-value for the
  difference;
- the share of days whose direction is right, with a 95% binomial (Clopper-Pearson) interval and a
  one-sided binomial p-value against the share of up days (the accuracy of calling "up" every day, the bar
  a direction call must clear);
- a long/flat backtest: long for a day whose forecast is positive, flat otherwise, against buy-and-hold,
  with `--cost-bps` charged on every change of position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

TRADING_DAYS = 252
FORECASTERS = ("lstm", "persistence", "historical_mean", "linear")


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
