"""A run folder: made (or reopened to resume) with its config.json, checked against the run it holds, and
read back. Everything else in it is written by the runner (`shared.runner`) and `shared.trained`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared import reporting
from shared.config import RunConfig, UserError, check_resume_compatible

RUNS_ROOT = Path("runs")


def prepare_run_dir(cfg: RunConfig, runtime: dict[str, Any]) -> tuple[Path, bool]:
    """Creates (or reopens, to resume) the run folder and records config.json. Returns (path, resuming)."""
    if cfg.run_dir:
        run_dir = Path(cfg.run_dir)
        if run_dir.is_symlink():  # e.g. runs/<project>/latest: resume the run it points at
            run_dir = run_dir.resolve()
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run_dir = RUNS_ROOT / cfg.project / stamp
        suffix = 1
        while run_dir.exists():  # two runs started in the same second get their own folders
            run_dir, suffix = RUNS_ROOT / cfg.project / f"{stamp}-{suffix}", suffix + 1
    config_path = run_dir / "config.json"
    resuming = check_existing_run(run_dir, cfg)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the run folder {run_dir}: {e.strerror}") from e
    reporting.write_json(config_path, {"run": cfg.to_json(), "runtime": runtime})
    if run_dir.parent.resolve() == (RUNS_ROOT / cfg.project).resolve():
        latest = run_dir.parent / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name, target_is_directory=True)
    return run_dir, resuming


def check_existing_run(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether `run_dir` holds an unfinished run to resume; a finished or different run is an error."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        return False
    check_resume_compatible(reporting.read_json(config_path)["run"], cfg.to_json(), run_dir)
    if (run_dir / "metrics.json").is_file() and not (run_dir / "backup").exists():
        raise UserError(f"{run_dir} holds a finished run; pass a new --run-dir to train again")
    return True


def trim_history(run_dir: Path) -> None:
    """On resume, drops history rows of epochs the backup does not hold (killed between the two writes)."""
    metadata, history = run_dir / "backup" / "training_metadata.json", run_dir / "history.csv"
    if not (metadata.is_file() and history.is_file()):
        return
    import pandas as pd

    resumed_from = int(reporting.read_json(metadata)["epoch"])
    frame = pd.read_csv(history)
    if (frame["epoch"] >= resumed_from).any():
        frame[frame["epoch"] < resumed_from].to_csv(history, index=False)


def worker_dir(cfg: RunConfig, worker: int) -> tuple[Path, bool]:
    """A non-chief worker's own folder, inside the chief's, for its backup, checkpoint and logs.

    Keras 3 callbacks know nothing of chief and workers, so each worker writes its own files; their
    weights are identical, so each reloads the same best checkpoint.
    """
    check_existing_run(Path(cfg.run_dir), cfg)  # the chief's checks, so every worker stops, not one
    path = Path(cfg.run_dir) / "workers" / f"worker-{worker}"
    path.mkdir(parents=True, exist_ok=True)
    return path, (path / "backup").exists()


def load_run(run_dir: Path) -> RunConfig:
    """The RunConfig a run folder was trained with."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.json); train first or pass a run folder")
    if not (Path(run_dir) / "model.keras").is_file():
        raise UserError(
            f"{run_dir} has no model.keras: the run did not finish; rerun train with this --run-dir"
        )
    try:
        return RunConfig(**reporting.read_json(config_path)["run"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{config_path} is not a run config this version can read: {e}") from e
