"""`predict RUN_DIR [--ticker T | --csv PATH]`: the next trading day's forecast from the latest prices.

The prices are read as training read them (the cached CSV, downloaded when missing, or --csv); the last
lookback + 20 days go through the run's SavedModel. A cached file is never refreshed: one whose newest day
is more than a few business days old gets a warning. The forecast is for the business day after the last
date in the data (exchange holidays are not known here, so the next session may come later).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from projects.stock_lstm.data import Options
from projects.stock_lstm.features import WARMUP
from projects.stock_lstm.prices import cache_path, download_prices, read_prices
from shared import options
from shared.config import UserError
from shared.export import SIGNATURE, saved_model_of
from shared.run_folder import load_run
from shared.trained import load_state

STALE_BUSINESS_DAYS = 4  # a cached file older than this gets a warning


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/stock_lstm/latest)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--ticker", help="forecast this ticker (default: the one the run trained on)")
    source.add_argument("--csv", help="a Date,Open,High,Low,Close,Volume CSV instead")
    parser.add_argument("--data-dir", help="where stocks/<TICKER>.csv is (default: the run's data directory)")


def run(args: argparse.Namespace) -> int:
    from projects.stock_lstm import PROJECT  # here: the package imports this module

    run_dir = Path(args.run)
    cfg = load_run(run_dir)
    saved_model = saved_model_of(run_dir)
    lookback = load_state(PROJECT, run_dir).lookback
    if args.csv:
        prices = read_prices(Path(args.csv))
    else:
        ticker = args.ticker or options.read(Options, cfg).source_ticker
        path = cache_path(Path(args.data_dir) if args.data_dir else cfg.resolved_data_dir(), ticker)
        if not path.is_file():
            download_prices(ticker, None, None, path)
        prices = read_prices(path)
    for problem in prices.problems + prices.notes:
        print(f"{prices.name}: {problem}", file=sys.stderr)
    needed = lookback + WARMUP
    if len(prices.dates) < needed:
        raise UserError(
            f"{prices.name} has {len(prices.dates)} usable days; this run's model needs the last {needed} "
            f"({lookback} days of features, each needing the {WARMUP} days before it)"
        )
    stale = np.busday_count(prices.dates[-1], np.datetime64("today", "D"))
    if stale > STALE_BUSINESS_DAYS and not args.csv:
        print(
            f"warning: the newest day in {path} is {prices.dates[-1]}, {stale} business days ago; the cached "
            "file is never refreshed: delete it to download the latest prices",
            file=sys.stderr,
        )
    window = prices.ohlcv[-needed:].astype(np.float32)[np.newaxis]
    signature = tf.saved_model.load(str(saved_model)).signatures[SIGNATURE]
    outputs = signature(ohlcv=tf.constant(window))
    log_return = float(outputs["log_return"].numpy()[0])
    last = prices.dates[-1]
    next_day = (pd.Timestamp(last) + pd.offsets.BDay(1)).date()
    print(
        f"{prices.name}: forecast for {next_day} (the next business day after {last}, the last date used; "
        f"{needed} days from {prices.dates[-needed]}): log return {log_return:+.5f} "
        f"({np.expm1(log_return):+.3%}), adjusted close {float(outputs['close_forecast'].numpy()[0]):.2f} "
        f"(last {prices.ohlcv[-1, 3]:.2f})"
    )
    return 0
