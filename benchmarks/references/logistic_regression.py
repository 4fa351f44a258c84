"""Logistic regression on one-hot categories and standardised numbers: scikit-learn's baseline for churn_ann.

Source: scikit-learn's user guide, "Column Transformer with Mixed Types" (the pipeline below) and the
LogisticRegression reference page (https://scikit-learn.org/stable/modules/generated/
sklearn.linear_model.LogisticRegression.html). Fitted on the training split, scored once on the test split
by `roc_auc_score`, as churn_ann's own evaluate scores its network ("test_roc_auc" in metrics.json).

Changed from the source, and why:
- the columns are churn_ann's own (its `DatasetSpec`): its string and integer categories are one-hot
  encoded, its numeric columns imputed and standardised. The integer columns (0/1 flags, product counts)
  are categories there, as in the project's FeatureSpace, so they are here too;
- no SelectPercentile(chi2) after the one-hot encoder: the baseline is the plain pipeline;
- LogisticRegression(max_iter=1000) instead of the default 100, so the solver converges on ~50 columns;
- the training split's sample weights (churn_ann's balanced class weights) are not used: the source fits
  unweighted, and ROC-AUC does not depend on the decision threshold that weighting moves.
"""

from __future__ import annotations

import time

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from benchmarks.references import Budget, Measured
from projects.churn_ann.data import DATASETS, frame_of
from shared.project import Splits

TITLE = "scikit-learn: LogisticRegression in a Pipeline with a ColumnTransformer (mixed types)"
SOURCE = "https://scikit-learn.org/stable/auto_examples/compose/plot_column_transformer_mixed_types.html"
KIND = "final_metric"


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    # budget, target and batch_size do not apply: the solver runs to convergence on the whole split
    spec = DATASETS[splits.info["dataset"]]
    train_x, train_y = frame_of(splits.train)  # raw columns, strings decoded; the weights are dropped
    test_x, test_y = frame_of(splits.test)

    numeric_transformer = Pipeline(
        steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())]
    )
    categorical_transformer = OneHotEncoder(handle_unknown="ignore")
    preprocessor = ColumnTransformer(
        transformers=[
            ("num", numeric_transformer, list(spec.numbers)),
            ("cat", categorical_transformer, list(spec.strings + spec.integers)),
        ]
    )
    clf = Pipeline(steps=[("preprocessor", preprocessor), ("classifier", LogisticRegression(max_iter=1000))])

    start = time.perf_counter()
    clf.fit(train_x, train_y)
    seconds = time.perf_counter() - start

    churn = clf.predict_proba(test_x)[:, 1]
    return Measured(
        "test ROC-AUC",
        float(roc_auc_score(test_y, churn)),
        seconds=round(seconds, 2),
        details={
            "test_pr_auc": float(average_precision_score(test_y, churn)),
            "solver_iterations": int(clf.named_steps["classifier"].n_iter_[0]),
            "encoded_columns": len(clf.named_steps["preprocessor"].get_feature_names_out()),
            "train_size": len(train_y),
            "test_size": len(test_y),
            "seed": seed,  # unused: lbfgs is deterministic
        },
    )
