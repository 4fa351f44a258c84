"""One project's benchmark, in a process of its own (so its peak memory is its own): writes a JSON file.

    python -m benchmarks.one_project mnist_cnn --data-dir DIR --out result.json [--quick] [--smoke]

1. Input pipeline: the runner's own training pipeline (`shared.runner.prepare`), first read cold with no
   model, then training steps/s through it against the same model fed one batch already in memory.
2. Peak resident memory after the data is loaded, one cold pass is read and the default model has trained.
3. Ours against the project's reference recipe (`benchmarks.comparisons`).
4. With --scaling (on by default where GPUs answer): in-memory steps/s in float32 on one device, on every
   device (MirroredStrategy), and with mixed precision.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shlex
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from benchmarks.comparisons import COMPARISONS, Comparison
from benchmarks.references import Budget, Measured, TimeToTarget, fit_to_target, spread, steps_per_second
from shared import callbacks as cb
from shared import runner
from shared.cli import build_parser, config_from_args
from shared.config import RunConfig
from shared.data import batched
from shared.project import Project
from shared.strategy import configure_precision, make_strategy

FULL = Budget(max_epochs=100, max_seconds=1800, steps=5000, warmup=10, step_seconds=30)
QUICK = Budget(
    max_epochs=10, max_seconds=20, steps=1000, warmup=3, step_seconds=4, round_steps=40, score_examples=500
)


def project_config(
    project: Project, data_dir: str | None, seed: int, smoke: bool, train_args: str = ""
) -> RunConfig:
    """The RunConfig `train` would get with every default (the project's own options included), or with
    `train_args` (e.g. cats_dogs_vgg16's "--weights none" where ImageNet's file cannot be fetched)."""
    argv = ["train", "--seed", str(seed)] + (["--data-dir", data_dir] if data_dir else [])
    argv += (["--smoke"] if smoke else []) + shlex.split(train_args)
    return config_from_args(project, build_parser(project).parse_args(argv))


def peak_rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # Linux: KiB


def cold_pass(dataset: tf.data.Dataset, max_batches: int | None) -> dict:
    """Batches per second of the pipeline alone, read once from the start (decoding, cache filling)."""
    start, count = time.perf_counter(), 0
    for _ in dataset.take(max_batches if max_batches else -1):
        count += 1
    return {"batches": count, "batches_per_s": round(count / (time.perf_counter() - start), 2)}


def pipeline_figures(prepared: runner.Prepared, budget: Budget, repeats: int) -> dict:
    """Steps/s through the real pipeline and on in-memory batches, interleaved so drift hits both.

    The in-memory batches are the pipeline's own first ones, held in memory (up to 20): the model sees the
    same shapes (a bucketed text pipeline's batches differ in length) without the pipeline's work.
    """
    real = prepared.train.repeat()
    synthetic = prepared.train.take(20).cache().repeat()
    # one element past the cached ones: the cache is kept only once its first pass has ended
    for _ in synthetic.take(21):
        pass
    real_rates, synthetic_rates = [], []
    for _ in range(repeats):
        synthetic_rates.append(steps_per_second(prepared.model, synthetic, budget))
        real_rates.append(steps_per_second(prepared.model, real, budget))
    real_rate, synthetic_rate = statistics.median(real_rates), statistics.median(synthetic_rates)
    return {
        "batch_size": prepared.batch,
        "repeats": repeats,
        "max_steps_timed": budget.steps,
        "real_steps_per_s": round(real_rate, 3),
        "synthetic_steps_per_s": round(synthetic_rate, 3),
        "real_runs": [round(r, 3) for r in real_rates],
        "synthetic_runs": [round(r, 3) for r in synthetic_rates],
        "ratio": round(real_rate / synthetic_rate, 3),
    }


def ours_to_target(project: Project, cfg: RunConfig, comparison: Comparison, target: float, budget: Budget):
    """Ours from scratch with its default recipe, scored after every epoch (or round) until `target`."""
    runner.set_seeds(cfg)
    prepared = runner.prepare(project, cfg, tf.distribute.get_strategy())
    splits = prepared.splits
    scored = getattr(splits, comparison.split)
    scored = spread(scored, budget)
    scored = batched(scored, prepared.batch, shuffle=False, seed=cfg.seed, preprocess=splits.preprocessor)
    model = prepared.model

    def score() -> float:
        return model.evaluate(scored, verbose=0, return_dict=True)[comparison.key]

    stopper = TimeToTarget(score, target, budget, comparison.higher_is_better)
    # the schedule runs over ours' default epochs, as in `train`, even when the target stops it sooner
    schedule = cb.schedule_callback(
        cfg.lr_schedule, cfg.epochs, project.objective, project.objective_direction
    )
    callbacks = [stopper] if schedule is None else [schedule, stopper]
    fit_to_target(model, prepared.train, callbacks, budget, cfg.epochs)
    return stopper.measured(comparison.metric)


def ours_final(project: Project, cfg: RunConfig, comparison: Comparison, budget: Budget) -> Measured:
    """Ours' whole default recipe (`train`, epochs bounded by the budget), read from its metrics.json."""
    with tempfile.TemporaryDirectory() as folder:
        epochs = min(cfg.epochs, budget.max_epochs)
        start = time.perf_counter()
        run_dir = runner.train(project, replace(cfg, run_dir=str(Path(folder) / "run"), epochs=epochs))
        seconds = time.perf_counter() - start
        metrics = json.loads((run_dir / "metrics.json").read_text())
    value = metrics.get(comparison.key)
    return Measured(comparison.metric, value, round(metrics.get("train_seconds", seconds), 1), epochs)


def compare(project: Project, cfg: RunConfig, budget: Budget, repeats: int, quick: bool, pipeline: dict):
    comparison = COMPARISONS.get(project.name)
    if comparison is None:
        return None
    reference = importlib.import_module(f"benchmarks.references.{comparison.reference}")
    target = comparison.quick_target if quick else comparison.target
    ours, theirs = [], []
    for repeat in range(repeats):
        seeded = replace(cfg, seed=cfg.seed + repeat)
        keras.backend.clear_session()
        if comparison.kind == "time_to_target":
            ours.append(asdict(ours_to_target(project, seeded, comparison, target, budget)))
        elif comparison.kind == "final_metric":
            ours.append(asdict(ours_final(project, seeded, comparison, budget)))
        keras.backend.clear_session()
        splits = project.load_data(seeded)
        theirs.append(asdict(reference.run(splits, budget, seeded.seed, target, pipeline["batch_size"])))
    if comparison.kind == "step_time":  # ours: the in-memory rate of the pipeline figures, same batch
        rate = pipeline["synthetic_steps_per_s"] * pipeline["batch_size"]
        ours = [asdict(Measured(comparison.metric, round(rate, 1)))]
    return {
        "reference": comparison.reference,
        "reference_title": reference.TITLE,
        "reference_source": reference.SOURCE,
        "kind": comparison.kind,
        "metric": comparison.metric,
        "target": target,
        "ours": summarise(ours, comparison.kind),
        "reference_result": summarise(theirs, comparison.kind),
    }


def summarise(results: list[dict], kind: str) -> dict:
    """Median over repeats: of the seconds to target (when every repeat reached it) or of the value."""
    summary: dict = {"runs": results}
    values = [r["value"] for r in results if r["value"] is not None]
    if values:
        summary["value"] = round(statistics.median(values), 4)
    if kind == "time_to_target":
        reached = [r["seconds"] for r in results if r["seconds"] is not None]
        summary["reached"] = f"{len(reached)}/{len(results)}"
        if reached and len(reached) == len(results):
            summary["seconds"] = round(statistics.median(reached), 1)
    elif results and all(r["seconds"] is not None for r in results):
        summary["seconds"] = round(statistics.median(r["seconds"] for r in results), 1)
    return summary


def scaling(project: Project, cfg: RunConfig, budget: Budget) -> dict:
    """In-memory steps/s: float32 on one device, on all of them, and mixed precision on all of them."""
    figures = {}
    many = make_strategy("mirrored", cfg.cpu_replicas)
    for name, strategy, precision in (
        ("one_device_float32", tf.distribute.get_strategy(), "off"),
        ("all_devices_float32", many, "off"),
        ("all_devices_mixed_float16", many, "on"),
    ):
        keras.backend.clear_session()
        configure_precision(precision)
        runner.set_seeds(cfg)
        prepared = runner.prepare(project, cfg, strategy)
        batch = next(iter(prepared.train))
        rate = steps_per_second(prepared.model, tf.data.Dataset.from_tensors(batch).repeat(), budget)
        figures[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "examples_per_s": round(rate * prepared.batch, 1),
        }
    configure_precision("off")
    one, all_ = figures["one_device_float32"], figures["all_devices_float32"]
    figures["scaling_efficiency"] = round(
        all_["examples_per_s"] / (one["examples_per_s"] * all_["replicas"]), 3
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.one_project", description=__doc__.splitlines()[0]
    )
    parser.add_argument("project")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="generated data and tiny budgets (the tests)")
    parser.add_argument("--skip-comparison", action="store_true")
    parser.add_argument("--train-args", default="", help='more `train` flags, e.g. "--weights none"')
    parser.add_argument(
        "--scaling", action="store_true", default=bool(tf.config.list_physical_devices("GPU"))
    )
    parser.add_argument("--cpu-replicas", type=int, default=0, help="--scaling on CPU logical devices")
    args = parser.parse_args(argv)
    project = importlib.import_module(f"projects.{args.project}").PROJECT
    cfg = replace(
        project_config(project, args.data_dir, args.seed, args.smoke, args.train_args),
        cpu_replicas=args.cpu_replicas,
    )
    budget = QUICK if args.quick or args.smoke else FULL
    if args.smoke:
        budget = Budget(max_epochs=1, max_seconds=5, steps=2, warmup=1, round_steps=4, score_examples=64)
    if args.scaling:
        make_strategy("mirrored", cfg.cpu_replicas)  # the CPU split must come before TensorFlow starts
    result = {"project": project.name, "quick": args.quick, "smoke": args.smoke, "budget": asdict(budget)}
    configure_precision("off")
    runner.set_seeds(cfg)
    started = time.perf_counter()
    prepared = runner.prepare(project, cfg, tf.distribute.get_strategy())
    result["load_seconds"] = round(time.perf_counter() - started, 1)
    result["cold_pass"] = cold_pass(prepared.train, budget.round_steps)
    result["pipeline"] = pipeline_figures(prepared, budget, args.repeats)
    result["params"] = prepared.model.count_params()
    result["peak_rss_gib"] = peak_rss_gib()
    del prepared
    if not args.skip_comparison:
        result["comparison"] = compare(
            project, cfg, budget, args.repeats, args.quick or args.smoke, result["pipeline"]
        )
    if args.scaling:
        result["scaling"] = scaling(project, cfg, budget)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
