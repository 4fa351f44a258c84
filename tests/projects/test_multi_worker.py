"""Multi-worker training: two worker processes on 127.0.0.1 train one model (MultiWorkerMirroredStrategy)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import cli_command, cli_env


def free_local_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def train_on_two_workers(project: str, args: tuple[str, ...], tmp_path: Path) -> Path:
    """`train ARGS` in two worker processes of one cluster on 127.0.0.1; returns the shared run folder."""
    run_dir = tmp_path / "multi"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_local_ports(2)]}
    workers, logs = [], []
    for index in (0, 1):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        log = (tmp_path / f"worker-{index}.log").open("w")  # files, not pipes: nobody reads while polling
        logs.append(log)
        workers.append(
            subprocess.Popen(
                cli_command(project, "train", *args, "--run-dir", str(run_dir)),
                cwd=tmp_path,
                env=cli_env(tmp_path, TF_CONFIG=tf_config),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.time() + 420
    while time.time() < deadline and any(w.poll() is None for w in workers):
        if any(w.poll() not in (None, 0) for w in workers):
            break  # one failed: the other would wait for it in a collective until it times out
        time.sleep(0.5)
    for worker, log in zip(workers, logs, strict=True):
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        log.close()
    for index, worker in enumerate(workers):
        output = (tmp_path / f"worker-{index}.log").read_text()
        assert worker.returncode == 0, f"worker {index} failed:\n{output[-3000:]}"
    runtime = json.loads((run_dir / "config.json").read_text())["runtime"]
    # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy
    assert runtime["strategy"] == "CollectiveAllReduceStrategy" and runtime["replicas"] == 2
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    assert not (run_dir / "workers" / "worker-1" / "model.keras").exists(), "only the chief saves the model"
    return run_dir


def test_a_preprocessor_in_the_pipeline_trains_on_two_workers(tmp_path):
    run_dir = train_on_two_workers("churn_ann", ("--smoke", "--epochs", "4", "--batch-size", "32"), tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_roc_auc"] > 0.6, metrics["test_roc_auc"]
    assert (run_dir / "preprocessor.keras").is_file()


def test_two_workers_train_one_model(tmp_path):
    run_dir = train_on_two_workers("mnist_cnn", ("--smoke", "--epochs", "3", "--batch-size", "32"), tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5, metrics["test_accuracy"]
    worker_dir = run_dir / "workers" / "worker-1"
    # gradients are all-reduced, so both workers hold the same trainable weights (BatchNormalization's
    # moving statistics are each replica's own unless the layer is built with synchronized=True)
    import keras

    from projects.mnist_cnn.model import build_model
    from shared.hparams import hyperparameters

    chief, other = build_model(hyperparameters({})), build_model(hyperparameters({}))
    chief.load_weights(run_dir / "checkpoints" / "best.weights.h5")
    other.load_weights(worker_dir / "checkpoints" / "best.weights.h5")
    assert len(chief.trainable_weights) == 17  # 4 conv + 5x2 batch-norm + dense + output kernel and bias
    for a, b in zip(chief.trainable_weights, other.trainable_weights, strict=True):
        assert keras.ops.convert_to_numpy(a).tolist() == keras.ops.convert_to_numpy(b).tolist(), a.path
