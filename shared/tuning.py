"""keras-tuner search over a project's `build_model(hp)`, under the run's distribution strategy.

The strategy is handed to the tuner (`distribution_strategy=`), which builds each trial's model in its
scope. The search folder is kept, so a killed search rerun with the same folder continues where it
stopped and does not repeat finished trials. The best values are written as a flat JSON object that
`train --hparams FILE` reads.
"""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner as kt

from shared import reporting
from shared.config import RunConfig, UserError
from shared.data import batched
from shared.project import Project
from shared.runner import RUNS_ROOT, build_checked, set_seeds
from shared.strategy import configure_precision, global_batch_size, make_strategy

TUNERS = ("bayesian", "hyperband", "random")


def make_tuner(
    project: Project, cfg: RunConfig, pinned: dict, name: str, max_trials: int, directory: Path, strategy
) -> kt.Tuner:
    def build(hp: kt.HyperParameters) -> keras.Model:
        for hp_name, value in pinned.items():  # --hp / --hparams pin a value for the whole search
            hp.Fixed(hp_name, value)
        return project.build_model(hp)

    common = dict(
        objective=kt.Objective(project.objective, direction=project.objective_direction),
        seed=cfg.seed,
        directory=str(directory),
        project_name="search",
        overwrite=False,
        distribution_strategy=strategy,
    )
    if name == "bayesian":
        return kt.BayesianOptimization(build, max_trials=max_trials, **common)
    if name == "random":
        return kt.RandomSearch(build, max_trials=max_trials, **common)
    if name == "hyperband":
        tuner = kt.Hyperband(build, max_epochs=cfg.epochs, factor=3, **common)
        tuner.oracle.max_trials = max_trials  # Hyperband has no budget argument; the oracle honours this cap
        return tuner
    raise UserError(f"--tuner must be one of {', '.join(TUNERS)}; got {name!r}")


def tune(project: Project, cfg: RunConfig, tuner_name: str = "bayesian", max_trials: int = 10) -> Path:
    """Runs (or continues) the search; returns the path of best_hparams.json."""
    if max_trials < 1:
        raise UserError(f"--max-trials must be at least 1; got {max_trials}")
    strategy = make_strategy(cfg.strategy, cfg.cpu_replicas)  # first: it configures the runtime
    set_seeds(cfg)
    configure_precision(cfg.mixed_precision)
    batch = global_batch_size(cfg.batch_size, strategy.num_replicas_in_sync, cfg.global_batch_size)
    directory = Path(cfg.run_dir) if cfg.run_dir else RUNS_ROOT / project.name / "tuning"
    directory.mkdir(parents=True, exist_ok=True)

    splits = project.load_data(cfg)
    train_ds = batched(splits.train, batch, shuffle=True, seed=cfg.seed)
    val_ds = batched(splits.validation, batch, shuffle=False, seed=cfg.seed)
    _, checked = build_checked(project, cfg.hparams)  # a bad --hp is a clear error before any trial
    pinned = {name: checked.values[name] for name in cfg.hparams}
    keras.backend.clear_session()

    tuner = make_tuner(project, cfg, pinned, tuner_name, max_trials, directory, strategy)
    done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    print(
        f"{project.name}: {tuner_name} search in {directory}, {done} of {max_trials} trials already done",
        flush=True,
    )
    stop_early = [
        keras.callbacks.EarlyStopping(
            monitor=project.objective,
            mode=project.objective_direction,
            patience=max(2, cfg.early_stopping_patience),
        ),
        keras.callbacks.TerminateOnNaN(),
    ]
    tuner.search(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=stop_early)

    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise UserError(f"no trial finished in {directory}; see the trial logs there")
    out = directory / "best_hparams.json"
    reporting.write_json(out, best[0].values)
    _write_trials(tuner, directory / "trials.csv", project.objective)
    return out


def _write_trials(tuner: kt.Tuner, path: Path, objective: str) -> None:
    import pandas as pd

    rows = []
    for trial in tuner.oracle.trials.values():
        rows.append(
            {
                "trial": trial.trial_id,
                "status": trial.status,
                objective: trial.score,
                **trial.hyperparameters.values,
            }
        )
    frame = pd.DataFrame(rows)
    if objective in frame:
        frame = frame.sort_values(objective, ascending=False)
    frame.to_csv(path, index=False)
    print(frame.to_string(index=False))
