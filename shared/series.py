"""A series of training runs and one table of them: churn_ann's `seeds`, imdb_gru's `compare`,
autoencoder_anomaly's `category`. Every series command is a `series_command`: the train flags and the
project's own flags, then one full run per member in `<folder>/<member>`, then the table.

Rerunning a series with its folder as `--run-dir` continues it: a finished member is reused, a killed one
resumed, and a member folder holding other settings is refused rather than mixed into the table.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from shared import reporting
from shared.config import RunConfig, check_resume_compatible
from shared.project import Command, Project
from shared.run_folder import RUNS_ROOT

# (name, changes): a member's folder name and what differs from the base config (seed, hparams, options)
Member = tuple[str, dict[str, Any]]


def series_folder(project: Project, cfg: RunConfig, kind: str) -> Path:
    """A series' folder: --run-dir, else runs/<project>/<kind>-<UTC time>."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    return RUNS_ROOT / project.name / f"{kind}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def train_in_series(project: Project, cfg: RunConfig) -> dict[str, Any]:
    """One run of a series (its own `cfg.run_dir`); returns its metrics.json."""
    import keras

    from shared.runner import train

    run_dir = Path(cfg.run_dir)
    if (run_dir / "config.json").is_file():
        check_resume_compatible(reporting.read_json(run_dir / "config.json")["run"], cfg.to_json(), run_dir)
    if not (run_dir / "metrics.json").is_file() or (run_dir / "backup").exists():
        keras.backend.clear_session()
        train(project, cfg)
    return reporting.read_json(run_dir / "metrics.json")


def series_command(
    project: Callable[[], Project],
    help: str,
    kind: str,
    members: Callable[[RunConfig, argparse.Namespace], list[Member]],
    row: Callable[[dict[str, Any], Path], dict[str, Any]],
    finish: Callable[[Path, pd.DataFrame, argparse.Namespace], str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Command:
    """A project command that trains every member and writes `<kind>.csv` and `<kind>.md`.

    `project`: returns the Project (the command is made while the Project is being built). `members`:
    the runs, from the base config and the arguments (a UserError for a bad request). `row`: one member's
    table row from its metrics.json and run folder. `finish`: more from the whole table (plots, a
    summary), returning text to append to the Markdown. `add_arguments`: the command's own arguments.
    """

    def arguments(parser: argparse.ArgumentParser) -> None:
        from shared.cli import add_project_options, add_run_arguments

        if add_arguments is not None:
            add_arguments(parser)
        add_run_arguments(parser, project().defaults)
        add_project_options(parser, project())

    def run(args: argparse.Namespace) -> int:
        from shared.cli import config_from_args

        base = config_from_args(project(), args)
        planned = members(base, args)  # checked before the series folder is made
        folder = series_folder(project(), base, kind)
        rows = {}
        for name, changes in planned:
            cfg = dataclasses.replace(base, run_dir=str(folder / name), **changes)
            rows[name] = row(train_in_series(project(), cfg), folder / name)
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.to_csv(folder / f"{kind}.csv")
        text = "\n".join(reporting.markdown_table(rows)) + "\n"
        if finish is not None:
            text += finish(folder, table, args)
        (folder / f"{kind}.md").write_text(text)
        print(text)
        print(folder)
        return 0

    return Command(help, arguments, run)
