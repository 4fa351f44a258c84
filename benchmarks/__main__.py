"""`make bench`: speed of mnist_cnn on this machine, as JSON (benchmarks/results/) and a printed table.

1. Input pipeline: training steps/s through the real tf.data pipeline against the same model fed one
   synthetic batch already in memory. A ratio near 1 means the pipeline never starves the model (goal >= 0.9).
2. Time to accuracy: wall time from the first step until the test accuracy reaches 99.2%, evaluated after
   every epoch, with the default model and settings.

Needs the real MNIST file: --data-dir or DATA_DIR (see the top-level README). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from projects.mnist_cnn import data
from projects.mnist_cnn.model import build_model
from shared.config import RunConfig, UserError
from shared.data import batched
from shared.runner import hyperparameters

RESULTS = Path(__file__).parent / "results"


class StepTimer(keras.callbacks.Callback):
    """Wall time of the steps after `warmup` (tracing and the first cache fill excluded)."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.warmup:
            self.steps += 1
            self.elapsed = time.perf_counter() - self.start


def steps_per_second(dataset: tf.data.Dataset, steps: int, warmup: int, seed: int) -> float:
    keras.utils.set_random_seed(seed)
    model = build_model(hyperparameters({}))
    timer = StepTimer(warmup)
    model.fit(dataset.take(steps + warmup), epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    return timer.steps / timer.elapsed


def pipeline_benchmark(splits, batch: int, steps: int, seed: int) -> dict:
    real = batched(splits.train, batch, shuffle=True, seed=seed).repeat()
    images, labels = next(iter(real))
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()  # one batch, already in memory
    warmup = 20  # tracing and the first steps are not timed
    synthetic_rate = steps_per_second(synthetic, steps, warmup, seed)
    real_rate = steps_per_second(real, steps, warmup, seed)
    return {
        "batch_size": batch,
        "steps_timed": steps,
        "real_pipeline_steps_per_s": round(real_rate, 3),
        "synthetic_in_memory_steps_per_s": round(synthetic_rate, 3),
        "ratio": round(real_rate / synthetic_rate, 3),
        "goal_ratio": 0.9,
    }


class StopAtTestAccuracy(keras.callbacks.Callback):
    def __init__(self, test: tf.data.Dataset, target: float):
        super().__init__()
        self.test, self.target, self.start, self.reached = test, target, None, None
        self.curve: list[tuple[int, float, float]] = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.model.evaluate(self.test, verbose=0, return_dict=True)["accuracy"]
        elapsed = time.perf_counter() - self.start  # evaluation time counts: it is part of getting there
        self.curve.append((epoch + 1, round(elapsed, 1), round(accuracy, 4)))
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f} after {elapsed:.0f} s", flush=True)
        if accuracy >= self.target and self.reached is None:
            self.reached = (epoch + 1, elapsed)
            self.model.stop_training = True


def time_to_accuracy(splits, batch: int, epochs: int, seed: int, target: float) -> dict:
    from shared.callbacks import CosineDecayByEpoch

    keras.utils.set_random_seed(seed)
    model = build_model(hyperparameters({}))
    stopper = StopAtTestAccuracy(batched(splits.test, 1024, shuffle=False, seed=seed), target)
    train = batched(splits.train, batch, shuffle=True, seed=seed)
    model.fit(train, epochs=epochs, callbacks=[CosineDecayByEpoch(epochs), stopper], verbose=0, shuffle=False)
    result = {"target_test_accuracy": target, "max_epochs": epochs, "curve": stopper.curve}
    if stopper.reached:
        result.update(epochs=stopper.reached[0], wall_seconds=round(stopper.reached[1], 1))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150, help="timed steps per pipeline run")
    parser.add_argument("--epochs", type=int, default=15, help="schedule length for time to accuracy")
    parser.add_argument("--target", type=float, default=0.992)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-time-to-accuracy", action="store_true")
    args = parser.parse_args()
    try:
        splits = data.load(RunConfig(project="mnist_cnn", data_dir=args.data_dir, seed=args.seed))
    except UserError as e:
        print(f"error: {e}")
        return 2
    results = {
        "project": "mnist_cnn",
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "pipeline": pipeline_benchmark(splits, args.batch_size, args.steps, args.seed),
    }
    if not args.skip_time_to_accuracy:
        results["time_to_accuracy"] = time_to_accuracy(
            splits, args.batch_size, args.epochs, args.seed, args.target
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "mnist_cnn.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    pipeline, tta = results["pipeline"], results.get("time_to_accuracy", {})
    rows = [
        ("real pipeline steps/s", pipeline["real_pipeline_steps_per_s"]),
        ("synthetic in-memory steps/s", pipeline["synthetic_in_memory_steps_per_s"]),
        ("ratio (goal >= 0.9)", pipeline["ratio"]),
    ]
    if tta:
        reached = (
            f"{tta['wall_seconds']} s, {tta['epochs']} epochs" if "wall_seconds" in tta else "not reached"
        )
        rows.append((f"time to {args.target:.1%} test accuracy", reached))
    width = max(len(name) for name, _ in rows)
    print("\nmnist_cnn benchmark")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"\nwritten to {out}")
    return 0 if np.isfinite(pipeline["ratio"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
