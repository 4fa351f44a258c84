"""The runner's pieces in-process: hyperparameter checks, callbacks, NaN handling, reports."""

import itertools
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from projects.mnist_cnn.model import build_model
from shared import fitting, hparams, reporting, run_folder, runner
from shared.callbacks import CosineDecayByEpoch, ResumableEarlyStopping, best_so_far
from shared.config import RunConfig, UserError
from shared.project import Project, Splits


def test_hparams_replace_defaults_and_are_checked():
    hp = hparams.hyperparameters({"filters": 16, "augment": False})
    model = build_model(hp)
    assert hparams.check_hyperparameters(hp, {"filters": 16, "augment": False}) == {
        "filters": 16,
        "augment": False,
    }
    assert hp.values["filters"] == 16 and hp.values["dense_units"] == 256
    assert model.get_layer("block1_conv1").filters == 16
    assert "shift" not in [layer.name for layer in model.layers]


def test_unknown_or_mistyped_hparams_are_named():
    from projects.mnist_cnn import PROJECT

    with pytest.raises(UserError, match=r"unknown hyperparameter\(s\) filtres; this model has: .*filters"):
        hparams.build_checked(PROJECT, {"filtres": 16}, None)
    with pytest.raises(UserError, match="filters must be int, got 'many'"):  # breaks the build itself
        hparams.build_checked(PROJECT, {"filters": "many"}, None)
    with pytest.raises(UserError, match="augment must be bool"):
        hparams.build_checked(PROJECT, {"augment": 1}, None)
    _model, hp = hparams.build_checked(PROJECT, {"learning_rate": 1}, None)  # a whole number is a fine float
    assert hp.values["learning_rate"] == 1.0 and isinstance(hp.values["learning_rate"], float)


def test_cosine_schedule_depends_on_the_epoch_only():
    schedule = CosineDecayByEpoch(epochs=10, final_fraction=0.01)
    schedule.base_rate = 1.0
    rates = [schedule.rate(e) for e in range(11)]
    assert rates[0] == pytest.approx(1.0)
    assert rates[5] == pytest.approx(0.505)
    assert rates[10] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(rates))


def test_best_so_far_reads_history(tmp_path):
    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2], "val_accuracy": [0.5, 0.9, 0.7]}).to_csv(history, index=False)
    assert best_so_far(history, "val_accuracy", "max") == 0.9
    assert best_so_far(history, "val_accuracy", "min") == 0.5
    assert best_so_far(tmp_path / "none.csv", "val_accuracy", "max") is None


def test_early_stopping_patience_counts_epochs_before_a_resume(tmp_path):
    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2], "val_loss": [0.5, 0.4, 0.45]}).to_csv(history, index=False)
    stopper = ResumableEarlyStopping(history, monitor="val_loss", mode="min", patience=2)
    stopper.on_train_begin()
    assert stopper.best == 0.4 and stopper.wait == 1
    fresh = ResumableEarlyStopping(tmp_path / "none.csv", monitor="val_loss", mode="min", patience=2)
    fresh.on_train_begin()
    assert fresh.best is None and fresh.wait == 0
    late = ResumableEarlyStopping(history, monitor="val_loss", mode="min", patience=2, start_from_epoch=2)
    late.on_train_begin()  # epochs 0 and 1 came before it started watching: only epoch 2 counts
    assert late.best == 0.45 and late.wait == 0


def nan_project() -> Project:
    def load(cfg):
        x = np.ones((32, 4), np.float32)
        ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(32, np.float32)))
        return Splits(ds, ds, ds)

    def build(hp, splits):
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(1)(inputs)
        model = keras.Model(inputs, outputs)
        model.compile("sgd", loss=lambda y, p: keras.ops.log(-keras.ops.abs(p) - 1.0))  # always NaN
        return model

    return Project(
        "nan_demo",
        load,
        build,
        evaluate=lambda *a: {},
        serving_endpoint=None,
        objective="val_loss",
        objective_direction="min",
    )


def test_a_nan_loss_stops_the_run_loudly(tmp_path):
    cfg = RunConfig(project="nan_demo", run_dir=str(tmp_path / "run"), epochs=3, batch_size=8)
    with pytest.raises(fitting.TrainingDivergedError, match="NaN"):
        runner.train(nan_project(), cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_report_embeds_plots_and_metrics(tmp_path):
    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}).to_csv(history, index=False)
    assert reporting.plot_history(history, tmp_path / "plots" / "training_curves.png").is_file()
    reporting.plot_confusion_matrix(
        np.array([0, 1, 1]), np.array([0, 1, 0]), ["a", "b"], tmp_path / "plots" / "confusion_matrix.png"
    )
    report = reporting.write_report(tmp_path, "demo", {"test_accuracy": 0.5}, {"run": {"seed": 1}})
    text = report.read_text()
    assert "| test_accuracy | 0.5000 |" in text
    assert "plots/training_curves.png" in text and "plots/confusion_matrix.png" in text
    reporting.write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": 3}


def test_run_folders_latest_link_and_same_second_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(run_folder, "RUNS_ROOT", tmp_path / "runs")
    cfg = RunConfig(project="demo")
    first, resuming = run_folder.prepare_run_dir(cfg, {})
    second, _ = run_folder.prepare_run_dir(cfg, {})
    assert not resuming and first != second, "two runs started in the same second share no folder"
    latest = tmp_path / "runs" / "demo" / "latest"
    assert latest.resolve() == second.resolve()

    again, resuming = run_folder.prepare_run_dir(RunConfig(project="demo", run_dir=str(latest)), {})
    assert resuming and again == second.resolve(), (
        "--run-dir runs/<project>/latest resumes the run it points at"
    )
    assert latest.is_symlink() and latest.resolve() == second.resolve()


def test_stop_on_nan_watches_every_logged_number():
    import keras

    from shared.callbacks import StopOnNaN

    stop = StopOnNaN()
    stop.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stop.model.stop_training = False
    stop.on_batch_end(0, {"d_loss": 0.7, "g_loss": 1.2, "note": "text"})
    assert not stop.fired and not stop.model.stop_training
    stop.on_batch_end(1, {"d_loss": 0.7, "g_loss": float("nan")})  # a GAN logs no `loss`
    assert stop.fired and stop.model.stop_training
