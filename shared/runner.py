"""One training run: seed, strategy, data, model, fit, evaluate, save, export, report.

Projects never write a training loop; a custom step is a `train_step` override inside the model. A run
folder that already holds an unfinished run is resumed from its last epoch (BackupAndRestore).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from shared import export, fitting, reporting, trained
from shared.config import RunConfig, UserError
from shared.data import batched
from shared.fitting import TrainingDivergedError
from shared.hparams import build_checked
from shared.project import Project, Splits
from shared.run_folder import prepare_run_dir, trim_history, worker_dir
from shared.strategy import (
    configure_precision,
    global_batch_size,
    is_multi_worker,
    make_strategy,
    worker_index,
)


def set_seeds(cfg: RunConfig) -> None:
    keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def train(project: Project, cfg: RunConfig) -> Path:
    """Trains, evaluates, saves and exports one run; returns the run folder."""
    if is_multi_worker(cfg.strategy) and not cfg.run_dir:
        raise UserError(
            "multi-worker training needs --run-dir (the same folder, on a disk all workers share)"
        )
    strategy = make_strategy(cfg.strategy, cfg.cpu_replicas)  # first: it configures the runtime
    set_seeds(cfg)
    policy = configure_precision(cfg.mixed_precision)
    replicas = strategy.num_replicas_in_sync
    worker, is_chief = worker_index()
    # data and hyperparameters first: a typo or a missing file leaves no half-made run folder behind
    prepared = prepare(project, cfg, strategy)
    model, hp, splits, batch = prepared.model, prepared.hp, prepared.splits, prepared.batch
    train_ds, val_ds = prepared.train, prepared.validation
    runtime = {
        "replicas": replicas,
        "global_batch_size": batch,
        "strategy": type(strategy).__name__,
        "dtype_policy": policy,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "data_dir": str(cfg.resolved_data_dir().resolve()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }

    run_dir, resuming = prepare_run_dir(cfg, runtime) if is_chief else worker_dir(cfg, worker)
    trim_history(run_dir)
    reporting.write_json(run_dir / "hparams.json", hp.values)
    if is_chief and splits.preprocessor is not None:
        keras.saving.save_model(splits.preprocessor, str(run_dir / trained.PREPROCESSOR))
        trained.load_preprocessor(run_dir)  # one that cannot be read back fails now, not after fit
    print(
        f"{project.name}: {runtime['strategy']} with {replicas} replica(s), global batch {batch} "
        f"({batch // replicas} per replica), {policy}; run folder {run_dir}"
        + (" (resuming)" if resuming else ""),
        flush=True,
    )

    own = project.callbacks(splits, run_dir) if project.callbacks is not None and is_chief else []
    fitted = fitting.fit(
        model, train_ds, val_ds, **fitting.settings(project, cfg), run_dir=run_dir, callbacks=own
    )
    if fitted.diverged:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # never resume from diverged weights
        raise TrainingDivergedError(
            f"the loss became NaN or infinite; training stopped (run folder {run_dir}). "
            "Lower the learning rate (--hp learning_rate=..., or the model's own rate names in "
            f"{run_dir / 'hparams.json'}) or check the data for NaNs, "
            "then train again with a new --run-dir."
        )
    chosen = project.after_fit(model, splits) if project.after_fit is not None else {}
    metrics = evaluate_model(project, model, splits, cfg, run_dir)  # every worker: evaluation is collective
    metrics.update(chosen)
    if is_chief:
        model.save(str(run_dir / "model.keras"))
        trained.save(project, splits, run_dir)  # state.json, examples.npz: all export needs from the data
        metrics.update(export_run(project, run_dir))
        finish_report(project, run_dir, metrics)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)  # everything is saved: nothing left to resume
    return run_dir


@dataclasses.dataclass
class Prepared:
    """What `train` fits: the model, and the batched splits of the examples made for its hyperparameters."""

    splits: Splits  # the examples made for the hyperparameters (`for_hparams`)
    model: keras.Model
    hp: kt.HyperParameters
    batch: int  # the global batch size
    train: tf.data.Dataset
    validation: tf.data.Dataset


def prepare(project: Project, cfg: RunConfig, strategy: tf.distribute.Strategy) -> Prepared:
    """Data, model and input pipelines exactly as `train` makes them (`make bench` times the same ones)."""
    check_schedule(project, cfg)
    loaded = project.load_data(cfg)
    with strategy.scope():
        model, hp = build_checked(project, cfg.hparams, loaded, cfg.batch_size)
    splits = splits_for(project, loaded, hp.values)
    batch, train_ds, val_ds = pipelines(splits, hp.values, cfg, strategy.num_replicas_in_sync)
    return Prepared(splits, model, hp, batch, train_ds, val_ds)


def pipelines(
    splits: Splits, values: dict[str, Any], cfg: RunConfig, replicas: int
) -> tuple[int, tf.data.Dataset, tf.data.Dataset]:
    """(global batch, training pipeline, validation pipeline) for a model with these hyperparameter
    values: `train` and every `tune` trial feed their models through these."""
    batch = global_batch_size(values.get("batch_size", cfg.batch_size), replicas, cfg.global_batch_size)
    check_first_batches(splits, batch, replicas)
    train_ds = batched(
        splits.train,
        batch,
        shuffle=True,
        seed=cfg.seed,
        cache=splits.cache_train,
        preprocess=splits.preprocessor,
        bucket_by_length=splits.bucket_by_length,
    )
    val_ds = batched(splits.validation, batch, shuffle=False, seed=cfg.seed, preprocess=splits.preprocessor)
    return batch, train_ds, val_ds


def check_schedule(project: Project, cfg: RunConfig) -> None:
    """A model that sets its own learning rates (`Project.owns_learning_rate`) takes no schedule."""
    if project.owns_learning_rate and cfg.lr_schedule != "constant":
        raise UserError(
            f"{project.name} sets its own learning rates, which a schedule would overwrite; "
            f"use --lr-schedule constant (got {cfg.lr_schedule})"
        )


def splits_for(project: Project, splits: Splits, values: dict[str, Any]) -> Splits:
    """The examples a model with these hyperparameter values trains on (`Project.for_hparams`)."""
    return splits if project.for_hparams is None else project.for_hparams(splits, values)


def check_first_batches(splits: Splits, batch: int, replicas: int) -> None:
    """Under a strategy, Keras builds the metrics from the first batch of each split averaged over the
    replicas (`strategy.reduce`), which fails when a split smaller than one global batch does not share out
    evenly. Say so before training rather than crash in its first validation."""
    if replicas < 2:
        return
    for name in ("train", "validation"):
        size = int(getattr(splits, name).cardinality())
        if 0 < size < batch and size % replicas:
            raise UserError(
                f"the {name} split has {size} examples, fewer than one global batch ({batch}), and they do "
                f"not share out evenly over {replicas} replicas, which Keras cannot build its metrics from "
                f"under a distribution strategy. Use --batch-size {max(1, size // replicas)} or less, or "
                "train on one device."
            )


def evaluate_model(
    project: Project, model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path
) -> dict:
    """The project's metrics on the test split, with the training summary from history.csv."""
    metrics = dict(project.evaluate(model, splits, cfg, run_dir))
    history = run_dir / "history.csv"
    if history.is_file():
        import pandas as pd

        frame = pd.read_csv(history)
        metrics["epochs_trained"] = int(frame["epoch"].max()) + 1
        if "epoch_seconds" in frame:
            metrics["train_seconds"] = round(float(frame["epoch_seconds"].sum()), 1)
    metrics["parameters"] = int(model.count_params())
    metrics["data"] = splits.info
    return metrics


def predict_split(
    model: keras.Model, splits: Splits, split: str = "test", batch_size: int = 1024
) -> np.ndarray:
    """The model's outputs on one split, in order, through the training pipeline (preprocessor included)."""
    dataset = getattr(splits, split)
    pipeline = batched(
        dataset, batch_size, shuffle=False, seed=0, cache=False, preprocess=splits.preprocessor
    )
    return np.asarray(model.predict(pipeline, verbose=0))


def export_run(project: Project, run_dir: Path) -> dict[str, float]:
    """Exports model.keras as a SavedModel, checks every signature in a fresh process, writes what the
    project's page needs beside it; returns the largest differences. Reads the run folder only, not the
    data (`shared.trained`)."""
    model = keras.models.load_model(str(run_dir / "model.keras"), compile=False)
    kept = trained.load(project, run_dir)
    endpoint = project.serving_endpoint(model, kept)
    extra = project.extra_endpoints(model, kept) if project.extra_endpoints is not None else {}
    path = run_dir / "saved_model"
    references = export.export_saved_model(
        [model, kept.preprocessor], endpoint, path, aliases=project.signature_aliases, extra=extra
    )
    examples = {name: e[2] for name, e in extra.items()}
    differences = {}
    for name, reference in references.items():  # an alias is the same function, traced again
        inputs = examples.get(name, endpoint[2])
        found = export.check_in_fresh_process(path, inputs, reference, signature=name)
        if name == export.SIGNATURE:
            differences.update(found)
        elif name in extra:
            differences.update({f"{name}_{key}": diff for key, diff in found.items()})
    page = {"project": project.name, **(project.page_info(kept) if project.page_info else {})}
    (path / "assets.extra").mkdir(exist_ok=True)
    reporting.write_json(path / "assets.extra" / "page.json", page)
    print(f"exported {path}; reloaded in a fresh process, largest difference {max(differences.values()):.2g}")
    return {f"export_max_abs_diff_{name}": diff for name, diff in differences.items()}


def finish_report(project: Project, run_dir: Path, metrics: dict[str, Any]) -> None:
    reporting.plot_history(run_dir / "history.csv", run_dir / "plots" / "training_curves.png")
    reporting.write_json(run_dir / "metrics.json", metrics)
    config, hparams = (
        reporting.read_json(run_dir / "config.json"),
        reporting.read_json(run_dir / "hparams.json"),
    )
    reporting.write_report(run_dir, f"{project.name} run", metrics, {**config, "hparams": hparams})


def as_trained(project: Project, splits: Splits, run_dir: Path) -> Splits:
    """Today's `splits` with the preprocessor and state the run trained with, not ones made again from
    today's data."""
    if splits.preprocessor is not None:
        path = Path(run_dir) / trained.PREPROCESSOR
        if not path.is_file():
            raise UserError(f"{run_dir} has no {trained.PREPROCESSOR}: the run did not finish; rerun train")
        splits = dataclasses.replace(splits, preprocessor=trained.load_preprocessor(run_dir))
    return dataclasses.replace(splits, state=trained.load_state(project, run_dir))


def reevaluate(project: Project, run_dir: Path, cfg: RunConfig, splits: Splits) -> dict[str, Any]:
    """Evaluates a finished run's model.keras again; updates metrics.json and report.md."""
    model = keras.models.load_model(str(run_dir / "model.keras"))
    splits = as_trained(project, splits, run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update(evaluate_model(project, model, splits, cfg, run_dir))
    finish_report(project, run_dir, metrics)
    return metrics
