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

from projects.churn_ann.data import DATASETS, frame_of
from shared.project import ServingEndpoint, Splits

EXAMPLES = 64
# The page cannot send NaN (JSON has none: the browser's JSON.stringify writes null), so it fills a blank
# itself with the rule training used, which it reads here in a form JavaScript can apply. The tests check
# each description against DatasetSpec.blank_fills.
BLANK_RULES = {"TotalCharges": {"product_of": ["tenure", "MonthlyCharges"]}}


def serving_endpoint(model: keras.Model, splits: Splits) -> ServingEndpoint:
    preprocessor = splits.preprocessor
    blank_fills = DATASETS[splits.info["dataset"]].blank_fills

    def serve(columns: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        columns = dict(columns)
        for name, fill in blank_fills.items():  # NaN where the CSV is blank: the rule training used
            columns[name] = tf.where(tf.math.is_nan(columns[name]), fill(columns), columns[name])
        churn = model(preprocessor(columns), training=False)
        return {"churn_probability": tf.reshape(churn, [-1])}

    features, _ = frame_of(splits.test.take(EXAMPLES))
    examples = {name: _plain(features[name].to_numpy()) for name in features.columns}
    signature = {
        name: tf.TensorSpec([None], tf.string if values.dtype.kind in "OUS" else values.dtype, name)
        for name, values in examples.items()
    }
    return serve, [signature], examples


def _plain(values: np.ndarray) -> np.ndarray:
    """Text as a fixed-width unicode array: it saves to .npz without pickling, unlike object arrays."""
    return values.astype(str) if values.dtype == object else values


def page_info(splits: Splits) -> dict[str, Any]:
    """The form's fields, from the run's own training split and adapted FeatureSpace, and its threshold.

    A category's choices are the vocabulary the saved FeatureSpace learned (anything else would only land
    in the out-of-vocabulary bucket); its default is the most frequent one. A number's default is its
    training median, and its training range is shown beside it. The threshold is the one `evaluate` chose
    on the validation split; `train` evaluates before it exports, so it is there, but `export` on its own
    evaluates nothing and the page then says it has none.
    """
    spec = DATASETS[splits.info["dataset"]]
    train, _ = frame_of(splits.train)
    columns: list[dict[str, Any]] = []
    for name in spec.strings + spec.integers:
        lookup = splits.preprocessor.preprocessors[name]
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
        values = train[name].to_numpy(np.float64)
        column = {
            "name": name,
            "kind": "number",
            "type": "float32",
            "default": round(float(np.median(values)), 2),
            "min": round(float(values.min()), 2),
            "max": round(float(values.max()), 2),
        }
        if name in spec.blank_fills:
            column["blank"] = BLANK_RULES[name]
        columns.append(column)
    info = {"columns": columns, "target": splits.info["target"]}
    if "threshold" in splits.info:
        info["threshold"] = splits.info["threshold"]
        info["threshold_chosen_by"] = splits.info["threshold_chosen_by"]
    return info


def _json_value(value: Any) -> Any:
    """A vocabulary entry as plain JSON: str or int, not NumPy's types."""
    return value.item() if isinstance(value, np.generic) else value
