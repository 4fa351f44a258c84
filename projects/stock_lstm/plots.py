"""The walk-forward evaluation's plots: forecasts against the actual days, equity curves, errors per fold."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from projects.stock_lstm.metrics import backtest
from shared import reporting


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
