"""`compare [train flags]`: SimpleRNN, LSTM, GRU and bidirectional GRU on the same data, embedding and budget.

Each variant is a full `train` run in `<folder>/<variant>`, with the same train flags and project flags
(`--validation-reviews`); rerun with that folder as `--run-dir` to skip the finished ones. The table (test
accuracy, parameters, seconds per epoch) goes to `compare.csv` and `compare.md`, the validation curves to
`validation_curves.png`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from shared import reporting
from shared.config import RunConfig
from shared.project import Project
from shared.series import Member, series_command

VARIANTS = {
    "simple_rnn": {"cell": "simple_rnn", "bidirectional": False},
    "lstm": {"cell": "lstm", "bidirectional": False},
    "gru": {"cell": "gru", "bidirectional": False},
    "bidirectional_gru": {"cell": "gru", "bidirectional": True},
}


def members(base: RunConfig, args: argparse.Namespace) -> list[Member]:
    """Every variant with the base hyperparameters, its cell overriding any given."""
    return [(name, {"hparams": {**base.hparams, **choice}}) for name, choice in VARIANTS.items()]


def row(metrics: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    history = pd.read_csv(run_dir / "history.csv")
    return {
        "test_accuracy": round(metrics["test_accuracy"], 4),
        "test_roc_auc": round(metrics["test_roc_auc"], 4),
        "parameters": metrics["parameters"],
        "seconds_per_epoch": round(float(history["epoch_seconds"].mean()), 1),
        "epochs": len(history),
    }


def finish(folder: Path, table: pd.DataFrame, args: argparse.Namespace) -> str:
    """validation_curves.png: each variant's validation accuracy by epoch."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in table.index:
        values = pd.read_csv(folder / name / "history.csv")["val_accuracy"].to_numpy()
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Same data, embedding and budget")
    ax.legend()
    reporting.save_figure(fig, folder / "validation_curves.png")
    return ""


def _project() -> Project:
    from projects.imdb_gru import PROJECT  # here: the package imports this module

    return PROJECT


COMMAND = series_command(
    _project, "SimpleRNN, LSTM, GRU, bidirectional GRU on one budget", "compare", members, row, finish
)
