"""churn_ann: customer churn from raw CSV rows with a small network, measured against its baselines."""

import argparse

from projects.churn_ann import data, evaluate, export, model, predict, seeds
from shared.project import Command, Project


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=sorted(data.DATASETS), default="telco", help="(default: telco)")
    parser.add_argument(
        "--class-weight",
        choices=("balanced", "none"),
        default="balanced",
        help="balanced: each class carries half the training loss (default)",
    )
    parser.add_argument(
        "--false-negative-cost",
        type=float,
        help="choose the threshold by cost: a missed churner costs this many false alarms "
        "(default: the threshold with the best validation F1)",
    )
    parser.add_argument(
        "--split-seed", type=int, default=42, help="seed of the stratified split (default: 42)"
    )


PROJECT = Project(
    name="churn_ann",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    page_info=export.page_info,
    objective="val_auc",
    defaults={"epochs": 40, "batch_size": 64},
    add_options=add_options,
    commands={
        "predict": Command("score a customers CSV with a trained run", predict.add_arguments, predict.run),
        "seeds": Command(
            "train with N seeds; mean and spread of every score", seeds.add_arguments, seeds.run
        ),
    },
)
