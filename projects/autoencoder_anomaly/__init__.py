"""autoencoder_anomaly: anomalies in a NAB time series from an autoencoder's reconstruction error."""

import argparse
import math

from projects.autoencoder_anomaly import category, data, evaluate, export, model, predict
from shared.project import Command, Project, Splits


def threshold_rule(text: str) -> str:
    """`max`, a percentile in (0, 100], or `<k>sigma` with k > 0."""
    if text == "max":
        return text
    number, bound = (text[: -len("sigma")], math.inf) if text.endswith("sigma") else (text, 100.0)
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not 0 < value <= bound or not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"must be max, a percentile in (0, 100] or <k>sigma (e.g. 5sigma); got {text!r}"
        )
    return text


def page_info(splits: Splits) -> dict:
    """What the page tells a person that the signature ([N, T] values) does not: the window length (the
    fewest values a request may hold) and the series the model learnt what normal looks like from."""
    return {"window": int(splits.info["window"]), "series": splits.info["series"]}


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--series",
        default=data.DEFAULT_SERIES,
        help="the NAB series, <category>/<name>.csv (default: %(default)s)",
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=data.TRAIN_FRACTION,
        help="the first part of the series to train on, NAB's probationary period (default: %(default)s)",
    )
    parser.add_argument(
        "--threshold",
        type=threshold_rule,
        default=data.DEFAULT_THRESHOLD,
        help="anomaly threshold from the held-out probationary rows' scores: max, a percentile such as "
        "99.5, or <k>sigma, their mean + k standard deviations (default: %(default)s)",
    )


PROJECT = Project(
    name="autoencoder_anomaly",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 50, "batch_size": 64, "early_stopping_patience": 8},
    add_options=add_options,
    for_hparams=data.for_hparams,
    page_info=page_info,
    commands={
        "predict": Command(
            "score a timestamp,value CSV with a trained run", predict.add_arguments, predict.run
        ),
        "category": Command(
            "train on every series of a NAB category; one table against the baselines",
            category.add_arguments,
            category.run,
        ),
    },
)
