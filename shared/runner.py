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
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from shared import callbacks as cb
from shared import export, reporting
from shared.config import RunConfig, UserError, check_resume_compatible
from shared.data import batched
from shared.project import Project, Splits
from shared.strategy import (
    configure_precision,
    global_batch_size,
    is_multi_worker,
    make_strategy,
    worker_index,
)

RUNS_ROOT = Path("runs")
PREPROCESSOR = "preprocessor.keras"  # a split's adapted preprocessor, saved beside model.keras


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite and TerminateOnNaN stopped the run."""


def set_seeds(cfg: RunConfig) -> None:
    keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


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


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the logs, so history.csv holds the training time even across resumes."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


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

    run_dir, resuming = prepare_run_dir(cfg, runtime) if is_chief else _worker_dir(cfg, worker)
    trim_history(run_dir)
    reporting.write_json(run_dir / "hparams.json", hp.values)
    if is_chief and splits.preprocessor is not None:
        keras.saving.save_model(splits.preprocessor, str(run_dir / PREPROCESSOR))
        with_saved_preprocessor(splits, run_dir)  # one that cannot be read back fails now, not after fit
    print(
        f"{project.name}: {runtime['strategy']} with {replicas} replica(s), global batch {batch} "
        f"({batch // replicas} per replica), {policy}; run folder {run_dir}"
        + (" (resuming)" if resuming else ""),
        flush=True,
    )

    own = project.callbacks(splits, run_dir) if project.callbacks is not None and is_chief else []
    callbacks = [
        EpochTimer(),
        *own,
        *cb.standard_callbacks(
            run_dir,
            epochs=cfg.epochs,
            monitor=project.objective,
            mode=project.objective_direction,
            lr_schedule=cfg.lr_schedule,
            patience=cfg.early_stopping_patience,
        ),
    ]
    # shuffle=False: the tf.data pipeline shuffles; Keras would only warn that it cannot
    model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=callbacks, shuffle=False)
    if any(isinstance(c, cb.StopOnNaN) and c.fired for c in callbacks):
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # never resume from diverged weights
        raise TrainingDivergedError(
            f"the loss became NaN or infinite; training stopped (run folder {run_dir}). "
            "Lower the learning rate (--hp learning_rate=..., or the model's own rate names in "
            f"{run_dir / 'hparams.json'}) or check the data for NaNs, "
            "then train again with a new --run-dir."
        )
    load_best_weights(model, run_dir / "checkpoints" / "best.weights.h5")
    fitted = project.after_fit(model, splits) if project.after_fit is not None else {}
    metrics = evaluate_model(project, model, splits, cfg, run_dir)  # every worker: evaluation is collective
    metrics.update(fitted)
    if is_chief:
        model.save(str(run_dir / "model.keras"))
        metrics.update(export_run(project, run_dir, splits))
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
    loaded = project.load_data(cfg)
    with strategy.scope():
        model, hp = build_checked(project, cfg.hparams, loaded, cfg.batch_size)
    splits = splits_for(project, loaded, hp.values)
    replicas = strategy.num_replicas_in_sync
    batch = global_batch_size(hp.values.get("batch_size", cfg.batch_size), replicas, cfg.global_batch_size)
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
    return Prepared(splits, model, hp, batch, train_ds, val_ds)


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


def series_folder(project: Project, cfg: RunConfig, kind: str) -> Path:
    """A series of runs' folder (seeds, a comparison): --run-dir, else runs/<project>/<kind>-<UTC time>."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    return RUNS_ROOT / project.name / f"{kind}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def train_in_series(project: Project, cfg: RunConfig) -> dict[str, Any]:
    """One run of a series (its own `cfg.run_dir`); returns its metrics.json.

    Rerunning a series continues it: a finished run is reused, a killed one resumed, and a run folder
    holding other settings is refused rather than mixed into the series' table.
    """
    run_dir = Path(cfg.run_dir)
    if (run_dir / "config.json").is_file():
        check_resume_compatible(reporting.read_json(run_dir / "config.json")["run"], cfg.to_json(), run_dir)
    if not (run_dir / "metrics.json").is_file() or (run_dir / "backup").exists():
        keras.backend.clear_session()
        train(project, cfg)
    return reporting.read_json(run_dir / "metrics.json")


def load_best_weights(model: keras.Model, best: Path) -> bool:
    """Loads the epoch with the best validation objective (not the last); False if there is none to load."""
    if not best.is_file():
        return False
    try:
        model.load_weights(str(best))
        return True
    except (OSError, ValueError) as e:  # e.g. killed while it was being written
        print(f"warning: {best} is unreadable ({e}); keeping the last epoch's weights", flush=True)
        return False


def _worker_dir(cfg: RunConfig, worker: int) -> tuple[Path, bool]:
    """A non-chief worker's own folder, inside the chief's, for its backup, checkpoint and logs.

    Keras 3 callbacks know nothing of chief and workers, so each worker writes its own files; their
    weights are identical, so each reloads the same best checkpoint.
    """
    check_existing_run(Path(cfg.run_dir), cfg)  # the chief's checks, so every worker stops, not one
    path = Path(cfg.run_dir) / "workers" / f"worker-{worker}"
    path.mkdir(parents=True, exist_ok=True)
    return path, (path / "backup").exists()


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


def compiled_metrics(model: keras.Model, dataset: tf.data.Dataset, prefix: str = "test_") -> dict[str, float]:
    """`model.evaluate` on a batched split, names prefixed (loss -> test_loss, accuracy -> test_accuracy)."""
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    return {f"{prefix}{name}": float(value) for name, value in results.items()}


def export_run(project: Project, run_dir: Path, splits: Splits) -> dict[str, float]:
    """Exports model.keras as a SavedModel, checks every signature in a fresh process, writes what the
    project's page needs beside it; returns the largest differences."""
    model = keras.models.load_model(str(run_dir / "model.keras"), compile=False)
    splits = with_saved_preprocessor(splits, run_dir)
    endpoint = project.serving_endpoint(model, splits)
    extra = project.extra_endpoints(model, splits) if project.extra_endpoints is not None else {}
    path = run_dir / "saved_model"
    references = export.export_saved_model(
        [model, splits.preprocessor], endpoint, path, aliases=project.signature_aliases, extra=extra
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
    measured = run_dir / "metrics.json"
    if measured.is_file():  # a re-export keeps what evaluation chose (churn's threshold) for page_info
        recorded = reporting.read_json(measured).get("data", {})
        splits = dataclasses.replace(splits, info={**recorded, **splits.info})
    page = {"project": project.name, **(project.page_info(splits) if project.page_info else {})}
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


def with_saved_preprocessor(splits: Splits, run_dir: Path) -> Splits:
    """`splits` with the preprocessor the run trained with (not one adapted again on today's data)."""
    if splits.preprocessor is None:
        return splits
    path = Path(run_dir) / PREPROCESSOR
    if not path.is_file():
        raise UserError(f"{run_dir} has no {PREPROCESSOR}: the run did not finish; rerun its train command")
    preprocessor = keras.saving.load_model(str(path))
    if hasattr(preprocessor, "get_encoded_features"):  # a reloaded FeatureSpace builds lazily, eagerly only
        preprocessor.get_encoded_features()
    return dataclasses.replace(splits, preprocessor=preprocessor)


def reevaluate(project: Project, run_dir: Path, cfg: RunConfig, splits: Splits) -> dict[str, Any]:
    """Evaluates a finished run's model.keras again; updates metrics.json and report.md."""
    model = keras.models.load_model(str(run_dir / "model.keras"))
    splits = with_saved_preprocessor(splits, run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update(evaluate_model(project, model, splits, cfg, run_dir))
    finish_report(project, run_dir, metrics)
    return metrics
