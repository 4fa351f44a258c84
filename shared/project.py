"""The small protocol every project implements so the shared runner can drive it.

A project module builds one `Project` from its own `data`, `model`, `evaluate` and `export` functions;
`python -m projects.<name>` hands it to `shared.cli.main`. docs/adding_a_project.md builds one step by step.
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
    """Train / validation / test splits of unbatched `(features, label[, sample_weight])` examples.

    `preprocessor`, when there is one, is a Keras layer adapted on the training split only (a
    FeatureSpace, a TextVectorization): the pipelines apply it to batches of raw features, the run saves
    it beside the model, and the serving export wraps it, so the SavedModel takes raw inputs. It stays
    outside the model because string inputs inside a model fail in `fit` under a distribution strategy.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: dict[str, Any] = field(default_factory=dict)  # sizes, counts...: only reported, in metrics.json
    # what the trained model needs from the data (a vocabulary, a scaler): an instance of the project's
    # `state_type`, saved as state.json in the run folder and read back from there by export and predict
    state: Any = None
    preprocessor: keras.layers.Layer | None = None
    # False when the training examples change from epoch to epoch (char_lstm starts its chunks at a new
    # offset each epoch): a cache would replay the first epoch's examples forever
    cache_train: bool = True
    # (length of one example's features, bucket boundaries): training batches then hold examples of similar
    # length (tf.data's bucket_by_sequence_length), so a recurrent model steps over less padding
    bucket_by_length: tuple[Callable[[Any], tf.Tensor], tuple[int, ...]] | None = None


@dataclass(frozen=True)
class Trained:
    """What a trained model's signatures and page are made from, all of it read from its run folder
    (`shared.trained`), never from the data: a model outlives the files it was trained on."""

    state: Any = None  # the project's `state_type`, from state.json
    preprocessor: keras.layers.Layer | None = None  # from preprocessor.keras
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # from examples.npz (`Project.examples`)


# A serving endpoint: a function of raw inputs returning a dict of outputs, its input signature (named
# TensorSpecs, one per keyword argument, or a one-item list holding a dict of them for a function of one
# dict), and a small batch of raw example inputs to check the export with.
ServingEndpoint = tuple[Callable[..., dict[str, tf.Tensor]], list, dict[str, np.ndarray]]


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
    # compiled; every choice an hp with a default; `splits` gives what the data decides (input width...).
    # An hp named `batch_size` is the per-replica batch size, so `tune` can search it.
    build_model: Callable[[kt.HyperParameters, Splits], keras.Model]
    evaluate: Callable[[keras.Model, Splits, RunConfig, Path], dict[str, Any]]  # metrics; plots into the path
    serving_endpoint: Callable[[keras.Model, Trained], ServingEndpoint]
    objective: str = "val_accuracy"  # what checkpoints keep the best of and the tuner maximises
    objective_direction: str = "max"
    defaults: dict[str, Any] = field(default_factory=dict)  # RunConfig defaults for this project
    # the model sets its own learning rates (two optimizers, one rate per phase): the runner's schedules,
    # which drive `model.optimizer`, would overwrite them, so --lr-schedule must be constant
    owns_learning_rate: bool = False
    commands: dict[str, Command] = field(default_factory=dict)
    # the project's own settings (--dataset...), one frozen dataclass of `shared.options.option` fields:
    # each field is a train/tune flag; the values land in RunConfig.options, read back with `options.read`
    options: type | None = None
    # the train / validation examples a model with these hyperparameter values fits on, when the data
    # depends on them (a window length); train and tune call it for each model they build
    for_hparams: Callable[[Splits, dict[str, Any]], Splits] | None = None
    # the project's own callbacks for `train`, on the chief only (text samples after each epoch...): they run
    # before the standard set, so BackupAndRestore still marks an epoch done last
    callbacks: Callable[[Splits, Path], list[keras.callbacks.Callback]] | None = None
    # after `fit` has reloaded the best epoch's weights, before evaluation and saving: a last fitting step
    # that is not gradient descent (the GAN's code shares, a threshold chosen on held-out data and set on
    # `splits.state`, which is saved after it); what it returns goes into metrics.json
    after_fit: Callable[[keras.Model, Splits], dict[str, Any]] | None = None
    # more names for the serving signature in the SavedModel, beside serving_default (e.g. "generate")
    signature_aliases: tuple[str, ...] = ()
    # more signatures, each a function of its own (a Grad-CAM heat map, one step of generation), by name;
    # exported and checked in a fresh process like serving_default
    extra_endpoints: Callable[[keras.Model, Trained], dict[str, ServingEndpoint]] | None = None
    # what the project's page needs that the signatures do not say (a form's choices, cached example
    # inputs): JSON-able, written into the SavedModel as assets.extra/page.json when it is exported
    page_info: Callable[[Trained], dict[str, Any]] | None = None
    # the dataclass of `Splits.state` (None: the project keeps no state); its fields are plain JSON values
    state_type: type | None = None
    # a few raw test inputs, taken when the run is trained and kept as examples.npz: the endpoints build
    # their export checks from them (arrays of numbers, str or bytes, by name)
    examples: Callable[[Splits], dict[str, np.ndarray]] | None = None
