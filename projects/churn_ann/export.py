"""Serving signature: one tensor per raw column (strings, int64 flags, float32 numbers) in, churn out.

The adapted FeatureSpace is inside the SavedModel, so a server sends customer rows as they are in the CSV;
a category never seen in training falls into the out-of-vocabulary bucket instead of failing, and a blank
`TotalCharges` sent as NaN is filled by the rule training used (`tenure * MonthlyCharges`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from projects.churn_ann.data import ChurnState, columns_of, frame_of
from projects.churn_ann.table import DATASETS
from shared.project import ServingEndpoint, Splits, Trained

EXAMPLES = 64
# The page cannot send NaN (JSON has none: the browser's JSON.stringify writes null), so it fills a blank
# itself with the rule training used, which it reads here in a form JavaScript can apply. The tests check
# each description against DatasetSpec.blank_fills.
BLANK_RULES = {"TotalCharges": {"product_of": ["tenure", "MonthlyCharges"]}}


def examples(splits: Splits) -> dict[str, np.ndarray]:
    """The first test customers, one array per raw column, kept in the run folder to check its exports."""
    features, _ = frame_of(splits.test.take(EXAMPLES))
    return columns_of(features, DATASETS[splits.state.dataset])  # text as str arrays: .npz needs no pickle


def serving_endpoint(model: keras.Model, trained: Trained) -> ServingEndpoint:
    preprocessor = trained.preprocessor
    spec = DATASETS[trained.state.dataset]

    def serve(columns: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        columns = dict(columns)
        for name, fill in spec.blank_fills.items():  # NaN where the CSV is blank: the rule training used
            columns[name] = tf.where(tf.math.is_nan(columns[name]), fill(columns), columns[name])
        churn = model(preprocessor(columns), training=False)
        return {"churn_probability": tf.reshape(churn, [-1])}

    signature = {
        **{name: tf.TensorSpec([None], tf.string, name) for name in spec.strings},
        **{name: tf.TensorSpec([None], tf.int64, name) for name in spec.integers},
        **{name: tf.TensorSpec([None], tf.float32, name) for name in spec.numbers},
    }
    return serve, [signature], trained.examples


def page_info(trained: Trained) -> dict[str, Any]:
    """The form's fields, from the run's adapted FeatureSpace and its state, and its threshold.

    A category's choices are the vocabulary the saved FeatureSpace learned (anything else would only land
    in the out-of-vocabulary bucket); its default is the most frequent one. A number's default is its
    training median, and its training range is shown beside it. The threshold is the one chosen on the
    validation split after fitting.
    """
    state: ChurnState = trained.state
    spec = DATASETS[state.dataset]
    columns: list[dict[str, Any]] = []
    for name in spec.strings + spec.integers:
        lookup = trained.preprocessor.preprocessors[name]
        vocabulary = [_json_value(v) for v in lookup.get_vocabulary(include_special_tokens=False)]
        columns.append(
            {
                "name": name,
                "kind": "choice",
                "type": "string" if name in spec.strings else "int64",
                "values": sorted(vocabulary),
                "default": vocabulary[0],  # a lookup's vocabulary is ordered by frequency
            }
        )
    for name in spec.numbers:
        summary = state.number_summaries[name]
        column = {
            "name": name,
            "kind": "number",
            "type": "float32",
            "default": summary["median"],
            "min": summary["min"],
            "max": summary["max"],
        }
        if name in spec.blank_fills:
            column["blank"] = BLANK_RULES[name]
        columns.append(column)
    return {
        "columns": columns,
        "target": spec.target_description,
        "threshold": state.threshold,
        "threshold_chosen_by": state.threshold_chosen_by,
    }


def _json_value(value: Any) -> Any:
    """A vocabulary entry as plain JSON: str or int, not NumPy's types."""
    return value.item() if isinstance(value, np.generic) else value
