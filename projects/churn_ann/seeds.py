"""`seeds --n 5 [train flags]`: the same training with N seeds, and the mean and spread of every score.

The split stays fixed (`--split-seed`); only the network's initialisation and shuffling change, so the
spread is the seed noise the README's "beats its baselines" claim is measured against. Each seed is a full
run in `<folder>/seed-<S>`; rerunning the command with that folder as `--run-dir` skips seeds already
finished and resumes a killed one.
"""

from __future__ import annotations

import argparse
import dataclasses

import pandas as pd

from shared import reporting
from shared.cli import add_project_options, add_run_arguments, config_from_args
from shared.config import UserError
from shared.runner import series_folder, train_in_series

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
    from projects.churn_ann import PROJECT

    parser.add_argument(
        "--n", type=int, default=5, help="how many seeds, from --seed up (default: %(default)s)"
    )
    add_run_arguments(parser, PROJECT.defaults)
    add_project_options(parser, PROJECT)


def run(args: argparse.Namespace) -> int:
    from projects.churn_ann import PROJECT

    if args.n < 2:
        raise UserError("--n must be at least 2: one seed has no spread")
    base = config_from_args(PROJECT, args)
    folder = series_folder(PROJECT, base, "seeds")
    rows = []
    for seed in range(base.seed, base.seed + args.n):
        metrics = train_in_series(
            PROJECT, dataclasses.replace(base, seed=seed, run_dir=str(folder / f"seed-{seed}"))
        )
        rows.append({"seed": seed, "model": "network", **{k: metrics[k] for k in SCORES}})
        for name, scores in metrics["baselines"].items():
            rows.append({"seed": seed, "model": name, **{k: scores[k] for k in SCORES}})
    summary = summarise(pd.DataFrame(rows))
    reporting.write_json(
        folder / "summary.json", {"seeds": args.n, "first_seed": base.seed, "models": summary}
    )
    table = reporting.markdown_table(
        {
            model: {k: f"{v['mean']:.4f} ± {v['std']:.4f}" for k, v in scores.items()}
            for model, scores in summary.items()
        }
    )
    text = f"# churn_ann over {args.n} seeds (mean ± std)\n\n" + "\n".join(table) + "\n"
    (folder / "summary.md").write_text(text)
    print(text)
    print(folder)
    return 0


def summarise(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {score: {mean, std}}} over seeds (std with n-1 degrees of freedom)."""
    grouped = frame.drop(columns="seed").groupby("model", sort=False)
    means, stds = grouped.mean(), grouped.std(ddof=1)
    return {
        model: {k: {"mean": float(means.at[model, k]), "std": float(stds.at[model, k])} for k in SCORES}
        for model in means.index
    }
