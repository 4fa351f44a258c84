"""stock_lstm without training: reading prices (bad rows named by line), yfinance's empty answers, the
walk-forward splitter, the metrics and backtest on known cases, and the settings checked before any data is
read."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from projects.stock_lstm import data
from projects.stock_lstm.data import Fold, Options, Scaler, fold_data, table_of, walk_forward_folds
from projects.stock_lstm.features import WARMUP
from projects.stock_lstm.metrics import backtest, forecast_metrics
from projects.stock_lstm.prices import Prices, download_prices, read_prices, synthetic_prices
from shared.config import RunConfig, UserError
from shared.data import DatasetMissingError
from tests.conftest import run_cli

HEADER = "Date,Open,High,Low,Close,Volume\n"


def prices_csv(prices: Prices, path: Path, rows: slice = slice(None)) -> Path:
    frame = pd.DataFrame(prices.ohlcv[rows], columns=["Open", "High", "Low", "Close", "Volume"])
    frame.insert(0, "Date", pd.to_datetime(prices.dates[rows]).strftime("%Y-%m-%d"))
    frame.to_csv(path, index=False, float_format="%.6f")
    return path


def test_bad_rows_are_dropped_and_named_by_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "\ufeffDate,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,10,11,9,10,5,100\n"
        "2020-01-03,10,11,9,abc,5,100\n"  # line 3
        "yesterday,10,11,9,10,5,100\n"  # line 4
        "2020-01-07,10,11,9,0,5,100\n"  # line 5
        "2020-01-08,10,11,9,10,5,-1\n"  # line 6
        "2020-01-09,10,11,9,10,,100\n"  # line 7
        "\n"
        "2020-01-20,12,13,11,12,6,200\n"  # line 9: 11 days after the last good row
        "2020-01-16,10,11,9,10,5,100\n"  # line 10: out of order
        "2020-01-20,99,99,99,99,99,999\n"  # line 11: a repeated date
        "2020-01-21,10,11\n"  # line 12: too few fields
        "2020-01-22,10,11,9,10,5,100,7\n"  # line 13: too many
        "2020-01-23 00:00:00-05:00,12,13,11,12,6,200\n"  # yfinance history(): the day as written
    )
    prices = read_prices(path)
    assert prices.problems == [
        "line 3: Close 'abc' is not a number",
        "line 4: Date 'yesterday' is not a date (YYYY-MM-DD)",
        "line 5: Close is 0: prices must be positive",
        "line 6: Volume is -1: it cannot be negative",
        "line 7: Adj Close '' is not a number",
        "line 12: 3 fields, the header has 7",
        "line 13: 8 fields, the header has 7",
    ]
    assert [str(d) for d in prices.dates] == ["2020-01-02", "2020-01-16", "2020-01-20", "2020-01-23"]
    assert prices.notes[0] == "dates out of order from line 10; sorted by date"
    assert "line 11 repeats 2020-01-20; the first row of that date is kept" in prices.notes
    assert "no rows from 2020-01-02 to 2020-01-16 (14 days)" in prices.notes
    # Adj Close / Close = 0.5 scales the prices and doubles the volume: a split is no price move
    np.testing.assert_allclose(prices.ohlcv[-1], [6, 6.5, 5.5, 6, 400])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; expected a header row with Date, Open, High, Low, Close, Volume"),
        ("Date,Open,High,Low,Volume\n2020-01-02,1,1,1,1\n", "no column Close"),
        (HEADER + "2020-01-02,1,1,1,1,1\nbad,1,1,1,1,1\n", r"1 usable row\(s\); line 3: Date 'bad'"),
    ],
)
def test_malformed_csvs_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_prices(path)


def test_walk_forward_never_lets_a_test_day_into_training():
    prices = synthetic_prices(n=1_500, seed=3)
    table = table_of(prices)
    lookback, rng = 20, np.random.default_rng(0)
    folds = walk_forward_folds(table.samples, lookback, 3, 100)
    assert [f.test for f in folds] == [(1179, 1279), (1279, 1379), (1379, 1479)]
    assert folds[-1].test[1] == table.samples  # the last sample with a next day closes the last fold
    for fold in folds:
        first_test_day = table.dates[fold.test[0] + 1]  # the first day a forecast is made for
        # a training sample uses rows up to its own and its target is the next day's return
        trained_days = table.dates[fold.train[0] - lookback + 1 : fold.validation[1] + 1]
        assert trained_days.max() < first_test_day and fold.validation[1] == fold.test[0]
        # prices from the first test day on do not change the scaler or any training window
        changed = dataclasses.replace(prices, ohlcv=prices.ohlcv.copy())
        later = slice(fold.test[0] + WARMUP + 1, None)  # price rows from the first test day on
        changed.ohlcv[later] *= rng.uniform(0.5, 2.0, size=(len(changed.ohlcv[later]), 1))
        scaler, *fitted = fold_data(table, fold, lookback)
        scaler2, *fitted2 = fold_data(table_of(changed), fold, lookback)
        assert scaler.to_json() == scaler2.to_json()
        for (x, y), (x2, y2) in zip(fitted, fitted2, strict=True):  # training, validation windows
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(y, y2)
        seen = (fold.train[0], fold.test[0])  # what the ridge baseline and the historical mean fit on
        np.testing.assert_array_equal(
            data.windows(table, scaler, seen, lookback)[1],
            data.windows(table_of(changed), scaler, seen, lookback)[1],
        )
        # ...while the test windows do see the changed days: the check above is not vacuous
        assert not np.array_equal(
            data.windows(table, scaler, fold.test, lookback)[0],
            data.windows(table_of(changed), scaler, fold.test, lookback)[0],
        )
    with pytest.raises(UserError, match="Use fewer --folds"):
        walk_forward_folds(table.samples, lookback, 10, 252)


def test_windows_end_at_their_sample_and_target_the_next_day():
    table = table_of(synthetic_prices(n=400, seed=1))
    fold = Fold(train=(9, 200), validation=(200, 250), test=(250, 300))
    scaler = Scaler.fit(table, fold)
    x, y = data.windows(table, scaler, fold.train, 10)
    assert x.shape == (191, 10, 6) and y.shape == (191,)
    np.testing.assert_allclose(x[0, -1], (table.features[9] - scaler.mean) / scaler.std, rtol=1e-5)
    log_close = np.log(table.close)
    expected = (log_close[10] - log_close[9] - scaler.target_mean) / scaler.target_std
    assert y[0] == pytest.approx(expected, rel=1e-5)


def test_metrics_and_backtest_on_known_cases():
    actual = np.array([0.01, -0.02, 0.03, -0.01])
    perfect = forecast_metrics(actual, actual)
    assert perfect["rmse_return"] == 0 and perfect["direction_accuracy"] == 1.0
    # Clopper-Pearson for 4 of 4: four days prove little
    assert perfect["direction_ci_low"] == pytest.approx(0.025**0.25) and perfect["direction_ci_high"] == 1.0
    zero = forecast_metrics(np.zeros(4), actual)
    assert zero["direction_accuracy"] is None and zero["dm_pvalue_vs_persistence"] is None
    rng = np.random.default_rng(0)
    days = rng.normal(0, 0.01, 500)
    assert forecast_metrics(0.5 * days, days)["dm_pvalue_vs_persistence"] < 1e-6  # a real edge
    assert forecast_metrics(rng.normal(0, 1e-4, 500), days)["dm_pvalue_vs_persistence"] > 0.01  # none
    hold = backtest(np.ones(4, bool), actual, cost_bps=0)
    assert hold["cumulative_return"] == pytest.approx(np.prod(np.expm1(actual) + 1) - 1)
    assert hold["trades"] == 1 and hold["exposure"] == 1.0
    simple = np.expm1(actual)
    assert hold["sharpe"] == pytest.approx(simple.mean() / simple.std() * np.sqrt(252))
    assert hold["max_drawdown"] == pytest.approx(1 - np.prod(1 + simple[:2]) / (1 + simple[0]))
    timed = backtest(actual > 0, actual, cost_bps=10)  # in on the up days only: 4 changes of position
    assert timed["trades"] == 4 and timed["max_drawdown"] < hold["max_drawdown"]
    expected = (1 + np.expm1(0.01) - 0.001) * (1 - 0.001) * (1 + np.expm1(0.03) - 0.001) * (1 - 0.001) - 1
    assert timed["cumulative_return"] == pytest.approx(expected)


class FakeYahoo:
    """Stands in for yfinance.download: logs like yfinance and returns what it is given."""

    def __init__(self, frame: pd.DataFrame, log: str = ""):
        self.frame, self.log, self.calls = frame, log, 0

    def __call__(self, ticker, **kwargs):
        self.calls += 1
        if self.log:
            logging.getLogger("yfinance").error(self.log)
        return self.frame


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (
            "['SPY']: Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com",
            "could not reach",
        ),
        ("['XQZ']: possibly delisted; no price data found", "an unknown ticker, or none in that range"),
        ("", "offline, or an unknown ticker"),
    ],
)
def test_yfinance_empty_answer_says_which_and_names_the_file(tmp_path, monkeypatch, log, cause):
    import yfinance

    fake = FakeYahoo(pd.DataFrame(), log)
    monkeypatch.setattr(yfinance, "download", fake)
    path = tmp_path / "stocks" / "XQZ.csv"
    with pytest.raises(DatasetMissingError, match=cause) as error:
        download_prices("XQZ", None, None, path)
    assert str(path) in str(error.value) and "--csv" in str(error.value)
    assert fake.calls == 1 and not path.exists()
    monkeypatch.setenv("DATA_OFFLINE", "1")
    with pytest.raises(DatasetMissingError, match="DATA_OFFLINE is set"):
        download_prices("XQZ", None, None, path)
    assert fake.calls == 1


def test_a_download_is_cached_and_the_cache_used_without_network(tmp_path, monkeypatch):
    import yfinance

    prices = synthetic_prices(n=60, seed=2)
    frame = pd.DataFrame(prices.ohlcv, columns=["Open", "High", "Low", "Close", "Volume"])
    frame.index = pd.DatetimeIndex(prices.dates.astype("datetime64[ns]"), name="Date")
    fake = FakeYahoo(frame)
    monkeypatch.setattr(yfinance, "download", fake)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    cfg = RunConfig(project="stock_lstm", options={"ticker": "abc", "start": "2000-02-01"})
    first = data.prices_for(cfg)
    assert (tmp_path / "stocks" / "ABC.csv").is_file() and fake.calls == 1
    assert str(first.dates[0]) == "2000-02-01"  # --start applies to the cached days
    assert cfg.options == {"ticker": "abc", "start": "2000-02-01"}  # reading them changed no setting
    again = data.prices_for(cfg)
    assert fake.calls == 1  # the cached file, no download
    np.testing.assert_allclose(again.ohlcv, first.ohlcv, rtol=1e-6)
    late = dataclasses.replace(cfg, options={"ticker": "abc", "start": "2030-01-01"})
    with pytest.raises(UserError, match=r"nothing from 2030-01-01.*delete it to download another range"):
        data.prices_for(late)
    with pytest.raises(UserError, match="--end '2000-13-01' is not a date"):
        Options(ticker="abc", end="2000-13-01")


def test_options_have_one_default_and_are_checked_before_any_data_is_read(tmp_path, session_dir):
    from projects.stock_lstm import PROJECT
    from shared import options
    from shared.cli import build_parser, config_from_args

    def configured(*flags: str) -> RunConfig:
        return config_from_args(PROJECT, build_parser(PROJECT).parse_args(["train", "--smoke", *flags]))

    assert options.read(Options, configured()).cost_bps == 5.0
    assert options.read(Options, RunConfig(project="stock_lstm")).cost_bps == 5.0  # a config without it
    assert options.read(Options, configured("--cost-bps", "0")).cost_bps == 0.0  # a zero stays zero
    assert Options().source_ticker == "SPY" and Options(csv="x.csv").source_ticker == "SPY"
    for flags, message in (
        (("--folds", "0"), "--folds and --fold-days must be positive; got 0 and 252"),
        (("--cost-bps", "-1"), "--cost-bps cannot be negative; got -1.0"),
        (("--start", "2020-1-5"), "--start '2020-1-5' is not a date"),
        (("--ticker", "IBM", "--csv", "x.csv"), "--ticker and --csv are two sources of prices"),
    ):
        with pytest.raises(UserError, match=re.escape(message)):
            configured(*flags)
    result = run_cli("stock_lstm", "train", "--ticker", "IBM", "--csv", "x.csv", cwd=tmp_path)
    assert result.returncode == 2 and "give one of them, not both" in result.stderr


def test_missing_data_names_the_file(tmp_path, session_dir):
    result = run_cli("stock_lstm", "train", "--ticker", "IBM", cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "no-data" / "stocks" / "IBM.csv") in result.stderr and "--csv" in result.stderr


def test_a_refusing_yahoo_is_named(tmp_path, monkeypatch):
    import yfinance

    monkeypatch.setattr(
        yfinance, "download", FakeYahoo(pd.DataFrame(), "['SPY']: Too Many Requests. Rate limited.")
    )
    with pytest.raises(DatasetMissingError, match=r"refused the request \(rate limited\?\)"):
        download_prices("SPY", None, None, tmp_path / "stocks" / "SPY.csv")
