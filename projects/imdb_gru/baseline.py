"""`baseline [train flags]`: TF-IDF over words and word pairs with logistic regression, on the same split.

The bag-of-n-grams linear model is the standard from-scratch reference on IMDB (Maas et al. 2011; Wang and
Manning 2012): it says what the recurrent models' numbers are worth. It trains on the same reviews as
`train` (the same `--seed` and `--validation-reviews` hold out the same films), chooses its regularisation
strength on the validation reviews, and is scored once on the 25,000 test reviews. Results go to
`<folder>/baseline.json` (`--run-dir`, else runs/imdb_gru/baseline-<UTC time>).
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from shared import reporting
from shared.cli import add_project_options, add_run_arguments, config_from_args
from shared.runner import series_folder

STRENGTHS = (1.0, 4.0, 16.0)  # logistic regression's C: inverse regularisation, chosen on validation
NOT_WORD = re.compile(r"<br\s*/?>|[\W_]+")  # the vectorizer's standardisation: breaks and non-letters


def standardize(text: str) -> str:
    return NOT_WORD.sub(" ", text.lower())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from projects.imdb_gru import PROJECT

    add_run_arguments(parser, PROJECT.defaults)
    add_project_options(parser, PROJECT)


def texts_and_labels(dataset) -> tuple[list[str], np.ndarray]:
    pairs = list(dataset.as_numpy_iterator())
    return [text.decode("utf-8") for text, _ in pairs], np.array([label for _, label in pairs])


def run(args: argparse.Namespace) -> int:
    from projects.imdb_gru import PROJECT, data

    cfg = config_from_args(PROJECT, args)
    splits = data.load(cfg)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        texts_and_labels(split) for split in (splits.train, splits.validation, splits.test)
    )
    start = time.perf_counter()
    # words and word pairs seen in at least two training reviews; log-scaled counts, as is usual
    features = TfidfVectorizer(preprocessor=standardize, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    train_features = features.fit_transform(train_x)
    val_features, test_features = features.transform(val_x), features.transform(test_x)
    fitted = {c: LogisticRegression(C=c, max_iter=2000).fit(train_features, train_y) for c in STRENGTHS}
    validation = {c: model.score(val_features, val_y) for c, model in fitted.items()}
    best = max(validation, key=validation.get)
    probabilities = fitted[best].predict_proba(test_features)[:, 1]
    result = {
        "model": "TF-IDF of words and word pairs, logistic regression",
        "features": train_features.shape[1],
        "validation_accuracy": {str(c): round(a, 4) for c, a in validation.items()},
        "chosen_C": best,
        "test_accuracy": float(((probabilities > 0.5) == test_y).mean()),
        "test_roc_auc": float(roc_auc_score(test_y, probabilities)),
        "seconds": round(time.perf_counter() - start, 1),
        "data": splits.info,
    }
    folder = series_folder(PROJECT, cfg, "baseline")
    folder.mkdir(parents=True, exist_ok=True)
    reporting.write_json(folder / "baseline.json", result)
    print(f"test accuracy {result['test_accuracy']:.4f}, ROC-AUC {result['test_roc_auc']:.4f} (C={best})")
    print(folder)
    return 0
