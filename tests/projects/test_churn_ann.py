"""churn_ann: reading real-world CSV quirks, and training, serving and predicting on generated customers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from projects.churn_ann.data import (
    DATASETS,
    columns_of,
    frame_of,
    generate_rows,
    load,
    parse_rows,
    read_csv,
    write_csv,
)
from projects.churn_ann.evaluate import choose_threshold
from shared.config import RunConfig, UserError
from tests.conftest import last_line, run_cli
from tests.serving_helpers import check_served_like_in_process

TELCO = DATASETS["telco"]


def telco_rows(n: int = 40, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    return generate_rows(TELCO, n, seed)


def test_blank_total_charges_are_filled_from_tenure_and_monthly_charges():
    header, rows = telco_rows()
    tenure, monthly, total = (header.index(c) for c in ("tenure", "MonthlyCharges", "TotalCharges"))
    rows[3][tenure], rows[3][monthly], rows[3][total] = "0", "29.85", " "
    rows[5][tenure], rows[5][monthly], rows[5][total] = "2", "10", ""
    table = parse_rows(header, rows, list(range(2, 42)), TELCO, True, "t")
    assert not table.problems
    assert table.filled_blanks["TotalCharges"] >= 2
    assert table.features.loc[3, "TotalCharges"] == 0.0
    assert table.features.loc[5, "TotalCharges"] == 20.0
    assert set(table.labels) <= {0, 1} and len(table.labels) == 40


def test_bad_rows_are_named_by_line_and_column_and_skipped(tmp_path):
    header, rows = telco_rows()
    rows[0][header.index("tenure")] = "twelve"
    rows[1] = rows[1][:5]  # a short row
    rows[2][header.index("SeniorCitizen")] = "0.5"
    rows[3][header.index("Churn")] = "Maybe"
    rows[4][header.index("Contract")] = ""
    table = read_csv(write_csv(tmp_path / "c.csv", header, rows), TELCO, need_target=True)
    assert table.problems == {
        0: "line 2: column tenure: 'twelve' is not a number",
        1: f"line 3: 5 fields, the header has {len(header)}",
        2: "line 4: column SeniorCitizen: '0.5' is not a whole number",
        3: "line 5: column Churn: 'Maybe' is neither 'Yes' nor 'No'",
        4: "line 6: column Contract is blank",
    }
    assert len(table.features) == len(rows) - 5 and len(table.labels) == len(rows) - 5
    assert 0 not in table.features.index


def test_infinite_numbers_are_bad_rows_and_text_stays_utf8():
    header, rows = telco_rows()
    rows[0][header.index("MonthlyCharges")] = "inf"
    rows[1][header.index("PaymentMethod")] = "Transferencia en España"
    table = parse_rows(header, rows, list(range(2, 42)), TELCO, True, "t")
    assert table.problems == {0: "line 2: column MonthlyCharges: 'inf' is not a number"}
    dataset = tf.data.Dataset.from_tensor_slices((columns_of(table.features, TELCO), table.labels))
    features, labels = frame_of(dataset)
    assert features.loc[0, "PaymentMethod"] == "Transferencia en España"
    assert list(labels) == list(table.labels)


def test_a_threshold_cost_must_be_positive():
    cfg = RunConfig(project="churn_ann", smoke=True, options={"false_negative_cost": 0.0})
    with pytest.raises(UserError, match="--false-negative-cost must be above 0"):
        load(cfg)


def test_a_missing_column_is_an_error_that_names_it(tmp_path):
    header, rows = telco_rows()
    keep = [i for i, name in enumerate(header) if name != "MonthlyCharges"]
    path = write_csv(tmp_path / "c.csv", [header[i] for i in keep], [[r[i] for i in keep] for r in rows])
    with pytest.raises(UserError, match="has no column MonthlyCharges"):
        read_csv(path, TELCO, need_target=True)
    assert len(read_csv(write_csv(tmp_path / "d.csv", header[:-1], [r[:-1] for r in rows]), TELCO, False).raw)


def test_threshold_is_chosen_for_f1_or_for_a_cost():
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.3).astype(int)
    scores = np.clip(0.3 * labels + rng.normal(0.35, 0.2, 2000), 0, 1)
    by_f1 = choose_threshold(labels, scores, None)
    expensive_misses = choose_threshold(labels, scores, 20.0)
    cheap_misses = choose_threshold(labels, scores, 0.2)
    assert expensive_misses < by_f1 < cheap_misses


# --- through the command line, on a generated Telco-style CSV -------------------------------------------


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
    table = parse_rows(header, rows, list(range(2, 22)), TELCO, True, "t")
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
    assert "±" in (folder / "summary.md").read_text()

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


def test_unreadable_csv_files_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="is empty; expected a header row"):
        read_csv(empty, TELCO, need_target=True)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("customerID,gender\n1,Fran\xe7ois\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"is not UTF-8 text .* save it as UTF-8 CSV"):
        read_csv(latin1, TELCO, need_target=True)
    huge = tmp_path / "huge.csv"
    huge.write_text("customerID,gender\n1," + "x" * 200_000 + "\n")  # past csv's field size limit
    with pytest.raises(UserError, match="is not a readable CSV"):
        read_csv(huge, TELCO, need_target=True)


def test_too_few_usable_rows_say_why(tmp_path):
    header, rows = telco_rows(n=40)
    for row in rows[:35]:
        row[header.index("tenure")] = "soon"
    write_csv(tmp_path / "churn" / TELCO.remote.filename, header, rows)
    with pytest.raises(
        UserError, match=r"at least 10 of each .* 35 row\(s\) were bad, e\.g\. line 2: column tenure"
    ):
        load(RunConfig(project="churn_ann", data_dir=str(tmp_path)))


def test_seeds_needs_two_and_predict_needs_an_export(tmp_path):
    import argparse

    from projects.churn_ann import predict, seeds

    with pytest.raises(UserError, match="--n must be at least 2"):
        seeds.run(argparse.Namespace(n=1))
    (tmp_path / "config.json").write_text(json.dumps({"run": RunConfig(project="churn_ann").to_json()}))
    (tmp_path / "model.keras").write_text("")
    with pytest.raises(UserError, match="has no saved_model; run `export"):
        predict.run(argparse.Namespace(run=str(tmp_path), csv="c.csv", out=None))


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(trained, session_dir):
    header, rows = generate_rows(TELCO, 12, seed=98)
    table = parse_rows(header, rows, list(range(2, 14)), TELCO, True, "t")
    columns = {name: values.copy() for name, values in columns_of(table.features, TELCO).items()}
    columns["TotalCharges"][0] = np.nan  # a blank: JSON's NaN, filled inside the model as in training
    check_served_like_in_process(trained, "churn_ann", columns, cwd=session_dir)


def test_the_pages_blank_rules_are_the_datasets_own():
    """The page fills a blank itself (JSON has no NaN) with export.BLANK_RULES: the rule training uses."""
    from projects.churn_ann.export import BLANK_RULES

    for spec in DATASETS.values():
        for name, fill in spec.blank_fills.items():
            frame = pd.DataFrame({column: [3.0, 0.5, 12.25] for column in spec.numbers})
            frame[name] = np.nan
            product = np.prod([frame[column] for column in BLANK_RULES[name]["product_of"]], axis=0)
            np.testing.assert_array_equal(fill(frame), product)


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


def test_export_on_its_own_keeps_the_threshold_evaluation_chose(trained, data_dir, tmp_path):
    """`export` evaluates nothing: the threshold in page.json comes from the run's metrics.json."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    shutil.rmtree(run_dir / "saved_model")
    result = run_cli("churn_ann", "export", str(run_dir), "--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    page = json.loads((run_dir / "saved_model" / "assets.extra" / "page.json").read_text())
    assert page["threshold"] == json.loads((trained / "metrics.json").read_text())["threshold"]


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
