"""`seeds --n 5 [train flags]`: the same training with N seeds, and the mean and spread of every score.

The split stays fixed (`--split-seed`); only the network's initialisation and shuffling change, so the
spread is the seed noise the README's "beats its baselines" claim is measured against. Each seed is a full
run in `<folder>/seed-<S>`; rerunning the command with that folder as `--run-dir` skips seeds already
finished and resumes a killed one. `seeds.csv` / `seeds.md` hold every seed's scores, `seeds.md` and
`summary.json` their mean and spread.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from shared import reporting
from shared.config import RunConfig, UserError
from shared.project import Project
from shared.series import Member, series_command

MODELS = ("network", "logistic_regression", "gradient_boosting")
SCORES = (
    "test_roc_auc",
    "test_pr_auc",
    "test_f1",
    "test_precision",
    "test_recall",
    "test_accuracy",
    "test_brier",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n", type=int, default=5, help="how many seeds, from --seed up (default: %(default)s)"
    )


def members(base: RunConfig, args: argparse.Namespace) -> list[Member]:
    if args.n < 2:
        raise UserError("--n must be at least 2: one seed has no spread")
    return [(f"seed-{seed}", {"seed": seed}) for seed in range(base.seed, base.seed + args.n)]


def row(metrics: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """One seed's scores of every model, as `<model> <score>` columns."""
    scores = {"network": metrics, **metrics["baselines"]}
    return {f"{model} {score}": scores[model][score] for model in MODELS for score in SCORES}


def finish(folder: Path, table: pd.DataFrame, args: argparse.Namespace) -> str:
    """summary.json and the mean ± std table over the seeds."""
    summary = summarise(table)
    reporting.write_json(
        folder / "summary.json", {"seeds": args.n, "first_seed": args.seed, "models": summary}
    )
    lines = reporting.markdown_table(
        {
            model: {k: f"{v['mean']:.4f} ± {v['std']:.4f}" for k, v in scores.items()}
            for model, scores in summary.items()
        }
    )
    return f"\n# churn_ann over {args.n} seeds (mean ± std)\n\n" + "\n".join(lines) + "\n"


def summarise(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {score: {mean, std}}} over the seeds (rows; std with n-1 degrees of freedom)."""
    return {
        model: {
            score: {
                "mean": float(table[f"{model} {score}"].mean()),
                "std": float(table[f"{model} {score}"].std(ddof=1)),
            }
            for score in SCORES
        }
        for model in MODELS
    }


def _project() -> Project:
    from projects.churn_ann import PROJECT  # here: the package imports this module

    return PROJECT


COMMAND = series_command(
    _project,
    "train with N seeds; mean and spread of every score",
    "seeds",
    members,
    row,
    finish,
    add_arguments,
)
