"""Customer churn: the project's settings, the stratified split, and the FeatureSpace adapted on it.

The tables and how a CSV is read are in `table.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras.utils import FeatureSpace
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from projects.churn_ann.table import DATASETS, DatasetSpec, csv_text, generate_rows, read_csv
from shared import options
from shared.config import RunConfig, UserError
from shared.data import in_memory, locate
from shared.options import option
from shared.project import Splits

VALIDATION_SHARE, TEST_SHARE = 0.15, 0.15
SMOKE_ROWS = 1_200
PROBLEMS_SHOWN = 10  # bad training rows listed in metrics.json; all of them are counted
CLASS_WEIGHTS = ("balanced", "none")


@dataclass(frozen=True)
class Options:
    dataset: str = option(
        "telco",
        "telco: IBM's Telco Customer Churn; bank: the bank churn table",
        choices=tuple(sorted(DATASETS)),
    )
    class_weight: str = option(
        "balanced", "balanced: each class carries half the training loss", choices=CLASS_WEIGHTS
    )
    false_negative_cost: float | None = option(
        None,
        "choose the threshold by cost: a missed churner costs this many false alarms "
        "(default: the threshold with the best validation F1)",
    )
    split_seed: int = option(42, "seed of the stratified split")

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise UserError(f"--dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise UserError(
                f"--class-weight must be one of {', '.join(CLASS_WEIGHTS)}; got {self.class_weight!r}"
            )
        cost = self.false_negative_cost
        if cost is not None and not cost > 0:  # checked before training, though only the threshold uses it
            raise UserError(
                f"--false-negative-cost must be above 0 (a miss costs that many false alarms); got {cost}"
            )

    @property
    def spec(self) -> DatasetSpec:
        return DATASETS[self.dataset]


@dataclass
class ChurnState:
    """What a trained run needs beside its model and FeatureSpace, kept in its state.json."""

    dataset: str  # the DATASETS layout it was trained on: the columns it takes, the blank rules
    # numeric column -> its training "median", "min" and "max": the page's form starts at the median
    number_summaries: dict[str, dict[str, float]]
    # None: the threshold is the F1-best one; else a missed churner costs this many false alarms
    false_negative_cost: float | None
    # the churn probability from which a customer is flagged: chosen on the validation split once the
    # network is fitted (`evaluate.choose_network_threshold`), None until then
    threshold: float | None = None

    @property
    def threshold_chosen_by(self) -> str:
        cost = self.false_negative_cost
        return "max validation F1" if cost is None else f"validation cost, FN = {cost} x FP"


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
    chosen = options.read(Options, cfg)
    spec = chosen.spec
    if cfg.smoke:
        table = read_csv(
            csv_text(*generate_rows(spec, SMOKE_ROWS, seed=cfg.seed)), spec, True, "generated data"
        )
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
    rest_x, test_x, rest_y, test_y = train_test_split(
        table.features,
        table.labels,
        test_size=TEST_SHARE,
        stratify=table.labels,
        random_state=chosen.split_seed,
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x,
        rest_y,
        test_size=VALIDATION_SHARE / (1 - TEST_SHARE),
        stratify=rest_y,
        random_state=chosen.split_seed,
    )
    weights = np.ones(len(train_y), np.float32)
    if chosen.class_weight == "balanced":  # each class carries half the loss, however rare churn is
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
        "dataset": chosen.dataset,
        "source": source,
        "rows_read": len(table.raw),
        "rows_skipped": len(table.problems),
        "skipped_examples": list(table.problems.values())[:PROBLEMS_SHOWN],
        "blanks_filled": table.filled_blanks,
        "dropped_columns": list(spec.dropped),
        "target": spec.target_description,
        "sizes": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
        "churn_rate": {
            "train": round(float(train_y.mean()), 4),
            "validation": round(float(val_y.mean()), 4),
            "test": round(float(test_y.mean()), 4),
        },
        "class_weight": chosen.class_weight,
        "split_seed": chosen.split_seed,
    }
    if table.problems:
        shown = "; ".join(list(table.problems.values())[:3])
        print(f"warning: skipped {len(table.problems)} malformed row(s) of {source}: {shown}", flush=True)
    state = ChurnState(
        dataset=chosen.dataset,
        number_summaries={name: summary(train_x[name].to_numpy(np.float64)) for name in spec.numbers},
        false_negative_cost=chosen.false_negative_cost,
    )
    return Splits(
        train=train,
        validation=tf.data.Dataset.from_tensor_slices((columns_of(val_x, spec), val_y)),
        test=tf.data.Dataset.from_tensor_slices((columns_of(test_x, spec), test_y)),
        info=info,
        state=state,
        preprocessor=preprocessor,
    )


def summary(values: np.ndarray) -> dict[str, float]:
    """A numeric column's median and range, to two decimals as the page shows them."""
    return {
        "median": round(float(np.median(values)), 2),
        "min": round(float(values.min()), 2),
        "max": round(float(values.max()), 2),
    }


def encoded_width(splits: Splits) -> int:
    """How many numbers the adapted FeatureSpace turns one customer into."""
    return int(splits.preprocessor.get_encoded_features().shape[-1])
