"""The small protocol every project implements so the shared runner can drive it.

A project module builds one `Project` from its own `data`, `model`, `evaluate` and `export` functions;
`python -m projects.<name>` hands it to `shared.cli.main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from shared.config import RunConfig


@dataclass(frozen=True)
class Splits:
    """Train / validation / test splits of unbatched `(features, label)` examples."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: dict[str, Any] = field(default_factory=dict)  # sizes, class names...: recorded in metrics.json


# A serving endpoint: a function of raw inputs (named keyword tensors) returning a dict of outputs,
# its input signature, and a small batch of raw example inputs to check the export with.
ServingEndpoint = tuple[Callable[..., dict[str, tf.Tensor]], list[tf.TensorSpec], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Command:
    """An extra subcommand (predict, generate, compare...): adds its arguments, then runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Project:
    name: str
    load_data: Callable[[RunConfig], Splits]  # the real data, or tiny generated data when cfg.smoke
    build_model: Callable[[kt.HyperParameters], keras.Model]  # compiled; every choice an hp with a default
    evaluate: Callable[[keras.Model, Splits, RunConfig, Path], dict[str, Any]]  # metrics; plots into the path
    serving_endpoint: Callable[[keras.Model, Splits], ServingEndpoint]
    objective: str = "val_accuracy"  # what checkpoints keep the best of and the tuner maximises
    objective_direction: str = "max"
    defaults: dict[str, Any] = field(default_factory=dict)  # RunConfig defaults for this project
    commands: dict[str, Command] = field(default_factory=dict)
