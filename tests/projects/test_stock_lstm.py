"""stock_lstm: training, evaluating, serving and predicting on generated prices, one with a learnable
pattern, one a random walk (what needs no trained model is in test_stock_lstm_parts.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from projects.stock_lstm import data
from projects.stock_lstm.data import table_of, walk_forward_folds
from projects.stock_lstm.prices import Prices, read_prices, synthetic_prices
from shared.config import RunConfig
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.projects.test_stock_lstm_parts import prices_csv
from tests.serving_helpers import check_served_like_in_process

SMALL_FOLDS = ("--folds", "2", "--fold-days", "200")


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
    options = {"folds": 2, "fold_days": 200, "fit_fold": "first"}
    splits = data.for_hparams(data.load(RunConfig(project="stock_lstm", smoke=True, options=options)), {})
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


def test_the_state_holds_what_training_fitted_and_evaluate_forecasts_with_it(
    learnable, tmp_path, session_dir
):
    """state.json is what the data made for the run; evaluate forecasts the run's fold with its scaler."""
    import shutil

    from projects.stock_lstm import PROJECT
    from shared.run_folder import load_run
    from shared.trained import load_state

    state = load_state(PROJECT, learnable)
    hparams = json.loads((learnable / "hparams.json").read_text())
    assert state == data.for_hparams(data.load(load_run(learnable)), hparams).state
    prices = synthetic_prices(seed=42, autocorrelation=0.5)  # --smoke's series: every day of it was read
    assert state.days == [str(prices.dates[0]), str(prices.dates[-1])]
    metrics = json.loads((learnable / "metrics.json").read_text())
    assert state.test_period == [metrics["first_test_date"], metrics["last_test_date"]]

    run_dir = tmp_path / "run"
    shutil.copytree(learnable, run_dir, ignore=shutil.ignore_patterns("saved_model"))
    config = json.loads((run_dir / "config.json").read_text())
    config["run"]["epochs"] = 1  # the first fold's model, trained again, is not what is checked
    (run_dir / "config.json").write_text(json.dumps(config))
    shifted = {**state.scaler, "target_mean": state.scaler["target_mean"] + 0.01}
    (run_dir / "state.json").write_text(json.dumps({**dataclasses.asdict(state), "scaler": shifted}))
    result = run_cli("stock_lstm", "evaluate", str(run_dir), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = pd.read_csv(learnable / "forecasts.csv"), pd.read_csv(run_dir / "forecasts.csv")
    run_fold = before["fold"] == 2  # the last fold: the run's own model
    np.testing.assert_allclose(after["lstm"][run_fold], before["lstm"][run_fold] + 0.01, atol=1e-6)


@pytest.fixture(scope="module")
def random_walk(session_dir) -> Path:
    """The run folder of a run trained with --csv on a generated random walk."""
    csv = prices_csv(synthetic_prices(n=2_000, seed=5), session_dir / "walk.csv")
    run_dir = session_dir / "walk_run"
    args = ("train", "--csv", str(csv), *SMALL_FOLDS, "--epochs", "15", "--run-dir", str(run_dir))
    result = run_cli("stock_lstm", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_claims_no_skill_on_a_random_walk(random_walk):
    metrics = json.loads((random_walk / "metrics.json").read_text())
    assert metrics["direction_ci_low"] < 0.5 < metrics["direction_ci_high"], metrics
    assert metrics["rmse_ratio_to_persistence"] > 0.98, metrics
    assert metrics["direction_pvalue_vs_always_up"] > 0.01
    # not significantly better than persistence (a worse model claims no skill either)
    assert metrics["rmse_ratio_to_persistence"] >= 1 or metrics["dm_pvalue_vs_persistence"] > 0.01


def test_evaluate_reads_the_days_the_run_read_after_the_file_has_grown(random_walk, tmp_path):
    import shutil

    trained, grown, run_dir = random_walk, tmp_path / "grown.csv", tmp_path / "run"
    walk, later = synthetic_prices(n=2_000, seed=5), synthetic_prices(n=2_100, seed=6)
    days = slice(2_000, None)  # the 100 business days after the walk's last
    both = np.concatenate([walk.dates, later.dates[days]]), np.concatenate([walk.ohlcv, later.ohlcv[days]])
    prices_csv(Prices("grown", *both), grown)  # the run's 2,000 days, then 100 more
    shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("saved_model"))
    config = json.loads((run_dir / "config.json").read_text())
    config["run"]["epochs"] = 1  # the first fold's model, trained again, is not what is checked
    config["run"]["options"]["csv"] = str(grown)
    (run_dir / "config.json").write_text(json.dumps(config))
    result = run_cli("stock_lstm", "evaluate", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = (json.loads((d / "metrics.json").read_text()) for d in (trained, run_dir))
    assert [after[k] for k in ("test_days", "first_test_date", "last_test_date")] == [
        before[k] for k in ("test_days", "first_test_date", "last_test_date")
    ]
    run_fold = pd.read_csv(trained / "forecasts.csv")["fold"] == 2  # the run's own model and scaler
    np.testing.assert_allclose(
        pd.read_csv(run_dir / "forecasts.csv")["lstm"][run_fold],
        pd.read_csv(trained / "forecasts.csv")["lstm"][run_fold],
        atol=1e-6,
    )

    prices_csv(walk, grown, slice(0, 1_900))  # the run's last days gone
    result = run_cli("stock_lstm", "evaluate", str(run_dir), cwd=tmp_path)
    assert result.returncode == 2 and "no longer holds the days the run read" in result.stderr


def test_a_diverged_fold_is_reported_and_its_days_are_not_scored(learnable, tmp_path, capsys):
    """A refit fold whose loss became NaN: named in the output and metrics.json, its LSTM forecasts NaN in
    forecasts.csv, its days left out of every score; the other folds' are scored as before."""
    import shutil

    import keras

    from projects.stock_lstm import PROJECT
    from shared import cli, fitting

    def diverging(model, train, validation, **settings):
        history = keras.callbacks.History()
        history.history = {"loss": [1.0, float("nan")]}
        return fitting.Fitted(history, diverged=True)

    run_dir = tmp_path / "run"
    shutil.copytree(learnable, run_dir, ignore=shutil.ignore_patterns("saved_model"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "fit", diverging)
        assert cli.main(PROJECT, ["evaluate", str(run_dir)]) == 0
    assert "warning: fold 1/2: the loss became NaN or infinite after 2 epochs" in capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    before = json.loads((learnable / "metrics.json").read_text())
    forecasts, earlier = pd.read_csv(run_dir / "forecasts.csv"), pd.read_csv(learnable / "forecasts.csv")
    assert metrics["diverged_folds"] == [1] and metrics["test_days"] == 200
    assert forecasts.loc[forecasts["fold"] == 1, "lstm"].isna().all() and len(forecasts) == 400
    assert metrics["first_test_date"] == forecasts.loc[forecasts["fold"] == 2, "date"].iloc[0]
    np.testing.assert_allclose(forecasts["lstm"][200:], earlier["lstm"][200:], atol=1e-6)
    assert before["diverged_folds"] == [] and before["test_days"] == 400
    assert list(pd.read_csv(run_dir / "tables" / "folds.csv", index_col=0).index) == ["fold 2"]


def test_trains_on_two_cpu_replicas(tmp_path, session_dir):
    run_dir = tmp_path / "mirrored"
    args = ("--smoke", *SMALL_FOLDS, "--epochs", "2", "--strategy", "mirrored", "--cpu-replicas", "2")
    result = run_cli("stock_lstm", "train", *args, "--run-dir", str(run_dir), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"]["replicas"] == 2 and config["runtime"]["global_batch_size"] == 128


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


def test_the_run_folder_is_all_the_model_needs(learnable, tmp_path):
    check_run_folder_is_all_it_needs("stock_lstm", learnable, tmp_path)
