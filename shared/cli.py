"""`python -m projects.<name> {train,tune,evaluate,export,predict,...}`: the shared command line.

Parse, resolve the run config, call the runner. Problems a user can fix print one `error:` line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from shared import options
from shared.config import (
    LR_SCHEDULES,
    PRECISIONS,
    STRATEGIES,
    RunConfig,
    UserError,
    load_hparams_file,
    parse_hparam_assignment,
)
from shared.project import Project

T = TypeVar("T")


def read_each(
    paths: list[str], read: Callable[[str], T], problem: type[Exception]
) -> tuple[list[tuple[str, T]], int]:
    """`read` for every input file of a `predict`: the (path, value) pairs it read, and how many failed.

    Each `problem` prints one `error: PATH: why` line, so one bad file never stops the others."""
    readable, failed = [], 0
    for path in paths:
        try:
            readable.append((path, read(path)))
        except problem as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            failed += 1
    return readable, failed


def add_run_arguments(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    base = RunConfig(project="", **defaults)
    add = parser.add_argument
    add("--data-dir", help="folder holding <dataset>/<file> (default: $DATA_DIR, else ~/.keras/datasets)")
    add("--run-dir", help="run folder (default: runs/<project>/<UTC time>); an unfinished one is resumed")
    add("--epochs", type=int, default=base.epochs, help="epochs (default: %(default)s)")
    add(
        "--batch-size",
        type=int,
        default=base.batch_size,
        help="batch size per replica (default: %(default)s)",
    )
    add("--global-batch-size", type=int, help="global batch instead; must divide by the replica count")
    add(
        "--seed",
        type=int,
        default=base.seed,
        help="seeds Python, NumPy and TensorFlow (default: %(default)s)",
    )
    add(
        "--strategy",
        choices=STRATEGIES,
        default=base.strategy,
        help="auto: multi_worker if TF_CONFIG is set, mirrored over 2+ GPUs, else one device",
    )
    add("--cpu-replicas", type=int, default=base.cpu_replicas, help="split the CPU into N logical devices")
    add(
        "--mixed-precision",
        choices=PRECISIONS,
        default=base.mixed_precision,
        help="auto: float16 on GPUs only",
    )
    add("--deterministic", action="store_true", help="turn on TensorFlow op determinism (slower)")
    add("--lr-schedule", choices=LR_SCHEDULES, default=base.lr_schedule, help="(default: %(default)s)")
    add(
        "--patience",
        type=int,
        default=base.early_stopping_patience,
        dest="early_stopping_patience",
        help="early-stopping patience in epochs; 0 turns it off (default: %(default)s)",
    )
    add("--hparams", dest="hparams_file", help="JSON of hyperparameter values, e.g. tune's best_hparams.json")
    add("--hp", action="append", default=[], metavar="KEY=VALUE", help="one hyperparameter (repeatable)")
    add("--smoke", action="store_true", help="a few steps on tiny generated data: no dataset needed")


def add_project_options(parser: argparse.ArgumentParser, project: Project) -> None:
    """The project's own flags (`Project.options`), in a group of their own."""
    if project.options is not None:
        options.add_flags(parser.add_argument_group(f"{project.name} options"), project.options)


def config_from_args(project: Project, args: argparse.Namespace) -> RunConfig:
    hparams = load_hparams_file(args.hparams_file) if args.hparams_file else {}
    hparams.update(parse_hparam_assignment(text) for text in args.hp)
    for name in ("epochs", "cpu_replicas", "early_stopping_patience"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} cannot be negative")
    return RunConfig(
        project=project.name,
        data_dir=args.data_dir,
        run_dir=args.run_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        global_batch_size=args.global_batch_size,
        seed=args.seed,
        strategy=args.strategy,
        cpu_replicas=args.cpu_replicas,
        mixed_precision=args.mixed_precision,
        deterministic=args.deterministic,
        lr_schedule=args.lr_schedule,
        early_stopping_patience=args.early_stopping_patience,
        hparams_file=args.hparams_file,
        hparams=hparams,
        options=project_options(project, args),
        smoke=args.smoke,
    )


def project_options(project: Project, args: argparse.Namespace) -> dict[str, Any]:
    """The project's own settings from its flags, checked by its Options dataclass."""
    return options.from_args(project.options, args) if project.options is not None else {}


def build_parser(project: Project) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m projects.{project.name}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train, evaluate and export one run")
    tune = commands.add_parser("tune", help="keras-tuner search; writes best_hparams.json")
    defaults = {**project.defaults, **({"lr_schedule": "constant"} if project.owns_learning_rate else {})}
    for command_parser in (train, tune):
        add_run_arguments(command_parser, defaults)
        add_project_options(command_parser, project)
    tune.add_argument("--tuner", choices=("bayesian", "hyperband", "random"), default="bayesian")
    tune.add_argument("--max-trials", type=int, default=10, help="trial budget (default: %(default)s)")
    latest = f"runs/{project.name}/latest"
    for name, text in (
        ("evaluate", "re-evaluate a run on its test split"),
        ("export", "export a run's SavedModel and check it in a fresh process"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("run", nargs="?", default=latest, help=f"run folder (default: {latest})")
        if name == "evaluate":
            sub.add_argument("--data-dir", help="where the run's dataset is now (default: where it was)")
        if name == "export":
            sub.add_argument(
                "--serving-dir",
                help=f"also copy it into TF Serving's layout: DIR/{project.name}/<version>/",
            )
            sub.add_argument("--version", type=int, help="the version number there (default: the next one)")
    for name, command in project.commands.items():
        command.add_arguments(commands.add_parser(name, help=command.help))
    return parser


def run(project: Project, args: argparse.Namespace) -> int:
    if args.command in project.commands:
        return project.commands[args.command].run(args)
    from shared import reporting, runner

    if args.command == "train":
        run_dir = runner.train(project, config_from_args(project, args))
        print(run_dir)  # the last line: scripts read the run folder from here
    elif args.command == "tune":
        from shared.tuning import tune

        print(tune(project, config_from_args(project, args), args.tuner, args.max_trials))
    elif args.command in ("evaluate", "export"):
        from shared.export import publish, serving_version
        from shared.run_folder import load_run

        run_dir = Path(args.run)
        serving_dir = Path(args.serving_dir) if getattr(args, "serving_dir", None) else None
        if getattr(args, "version", None) is not None and serving_dir is None:
            raise UserError("--version numbers a copy in --serving-dir; give --serving-dir DIR too")
        cfg = load_run(run_dir)
        version = serving_version(serving_dir, project.name, args.version) if serving_dir else None
        if args.command == "export":  # the run folder is all it needs: no data is read
            runner.export_run(project, run_dir)
            if serving_dir is not None:
                print(publish(run_dir / "saved_model", serving_dir, project.name, version))
            else:
                print(run_dir / "saved_model")
        else:
            if args.data_dir:
                cfg.data_dir = args.data_dir
            splits = test_data(project, cfg)
            if project.for_hparams is not None:  # the examples of the run's own hyperparameters
                splits = project.for_hparams(splits, reporting.read_json(run_dir / "hparams.json"))
            metrics = runner.reevaluate(project, run_dir, cfg, splits)
            for key, value in sorted(metrics.items()):
                if isinstance(value, (int, float)):
                    print(f"{key}: {value}")
    return 0


def test_data(project: Project, cfg: RunConfig) -> Any:
    """The run's data, for `evaluate`; a missing or changed dataset says that evaluation needs it."""
    try:
        return project.load_data(cfg)
    except (UserError, OSError) as e:
        problem = str(e) if isinstance(e, UserError) else f"{e.strerror or e}: {e.filename or ''}"
        raise UserError(
            f"evaluate needs the run's test data, read from {cfg.resolved_data_dir()} ({problem}). "
            "Pass --data-dir DIR where the dataset is; export and predict need only the run folder."
        ) from e


def main(project: Project, argv: list[str] | None = None) -> int:
    args = build_parser(project).parse_args(argv)
    try:
        return run(project, args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the user named cannot be read or written
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command with --run-dir to resume", file=sys.stderr)
        return 130
