"""`baseline [train flags]`: TF-IDF over words and word pairs with logistic regression, on the same split.

The bag-of-n-grams linear model is the standard from-scratch reference on IMDB (Maas et al. 2011; Wang and
Manning 2012): it says what the recurrent models' numbers are worth. It trains on the same reviews as
`train` (the same `--seed` and `--validation-reviews` hold out the same films), chooses its regularisation
strength on the validation reviews, and is scored once on the 25,000 test reviews. Results go to
`<folder>/baseline.json` (`--run-dir`, else runs/imdb_gru/baseline-<UTC time>).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from shared import reporting
from shared.cli import add_project_options, add_run_arguments, config_from_args
from shared.data import in_memory
from shared.series import series_folder

STRENGTHS = (1.0, 4.0, 16.0)  # logistic regression's C: inverse regularisation, chosen on validation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from projects.imdb_gru import PROJECT

    add_run_arguments(parser, PROJECT.defaults)
    add_project_options(parser, PROJECT)


def standardized(dataset: tf.data.Dataset) -> tuple[list[str], np.ndarray]:
    """A split's texts after the GRU's own standardisation (so both read the same words), and labels."""
    from projects.imdb_gru.data import standardize

    texts, labels = in_memory(dataset)
    return [text.decode("utf-8") for text in standardize(tf.constant(texts)).numpy()], labels


def fit_on_validation(train_x, train_y, val_x, val_y) -> tuple[TfidfVectorizer, LogisticRegression, dict]:
    """The features and the model with the C that does best on the validation reviews, and each C's
    validation accuracy. It never sees the test reviews."""
    # words and word pairs seen in at least two training reviews, split at spaces as the GRU's
    # vectorizer does; log-scaled counts, as is usual
    features = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    train_features, val_features = features.fit_transform(train_x), features.transform(val_x)
    fitted = {c: LogisticRegression(C=c, max_iter=2000).fit(train_features, train_y) for c in STRENGTHS}
    validation = {c: float(model.score(val_features, val_y)) for c, model in fitted.items()}
    return features, fitted[max(validation, key=validation.get)], validation


def run(args: argparse.Namespace) -> int:
    from projects.imdb_gru import PROJECT, data

    cfg = config_from_args(PROJECT, args)
    splits = data.load(cfg)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        standardized(split) for split in (splits.train, splits.validation, splits.test)
    )
    start = time.perf_counter()
    features, model, validation = fit_on_validation(train_x, train_y, val_x, val_y)
    probabilities = model.predict_proba(features.transform(test_x))[:, 1]
    result = {
        "model": "TF-IDF of words and word pairs, logistic regression",
        "features": len(features.vocabulary_),
        "validation_accuracy": {str(c): round(a, 4) for c, a in validation.items()},
        "chosen_C": model.C,
        "test_accuracy": float(((probabilities > 0.5) == test_y).mean()),
        "test_roc_auc": float(roc_auc_score(test_y, probabilities)),
        "seconds": round(time.perf_counter() - start, 1),
        "data": splits.info,
    }
    folder = series_folder(PROJECT, cfg, "baseline")
    folder.mkdir(parents=True, exist_ok=True)
    reporting.write_json(folder / "baseline.json", result)
    print(f"test accuracy {result['test_accuracy']:.4f}, ROC-AUC {result['test_roc_auc']:.4f} (C={model.C})")
    print(folder)
    return 0
