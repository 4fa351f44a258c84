"""`compare [train flags]`: SimpleRNN, LSTM, GRU and bidirectional GRU on the same data, embedding and budget.

Each variant is a full `train` run in `<folder>/<variant>` (rerun with that folder as `--run-dir` to skip the
finished ones); the table (test accuracy, parameters, seconds per epoch) goes to `comparison.csv` and
`comparison.md`, the validation curves to `validation_curves.png`.
"""

from __future__ import annotations

import argparse
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd

from shared import reporting
from shared.cli import add_run_arguments, config_from_args
from shared.runner import series_folder, train_in_series

VARIANTS = {
    "simple_rnn": {"cell": "simple_rnn", "bidirectional": False},
    "lstm": {"cell": "lstm", "bidirectional": False},
    "gru": {"cell": "gru", "bidirectional": False},
    "bidirectional_gru": {"cell": "gru", "bidirectional": True},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from projects.imdb_gru import PROJECT

    add_run_arguments(parser, PROJECT.defaults)


def run(args: argparse.Namespace) -> int:
    from projects.imdb_gru import PROJECT

    base = config_from_args(PROJECT, args)
    folder = series_folder(PROJECT, base, "compare")
    rows, curves = {}, {}
    for name, choice in VARIANTS.items():
        run_dir = folder / name
        hparams = {**base.hparams, **choice}
        metrics = train_in_series(PROJECT, dataclasses.replace(base, run_dir=str(run_dir), hparams=hparams))
        history = pd.read_csv(run_dir / "history.csv")
        rows[name] = {
            "test_accuracy": round(metrics["test_accuracy"], 4),
            "test_roc_auc": round(metrics["test_roc_auc"], 4),
            "parameters": metrics["parameters"],
            "seconds_per_epoch": round(float(history["epoch_seconds"].mean()), 1),
            "epochs": len(history),
        }
        curves[name] = history["val_accuracy"].to_numpy()

    pd.DataFrame.from_dict(rows, orient="index").to_csv(folder / "comparison.csv")
    text = "\n".join(reporting.markdown_table(rows)) + "\n"
    (folder / "comparison.md").write_text(text)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Same data, embedding and budget")
    ax.legend()
    reporting.save_figure(fig, folder / "validation_curves.png")
    print(text)
    print(folder)
    return 0
