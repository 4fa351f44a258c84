"""Checks every project's tests run on their own trained run (each test module calls them, so no project is
trained twice for them): the run folder is all the model needs."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
from pathlib import Path

import numpy as np

from shared import cli, trained
from tests.conftest import run_cli

CHECK = "check_run_folder_is_all_it_needs"


def signature_answers(saved_model: Path, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    return {
        key: value.numpy() for key, value in serve(**{k: tf.constant(v) for k, v in examples.items()}).items()
    }


def no_data(cfg):
    raise AssertionError("export read the data; it must need only the run folder")


def check_run_folder_is_all_it_needs(name: str, trained_run: Path, tmp_path: Path) -> None:
    """On a copy of a trained run: export again with the project's `load_data` failing gives the same
    answers and page; `evaluate` with the data gone says it needs the data and where it looked."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    project = importlib.import_module(f"projects.{name}").PROJECT
    kept = trained.load(project, run_dir)
    if project.state_type is not None:
        assert dataclasses.is_dataclass(kept.state), "state.json must read back as the project's state"
    saved = run_dir / "saved_model"
    page_before = json.loads((saved / "assets.extra" / "page.json").read_text())
    inputs = project.serving_endpoint(keras_model(run_dir), kept)[2]
    before = signature_answers(saved, inputs)
    shutil.rmtree(saved)

    assert cli.main(dataclasses.replace(project, load_data=no_data), ["export", str(run_dir)]) == 0
    after = signature_answers(saved, inputs)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=f"{name}: output {key} changed")
    assert json.loads((saved / "assets.extra" / "page.json").read_text()) == page_before

    # the same run as if trained on real data that is gone: evaluate needs it, and says where it looked
    config = json.loads((run_dir / "config.json").read_text())
    config["run"]["smoke"] = False
    (run_dir / "config.json").write_text(json.dumps(config))
    empty = tmp_path / "gone"
    empty.mkdir()
    result = run_cli(name, "evaluate", str(run_dir), "--data-dir", str(empty), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "evaluate needs the run's test data" in result.stderr and str(empty) in result.stderr, (
        result.stderr
    )


def keras_model(run_dir: Path):
    import keras

    return keras.models.load_model(str(run_dir / "model.keras"), compile=False)
