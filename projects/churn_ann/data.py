"""Customer churn tables: reading the CSV row by row, the stratified split, and the adapted FeatureSpace.

Two datasets share one code path, described by a `DatasetSpec`: IBM's Telco Customer Churn (7,043
customers, `Churn` Yes/No) and the bank churn data (10,000 customers, `Exited` 1/0). Each CSV is read with
its line numbers kept, so a malformed row is reported by line and skipped, never silently coerced.

Telco's one known quirk is handled on purpose: `TotalCharges` is blank for the 11 customers with
`tenure` 0 (not billed yet); a blank there becomes `tenure * MonthlyCharges`, which is 0 for them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras.utils import FeatureSpace
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from shared.config import RunConfig, UserError
from shared.data import RemoteFile, in_memory, locate
from shared.project import Splits

VALIDATION_SHARE, TEST_SHARE = 0.15, 0.15
SMOKE_ROWS = 1_200
PROBLEMS_SHOWN = 10  # bad training rows listed in metrics.json; all of them are counted


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


def spec_for(cfg: RunConfig) -> DatasetSpec:
    name = cfg.options.get("dataset", "telco")
    if name not in DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    return DATASETS[name]


@dataclass
class Table:
    """Rows read from a CSV: the raw text of every row, typed features of the good ones, and the bad ones."""

    raw: pd.DataFrame  # every data row as text, in file order, with its `line` number
    features: pd.DataFrame  # typed feature columns of the good rows (index: positions in `raw`)
    labels: np.ndarray | None  # 1 = churned, for the good rows; None when the file has no target column
    problems: dict[int, str]  # position in `raw` -> what is wrong with that row (line and column named)
    filled_blanks: dict[str, int]  # column -> blanks filled by the dataset's rule


def read_csv(path: Path, spec: DatasetSpec, need_target: bool) -> Table:
    """Reads a customers CSV; a missing column is an error, a bad row is recorded and skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path} is empty; expected a header row with {', '.join(spec.features)}")
            rows, lines = [], []
            for row in reader:
                if row:  # blank lines carry no customer
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV"
        ) from e
    except csv.Error as e:
        raise UserError(f"{path} is not a readable CSV: {e}") from e
    return parse_rows([c.strip() for c in header], rows, lines, spec, need_target, str(path))


def parse_rows(
    header: list[str],
    rows: list[list[str]],
    lines: list[int],
    spec: DatasetSpec,
    need_target: bool,
    source: str,
) -> Table:
    """Checks and types the rows of one table (see `read_csv`); `source` names it in messages."""
    required = spec.features + ((spec.target,) if need_target else ())
    missing = [name for name in required if name not in header]
    if missing:
        raise UserError(
            f"{source} has no column {', '.join(missing)}; its header has: {', '.join(header)}. "
            f"A {spec.remote.filename}-style file needs {', '.join(required)}"
        )
    problems: dict[int, str] = {}
    width = len(header)
    padded = []
    for i, row in enumerate(rows):
        if len(row) != width:
            problems[i] = f"line {lines[i]}: {len(row)} fields, the header has {width}"
        padded.append([value.strip() for value in (row + [""] * width)[:width]])
    raw = pd.DataFrame(padded, columns=header, dtype=object)
    raw.insert(0, "line", lines)

    features = pd.DataFrame(index=raw.index)
    for name in spec.strings:
        features[name] = raw[name]
    for name in spec.integers + spec.numbers:
        text = raw[name]
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = (values.isna() & (text != "")) | np.isinf(values.fillna(0))
        for i in np.flatnonzero(bad):
            problems.setdefault(int(i), f"line {lines[i]}: column {name}: {text.iat[i]!r} is not a number")
        if name in spec.integers:
            for i in np.flatnonzero(values.notna() & (values % 1 != 0)):
                problems.setdefault(
                    i, f"line {lines[i]}: column {name}: {text.iat[i]!r} is not a whole number"
                )
        features[name] = values
    for name, fill in spec.blank_fills.items():
        blank = (raw[name] == "").to_numpy()
        features.loc[blank, name] = fill(features)[blank]
    for name in spec.features:
        blank = (raw[name] == "").to_numpy()
        if name in spec.blank_fills:  # blank stays a problem only where the rule could not fill it
            blank = blank & features[name].isna().to_numpy()
        for i in np.flatnonzero(blank):
            problems.setdefault(int(i), f"line {lines[i]}: column {name} is blank")

    labels = None
    if spec.target in header:
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
    filled = {name: int((raw[name].iloc[good] == "").sum()) for name in spec.blank_fills}
    features = features.iloc[good]
    for name in spec.integers:
        features[name] = features[name].astype("int64")
    for name in spec.numbers:
        features[name] = features[name].astype("float32")
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


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def feature_space(spec: DatasetSpec) -> FeatureSpace:
    """One-hot categories with an out-of-vocabulary bucket, standardised numbers, concatenated."""
    return FeatureSpace(
        features={
            **{name: FeatureSpace.string_categorical(num_oov_indices=1) for name in spec.strings},
            **{name: FeatureSpace.integer_categorical(num_oov_indices=1) for name in spec.integers},
            **{name: FeatureSpace.float_normalized() for name in spec.numbers},
        },
        output_mode="concat",
    )


def columns_of(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """A frame as one array per feature column, typed as the serving signature takes them."""
    columns = {name: features[name].to_numpy(dtype=object).astype(str) for name in spec.strings}
    columns |= {name: features[name].to_numpy(np.int64) for name in spec.integers}
    columns |= {name: features[name].to_numpy(np.float32) for name in spec.numbers}
    return columns


def frame_of(dataset: tf.data.Dataset) -> tuple[pd.DataFrame, np.ndarray]:
    """A split (unbatched `(features, label, ...)`) back as a feature frame and its labels."""
    features, labels = in_memory(dataset)
    for name, values in features.items():
        if values.dtype == object:  # tf.string arrives as bytes: decode as UTF-8, not numpy's ASCII
            features[name] = np.char.decode(values.astype(bytes), "utf-8")
    return pd.DataFrame(features), labels


def load(cfg: RunConfig) -> Splits:
    spec = spec_for(cfg)
    cost = cfg.options.get("false_negative_cost")
    if cost is not None and not cost > 0:  # checked before training, though only evaluation uses it
        raise UserError(
            f"--false-negative-cost must be above 0 (a miss costs that many false alarms); got {cost}"
        )
    if cfg.smoke:
        header, rows = generate_rows(spec, SMOKE_ROWS, seed=cfg.seed)
        table = parse_rows(header, rows, list(range(2, len(rows) + 2)), spec, True, "generated data")
        source = "generated (--smoke)"
    else:
        path = locate(spec.remote, cfg.resolved_data_dir())
        table = read_csv(path, spec, need_target=True)
        source = str(path)
    per_class = np.bincount(table.labels, minlength=2)
    if per_class.min() < 10:
        reasons = "; ".join(list(table.problems.values())[:3])
        raise UserError(
            f"{source}: {per_class[1]} churned and {per_class[0]} other usable rows; at least 10 of each "
            f"are needed for a stratified split. {len(table.problems)} row(s) were bad"
            + (f", e.g. {reasons}" if reasons else "")
        )
    split_seed = cfg.options.get("split_seed", 42)
    rest_x, test_x, rest_y, test_y = train_test_split(
        table.features, table.labels, test_size=TEST_SHARE, stratify=table.labels, random_state=split_seed
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x,
        rest_y,
        test_size=VALIDATION_SHARE / (1 - TEST_SHARE),
        stratify=rest_y,
        random_state=split_seed,
    )
    weights = np.ones(len(train_y), np.float32)
    class_weight = cfg.options.get("class_weight", "balanced")
    if class_weight == "balanced":  # each class carries half the loss, however rare churn is
        per_class = compute_class_weight("balanced", classes=np.array([0, 1]), y=train_y)
        weights = per_class[train_y].astype(np.float32)
    train = tf.data.Dataset.from_tensor_slices((columns_of(train_x, spec), train_y, weights))
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # float16 cannot hold balances or their variance
    try:
        preprocessor = feature_space(spec)
        preprocessor.adapt(train.map(lambda features, *_: features).batch(1024))  # the training split only
        preprocessor.get_encoded_features()
    finally:
        keras.mixed_precision.set_global_policy(policy)
    info = {
        "dataset": cfg.options.get("dataset", "telco"),
        "source": source,
        "rows_read": len(table.raw),
        "rows_skipped": len(table.problems),
        "skipped_examples": list(table.problems.values())[:PROBLEMS_SHOWN],
        "blanks_filled": table.filled_blanks,
        "dropped_columns": list(spec.dropped),
        "target": f"{spec.target} ({spec.positive!r} = churned)",
        "sizes": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
        "churn_rate": {
            "train": round(float(train_y.mean()), 4),
            "validation": round(float(val_y.mean()), 4),
            "test": round(float(test_y.mean()), 4),
        },
        "class_weight": class_weight,
        "split_seed": split_seed,
    }
    if table.problems:
        shown = "; ".join(list(table.problems.values())[:3])
        print(f"warning: skipped {len(table.problems)} malformed row(s) of {source}: {shown}", flush=True)
    return Splits(
        train=train,
        validation=tf.data.Dataset.from_tensor_slices((columns_of(val_x, spec), val_y)),
        test=tf.data.Dataset.from_tensor_slices((columns_of(test_x, spec), test_y)),
        info=info,
        preprocessor=preprocessor,
    )


def encoded_width(splits: Splits) -> int:
    """How many numbers the adapted FeatureSpace turns one customer into."""
    return int(splits.preprocessor.get_encoded_features().shape[-1])
