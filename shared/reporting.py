"""What a run leaves for people to read: metrics.json, plots and report.md. Plots are files, never windows."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes to a temporary file, then renames: a run killed mid-write never leaves half a JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")
    os.replace(partial, path)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file the project wrote; unreadable or truncated is a UserError naming it."""
    from shared.config import UserError

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from e


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def plot_history(history_csv: Path, out: Path) -> Path | None:
    """One panel per metric, training and validation curves together."""
    if not history_csv.is_file():
        return None
    history = pd.read_csv(history_csv)
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_")]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    epochs = history["epoch"] + 1
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, out)


def plot_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], out: Path
) -> Path:
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.log1p(matrix), cmap="Blues")  # log scale: the off-diagonal mistakes stay visible
    for i, j in np.ndindex(matrix.shape):
        if matrix[i, j]:
            color = "white" if matrix[i, j] > matrix.max() / 3 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    return save_figure(fig, out)


def plot_score_curves(
    labels: np.ndarray, probabilities: dict[str, np.ndarray], out: Path, kind: str = "roc"
) -> Path:
    """ROC ("roc"), precision-recall ("pr") or calibration ("calibration") curves of binary scorers."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, scores in probabilities.items():
        if kind == "calibration":
            CalibrationDisplay.from_predictions(
                labels, scores, n_bins=10, strategy="quantile", name=name, ax=ax
            )
        else:
            display = RocCurveDisplay if kind == "roc" else PrecisionRecallDisplay
            display.from_predictions(labels, scores, name=name, ax=ax)
    ax.set_title({"roc": "ROC", "pr": "Precision-recall", "calibration": "Calibration"}[kind])
    return save_figure(fig, out)


def image_grid(images: np.ndarray, titles: Sequence[str], out: Path, columns: int = 8) -> Path:
    rows = max(1, math.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        ax.set_title(title, fontsize=8)
    return save_figure(fig, out)


def save_figure(fig: plt.Figure, out: Path) -> Path:
    """Writes the figure (creating its folder) and closes it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_table(
    run_dir: Path, name: str, rows: dict[str, dict[str, Any]], columns: list[str] | None = None
) -> Path:
    """tables/<name>.csv, one row per key of `rows` (`columns` keeps the header of an empty table);
    report.md shows every table there."""
    path = run_dir / "tables" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_dict(rows, orient="index", columns=columns).to_csv(path)
    return path


def markdown_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """{row name: {column: value}} as markdown lines; floats to 4 places."""
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = [f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_report(run_dir: Path, title: str, metrics: dict[str, Any], config: dict[str, Any]) -> Path:
    """report.md: the headline metrics, every table in tables/ and plot in plots/, and the settings."""
    lines = [
        f"# {title}",
        "",
        f"Run folder: `{run_dir}`",
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, value in sorted(metrics.items()):
        if isinstance(value, (int, float, str, bool)):
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"| {key} | {shown} |")
    for table in sorted((run_dir / "tables").glob("*.csv")):
        rows = pd.read_csv(table, index_col=0).to_dict(orient="index")
        lines += [
            "",
            f"## {table.stem.replace('_', ' ')}",
            "",
            *(markdown_table(rows) if rows else ["(none)"]),
            "",
        ]
    plots = sorted((run_dir / "plots").glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""]
        for plot in plots:
            lines += [f"### {plot.stem.replace('_', ' ')}", "", f"![{plot.stem}](plots/{plot.name})", ""]
    lines += [
        "## Settings",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
