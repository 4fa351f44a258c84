"""What a trained model needs beside its weights, kept in its run folder and read back from there only.

A run folder holds, besides `model.keras`:
- `state.json`: the project's typed state (`Project.state_type`), learned or chosen from the data when the
  run was made (a vocabulary, a scaler, a threshold);
- `preprocessor.keras`: a preprocessor adapted on the training split (a FeatureSpace, a TextVectorization);
- `examples.npz`: a few raw test inputs (`Project.examples`), taken when the run was trained: the export
  is checked on them.
`export`, `predict` and the pages read these, never the data, so a model outlives the files it came from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from shared import reporting
from shared.config import UserError
from shared.project import Project, Splits, Trained

STATE = "state.json"
EXAMPLES = "examples.npz"
PREPROCESSOR = "preprocessor.keras"


def save(project: Project, splits: Splits, run_dir: Path) -> None:
    """Writes state.json and examples.npz for a run trained on `splits` (the preprocessor is saved apart,
    before training, so a bad one fails early)."""
    if project.state_type is not None:
        if not isinstance(splits.state, project.state_type):
            raise TypeError(
                f"{project.name}: load_data must set Splits.state to a {project.state_type.__name__}, "
                f"got {type(splits.state).__name__}"
            )
        reporting.write_json(Path(run_dir) / STATE, dataclasses.asdict(splits.state))
    if project.examples is not None:
        # no pickle: arrays of numbers, str or bytes only, so the file is safe to read from anyone's run
        arrays = {name: np.asarray(value) for name, value in project.examples(splits).items()}
        for name, array in arrays.items():
            if array.dtype == object:
                raise TypeError(f"{project.name}: example input {name!r} must be numbers, str or bytes")
        np.savez(Path(run_dir) / EXAMPLES, **arrays)


def load_state(project: Project, run_dir: Path) -> Any:
    """The project's state as the run saved it; None for a project without state."""
    if project.state_type is None:
        return None
    path = Path(run_dir) / STATE
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {STATE}: the run did not finish, or an older version trained it; "
            "rerun its train command (a new --run-dir for an older run)"
        )
    values = reporting.read_json(path)
    names = {f.name for f in dataclasses.fields(project.state_type)}
    if set(values) != names:
        missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
        raise UserError(
            f"{path} does not hold a {project.name} state this version can read "
            f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'}); "
            "train the run again"
        )
    return project.state_type(**values)


def load_preprocessor(run_dir: Path) -> Any:
    """The preprocessor the run trained with (not one adapted again on today's data); None without one."""
    import keras

    path = Path(run_dir) / PREPROCESSOR
    if not path.is_file():  # saved before training whenever the splits had one
        return None
    preprocessor = keras.saving.load_model(str(path))
    if hasattr(preprocessor, "get_encoded_features"):  # a reloaded FeatureSpace builds lazily, eagerly only
        preprocessor.get_encoded_features()
    return preprocessor


def load(project: Project, run_dir: Path) -> Trained:
    """Everything in the run folder the signatures and the page are made from."""
    examples = {}
    path = Path(run_dir) / EXAMPLES
    if project.examples is not None:
        if not path.is_file():
            raise UserError(f"{run_dir} has no {EXAMPLES}: the run did not finish; rerun its train command")
        with np.load(path, allow_pickle=False) as saved:
            examples = {name: saved[name] for name in saved.files}
    return Trained(load_state(project, run_dir), load_preprocessor(run_dir), examples)
