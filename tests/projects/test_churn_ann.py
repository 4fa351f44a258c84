"""churn_ann through its command line, on a generated Telco-style CSV: training against the baselines,
serving, predicting, seeds, tune and the page (the CSV reading itself: test_churn_ann_table.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from projects.churn_ann.data import columns_of, frame_of, load
from projects.churn_ann.table import DATASETS, csv_text, generate_rows, read_csv, write_csv
from shared.config import RunConfig, UserError
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
from tests.serving_helpers import check_served_like_in_process

TELCO = DATASETS["telco"]


@pytest.fixture(scope="module")
def data_dir(session_dir) -> Path:
    """A generated Telco CSV with a learnable rule, blanks where Telco has them, and two broken rows."""
    header, rows = generate_rows(TELCO, 1500, seed=7)
    rows[10][header.index("MonthlyCharges")] = "n/a"
    rows[20] = rows[20][:3]
    root = session_dir / "churn_data"
    write_csv(root / TELCO.remote.dataset / TELCO.remote.filename, header, rows)
    return root


@pytest.fixture(scope="module")
def trained(session_dir, data_dir) -> Path:
    run_dir = session_dir / "churn_run"
    result = run_cli(
        "churn_ann",
        "train",
        *("--data-dir", str(data_dir), "--epochs", "12", "--cpu-replicas", "2", "--run-dir", str(run_dir)),
        cwd=session_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return run_dir


def test_train_on_raw_rows_beats_chance_and_reports_every_model(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_roc_auc"] > 0.75, metrics["test_roc_auc"]  # chance is 0.5
    for name in ("logistic_regression", "gradient_boosting"):
        assert 0.5 < metrics["baselines"][name]["test_roc_auc"] <= 1
    for key in ("test_pr_auc", "test_f1", "test_brier", "threshold"):
        assert 0 <= metrics[key] <= 1
    data = metrics["data"]
    assert data["rows_read"] == 1500 and data["rows_skipped"] == 2
    assert data["skipped_examples"][0] == "line 12: column MonthlyCharges: 'n/a' is not a number"
    assert data["blanks_filled"]["TotalCharges"] == 3
    assert sum(data["sizes"].values()) == 1498
    config = json.loads((trained / "config.json").read_text())
    assert config["runtime"]["replicas"] == 2 and config["run"]["options"]["dataset"] == "telco"
    for plot in ("roc_curves", "pr_curves", "calibration", "confusion_matrix", "permutation_importance"):
        assert (trained / "plots" / f"{plot}.png").is_file(), plot
    table = pd.read_csv(trained / "tables" / "test_scores_of_every_model.csv", index_col=0)
    assert list(table.index) == ["network", "logistic_regression", "gradient_boosting"]
    assert "gradient_boosting" in (trained / "report.md").read_text()
    importance = metrics["permutation_importance_roc_auc"]
    assert set(importance) == set(TELCO.features)
    # the rule uses gender, tenure and MonthlyCharges: each must matter more than the median column
    assert min(importance[c] for c in ("tenure", "MonthlyCharges")) > np.median(list(importance.values()))


def test_saved_model_takes_raw_columns_and_matches_keras_in_a_fresh_process(trained):
    import keras

    from shared.export import check_in_fresh_process, serve_saved_model

    header, rows = generate_rows(TELCO, 20, seed=99)
    table = read_csv(csv_text(header, rows), TELCO, True, "t")
    columns = columns_of(table.features, TELCO)
    preprocessor = keras.saving.load_model(str(trained / "preprocessor.keras"))
    preprocessor.get_encoded_features()
    model = keras.saving.load_model(str(trained / "model.keras"))
    expected = np.asarray(model(preprocessor(columns))).reshape(-1)
    differences = check_in_fresh_process(trained / "saved_model", columns, {"churn_probability": expected})
    assert differences["churn_probability"] <= 1e-5

    unseen = {name: values[:2].copy() for name, values in columns.items()}
    unseen["Contract"][:] = "Teleport subscription"  # never seen in training: out-of-vocabulary bucket
    unseen["SeniorCitizen"][:] = 7
    served = serve_saved_model(trained / "saved_model", unseen)["churn_probability"]
    assert served.shape == (2,) and np.all((served >= 0) & (served <= 1))

    unbilled = {name: values[:2].copy() for name, values in columns.items()}
    unbilled["tenure"][:] = [0.0, 3.0]
    unbilled["MonthlyCharges"][:] = [20.0, 20.0]
    filled = {**unbilled, "TotalCharges": np.array([0.0, 60.0], np.float32)}
    unbilled["TotalCharges"][:] = np.nan  # a blank TotalCharges: filled with tenure * MonthlyCharges
    probabilities = [
        serve_saved_model(trained / "saved_model", c)["churn_probability"] for c in (unbilled, filled)
    ]
    np.testing.assert_allclose(probabilities[0], probabilities[1], atol=1e-6)


def test_predict_scores_good_rows_and_lists_bad_ones(trained, tmp_path, session_dir):
    header, rows = generate_rows(TELCO, 6, seed=5)
    rows[1][header.index("tenure")] = "abc"
    rows[2] = rows[2][:4]
    rows[3][header.index("PaymentMethod")] = "Barter"
    path = write_csv(tmp_path / "customers.csv", header, rows)
    out = tmp_path / "scored.csv"
    result = run_cli("churn_ann", "predict", str(trained), str(path), "--out", str(out), cwd=session_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: line 3: column tenure: 'abc' is not a number" in result.stderr
    assert "line 4: 4 fields" in result.stderr
    scored = pd.read_csv(out, keep_default_na=False)
    assert len(scored) == 6 and list(scored["line"]) == [2, 3, 4, 5, 6, 7]
    good = scored["problem"] == ""
    assert list(good) == [True, False, False, True, True, True]  # the unseen payment method is scored
    probabilities = pd.to_numeric(scored.loc[good, "churn_probability"])
    assert probabilities.between(0, 1).all()
    assert set(scored.loc[good, "predicted_churn"]) <= {"yes", "no"}
    assert (scored.loc[~good, "churn_probability"] == "").all()

    missing = write_csv(tmp_path / "no_tenure.csv", [h for h in header if h != "tenure"], [["x"] * 20])
    result = run_cli("churn_ann", "predict", str(trained), str(missing), cwd=session_dir)
    assert result.returncode == 2 and "has no column tenure" in result.stderr


def test_missing_dataset_names_the_file_and_the_place(session_dir):
    result = run_cli("churn_ann", "train", "--dataset", "bank", "--epochs", "1", cwd=session_dir)
    assert result.returncode == 2
    assert "Churn_Modelling.csv" in result.stderr and "no-data/churn/Churn_Modelling.csv" in result.stderr


def test_seeds_on_the_bank_layout_reports_mean_and_spread(session_dir):
    folder = session_dir / "churn_seeds"
    args = ("seeds", "--n", "2", "--smoke", "--dataset", "bank", "--epochs", "2", "--run-dir", str(folder))
    result = run_cli("churn_ann", *args, cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["models"]) == {"network", "logistic_regression", "gradient_boosting"}
    auc = summary["models"]["network"]["test_roc_auc"]
    assert 0.5 < auc["mean"] <= 1 and auc["std"] >= 0
    seeds = [json.loads((folder / f"seed-{s}" / "config.json").read_text())["run"]["seed"] for s in (42, 43)]
    assert seeds == [42, 43]
    assert "# churn_ann over 2 seeds (mean ± std)" in (folder / "seeds.md").read_text()
    table = pd.read_csv(folder / "seeds.csv", index_col=0)
    assert list(table.index) == ["seed-42", "seed-43"]
    assert table["network test_roc_auc"].mean() == pytest.approx(auc["mean"])

    # the same folder continues this series: other settings are refused, not mixed into its table
    other = [a if a != "bank" else "telco" for a in args]
    result = run_cli("churn_ann", *other, cwd=session_dir)
    assert result.returncode == 2 and "holds a run started with other settings" in result.stderr


def test_tune_searches_the_batch_size_too(session_dir):
    directory = session_dir / "churn_tune"
    args = ("tune", "--smoke", "--epochs", "2", "--max-trials", "2", "--tuner", "random")
    result = run_cli("churn_ann", *args, "--run-dir", str(directory), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    best = json.loads((directory / "best_hparams.json").read_text())
    assert {"layers", "units", "dropout", "l2", "learning_rate", "batch_size"} <= set(best)


# --- the other handled mistakes, each fed once ------------------------------------------------------------


def test_seeds_needs_two_and_predict_needs_an_export(tmp_path):
    import argparse

    from projects.churn_ann import PROJECT, predict
    from shared.cli import build_parser, run

    args = build_parser(PROJECT).parse_args(
        ["seeds", "--n", "1", "--smoke", "--run-dir", str(tmp_path / "s")]
    )
    with pytest.raises(UserError, match="--n must be at least 2"):
        run(PROJECT, args)
    assert not (tmp_path / "s").exists()  # refused before the series folder is made
    (tmp_path / "config.json").write_text(json.dumps({"run": RunConfig(project="churn_ann").to_json()}))
    (tmp_path / "model.keras").write_text("")
    with pytest.raises(UserError, match="has no saved_model; run `export"):
        predict.run(argparse.Namespace(run=str(tmp_path), csv="c.csv", out=None))


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(trained, session_dir):
    header, rows = generate_rows(TELCO, 12, seed=98)
    table = read_csv(csv_text(header, rows), TELCO, True, "t")
    columns = {name: values.copy() for name, values in columns_of(table.features, TELCO).items()}
    columns["TotalCharges"][0] = np.nan  # a blank: JSON's NaN, filled inside the model as in training
    check_served_like_in_process(trained, "churn_ann", columns, cwd=session_dir)


def test_page_info_is_the_trained_vocabulary_medians_and_threshold(trained, data_dir):
    import keras

    page = json.loads((trained / "saved_model" / "assets.extra" / "page.json").read_text())
    assert [column["name"] for column in page["columns"]] == list(TELCO.features)
    assert page["threshold"] == json.loads((trained / "metrics.json").read_text())["threshold"]
    preprocessor = keras.saving.load_model(str(trained / "preprocessor.keras"))
    splits = load(RunConfig(project="churn_ann", data_dir=str(data_dir)))
    train, _ = frame_of(splits.train)
    for column in page["columns"]:
        name = column["name"]
        if column["kind"] == "choice":
            vocabulary = preprocessor.preprocessors[name].get_vocabulary(include_special_tokens=False)
            assert column["values"] == sorted(v.item() for v in vocabulary), name
            counts = train[name].value_counts()
            assert counts[column["default"]] == counts.max(), name  # the most frequent in training
        else:
            assert column["default"] == round(float(np.median(train[name].astype(float))), 2), name
    assert [c["name"] for c in page["columns"] if "blank" in c] == ["TotalCharges"]


def test_the_threshold_is_kept_in_state_json_for_export_and_evaluate(trained, data_dir, tmp_path):
    """Training chooses the threshold after fitting and keeps it in state.json; export (no data) and a later
    evaluate (the data) take it from there, neither choosing one again nor reading metrics.json."""
    from projects.churn_ann import PROJECT
    from shared.trained import load_state

    state = load_state(PROJECT, trained)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert state.threshold == metrics["threshold"] and state.dataset == "telco"
    assert state.threshold_chosen_by == metrics["threshold_chosen_by"] == "max validation F1"

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    saved = json.loads((run_dir / "state.json").read_text())
    saved["threshold"] = 0.123  # no split would choose this: only the file can have said it
    (run_dir / "state.json").write_text(json.dumps(saved))
    shutil.rmtree(run_dir / "saved_model")
    result = run_cli("churn_ann", "export", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    page = json.loads((run_dir / "saved_model" / "assets.extra" / "page.json").read_text())
    assert page["threshold"] == 0.123

    result = run_cli("churn_ann", "evaluate", str(run_dir), "--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["threshold"] == 0.123


def test_page_scores_the_form_like_the_rest_api(trained, session_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from shared.export import serve_saved_model
    from tests.browser import error_shown, exchanges, labelled, on_a_phone, screenshot, served_page, text_of

    threshold = json.loads((trained / "metrics.json").read_text())["threshold"]
    with served_page("churn_ann", trained, session_dir) as (driver, url):
        wait_for_form(driver)
        Select(driver.find_element(By.ID, "field-Contract")).select_by_visible_text("C")
        Select(driver.find_element(By.ID, "field-SeniorCitizen")).select_by_visible_text("1")
        typed(driver, "tenure", "3")
        typed(driver, "MonthlyCharges", "80.5")
        first = scored(driver, url, 1, threshold)["request"]["instances"][0]
        assert (first["Contract"], first["SeniorCitizen"], first["tenure"], first["MonthlyCharges"]) == (
            "C",
            1,
            3,
            80.5,
        )

        typed(driver, "tenure", "")  # a required number left empty: refused in the page, nothing sent
        driver.find_element(By.ID, "score").click()
        assert "tenure is empty: type a number" in error_shown(driver)
        assert text_of(driver, "#probability") == "-" and len(exchanges(driver)) == 1

        typed(driver, "tenure", "5")
        typed(driver, "TotalCharges", "")  # a blank TotalCharges: training's rule, tenure x MonthlyCharges
        exchange = scored(driver, url, 2, threshold)
        assert exchange["request"]["instances"][0]["TotalCharges"] == 5 * 80.5
        assert "TotalCharges was blank" in text_of(driver, "#filled")
        columns = {name: np.array([value]) for name, value in exchange["request"]["instances"][0].items()}
        columns |= {name: columns[name].astype(np.float32) for name in TELCO.numbers}
        columns["TotalCharges"][:] = np.nan  # the model's own fill agrees with the page's
        served = serve_saved_model(trained / "saved_model", columns)["churn_probability"][0]
        assert served == pytest.approx(exchange["reply"]["predictions"][0], abs=1e-6)
        labelled(driver)
        screenshot(driver, "churn_ann")
        on_a_phone(driver, "churn_ann")


def wait_for_form(driver) -> None:
    from selenium.webdriver.common.by import By

    from tests.browser import wait_for

    wait_for(lambda: driver.find_element(By.ID, "score").is_enabled(), "the form to be built from page.json")


def typed(driver, column: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, f"field-{column}")
    field.clear()
    field.send_keys(text)


def scored(driver, url: str, count: int, threshold: float) -> dict:
    """Submits the form, waits for the page's exchange number `count`, checks the REST API gives the same
    reply and the page shows its probability and the decision at the run's threshold; returns it."""
    from selenium.webdriver.common.by import By

    from tests.browser import exchanges, same_reply_from_the_api, text_of, wait_for

    driver.find_element(By.ID, "score").click()
    wait_for(lambda: len(exchanges(driver)) == count and text_of(driver, "#probability") != "-", "the score")
    exchange = exchanges(driver)[-1]
    probability = same_reply_from_the_api(url, exchange)["predictions"][0]
    assert text_of(driver, "#probability") == f"{probability:.3f}"
    decision = "Likely to churn" if probability >= threshold else "Likely to stay"
    assert text_of(driver, "#decision").startswith(decision) and f"{threshold:.3f}" in text_of(
        driver, "#decision"
    )
    assert f"{threshold:.3f}" in text_of(driver, "#threshold")
    assert not driver.find_element(By.ID, "error").is_displayed()
    return exchange


def test_the_run_folder_is_all_the_model_needs(trained, tmp_path):
    check_run_folder_is_all_it_needs("churn_ann", trained, tmp_path)
