"""`category CATEGORY [train flags]`: one run per series of a NAB category, and one table of all of them.

Each series is a full `train` run in `<folder>/<series name>` (rerun with that folder as `--run-dir` to
skip the finished ones), with the same flags; `category.csv` / `category.md` hold every detector's
PR-AUC, ROC-AUC and F1 per series and their means.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from projects.autoencoder_anomaly.data import category_series
from projects.autoencoder_anomaly.evaluate import DETECTORS
from shared import reporting
from shared.cli import add_project_options, add_run_arguments, config_from_args
from shared.config import UserError
from shared.runner import series_folder, train_in_series

MEASURES = ("pr_auc", "roc_auc", "f1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from projects.autoencoder_anomaly import PROJECT

    parser.add_argument("category", help="a NAB category, e.g. realKnownCause")
    add_run_arguments(parser, PROJECT.defaults)
    add_project_options(parser, PROJECT)


def run(args: argparse.Namespace) -> int:
    from projects.autoencoder_anomaly import PROJECT

    base = config_from_args(PROJECT, args)
    if base.smoke:
        raise UserError("category reads NAB's files; --smoke has only one generated series (use train)")
    names = category_series(base.resolved_data_dir(), args.category)
    folder = series_folder(PROJECT, base, f"category-{args.category}")
    rows = {}
    for name in names:
        options = {**base.options, "series": name}
        run_dir = folder / Path(name).stem
        metrics = train_in_series(PROJECT, dataclasses.replace(base, run_dir=str(run_dir), options=options))
        detectors = {"autoencoder": metrics, **metrics["baselines"]}
        rows[Path(name).stem] = {
            "pr_auc chance": metrics["pr_auc_chance"],  # the share of evaluated rows in a window
            **{
                f"{measure} {detector}": detectors[detector][measure]
                for measure in MEASURES
                for detector in DETECTORS
            },
        }
    table = pd.DataFrame.from_dict(rows, orient="index").astype(float)
    table.loc["mean"] = table.mean(numeric_only=True)
    table.round(4).to_csv(folder / "category.csv")
    means = table.loc["mean"]
    best = max(DETECTORS, key=lambda d: means[f"pr_auc {d}"])
    text = "\n".join(reporting.markdown_table(table.round(4).to_dict(orient="index"))) + "\n"
    text += f"\nHighest mean PR-AUC over {len(names)} series of {args.category}: {best}.\n"
    (folder / "category.md").write_text(text)
    print(text)
    print(folder)
    return 0
