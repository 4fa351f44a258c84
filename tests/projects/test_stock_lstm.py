"""stock_lstm: reading prices, the walk-forward splitter, yfinance's empty answers, and training, serving
and predicting on generated prices: one with a learnable pattern, one a random walk."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from projects.stock_lstm import data
from projects.stock_lstm.data import (
    Fold,
    Scaler,
    fold_data,
    read_prices,
    synthetic_prices,
    table_of,
    walk_forward_folds,
)
from projects.stock_lstm.evaluate import backtest, forecast_metrics
from projects.stock_lstm.features import WARMUP
from shared.config import UserError
from shared.data import DatasetMissingError
from tests.conftest import last_line, run_cli
from tests.serving_helpers import check_served_like_in_process

SMALL_FOLDS = ("--folds", "2", "--fold-days", "200")
HEADER = "Date,Open,High,Low,Close,Volume\n"


def prices_csv(prices: data.Prices, path: Path, rows: slice = slice(None)) -> Path:
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
        ("", "found an empty file"),
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
        data.download_prices("XQZ", None, None, path)
    assert str(path) in str(error.value) and "--csv" in str(error.value)
    assert fake.calls == 1 and not path.exists()
    monkeypatch.setenv("DATA_OFFLINE", "1")
    with pytest.raises(DatasetMissingError, match="DATA_OFFLINE is set"):
        data.download_prices("XQZ", None, None, path)
    assert fake.calls == 1


def test_a_download_is_cached_and_the_cache_used_without_network(tmp_path, monkeypatch):
    import yfinance

    prices = synthetic_prices(n=60, seed=2)
    frame = pd.DataFrame(prices.ohlcv, columns=["Open", "High", "Low", "Close", "Volume"])
    frame.index = pd.DatetimeIndex(prices.dates.astype("datetime64[ns]"), name="Date")
    fake = FakeYahoo(frame)
    monkeypatch.setattr(yfinance, "download", fake)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    cfg = data.RunConfig(project="stock_lstm", options={"ticker": "abc", "start": "2000-02-01"})
    first = data.prices_for(cfg)
    assert (tmp_path / "stocks" / "ABC.csv").is_file() and fake.calls == 1
    assert str(first.dates[0]) == "2000-02-01"  # --start applies to the cached days
    assert cfg.options["end"] == str(first.dates[-1])  # config.json records the days the run used
    again = data.prices_for(cfg)
    assert fake.calls == 1  # the cached file, no download
    np.testing.assert_allclose(again.ohlcv, first.ohlcv, rtol=1e-6)
    late = dataclasses.replace(cfg, options={"ticker": "abc", "start": "2030-01-01"})
    with pytest.raises(UserError, match=r"nothing from 2030-01-01.*delete it to download another range"):
        data.prices_for(late)
    with pytest.raises(UserError, match="'2000-13-01' is not a date"):
        data.prices_for(dataclasses.replace(cfg, options={"ticker": "abc", "end": "2000-13-01"}))


@pytest.fixture(scope="module")
def learnable(session_dir) -> Path:
    """--smoke trains on generated AR(1) returns (a = 0.5): a pattern an LSTM can learn."""
    run_dir = session_dir / "stock_run"
    args = ("train", "--smoke", *SMALL_FOLDS, "--epochs", "15", "--deterministic", "--run-dir", str(run_dir))
    result = run_cli("stock_lstm", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return run_dir


def test_learns_a_learnable_pattern_and_beats_the_baselines(learnable):
    metrics = json.loads((learnable / "metrics.json").read_text())
    # a = 0.5: the best forecast's RMSE is sqrt(1 - a^2) = 0.87 of persistence's, and it calls 2/3 of days
    assert metrics["rmse_ratio_to_persistence"] < 0.92, metrics
    assert metrics["direction_ci_low"] > 0.55 and metrics["direction_pvalue_vs_always_up"] < 0.01, metrics
    assert metrics["baselines"]["historical_mean"]["rmse_ratio_to_persistence"] > 0.98
    assert metrics["test_days"] == 400 and metrics["export_max_abs_diff_log_return"] <= 1e-5
    forecasts = pd.read_csv(learnable / "forecasts.csv")
    assert list(forecasts["fold"].unique()) == [1, 2] and forecasts["lstm"].notna().all()
    for plot in ("forecast_vs_actual", "equity_curves", "errors_per_fold"):
        assert (learnable / "plots" / f"{plot}.png").is_file()


def test_predict_forecasts_what_evaluation_forecast(learnable, tmp_path, session_dir):
    """The SavedModel, given the days up to a test day, forecasts what the walk-forward gave that day."""
    forecasts = pd.read_csv(learnable / "forecasts.csv")
    row = forecasts[forecasts["fold"] == 2].iloc[50]  # the last fold's model is the run's model
    prices = synthetic_prices(seed=42, autocorrelation=0.5)  # --smoke's series (seed 42)
    day = int(np.flatnonzero(prices.dates == np.datetime64(row["date"]))[0])
    csv = prices_csv(prices, tmp_path / "upto.csv", slice(0, day))  # up to the day before
    result = run_cli("stock_lstm", "predict", str(learnable), "--csv", str(csv), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    served = float(re.search(r"log return ([-+]\d\.\d+)", result.stdout).group(1))
    assert served == pytest.approx(row["lstm"], abs=2e-5)
    assert f"forecast for {row['date']}" in result.stdout

    import tensorflow as tf

    signature = tf.saved_model.load(str(learnable / "saved_model")).signatures["serving_default"]
    window = prices.ohlcv[:50].astype(np.float32)[np.newaxis]
    assert signature(ohlcv=tf.constant(window))["log_return"].shape == (1,)
    for bad, message in ((np.nan, "finite"), (-1.0, "prices must be positive")):
        broken = window.copy()
        broken[0, 10, 3] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature(ohlcv=tf.constant(broken))

    short = prices_csv(prices, tmp_path / "short.csv", slice(0, 30))
    result = run_cli("stock_lstm", "predict", str(learnable), "--csv", str(short), cwd=session_dir)
    assert (
        result.returncode == 2 and "has 30 usable days; this run's model needs the last 50" in result.stderr
    )


def test_predict_warns_when_the_cached_prices_are_old(learnable, tmp_path, session_dir):
    prices_csv(synthetic_prices(seed=1), (tmp_path / "stocks").mkdir() or tmp_path / "stocks" / "OLD.csv")
    args = ("predict", str(learnable), "--ticker", "old", "--data-dir", str(tmp_path))
    result = run_cli("stock_lstm", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "business days ago; the cached file is never refreshed" in result.stderr


def test_tune_fits_the_first_fold_and_searches_the_lookback(tmp_path, session_dir):
    from shared.config import RunConfig

    options = {"folds": 2, "fold_days": 200, "fit_fold": "first"}
    splits = data.load(RunConfig(project="stock_lstm", smoke=True, options=options))
    first = walk_forward_folds(table_of(splits).samples, 30, 2, 200)[0]
    assert splits.info["windows"]["train"] == first.train[1] - first.train[0]  # the first fold's days

    folder = tmp_path / "search"
    args = ("--smoke", *SMALL_FOLDS, "--fit-fold", "first", "--epochs", "2", "--max-trials", "3")
    result = run_cli(
        "stock_lstm", "tune", *args, "--tuner", "random", "--run-dir", str(folder), cwd=session_dir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = pd.read_csv(folder / "trials.csv")
    assert (trials["status"] == "COMPLETED").all() and trials["lookback"].nunique() > 1


def test_evaluate_command_gives_the_same_numbers(learnable, session_dir):
    before = json.loads((learnable / "metrics.json").read_text())
    result = run_cli("stock_lstm", "evaluate", str(learnable), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads((learnable / "metrics.json").read_text())
    assert after["rmse_return"] == pytest.approx(before["rmse_return"], rel=1e-4)


def test_claims_no_skill_on_a_random_walk(tmp_path, session_dir):
    csv = prices_csv(synthetic_prices(n=2_000, seed=5), tmp_path / "walk.csv")
    run_dir = tmp_path / "walk_run"
    args = ("train", "--csv", str(csv), *SMALL_FOLDS, "--epochs", "15", "--run-dir", str(run_dir))
    result = run_cli("stock_lstm", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["direction_ci_low"] < 0.5 < metrics["direction_ci_high"], metrics
    assert metrics["rmse_ratio_to_persistence"] > 0.98, metrics
    assert metrics["direction_pvalue_vs_always_up"] > 0.01
    # not significantly better than persistence (a worse model claims no skill either)
    assert metrics["rmse_ratio_to_persistence"] >= 1 or metrics["dm_pvalue_vs_persistence"] > 0.01


def test_trains_on_two_cpu_replicas(tmp_path, session_dir):
    run_dir = tmp_path / "mirrored"
    args = ("--smoke", *SMALL_FOLDS, "--epochs", "2", "--strategy", "mirrored", "--cpu-replicas", "2")
    result = run_cli("stock_lstm", "train", *args, "--run-dir", str(run_dir), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"]["replicas"] == 2 and config["runtime"]["global_batch_size"] == 128


def test_missing_data_names_the_file(tmp_path, session_dir):
    result = run_cli("stock_lstm", "train", "--ticker", "IBM", cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "no-data" / "stocks" / "IBM.csv") in result.stderr and "--csv" in result.stderr


def test_a_refusing_yahoo_and_empty_folds_are_named(tmp_path, monkeypatch):
    import yfinance

    monkeypatch.setattr(
        yfinance, "download", FakeYahoo(pd.DataFrame(), "['SPY']: Too Many Requests. Rate limited.")
    )
    with pytest.raises(DatasetMissingError, match=r"refused the request \(rate limited\?\)"):
        data.download_prices("SPY", None, None, tmp_path / "stocks" / "SPY.csv")
    with pytest.raises(UserError, match="--folds and --fold-days must be positive; got 0 and 252"):
        walk_forward_folds(2_000, 30, 0, 252)


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(learnable, tmp_path):
    import tensorflow as tf

    signature = tf.saved_model.load(str(learnable / "saved_model")).signatures["serving_default"]
    days = signature.structured_input_signature[1]["ohlcv"].shape[1]
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (3, days)), axis=1))
    ohlcv = np.stack(
        [close * 0.99, close * 1.01, close * 0.98, close, rng.uniform(1e6, 2e6, (3, days))], axis=-1
    )
    check_served_like_in_process(learnable, "stock_lstm", {"ohlcv": ohlcv.astype(np.float32)}, cwd=tmp_path)


def page_csvs(cached: dict, folder: Path) -> tuple[Path, Path, Path]:
    """The cached days as a person's CSV would hold them, and two CSVs the page must refuse.

    The same days unadjusted (prices x2, volume /2) with an Adj Close column: the page must adjust them back
    exactly as read_prices does (x0.5 and x2 are exact in floating point) and drop the unusable first row.
    """
    ohlcv = np.array(cached["ohlcv"])
    frame = pd.DataFrame(ohlcv * [2, 2, 2, 2, 0.5], columns=["Open", "High", "Low", "Close", "Volume"])
    frame.insert(0, "Date", cached["dates"])
    frame.insert(5, "Adj Close", ohlcv[:, 3])
    same = folder / "same_days.csv"
    bad_first_row = "2000-01-03,abc,1,1,1,1,1\n"
    same.write_text(frame.to_csv(index=False).replace("\n", "\n" + bad_first_row, 1))
    np.testing.assert_array_equal(read_prices(same).ohlcv, ohlcv)
    no_volume, short = folder / "no_volume.csv", folder / "short.csv"
    frame.drop(columns=["Volume"]).to_csv(no_volume, index=False)
    frame.tail(10).to_csv(short, index=False)
    return same, no_volume, short


def test_page_forecasts_the_cached_days_and_a_csv_like_the_rest_api(learnable, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.browser import error_shown, exchanges, labelled, on_a_phone, screenshot, served_page, text_of

    page = json.loads((learnable / "saved_model" / "assets.extra" / "page.json").read_text())
    metrics = json.loads((learnable / "metrics.json").read_text())
    assert page["window_days"] == 50 and page["lookback"] == 30
    assert page["test_period"] == [metrics["first_test_date"], metrics["last_test_date"]]
    [(name, cached)] = page["tickers"].items()
    prices = synthetic_prices(seed=42, autocorrelation=0.5)  # --smoke's series: the run's last 50 days
    assert name == prices.name and cached["dates"] == [str(day) for day in prices.dates[-50:]]
    np.testing.assert_array_equal(cached["ohlcv"], prices.ohlcv[-50:])
    same, no_volume, short = page_csvs(cached, tmp_path)

    with served_page("stock_lstm", learnable, tmp_path) as (driver, url):
        ticker = Select(driver.find_element(By.ID, "ticker"))
        first = forecast_shown(driver, url, 1, lambda: ticker.select_by_value(name))
        assert first["request"] == {"instances": [{"ohlcv": cached["ohlcv"]}]}
        skill = text_of(driver, "#skill")
        for key in ("test_rmse_return", "test_persistence_rmse_return"):
            assert f"{metrics[key]:.5f}" in skill, skill
        assert "predicting no change" in skill and "400 walk-forward test days" in skill

        upload = driver.find_element(By.ID, "file")
        assert (
            forecast_shown(driver, url, 2, lambda: upload.send_keys(str(same)))["request"] == first["request"]
        )
        assert "line 2: Open 'abc' is not a number" in text_of(driver, "#dropped")

        upload.send_keys(str(no_volume))
        assert "no_volume.csv: no column Volume" in error_shown(driver)
        assert text_of(driver, "#close") == "-"
        upload.send_keys(str(short))
        assert "short.csv has 10 usable days; this model needs the last 50" in error_shown(driver)
        assert len(exchanges(driver)) == 2  # nothing was sent for either

        forecast_shown(driver, url, 3, lambda: ticker.select_by_value(name))  # still works afterwards
        assert not driver.find_element(By.ID, "error").is_displayed()
        labelled(driver)
        screenshot(driver, "stock_lstm")
        on_a_phone(driver, "stock_lstm")


def forecast_shown(driver, url: str, count: int, act) -> dict:
    """Does `act`, waits for the page's exchange number `count`, checks the REST API gives the same reply
    for its request and that the page shows that reply's close and log return; returns the exchange."""
    from tests.browser import exchanges, same_reply_from_the_api, text_of, wait_for

    act()
    wait_for(
        lambda: len(exchanges(driver)) == count and text_of(driver, "#close") != "-", f"forecast {count}"
    )
    exchange = exchanges(driver)[-1]
    reply = same_reply_from_the_api(url, exchange)["predictions"][0]
    assert float(text_of(driver, "#close")) == pytest.approx(reply["close_forecast"], abs=0.005)
    assert float(text_of(driver, "#log-return")) == pytest.approx(reply["log_return"], abs=5e-6)
    return exchange
