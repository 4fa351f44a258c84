"""Hyperparameter values given on the command line (`--hp`, `--hparams`), checked against the space a
project's `build_model(hp)` defines, and HyperParameters pre-filled with them."""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt

from shared.config import UserError
from shared.project import Project, Splits


def hyperparameters(values: dict[str, Any]) -> kt.HyperParameters:
    """HyperParameters pre-filled with `values`: `build_model` then takes them instead of its defaults."""
    hp = kt.HyperParameters()
    hp.values.update(values)
    return hp


def build_checked(
    project: Project, values: dict[str, Any], splits: Splits, batch_size: int | None = None
) -> tuple[keras.Model, kt.HyperParameters]:
    """`build_model` with `values` in place of defaults; a bad name or type is a UserError that names it.

    Given values are checked against the space of a model built with defaults first, since a wrongly
    typed value can break the build itself; whole numbers given for float hyperparameters become floats.
    A model with a `batch_size` hyperparameter the user did not set gets `batch_size` (--batch-size), so
    hparams.json records the batch the run used.
    """
    given = values
    if values:
        probe = hyperparameters({})
        project.build_model(probe, splits)
        values = check_hyperparameters(probe, values)
    hp = hyperparameters(values)
    model = project.build_model(hp, splits)
    if batch_size is not None and "batch_size" in hp.values and "batch_size" not in given:
        hp.values["batch_size"] = batch_size  # the data pipeline's setting: the model itself does not use it
    return model, hp


def check_hyperparameters(hp: kt.HyperParameters, given: dict[str, Any]) -> dict[str, Any]:
    """Each given name must be one `build_model(hp)` used, with a value of its type; returns the values."""
    known = {h.name: h for h in hp.space}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(
            f"unknown hyperparameter(s) {', '.join(unknown)}; this model has: {', '.join(sorted(known))}"
        )
    checked = {}
    for name, value in given.items():
        expected = _hp_type(known[name])
        if expected and not _matches(value, expected):
            raise UserError(f"hyperparameter {name} must be {expected.__name__}, got {value!r}")
        checked[name] = float(value) if expected is float else value
    return checked


def _hp_type(h) -> type | None:
    if isinstance(h, kt.engine.hyperparameters.Boolean):
        return bool
    if isinstance(h, kt.engine.hyperparameters.Int):
        return int
    if isinstance(h, kt.engine.hyperparameters.Float):
        return float
    if isinstance(h, kt.engine.hyperparameters.Choice):
        return type(h.values[0])
    return None


def _matches(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
