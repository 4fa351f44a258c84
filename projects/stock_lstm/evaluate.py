"""Walk-forward evaluation of the LSTM against persistence, the historical mean and a linear model.

Fold by fold, in time order, a model with the run's hyperparameters is trained on every day before the
fold (the fold the run's model fitted is its own, with the scaler its state kept) and forecasts each test
day's log return from the days up to the one before. The baselines see exactly the same days:

- persistence: tomorrow's price is today's, a zero return (the random walk's best forecast);
- historical mean: the mean daily return of the fold's training days;
- linear: ridge regression on the same scaled windows, fitted on every day before the fold (the LSTM's
  validation days too: it needs no early stopping, so it gets them to fit on).

A fold whose refit diverges (its loss became NaN or infinite) is reported, in the output and in
`diverged_folds`; its LSTM forecasts are NaN in forecasts.csv and its days are left out of every score,
the baselines' too, so every forecaster is scored on the same days. The scores are in `metrics.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.linear_model import Ridge

from projects.stock_lstm.data import (
    Fold,
    Options,
    Scaler,
    Table,
    fit_fold_index,
    fold_data,
    table_of,
    walk_forward_folds,
    windows,
)
from projects.stock_lstm.metrics import per_fold, summarise
from projects.stock_lstm.plots import plot_equity, plot_errors, plot_forecasts
from shared import fitting, options, reporting
from shared.config import RunConfig
from shared.hparams import hyperparameters
from shared.project import Project, Splits
from shared.runner import pipelines

FORECASTS_FILE = "forecasts.csv"


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from projects.stock_lstm import PROJECT  # here: the package imports this module

    settings = options.read(Options, cfg)
    table = table_of(splits)
    lookback = model.input_shape[1]
    folds = walk_forward_folds(table.samples, lookback, settings.folds, settings.fold_days)
    values = reporting.read_json(run_dir / "hparams.json")
    own = fit_fold_index(settings.fit_fold) % len(folds)
    parts, epochs, diverged = [], [], []
    for k, fold in enumerate(folds):
        name = f"fold {k + 1}/{len(folds)}"
        if k == own:  # the run's model, trained on this fold, with the scaler it kept
            fold_model, scaler = model, Scaler.from_json(splits.state.scaler)
        else:
            scaler, train, validation = fold_data(table, fold, lookback)
            keras.utils.set_random_seed(cfg.seed + k + 1)
            with model.distribute_strategy.scope():
                fold_model = PROJECT.build_model(hyperparameters(values), splits)
            fitted = fit_fold(PROJECT, fold_model, train, validation, cfg, values)
            epochs.append(fitted.epochs)
            if fitted.diverged:
                diverged.append(k + 1)
                fold_model = None
                print(
                    f"warning: {name}: the loss became NaN or infinite after {fitted.epochs} epochs; its "
                    "LSTM forecasts are not used (NaN in forecasts.csv) and its days are left out of every "
                    "score",
                    flush=True,
                )
            else:
                print(f"{name}: trained {fitted.epochs} epochs", flush=True)
        parts.append(fold_forecasts(table, fold, k + 1, scaler, fold_model, lookback))
    forecasts = pd.concat(parts, ignore_index=True)
    forecasts.to_csv(run_dir / FORECASTS_FILE, index=False)
    scored = forecasts[~forecasts["fold"].isin(diverged)].reset_index(drop=True)
    metrics = summarise(scored, settings.cost_bps)
    reporting.write_table(run_dir, "folds", per_fold(scored))
    metrics["other_fold_epochs"] = epochs  # the fold the run's model fits: epochs_trained
    metrics["diverged_folds"] = diverged  # numbered from 1, as in forecasts.csv
    plot_forecasts(scored, run_dir / "plots" / "forecast_vs_actual.png")
    plot_equity(scored, settings.cost_bps, run_dir / "plots" / "equity_curves.png")
    plot_errors(scored, run_dir / "plots" / "errors_per_fold.png")
    return metrics


def fold_forecasts(
    table: Table, fold: Fold, number: int, scaler: Scaler, model: keras.Model | None, lookback: int
) -> pd.DataFrame:
    """Every forecaster's forecast for each test day of one fold; the LSTM's is NaN without a model."""
    x_test, _ = windows(table, scaler, fold.test, lookback)
    if model is None:
        scaled = np.full(len(x_test), np.nan)
    else:
        scaled = model.predict(x_test, batch_size=1024, verbose=0)[:, 0]
    x_seen, y_seen = windows(table, scaler, (fold.train[0], fold.test[0]), lookback)
    linear = Ridge(alpha=1.0).fit(x_seen.reshape(len(x_seen), -1), y_seen)
    start, stop = fold.test
    return pd.DataFrame(
        {
            "date": np.datetime_as_string(table.dates[start + 1 : stop + 1]),  # the day forecast
            "fold": number,
            "last_close": table.close[start:stop],
            "actual": table.target[start:stop],
            "lstm": scaler.target_mean + scaler.target_std * scaled,
            "persistence": 0.0,
            "historical_mean": scaler.target_mean,
            "linear": scaler.target_mean
            + scaler.target_std * linear.predict(x_test.reshape(len(x_test), -1)),
        }
    )


def fit_fold(
    project: Project, model: keras.Model, train: tuple, validation: tuple, cfg: RunConfig, values: dict
) -> fitting.Fitted:
    """Trains one earlier fold's model as the runner trains the run's (`runner.pipelines`,
    `shared.fitting.fit`): the same batch, schedule, early stopping and objective, the best epoch kept."""
    folds = [tf.data.Dataset.from_tensor_slices(data) for data in (train, validation)]
    replicas = model.distribute_strategy.num_replicas_in_sync
    _, train_ds, validation_ds = pipelines(Splits(*folds, folds[1]), values, cfg, replicas)

    return fitting.fit(model, train_ds, validation_ds, **fitting.settings(project, cfg), verbose=0)
