"""`predict RUN_DIR series.csv [--out scored.csv]`: a score and an anomaly flag for every row.

Rows go through the run's exported SavedModel one stretch of usable rows at a time. A row whose timestamp
or value cannot be used gets no score and says why in `problem`, and so do the rows of a stretch shorter
than one window; gaps and steps back in time are reported on stderr but scored. Exit code 1 when a row
went unscored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from projects.autoencoder_anomaly.series import Series, parse_series, stretches
from shared.config import UserError
from shared.export import SIGNATURE, saved_model_of
from shared.run_folder import load_run
from shared.trained import load_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/autoencoder_anomaly/latest)")
    parser.add_argument("csv", help="a timestamp,value CSV, rows in time order")
    parser.add_argument("--out", help="write the scored CSV here (default: standard output)")


def run(args: argparse.Namespace) -> int:
    from projects.autoencoder_anomaly import PROJECT  # here: the package imports this module

    run_dir, path = Path(args.run), Path(args.csv)
    load_run(run_dir)
    saved_model = saved_model_of(run_dir)
    window = load_state(PROJECT, run_dir).window
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    series = parse_series(path, str(path))
    if not len(series.values):
        raise UserError(f"{path} holds no rows under its header")
    signature = tf.saved_model.load(str(saved_model)).signatures[SIGNATURE]
    if signature.structured_input_signature[1]["values"].shape.rank != 2:
        raise UserError(
            f"{saved_model} takes one stretch [T], as exports made before the signature took stretches "
            f"[N, T] did; export it again: python -m projects.autoencoder_anomaly export {run_dir}"
        )
    score, anomaly, problems = score_series(signature, series, window)

    scored = np.isfinite(score)
    table = pd.DataFrame(
        {
            "line": series.lines,
            "timestamp": pd.Series(series.timestamps).astype(str).replace("NaT", ""),
            "value": series.raw_values,  # as written, also where it could not be used
            "score": np.round(score, 6),
            "anomaly": np.where(scored, np.where(anomaly, "yes", "no"), ""),
            "problem": problems,
        }
    )
    table.to_csv(args.out if args.out else sys.stdout, index=False)
    for note in series.notes:
        print(f"note: {note}", file=sys.stderr)
    for reason in series.problems.values():
        print(f"error: {reason}", file=sys.stderr)
    print(
        f"scored {int(scored.sum())} of {len(score)} rows, {int(anomaly.sum())} flagged as anomalies"
        + (f"; {int((~scored).sum())} not scored, see `problem`" if (~scored).any() else "")
        + (f"; wrote {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0 if scored.all() else 1


def score_series(signature, series: Series, window: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(score, anomaly, problem) per row: every stretch of usable rows at least a window long is scored."""
    parts = stretches(series.usable, 1)
    longest = max((b - a for a, b in parts), default=0)
    if longest < window:
        raise UserError(
            f"{series.name}: its longest stretch of usable rows is {longest} rows, shorter than one window "
            f"({window} rows); the model needs at least {window} consecutive usable rows"
        )
    score, anomaly = np.full(len(series.values), np.nan), np.zeros(len(series.values), dtype=bool)
    problems = [series.problems.get(int(line), "") for line in series.lines]
    for start, stop in parts:
        if stop - start < window:
            problems[start:stop] = [f"in a stretch of {stop - start} usable rows, shorter than a window"] * (
                stop - start
            )
            continue
        out = signature(values=tf.constant(series.values[None, start:stop], tf.float32))  # one stretch
        score[start:stop], anomaly[start:stop] = out["score"].numpy()[0], out["anomaly"].numpy()[0]
    return score, anomaly, problems
