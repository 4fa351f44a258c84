"""mnist_gan: a DCGAN on MNIST (optionally class-conditional), trained by `fit`, scored by IS and FID."""

from pathlib import Path

from projects.mnist_gan import data, evaluate, export, generate, model, samples
from shared.project import Command, Project, Splits


def sample_callbacks(splits: Splits, run_dir: Path) -> list:
    return [samples.SampleGrid(run_dir, bool(splits.info["conditional"]))]


PROJECT = Project(
    name="mnist_gan",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_fid",
    objective_direction="min",
    defaults={"epochs": 30, "batch_size": 128},
    # its two optimizers are its own; the runner's schedules drive `model.optimizer` only
    owns_learning_rate=True,
    options=data.Options,
    callbacks=sample_callbacks,
    after_fit=lambda model, splits: model.fit_code_shares(splits.train),
    commands={
        "generate": Command(
            "draw digits from a trained run: --n, --digit (conditional runs), --seed, --out, --out-dir",
            generate.add_arguments,
            generate.run,
        )
    },
)
