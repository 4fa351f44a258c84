"""churn_ann without training: reading customers CSVs (their quirks and bad rows, each named by line), the
settings checked before any data is read, and the threshold choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from projects.churn_ann.data import columns_of, frame_of, load
from projects.churn_ann.evaluate import choose_threshold
from projects.churn_ann.table import DATASETS, csv_text, generate_rows, read_csv, write_csv
from shared.config import RunConfig, UserError
from tests.conftest import run_cli

TELCO = DATASETS["telco"]


def telco_rows(n: int = 40, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    return generate_rows(TELCO, n, seed)


def test_blank_total_charges_are_filled_from_tenure_and_monthly_charges():
    header, rows = telco_rows()
    tenure, monthly, total = (header.index(c) for c in ("tenure", "MonthlyCharges", "TotalCharges"))
    rows[3][tenure], rows[3][monthly], rows[3][total] = "0", "29.85", " "
    rows[5][tenure], rows[5][monthly], rows[5][total] = "2", "10", ""
    table = read_csv(csv_text(header, rows), TELCO, True, "t")
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
    table = read_csv(csv_text(header, rows), TELCO, True, "t")
    assert table.problems == {0: "line 2: column MonthlyCharges: 'inf' is not a number"}
    dataset = tf.data.Dataset.from_tensor_slices((columns_of(table.features, TELCO), table.labels))
    features, labels = frame_of(dataset)
    assert features.loc[0, "PaymentMethod"] == "Transferencia en España"
    assert list(labels) == list(table.labels)


def test_bad_settings_are_refused_before_any_data_is_read(tmp_path):
    for given, message in (
        ({"false_negative_cost": 0.0}, "--false-negative-cost must be above 0"),
        ({"false_negative_cost": float("nan")}, "--false-negative-cost must be above 0"),
        ({"dataset": "retail"}, "--dataset must be one of telco, bank; got 'retail'"),
        ({"class_weight": "heavy"}, "--class-weight must be one of balanced, none"),
    ):
        with pytest.raises(UserError, match=message):  # tmp_path holds no dataset: not read
            load(RunConfig(project="churn_ann", data_dir=str(tmp_path), options=given))
    result = run_cli("churn_ann", "train", "--false-negative-cost", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "--false-negative-cost must be above 0" in result.stderr


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
    header, _ = telco_rows()
    huge.write_text(",".join(header) + "\n1," + "x" * 200_000 + "\n")  # past csv's field size limit
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


def test_the_pages_blank_rules_are_the_datasets_own():
    """The page fills a blank itself (JSON has no NaN) with export.BLANK_RULES: the rule training uses."""
    from projects.churn_ann.export import BLANK_RULES

    for spec in DATASETS.values():
        for name, fill in spec.blank_fills.items():
            frame = pd.DataFrame({column: [3.0, 0.5, 12.25] for column in spec.numbers})
            frame[name] = np.nan
            product = np.prod([frame[column] for column in BLANK_RULES[name]["product_of"]], axis=0)
            np.testing.assert_array_equal(fill(frame), product)
