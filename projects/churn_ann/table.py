"""The churn tables: their layouts (`DatasetSpec`), and reading a customers CSV row by row into typed columns.

Two datasets share one code path, described by a `DatasetSpec`: IBM's Telco Customer Churn (7,043
customers, `Churn` Yes/No) and the bank churn data (10,000 customers, `Exited` 1/0). Each CSV is read with
its line numbers kept (`shared.csv_rows`), so a malformed row is reported by line and skipped, never
silently coerced.

Telco's one known quirk is handled on purpose: `TotalCharges` is blank for the 11 customers with
`tenure` 0 (not billed yet); a blank there becomes `tenure * MonthlyCharges`, which is 0 for them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shared.csv_rows import read_rows
from shared.data import RemoteFile


@dataclass(frozen=True)
class DatasetSpec:
    remote: RemoteFile
    target: str
    positive: str  # the target value that means "churned"
    negative: str
    dropped: tuple[str, ...]  # identifiers: no signal, only memorisation
    strings: tuple[str, ...]  # string categories (one-hot, with an out-of-vocabulary bucket)
    integers: tuple[str, ...]  # integer categories (0/1 flags, small counts)
    numbers: tuple[str, ...]  # numeric columns (standardised)
    # a blank in one of these columns is filled by the function, not an error
    blank_fills: dict[str, Callable[[pd.DataFrame], pd.Series]] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        return self.strings + self.integers + self.numbers

    @property
    def target_description(self) -> str:
        return f"{self.target} ({self.positive!r} = churned)"


def _unbilled_total(frame: pd.DataFrame) -> pd.Series:
    return frame["tenure"] * frame["MonthlyCharges"]


DATASETS = {
    "telco": DatasetSpec(
        remote=RemoteFile(
            dataset="churn",
            filename="WA_Fn-UseC_-Telco-Customer-Churn.csv",
            url="https://raw.githubusercontent.com/IBM/telco-customer-churn-on-icp4d/"
            "d5371f5d83a446ad5673cbcca3b814b926491f8a/data/Telco-Customer-Churn.csv",
            sha256="16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91",
        ),
        target="Churn",
        positive="Yes",
        negative="No",
        dropped=("customerID",),
        strings=(
            "gender",
            "Partner",
            "Dependents",
            "PhoneService",
            "MultipleLines",
            "InternetService",
            "OnlineSecurity",
            "OnlineBackup",
            "DeviceProtection",
            "TechSupport",
            "StreamingTV",
            "StreamingMovies",
            "Contract",
            "PaperlessBilling",
            "PaymentMethod",
        ),
        integers=("SeniorCitizen",),
        numbers=("tenure", "MonthlyCharges", "TotalCharges"),
        blank_fills={"TotalCharges": _unbilled_total},
    ),
    "bank": DatasetSpec(
        remote=RemoteFile(
            dataset="churn",
            filename="Churn_Modelling.csv",
            url="https://raw.githubusercontent.com/VeNoM63/ANN-Classification-Churn-Modelling/"
            "bae802801aaad61a64516e53ce4bde28e965f102/Churn_Modelling.csv",
        ),
        target="Exited",
        positive="1",
        negative="0",
        dropped=("RowNumber", "CustomerId", "Surname"),
        strings=("Geography", "Gender"),
        integers=("NumOfProducts", "HasCrCard", "IsActiveMember"),
        numbers=("CreditScore", "Age", "Tenure", "Balance", "EstimatedSalary"),
    ),
}


@dataclass
class Table:
    """Rows read from a CSV: the raw text of every row, typed features of the good ones, and the bad ones."""

    raw: pd.DataFrame  # every data row as text, in file order, with its `line` number
    features: pd.DataFrame  # typed feature columns of the good rows (index: positions in `raw`)
    labels: np.ndarray | None  # 1 = churned, for the good rows; None when the file has no target column
    problems: dict[int, str]  # position in `raw` -> what is wrong with that row (line and column named)
    filled_blanks: dict[str, int]  # column -> blanks filled by the dataset's rule


def read_csv(source: Path | str, spec: DatasetSpec, need_target: bool, name: str | None = None) -> Table:
    """A customers CSV file (a Path) or CSV text (a str, named `name` in messages): a missing column is
    an error, a bad row is recorded by its line and skipped."""
    required = spec.features + ((spec.target,) if need_target else ())
    rows = read_rows(
        source, required, name=name, hint=f"A {spec.remote.filename}-style file needs {', '.join(required)}"
    )
    raw, lines, problems = rows.cells, rows.cells["line"].to_numpy(), dict(rows.ragged)

    features = pd.DataFrame(index=raw.index)
    for column in spec.strings:
        features[column] = raw[column]
    for column in spec.integers + spec.numbers:
        text = raw[column]
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = (values.isna() & (text != "")) | np.isinf(values.fillna(0))
        for i in np.flatnonzero(bad):
            problems.setdefault(int(i), f"line {lines[i]}: column {column}: {text.iat[i]!r} is not a number")
        if column in spec.integers:
            for i in np.flatnonzero(values.notna() & (values % 1 != 0)):
                problems.setdefault(
                    int(i), f"line {lines[i]}: column {column}: {text.iat[i]!r} is not a whole number"
                )
        features[column] = values
    for column, fill in spec.blank_fills.items():
        blank = (raw[column] == "").to_numpy()
        features.loc[blank, column] = fill(features)[blank]
    for column in spec.features:
        blank = (raw[column] == "").to_numpy()
        if column in spec.blank_fills:  # blank stays a problem only where the rule could not fill it
            blank = blank & features[column].isna().to_numpy()
        for i in np.flatnonzero(blank):
            problems.setdefault(int(i), f"line {lines[i]}: column {column} is blank")

    labels = None
    if spec.target in raw.columns:
        target = raw[spec.target]
        known = target.isin([spec.positive, spec.negative])
        if need_target:
            for i in np.flatnonzero(~known.to_numpy()):
                problems.setdefault(
                    int(i),
                    f"line {lines[i]}: column {spec.target}: {target.iat[i]!r} is neither "
                    f"{spec.positive!r} nor {spec.negative!r}",
                )
        labels = (target == spec.positive).to_numpy(np.int32)

    good = np.setdiff1d(np.arange(len(raw)), list(problems))
    filled = {column: int((raw[column].iloc[good] == "").sum()) for column in spec.blank_fills}
    features = features.iloc[good]
    for column in spec.integers:
        features[column] = features[column].astype("int64")
    for column in spec.numbers:
        features[column] = features[column].astype("float32")
    return Table(
        raw=raw,
        features=features,
        labels=None if labels is None else labels[good],
        problems=dict(sorted(problems.items())),
        filled_blanks=filled,
    )


def generate_rows(spec: DatasetSpec, n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """A made-up table in the spec's layout whose churn follows a rule a small network can learn.

    Churn is likelier for category "A" of the first string column, for low values of the first numeric
    column and high values of the second. A few blanks land where the spec fills them.
    """
    rng = np.random.default_rng(seed)
    columns = {name: rng.choice(["A", "B", "C"], n) for name in spec.strings}
    columns |= {name: rng.integers(0, 3, n) for name in spec.integers}
    numbers = {name: rng.normal(50, 20, n).round(2) for name in spec.numbers}
    first, second = (numbers[name] for name in spec.numbers[:2])
    logit = 1.5 * (columns[spec.strings[0]] == "A") - 0.06 * (first - 50) + 0.06 * (second - 50) - 1.0
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    columns |= {name: values.astype(str) for name, values in numbers.items()}
    for name in spec.blank_fills:
        columns[name][rng.choice(n, size=max(1, n // 500), replace=False)] = ""
    columns |= {name: [f"id-{i}" for i in range(n)] for name in spec.dropped}
    columns[spec.target] = np.where(churned, spec.positive, spec.negative)
    header = list(spec.dropped + spec.features + (spec.target,))
    rows = [[str(columns[name][i]) for name in header] for i in range(n)]
    return header, rows


def csv_text(header: list[str], rows: Iterable[list[str]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(header, rows), encoding="utf-8")
    return path
