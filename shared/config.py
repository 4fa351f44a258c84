"""The typed run configuration the command line fills and `config.json` records.

Runtime settings (devices, strategy, precision, seeds) live here; model choices are keras-tuner
hyperparameters and live in each project's `build_model(hp)`. Nothing here imports TensorFlow, so the
command line can split the CPU into logical devices before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class UserError(Exception):
    """A problem the user can fix (bad flag, missing file, bad input): printed as one line, exit code 2."""


@dataclass
class RunConfig:
    project: str
    data_dir: str | None = None  # None: $DATA_DIR, else the Keras cache (~/.keras/datasets)
    run_dir: str | None = None  # None: runs/<project>/<UTC timestamp>
    epochs: int = 10
    batch_size: int = 128  # per replica; the global batch is this times the replica count
    global_batch_size: int | None = None  # alternative to batch_size; must divide by the replica count
    seed: int = 42
    strategy: str = "auto"  # auto | one | mirrored | multi_worker
    cpu_replicas: int = 0  # >1 splits the CPU into that many logical devices
    mixed_precision: str = "auto"  # auto (float16 on GPUs only) | on | off
    deterministic: bool = False
    lr_schedule: str = "cosine"  # cosine | plateau | constant
    early_stopping_patience: int = 0  # 0: off
    hparams_file: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)  # from --hparams FILE, then --hp KEY=VALUE
    options: dict[str, Any] = field(default_factory=dict)  # the project's own flags (--dataset, ...)
    smoke: bool = False  # a few steps on tiny generated data: no dataset needed

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved_data_dir(self) -> Path:
        return resolve_data_dir(self.data_dir)


STRATEGIES = ("auto", "one", "mirrored", "multi_worker")
LR_SCHEDULES = ("cosine", "plateau", "constant")
PRECISIONS = ("auto", "on", "off")

# Settings that may differ when a killed run is resumed in the same run folder.
# (hparams_file: the values it held are compared as `hparams`, whatever path they were read from)
RESUMABLE_DIFFERENCES = frozenset({"data_dir", "run_dir", "hparams_file"})


def resolve_data_dir(cli_value: str | None) -> Path:
    """`--data-dir`, then `$DATA_DIR`, then the Keras cache folder."""
    value = cli_value or os.environ.get("DATA_DIR") or os.path.join(Path.home(), ".keras", "datasets")
    return Path(value).expanduser()


def parse_hparam_assignment(text: str) -> tuple[str, Any]:
    """`units=128` -> ("units", 128); values are JSON when they parse as JSON, strings otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UserError(f"--hp expects KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def load_hparams_file(path: str) -> dict[str, Any]:
    """Reads a flat JSON object of hyperparameter values (what `tune` writes as best_hparams.json)."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        raise UserError(f"--hparams file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"--hparams file {path} is not valid JSON: {e}") from None
    except OSError as e:
        raise UserError(f"cannot read --hparams file {path}: {e.strerror}") from None
    if not isinstance(values, dict):
        raise UserError(f"--hparams file {path} must hold a JSON object of name: value pairs")
    return values


def check_resume_compatible(saved: dict[str, Any], current: dict[str, Any], run_dir: Path) -> None:
    """A resumed run must continue the run it resumes: same settings, or a clear error."""
    differences = [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in sorted(set(saved) | set(current))
        if key not in RESUMABLE_DIFFERENCES and saved.get(key) != current.get(key)
    ]
    if differences:
        raise UserError(
            f"{run_dir} holds a run started with other settings ({'; '.join(differences)}). "
            "Rerun with the same settings to resume it, or pass a new --run-dir."
        )
