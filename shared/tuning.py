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

from shared import fitting, reporting
from shared.config import RunConfig, UserError, check_resume_compatible
from shared.hparams import build_checked
from shared.project import Project, Splits
from shared.run_folder import RUNS_ROOT
from shared.runner import check_schedule, pipelines, set_seeds, splits_for
from shared.strategy import configure_precision, is_multi_worker, make_strategy

TUNERS = ("bayesian", "hyperband", "random")


class SearchModel(kt.HyperModel):
    """A project's `build_model` as a keras-tuner HyperModel.

    `fit` batches the raw splits itself, so a `batch_size` hyperparameter is searched like any other
    (keras-tuner's documented way to tune training arguments), and the preprocessor runs in tf.data.
    """

    def __init__(self, project: Project, cfg: RunConfig, pinned: dict, splits: Splits, replicas: int):
        super().__init__()
        self.project = project
        self.cfg = cfg
        self.pinned = pinned
        self.splits = splits
        self.replicas = replicas
        self.policy = keras.mixed_precision.global_policy().name

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        # keras-tuner clears the Keras session before each trial, and the dtype policy with it
        keras.mixed_precision.set_global_policy(self.policy)
        for name, value in self.pinned.items():  # --hp / --hparams pin a value for the whole search
            hp.Fixed(name, value)
        return self.project.build_model(hp, self.splits)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, callbacks=(), **kwargs):
        """One trial, fitted as `train` fits (`shared.fitting.fit`) with keras-tuner's own callbacks."""
        cfg, project = self.cfg, self.project
        splits = splits_for(self.project, self.splits, hp.values)  # e.g. windows of this trial's length
        _, train, validation = pipelines(splits, hp.values, cfg, self.replicas)
        fitted = fitting.fit(
            model,
            train,
            validation,
            **{
                **fitting.settings(project, cfg),
                "epochs": kwargs.get("epochs", cfg.epochs),  # Hyperband's, for its trials
                # a trial needs only enough epochs to be compared, not the run's full patience
                "patience": max(2, cfg.early_stopping_patience),
            },
            initial_epoch=kwargs.get("initial_epoch", 0),
            callbacks=list(callbacks),
            verbose=kwargs.get("verbose", "auto"),
        )
        return fitted.history


def make_tuner(hypermodel: SearchModel, name: str, max_trials: int, directory: Path, strategy) -> kt.Tuner:
    project, cfg = hypermodel.project, hypermodel.cfg
    common = dict(
        objective=kt.Objective(project.objective, direction=project.objective_direction),
        seed=cfg.seed,
        directory=str(directory),
        project_name="search",
        overwrite=False,
        distribution_strategy=strategy,
    )
    if name == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if name == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if name == "hyperband":
        tuner = kt.Hyperband(hypermodel, max_epochs=cfg.epochs, factor=3, **common)
        tuner.oracle.max_trials = max_trials  # Hyperband has no budget argument; the oracle honours this cap
        return tuner
    raise UserError(f"--tuner must be one of {', '.join(TUNERS)}; got {name!r}")


def tune(project: Project, cfg: RunConfig, tuner_name: str = "bayesian", max_trials: int = 10) -> Path:
    """Runs (or continues) the search; returns the path of best_hparams.json."""
    if max_trials < 1:
        raise UserError(f"--max-trials must be at least 1; got {max_trials}")
    if is_multi_worker(cfg.strategy):
        raise UserError(
            "tune runs on one machine (one or several devices); for a search across machines use "
            "keras-tuner's chief/worker mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP/PORT)"
        )
    strategy = make_strategy(cfg.strategy, cfg.cpu_replicas)  # first: it configures the runtime
    set_seeds(cfg)
    configure_precision(cfg.mixed_precision)
    default_dir = RUNS_ROOT / project.name / ("tuning-smoke" if cfg.smoke else "tuning")
    directory = Path(cfg.run_dir) if cfg.run_dir else default_dir

    check_schedule(project, cfg)
    splits = project.load_data(cfg)
    _, checked = build_checked(project, cfg.hparams, splits)  # a bad --hp is a clear error before any trial
    pinned = {name: checked.values[name] for name in cfg.hparams}
    keras.backend.clear_session()
    record_search(directory, cfg, tuner_name)

    hypermodel = SearchModel(project, cfg, pinned, splits, strategy.num_replicas_in_sync)
    tuner = make_tuner(hypermodel, tuner_name, max_trials, directory, strategy)
    done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    print(
        f"{project.name}: {tuner_name} search in {directory}, {done} of {max_trials} trials already done",
        flush=True,
    )
    mode = project.objective_direction
    # SearchModel.fit brings the data and the callbacks `train` uses, so the chosen values suit `train`
    tuner.search(epochs=cfg.epochs)

    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise UserError(f"no trial finished in {directory}; see the trial logs there")
    out = directory / "best_hparams.json"
    reporting.write_json(out, model_values(best[0]))
    _write_trials(tuner, directory / "trials.csv", project.objective, ascending=mode == "min")
    return out


def model_values(hp: kt.HyperParameters) -> dict:
    """The model's hyperparameter values, without Hyperband's bookkeeping (tuner/epochs, tuner/bracket...)."""
    return {name: value for name, value in hp.values.items() if not name.startswith("tuner/")}


def record_search(directory: Path, cfg: RunConfig, tuner_name: str) -> None:
    """search.json: a rerun in the same folder must continue the same search, not a different one."""
    settings = {**cfg.to_json(), "tuner": tuner_name}
    path = directory / "search.json"
    if path.is_file():
        check_resume_compatible(reporting.read_json(path), settings, directory)
    else:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the search folder {directory}: {e.strerror}") from e
        reporting.write_json(path, settings)


def _write_trials(tuner: kt.Tuner, path: Path, objective: str, ascending: bool) -> None:
    import pandas as pd

    rows = []
    for trial in tuner.oracle.trials.values():
        rows.append(
            {
                "trial": trial.trial_id,
                "status": trial.status,
                objective: trial.score,
                **model_values(trial.hyperparameters),
            }
        )
    frame = pd.DataFrame(rows)
    if objective in frame:
        frame = frame.sort_values(objective, ascending=ascending)
    frame.to_csv(path, index=False)
    print(frame.to_string(index=False))
