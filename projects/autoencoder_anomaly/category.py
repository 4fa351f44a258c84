"""`category CATEGORY [train flags]`: one run per series of a NAB category, and one table of all of them.

Each series is a full `train` run in `<folder>/<series name>` (rerun with that folder as `--run-dir` to
skip the finished ones), with the same flags; `category.csv` / `category.md` hold every detector's
PR-AUC, ROC-AUC and F1 per series and their means.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from projects.autoencoder_anomaly.data import Options, category_series
from projects.autoencoder_anomaly.evaluate import DETECTORS
from shared import options, reporting
from shared.config import RunConfig, UserError
from shared.project import Project
from shared.series import Member, series_command

MEASURES = ("pr_auc", "roc_auc", "f1")


def _project() -> Project:
    from projects.autoencoder_anomaly import PROJECT  # the package imports this module

    return PROJECT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("category", help="a NAB category, e.g. realKnownCause")


def members(base: RunConfig, args: argparse.Namespace) -> list[Member]:
    """One run per labelled series of the category, named by the series."""
    if base.smoke:
        raise UserError("category reads NAB's files; --smoke has only one generated series (use train)")
    settings = options.read(Options, base)
    return [
        (Path(name).stem, {"options": dataclasses.asdict(dataclasses.replace(settings, series=name))})
        for name in category_series(base.resolved_data_dir(), args.category)
    ]


def row(metrics: dict[str, Any], run_dir: Path) -> dict[str, float]:
    """The chance PR-AUC (the share of evaluated rows in a window), then each measure of each detector."""
    detectors = {"autoencoder": metrics, **metrics["baselines"]}
    values = {
        "pr_auc chance": metrics["pr_auc_chance"],
        **{
            f"{measure} {detector}": detectors[detector][measure]
            for measure in MEASURES
            for detector in DETECTORS
        },
    }
    return {key: float("nan") if value is None else float(value) for key, value in values.items()}


def finish(folder: Path, table: pd.DataFrame, args: argparse.Namespace) -> str:
    """The mean over the series: a last row of category.csv and of the Markdown table, and the detector
    with the highest mean PR-AUC."""
    means = table.mean(numeric_only=True)
    with_mean = pd.concat([table, means.to_frame("mean").T])
    with_mean.round(4).to_csv(folder / "category.csv")
    mean_row = reporting.markdown_table({"mean": means.to_dict()})[2]  # continues the table above
    best = max(DETECTORS, key=lambda d: means[f"pr_auc {d}"])
    return f"{mean_row}\n\nHighest mean PR-AUC over {len(table)} series of {args.category}: {best}.\n"


COMMAND = series_command(
    _project,
    "train on every series of a NAB category; one table against the baselines",
    "category",
    members,
    row,
    finish,
    add_arguments,
)
