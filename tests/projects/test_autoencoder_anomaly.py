"""autoencoder_anomaly: training, serving, predicting and the category table on generated series with
anomalies in known places (what needs no trained model is in test_autoencoder_anomaly_parts.py)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from projects.autoencoder_anomaly.series import synthetic_series
from shared.config import UserError
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.projects.test_autoencoder_anomaly_parts import series_csv, write_nab
from tests.serving_helpers import check_served_like_in_process

FAST = ("--epochs", "30")


@pytest.fixture(scope="module")
def trained(session_dir) -> Path:
    run_dir = session_dir / "anomaly_run"
    result = run_cli(
        "autoencoder_anomaly", "train", "--smoke", *FAST, "--run-dir", str(run_dir), cwd=session_dir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return run_dir


def test_finds_the_injected_anomalies_and_beats_chance(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["windows_found"] >= 5 and metrics["windows"] == 6, metrics
    assert metrics["roc_auc"] > 0.85 and metrics["pr_auc"] > 2 * metrics["pr_auc_chance"], metrics
    assert set(metrics["baselines"]) == {"rolling_zscore", "isolation_forest"}
    assert metrics["export_max_abs_diff_score"] <= 1e-5  # the SavedModel in a fresh process
    scores = pd.read_csv(trained / "scores.csv")
    assert len(scores) == metrics["data"]["rows"] and scores["autoencoder_score"].notna().all()
    assert (trained / "plots" / "series_scores.png").is_file()


def test_predict_gives_the_scores_and_flags_evaluate_gave(trained, tmp_path, session_dir):
    import tensorflow as tf

    path = tmp_path / "same.csv"
    path.write_text(series_csv(synthetic_series(seed=42)))  # the series --smoke trained and evaluated on
    result = run_cli("autoencoder_anomaly", "predict", str(trained), str(path), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    served = pd.read_csv(io.StringIO(result.stdout))
    evaluated = pd.read_csv(trained / "scores.csv")
    np.testing.assert_allclose(served["score"], evaluated["autoencoder_score"], atol=1e-5)
    assert ((served["anomaly"] == "yes") == evaluated["autoencoder_flag"]).mean() > 0.999

    signature = tf.saved_model.load(str(trained / "saved_model")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="send at least one window"):
        signature(values=tf.ones([1, 10]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="every value must be a finite number"):
        signature(values=tf.constant([[1.0] * 70 + [float("nan")]]))


def test_evaluate_and_export_commands_rebuild_the_runs_windows(trained, session_dir):
    before = json.loads((trained / "metrics.json").read_text())
    for command in ("evaluate", "export"):
        result = run_cli("autoencoder_anomaly", command, str(trained), cwd=session_dir)
        assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads((trained / "metrics.json").read_text())
    assert after["pr_auc"] == pytest.approx(before["pr_auc"], abs=1e-6)
    assert after["threshold"] == pytest.approx(before["threshold"], abs=1e-6)


def test_the_threshold_is_chosen_once_and_export_and_evaluate_read_it_from_the_run(
    trained, tmp_path, session_dir
):
    """state.json holds what training chose; export and evaluate use it as it is, never choosing again."""
    import shutil

    import tensorflow as tf

    from projects.autoencoder_anomaly import PROJECT
    from shared.trained import load_state

    state = load_state(PROJECT, trained)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert state.series == "generated/sine_with_anomalies.csv" and state.threshold_rule == "5sigma"
    assert state.threshold == metrics["threshold"]
    assert state.window == json.loads((trained / "hparams.json").read_text())["window"]
    probationary = synthetic_series(seed=42).values[: metrics["data"]["probationary_rows"]]
    assert [state.mean, state.std] == pytest.approx([probationary.mean(), probationary.std()])

    def served(run_dir: Path) -> dict[str, np.ndarray]:
        serve = tf.saved_model.load(str(run_dir / "saved_model")).signatures["serving_default"]
        with np.load(run_dir / "examples.npz") as examples:
            outputs = serve(values=tf.constant(examples["values"]))
        return {key: value.numpy() for key, value in outputs.items()}

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    scores = served(run_dir)["score"]
    median = float(np.median(scores))  # another threshold, which flags half the rows
    (run_dir / "state.json").write_text(json.dumps({**dataclasses.asdict(state), "threshold": median}))
    for command in ("export", "evaluate"):
        result = run_cli("autoencoder_anomaly", command, str(run_dir), cwd=session_dir)
        assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(served(run_dir)["anomaly"], scores > median)
    assert json.loads((run_dir / "metrics.json").read_text())["threshold"] == median


def test_predict_on_a_clean_series_raises_few_alarms(trained, tmp_path, session_dir):
    clean = tmp_path / "clean.csv"
    clean.write_text(series_csv(synthetic_series(n=2_000, seed=7, anomalies=False)))
    out = tmp_path / "scored.csv"
    result = run_cli(
        "autoencoder_anomaly", "predict", str(trained), str(clean), "--out", str(out), cwd=session_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    scored = pd.read_csv(out)
    assert len(scored) == 2_000 and scored["score"].notna().all()
    assert (scored["anomaly"] == "yes").mean() < 0.02, (scored["anomaly"] == "yes").mean()


def test_predict_reports_bad_rows_by_line_and_scores_the_rest(trained, tmp_path, session_dir):
    series = synthetic_series(n=400, seed=3, anomalies=False)
    lines = series_csv(series).splitlines()
    lines[201] = lines[201].split(",")[0] + ",oops"  # line 202: the value
    lines[301] = "not a time," + lines[301].split(",")[1]  # line 302: the timestamp
    del lines[150:160]  # ten rows gone: 55 minutes between the rows now on lines 150 and 151
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("autoencoder_anomaly", "predict", str(trained), str(path), cwd=session_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: line 192: value 'oops' is not a finite number" in result.stderr
    assert "error: line 292: timestamp 'not a time' is not a date and time" in result.stderr
    assert "note: line 151: gap of 55 min" in result.stderr
    scored = pd.read_csv(io.StringIO(result.stdout))
    assert scored.loc[scored["line"] == 192, "score"].isna().all()
    short = scored[(scored["line"] > 292)]  # 98 rows after the last bad one: longer than the window
    assert short["score"].notna().all()
    assert scored["score"].isna().sum() == 2  # only the two bad rows: every stretch is a window long

    tiny = tmp_path / "tiny.csv"
    tiny.write_text(series_csv(series, slice(0, 20)))
    result = run_cli("autoencoder_anomaly", "predict", str(trained), str(tiny), cwd=session_dir)
    assert result.returncode == 2 and "shorter than one window (64 rows)" in result.stderr


def test_category_trains_every_series_and_writes_one_table(tmp_path, session_dir):
    data_dir = write_nab(
        tmp_path,
        {f"fake/s{i}.csv": synthetic_series(n=1_500, seed=10 + i) for i in range(2)},
    )
    folder = tmp_path / "category"
    args = ("fake", "--data-dir", str(data_dir), "--epochs", "3", "--run-dir", str(folder))
    result = run_cli("autoencoder_anomaly", "category", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(folder / "category.csv", index_col=0)
    assert list(table.index) == ["s0", "s1", "mean"]
    assert {"pr_auc autoencoder", "pr_auc rolling_zscore", "pr_auc isolation_forest"} <= set(table.columns)
    assert table.loc["mean"].to_numpy() == pytest.approx(table.loc[["s0", "s1"]].mean().to_numpy(), abs=1e-4)
    text = (folder / "category.md").read_text()
    assert [line.split(" |")[0] for line in text.splitlines() if line.startswith("| ")][1:] == [
        "| s0",
        "| s1",
        "| mean",
    ]  # one table: the header, each series, their mean
    assert "Highest mean PR-AUC over 2 series of fake" in text
    config = json.loads((folder / "s1" / "config.json").read_text())["run"]
    assert config["options"]["series"] == "fake/s1.csv"  # each member trained on its own series


def test_tune_searches_the_window_length(tmp_path, session_dir):
    folder = tmp_path / "search"
    args = ("--smoke", "--epochs", "2", "--max-trials", "3", "--tuner", "random", "--run-dir", str(folder))
    result = run_cli("autoencoder_anomaly", "tune", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = pd.read_csv(folder / "trials.csv")
    assert (trials["status"] == "COMPLETED").all() and trials["val_loss"].notna().all()
    assert trials["window"].nunique() > 1  # each trial trained on windows of its own length
    # the search space stops at the longest window the generated series' training part can fill
    assert trials["window"].max() <= 160


def test_trains_on_two_cpu_replicas(tmp_path, session_dir):
    run_dir = tmp_path / "mirrored"
    args = ("--smoke", "--epochs", "2", "--strategy", "mirrored", "--cpu-replicas", "2")
    # 77 validation windows: fewer than one global batch of 128, and odd: a clear error, not a crash
    result = run_cli("autoencoder_anomaly", "train", *args, "--run-dir", str(run_dir), cwd=session_dir)
    assert result.returncode == 2
    assert "the validation split has 77 examples" in result.stderr and "--batch-size 38" in result.stderr
    result = run_cli(
        "autoencoder_anomaly",
        "train",
        *args,
        "--batch-size",
        "32",
        "--run-dir",
        str(run_dir),
        cwd=session_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["runtime"]["replicas"] == 2 and config["runtime"]["global_batch_size"] == 64
    assert json.loads((run_dir / "metrics.json").read_text())["export_max_abs_diff_score"] <= 1e-5


def test_predict_and_category_name_what_is_wrong(trained, tmp_path, session_dir):
    import argparse

    from projects.autoencoder_anomaly import predict
    from projects.autoencoder_anomaly.data import category_series

    with pytest.raises(UserError, match="has no saved_model"):  # a run folder without its export
        (tmp_path / "run").mkdir()
        for name in ("config.json", "model.keras"):
            (tmp_path / "run" / name).write_bytes((trained / name).read_bytes())
        predict.run(argparse.Namespace(run=str(tmp_path / "run"), csv="x.csv", out=None))
    with pytest.raises(UserError, match=r"missing\.csv does not exist"):
        predict.run(argparse.Namespace(run=str(trained), csv=str(tmp_path / "missing.csv"), out=None))
    (tmp_path / "header.csv").write_text("timestamp,value\n")
    with pytest.raises(UserError, match="holds no rows under its header"):
        predict.run(argparse.Namespace(run=str(trained), csv=str(tmp_path / "header.csv"), out=None))

    data_dir = write_nab(tmp_path, {"fake/s0.csv": synthetic_series(n=500, seed=3)})
    with pytest.raises(UserError, match=r"NAB has no category 'realKnownCause'; it has fake"):
        category_series(data_dir, "realKnownCause")
    result = run_cli("autoencoder_anomaly", "category", "fake", "--smoke", cwd=session_dir)
    assert result.returncode == 2 and "--smoke has only one generated series" in result.stderr


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(trained, tmp_path):
    values = synthetic_series(seed=42).values
    stretches_ = np.stack([values[100:300], values[-200:]]).astype(np.float32)  # two stretches of one length
    expected = check_served_like_in_process(trained, "anomaly", {"values": stretches_}, cwd=tmp_path)
    assert expected["score"].shape == (2, 200) and expected["anomaly"].dtype == bool


def test_predict_with_an_export_from_before_stretches_says_to_export_again(trained, tmp_path, session_dir):
    import shutil

    import tensorflow as tf

    old = tmp_path / "old_run"
    shutil.copytree(trained, old, ignore=shutil.ignore_patterns("saved_model"))
    one_stretch = tf.function(lambda values: {"score": values, "anomaly": values > 0})
    module = tf.Module()
    module.serve = one_stretch.get_concrete_function(tf.TensorSpec([None], tf.float32, name="values"))
    tf.saved_model.save(module, str(old / "saved_model"), signatures={"serving_default": module.serve})
    path = tmp_path / "series.csv"
    path.write_text(series_csv(synthetic_series(seed=42)))
    result = run_cli("autoencoder_anomaly", "predict", str(old), str(path), cwd=session_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "export it again: python -m projects.autoencoder_anomaly export" in result.stderr


# --- the page ----------------------------------------------------------------------------------------

SHADED = """return [...document.querySelectorAll(arguments[0] + ' rect.flagged')].map((rect) =>
  [Number(rect.dataset.start), Number(rect.dataset.stop)])"""


def runs_of(flags: list[bool]) -> list[list[int]]:
    """[start, stop) of every run of true flags."""
    edges = np.diff(np.concatenate([[0], np.array(flags, np.int8), [0]]))
    return [
        [int(a), int(b)] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]


def scored_on_the_page(driver, url: str, path: Path) -> list[bool]:
    """Uploads the CSV; checks the page sent its values and shows what the REST API answers to the page's
    own request: the flagged count and the shaded stretches of both plots. Returns the flags."""
    from selenium.webdriver.common.by import By

    from tests.browser import exchanges, same_reply_from_the_api, text_of, wait_for

    sent = len(exchanges(driver))
    driver.find_element(By.ID, "file").send_keys(str(path))
    exchange = wait_for(lambda: exchanges(driver)[sent:], "the scores")[0]
    reply = same_reply_from_the_api(url, exchange)
    written = pd.read_csv(path)["value"].to_numpy()
    np.testing.assert_allclose(exchange["request"]["inputs"]["values"][0], written)
    flags = reply["outputs"]["anomaly"][0]
    assert text_of(driver, "#count") == str(sum(flags)) and text_of(driver, "#total") == str(len(written))
    for plot in ("#series", "#score"):
        assert driver.execute_script(SHADED, plot) == runs_of(flags), plot
    return flags


def bad_csvs_show_their_messages(driver, url: str, folder: Path, lines: list[str]) -> None:
    """The page's own message for a file it cannot read, the server's for values the model refuses."""
    from selenium.webdriver.common.by import By

    from tests.browser import error_shown, wait_for
    from tests.serving_helpers import request

    def upload(name: str, rows: list[str]) -> None:
        (folder / name).write_text("\n".join(rows) + "\n")
        driver.find_element(By.ID, "file").send_keys(str(folder / name))

    def shown(message: str) -> None:
        wait_for(lambda: message in error_shown(driver), f"the message {message!r}")

    upload("no_value.csv", ["timestamp,reading", *lines[1:]])
    shown("no_value.csv: the header must name a value column")
    upload("oops.csv", [*lines[:9], lines[9].split(",")[0] + ",oops", *lines[10:]])
    shown('oops.csv: line 10: value "oops" is not a number')
    assert not driver.find_element(By.ID, "result").is_displayed()  # no plot of the file before left
    short = [float(line.split(",")[1]) for line in lines[1:21]]  # 20 rows: less than one window
    status, reply = request(f"{url}/v1/models/autoencoder_anomaly:predict", {"inputs": {"values": [short]}})
    assert status == 400 and "send at least one window (64 values)" in reply["error"]
    upload("short.csv", lines[:21])
    shown(reply["error"])  # the server's message, as it gives it to any client


def test_page_shades_the_flagged_stretches_and_names_what_is_wrong_with_a_csv(trained, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.browser import labelled, on_a_phone, screenshot, served_page, text_of, wait_for

    series = synthetic_series(n=600, seed=5, anomalies=False)
    series.values[400:404] += 8  # a spike
    good = tmp_path / "spike.csv"
    good.write_text(series_csv(series))
    with served_page("autoencoder_anomaly", trained, tmp_path) as (driver, url):
        wait_for(lambda: "at least 64 rows" in text_of(driver, "#window"), "the window, from page.json")
        flags = scored_on_the_page(driver, url, good)
        assert any(flags[395:410]) and sum(flags) < 300  # the spike is flagged, the rest mostly not
        labelled(driver)
        screenshot(driver, "autoencoder_anomaly")
        bad_csvs_show_their_messages(driver, url, tmp_path, series_csv(series).splitlines())
        assert scored_on_the_page(driver, url, good) == flags  # the page still works
        assert not driver.find_element(By.ID, "error").is_displayed()
        on_a_phone(driver, "autoencoder_anomaly")


def test_the_run_folder_is_all_the_model_needs(trained, tmp_path):
    check_run_folder_is_all_it_needs("autoencoder_anomaly", trained, tmp_path)
