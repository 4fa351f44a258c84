"""Every handled bad input, fed in-process, with the message it must give (CLI ones: tests/projects)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from projects.mnist_cnn import PROJECT
from shared import fitting, run_folder, runner, strategy, trained, tuning
from shared.callbacks import schedule_callback
from shared.cli import build_parser, config_from_args, main
from shared.config import RunConfig, UserError, load_hparams_file
from shared.mnist import load_arrays
from shared.project import Project

TF_CONFIG = json.dumps(
    {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
)


def test_negative_counts_on_the_command_line():
    args = build_parser(PROJECT).parse_args(["train", "--epochs", "-1"])
    with pytest.raises(UserError, match="--epochs cannot be negative"):
        config_from_args(PROJECT, args)


def test_unreadable_hparams_files(tmp_path):
    with pytest.raises(UserError, match="cannot read --hparams file"):
        load_hparams_file(str(tmp_path))  # a folder
    binary = tmp_path / "weights.h5"
    binary.write_bytes(b"\xff\xfe\x00\x89HDF")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_hparams_file(str(binary))


def test_run_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "a_file").write_text("")
    cfg = RunConfig(project="p", run_dir=str(tmp_path / "a_file" / "run"))
    with pytest.raises(UserError, match="cannot create the run folder"):
        run_folder.prepare_run_dir(cfg, {})


def test_run_folders_that_are_not_finished_runs(tmp_path):
    with pytest.raises(UserError, match="is not a run folder"):
        run_folder.load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"run": RunConfig(project="p").to_json()}))
    with pytest.raises(UserError, match="the run did not finish"):
        run_folder.load_run(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "config.json").write_text('{"run": ')
    with pytest.raises(UserError, match=r"cannot read .*config\.json"):
        run_folder.load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"run": {"project": "p", "colour": "red"}}))
    with pytest.raises(UserError, match="not a run config this version can read"):
        run_folder.load_run(tmp_path)


def test_an_unreadable_best_checkpoint_keeps_the_last_weights(tmp_path, capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    before = [w.copy() for w in model.get_weights()]
    corrupt = tmp_path / "best.weights.h5"
    corrupt.write_bytes(b"half a file")
    assert fitting.load_best_weights(model, corrupt) is False
    assert "is unreadable" in capsys.readouterr().out
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert fitting.load_best_weights(model, tmp_path / "none.weights.h5") is False


def test_a_file_error_anywhere_is_one_line(tmp_path, capsys):
    def unreadable(cfg):
        raise PermissionError(13, "Permission denied", "/data/mnist/mnist.npz")

    project = Project("demo", unreadable, PROJECT.build_model, PROJECT.evaluate, PROJECT.serving_endpoint)
    assert main(project, ["train", "--run-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "error: Permission denied: /data/mnist/mnist.npz"


def test_multi_worker_needs_a_run_dir(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", TF_CONFIG)
    with pytest.raises(UserError, match="multi-worker training needs --run-dir"):
        runner.train(PROJECT, RunConfig(project="mnist_cnn", smoke=True))


def test_tune_refusals(monkeypatch, tmp_path):
    cfg = RunConfig(project="mnist_cnn", smoke=True, run_dir=str(tmp_path / "search"))
    with pytest.raises(UserError, match="--max-trials must be at least 1"):
        tuning.tune(PROJECT, cfg, max_trials=0)
    with pytest.raises(UserError, match="--tuner must be one of"):
        tuning.make_tuner(tuning.SearchModel(PROJECT, cfg, {}, None, 1), "grid", 2, tmp_path, None)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="cannot create the search folder"):
        tuning.record_search(tmp_path / "a_file" / "search", cfg, "random")
    monkeypatch.setenv("TF_CONFIG", TF_CONFIG)
    with pytest.raises(UserError, match="tune runs on one machine"):
        tuning.tune(PROJECT, cfg)


def test_bad_runtime_names():
    with pytest.raises(UserError, match="--mixed-precision must be auto, on or off"):
        strategy.configure_precision("maybe")
    with pytest.raises(UserError, match="--lr-schedule must be cosine, plateau or constant"):
        schedule_callback("step", 10, "val_loss", "min")


def test_multi_worker_patch_only_on_the_checked_keras(monkeypatch):
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(UserError, match=r"checked with Keras 3\.15 only"):
        strategy.patch_keras_for_multi_worker()


def test_cpu_split_after_tensorflow_started():
    tf.config.list_logical_devices("CPU")  # starts the runtime
    with pytest.raises(UserError, match="cannot split the CPU into 3 devices after TensorFlow started"):
        strategy.split_cpu(3)


def mnist_file(tmp_path, **changes) -> RunConfig:
    arrays = {
        "x_train": np.zeros((8, 28, 28), np.uint8),
        "y_train": np.arange(8) % 10,
        "x_test": np.zeros((4, 28, 28), np.uint8),
        "y_test": np.arange(4),
    }
    arrays.update(changes)
    (tmp_path / "mnist").mkdir(exist_ok=True)
    np.savez(tmp_path / "mnist" / "mnist.npz", **arrays)
    return RunConfig(project="mnist_cnn", data_dir=str(tmp_path))


def test_mnist_file_with_wrong_shapes_or_labels(tmp_path):
    assert len(load_arrays(mnist_file(tmp_path))[0]) == 8
    with pytest.raises(UserError, match=r"train images must be uint8 \[N, 28, 28\]"):
        load_arrays(mnist_file(tmp_path, x_train=np.zeros((8, 28, 27), np.uint8)))
    with pytest.raises(UserError, match="test labels must be digits 0-9; found 0 to 12"):
        load_arrays(mnist_file(tmp_path, y_test=np.array([0, 1, 2, 12])))


def test_a_run_without_its_saved_preprocessor(tmp_path):
    from shared.project import Splits

    dataset = tf.data.Dataset.from_tensor_slices((np.zeros(2), np.zeros(2)))
    splits = Splits(dataset, dataset, dataset, preprocessor=keras.layers.Identity())
    with pytest.raises(UserError, match=r"has no preprocessor\.keras: the run did not finish"):
        runner.as_trained(PROJECT, splits, tmp_path)


def test_a_run_state_missing_or_from_another_version_is_named(tmp_path):
    import dataclasses

    @dataclasses.dataclass
    class Kept:
        vocabulary: list
        threshold: float

    project = dataclasses.replace(PROJECT, state_type=Kept)
    with pytest.raises(UserError, match=r"has no state\.json: the run did not finish"):
        trained.load_state(project, tmp_path)
    (tmp_path / "state.json").write_text('{"vocabulary": ["a"], "mean": 0.5}')
    with pytest.raises(UserError, match="missing: threshold; unknown: mean"):
        trained.load_state(project, tmp_path)
    (tmp_path / "state.json").write_text('{"vocabulary": ["a"], "threshold": 0.5}')
    assert trained.load_state(project, tmp_path) == Kept(["a"], 0.5)


def test_export_examples_must_not_need_pickle(tmp_path):
    import dataclasses

    from shared.project import Splits

    dataset = tf.data.Dataset.from_tensor_slices((np.zeros(2), np.zeros(2)))
    project = dataclasses.replace(PROJECT, examples=lambda splits: {"rows": np.array([{"a": 1}])})
    with pytest.raises(TypeError, match="example input 'rows' must be numbers, str or bytes"):
        trained.save(project, Splits(dataset, dataset, dataset), tmp_path)


def test_export_version_needs_a_serving_dir(tmp_path, capsys):
    assert main(PROJECT, ["export", str(tmp_path), "--version", "2"]) == 2
    assert "--version numbers a copy in --serving-dir; give --serving-dir DIR too" in capsys.readouterr().err
