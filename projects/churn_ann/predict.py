"""`predict RUN_DIR customers.csv [--out scored.csv]`: churn probability and decision for every row.

Rows go through the run's exported SavedModel (raw columns in), and the decision uses the threshold the
run chose on its validation split, read from its state.json. A bad row does not stop the file: it is
written with the reason in `problem` and no score, and listed on stderr by line; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from projects.churn_ann.data import columns_of
from projects.churn_ann.table import DATASETS, read_csv
from shared.export import saved_model_of, serve_saved_model
from shared.run_folder import load_run
from shared.trained import load_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/churn_ann/latest)")
    parser.add_argument("csv", help="customers in the training CSV's layout; the target column is optional")
    parser.add_argument("--out", help="write the scored CSV here (default: standard output)")


def run(args: argparse.Namespace) -> int:
    from projects.churn_ann import PROJECT  # here: the package imports this module

    run_dir = Path(args.run)
    load_run(run_dir)  # a finished run folder, or an error that says what it lacks
    saved_model = saved_model_of(run_dir)
    state = load_state(PROJECT, run_dir)
    threshold, spec = state.threshold, DATASETS[state.dataset]
    table = read_csv(Path(args.csv), spec, need_target=False)

    scored = table.raw.copy()
    scored["churn_probability"] = np.nan
    scored["predicted_churn"] = ""
    scored["problem"] = ""
    if len(table.features):
        churn = serve_saved_model(saved_model, columns_of(table.features, spec))["churn_probability"]
        scored.loc[table.features.index, "churn_probability"] = churn.astype(np.float64).round(4)
        scored.loc[table.features.index, "predicted_churn"] = np.where(churn >= threshold, "yes", "no")
    for position, reason in table.problems.items():
        scored.loc[position, "problem"] = reason
        print(f"error: {reason}", file=sys.stderr)

    scored.to_csv(args.out if args.out else sys.stdout, index=False)
    print(
        f"scored {len(table.features)} of {len(scored)} rows (threshold {threshold:.3f})"
        + (f"; {len(table.problems)} not scored, see `problem`" if table.problems else "")
        + (f"; wrote {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 1 if table.problems else 0
