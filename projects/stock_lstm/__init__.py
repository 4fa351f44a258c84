"""stock_lstm: next-day log-return forecasts with an LSTM, evaluated walk-forward against baselines."""

import argparse

from projects.stock_lstm import data, evaluate, export, model, predict
from shared.project import Command, Project


def add_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--ticker",
        help=f"daily prices of this ticker from <data-dir>/stocks/<TICKER>.csv, downloaded with yfinance "
        f"when missing (default: {data.DEFAULT_TICKER})",
    )
    source.add_argument("--csv", help="read a Date,Open,High,Low,Close,Volume CSV instead")
    parser.add_argument("--start", help="first date to use, YYYY-MM-DD (default: the data's first)")
    parser.add_argument("--end", help="last date to use, YYYY-MM-DD (default: the data's last)")
    parser.add_argument(
        "--folds", type=int, default=data.DEFAULT_FOLDS, help="walk-forward test folds (default: %(default)s)"
    )
    parser.add_argument(
        "--fold-days",
        type=int,
        default=data.DEFAULT_FOLD_DAYS,
        help="trading days per test fold (default: %(default)s, a year)",
    )
    parser.add_argument(
        "--fit-fold",
        choices=("last", "first"),
        default="last",
        help="the fold whose training days the run's model fits: last (default), the newest days, for the "
        "model export serves; first for tune, so its choices see no test day of any fold",
    )
    parser.add_argument(
        "--cost-bps",
        type=float,
        default=5.0,
        help="backtest cost per change of position, in basis points (default: %(default)s)",
    )


PROJECT = Project(
    name="stock_lstm",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    page_info=export.page_info,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 50, "batch_size": 64, "early_stopping_patience": 8},
    add_options=add_options,
    for_hparams=data.for_hparams,
    commands={
        "predict": Command(
            "the next trading day's forecast from a trained run", predict.add_arguments, predict.run
        )
    },
)
