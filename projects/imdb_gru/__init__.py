"""imdb_gru: review sentiment from raw text with a bidirectional GRU; the RNN / LSTM / GRU comparison."""

import argparse

from projects.imdb_gru import baseline, compare, data, evaluate, export, model, predict
from shared.project import Command, Project


def validation_reviews(value: str) -> int:
    count = int(value)
    if not 500 <= count <= 12_500:
        raise argparse.ArgumentTypeError(f"{count}: give 500-12,500 reviews (whole films at a time)")
    return count


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation-reviews",
        type=validation_reviews,
        default=data.VALIDATION_SIZE,
        help="training reviews held out to choose the epoch, about (default: %(default)s)",
    )


PROJECT = Project(
    name="imdb_gru",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_accuracy",
    defaults={"epochs": 4, "batch_size": 64},
    add_options=add_options,
    commands={
        "predict": Command("score reviews with a trained run", predict.add_arguments, predict.run),
        "compare": Command(
            "SimpleRNN, LSTM, GRU, bidirectional GRU on one budget",
            compare.add_arguments,
            compare.run,
        ),
        "baseline": Command(
            "TF-IDF words and word pairs + logistic regression, same split",
            baseline.add_arguments,
            baseline.run,
        ),
    },
)
