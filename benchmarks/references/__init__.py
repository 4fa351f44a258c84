"""Plain baselines, written the way keras-io (or scikit-learn's user guide) writes them, each on its project's
own data splits: what `make bench` measures the projects against. They are baselines, not recipes of ours:
each keeps its source's model and settings, changed only where the data's shape requires it (said in the
file).

Every module here defines:
  TITLE: the source's title; SOURCE: its address;
  KIND: "time_to_target" (training time until a score reaches `target`), "step_time" (training examples
        per second at `batch_size`) or "final_metric" (the score after the source's whole recipe);
  run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured.
`splits` is the project's `load_data` result as the runner gets it (before any hyperparameter-made windows);
a reference makes its own inputs from it, the way its source does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf


@dataclass(frozen=True)
class Budget:
    """How much a reference (or ours) may spend. `--quick` uses a smaller one."""

    max_epochs: int  # a time-to-target run stops here if the target is not reached
    max_seconds: float  # ... or after this much training (the epoch under way finishes)
    steps: int  # timed steps for a step-time figure, at most...
    warmup: int = 10  # steps run before the timing starts (tracing, first prefetches)
    step_seconds: float = 60.0  # ...and no more than these seconds of them (3 steps at least)
    # --quick: score every `round_steps` training steps instead of every epoch, on `score_examples`
    # examples spread evenly over the scored split (None: whole epochs, the whole split)
    round_steps: int | None = None
    score_examples: int | None = None


@dataclass
class Measured:
    """One recipe's result for one figure."""

    metric: str  # what was measured, in words ("test accuracy", "examples per second"...)
    value: float | None  # the figure: the final metric, examples/s, or None when nothing finished
    seconds: float | None = None  # training seconds to the target (None: not reached) or in all
    epochs: int | None = None
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, seconds, metric)
    details: dict = field(default_factory=dict)  # anything else worth keeping (batch size, input size...)


class TimeToTarget(keras.callbacks.Callback):
    """Scores the model after every epoch with `score()`; stops once it reaches `target` or the budget ends.

    Scoring time counts: it is part of getting there, for ours and the reference alike.
    """

    def __init__(self, score: Callable[[], float], target: float, budget: Budget, higher_is_better: bool):
        super().__init__()
        self.score, self.target, self.budget = score, target, budget
        self.higher_is_better = higher_is_better
        self.start = 0.0
        self.curve: list[tuple[int, float, float]] = []
        self.reached: tuple[int, float] | None = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        value = float(self.score())
        elapsed = time.perf_counter() - self.start
        self.curve.append((epoch + 1, round(elapsed, 1), round(value, 4)))
        hit = value >= self.target if self.higher_is_better else value <= self.target
        if hit and self.reached is None:
            self.reached = (epoch + 1, elapsed)
        if hit or elapsed >= self.budget.max_seconds:
            self.model.stop_training = True

    def measured(self, metric: str) -> Measured:
        last = self.curve[-1][2] if self.curve else None
        if self.reached is None:
            return Measured(metric, last, None, len(self.curve), self.curve)
        return Measured(metric, last, round(self.reached[1], 1), self.reached[0], self.curve)


class StepTimer(keras.callbacks.Callback):
    """Wall time of the training steps after `warmup` (tracing and the first prefetches excluded); stops
    the fit once `max_seconds` of timed steps have passed (after 3 at least), so a slow model costs the same
    time as a fast one."""

    def __init__(self, warmup: int, max_seconds: float = float("inf")):
        super().__init__()
        self.warmup, self.max_seconds = warmup, max_seconds
        self.start, self.steps, self.elapsed = 0.0, 0, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.warmup:
            self.steps += 1
            self.elapsed = time.perf_counter() - self.start
            if self.steps >= 3 and self.elapsed >= self.max_seconds:
                self.model.stop_training = True


def steps_per_second(model: keras.Model, dataset, budget: Budget) -> float:
    """Training steps per second of `model` on a repeating `dataset`, `budget.steps` steps timed."""
    timer = StepTimer(budget.warmup, budget.step_seconds)
    # shuffle=False: the datasets are shuffled already, or one batch repeated
    steps = budget.steps + budget.warmup
    model.fit(dataset, steps_per_epoch=steps, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    return timer.steps / timer.elapsed


def spread(dataset: tf.data.Dataset, budget: Budget) -> tf.data.Dataset:
    """About `budget.score_examples` examples taken evenly from the whole split (every k-th one): a split's
    first examples may all be of one class (IMDB's test reviews come negative first)."""
    size = int(dataset.cardinality())
    if not budget.score_examples or size <= budget.score_examples:
        return dataset
    return dataset.shard(size // budget.score_examples, 0)


def fit_to_target(
    model: keras.Model, train, callbacks: TimeToTarget | list, budget: Budget, epochs: int
) -> None:
    """`fit` for a time-to-target run: whole epochs (at most `epochs`, the recipe's, and the budget's), or
    with --quick rounds of `budget.round_steps` steps, each scored."""
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    # shuffle=False: the pipelines shuffle themselves; Keras would only warn that it cannot
    if budget.round_steps:
        model.fit(train.repeat(), epochs=budget.max_epochs, steps_per_epoch=budget.round_steps,
                  callbacks=callbacks, shuffle=False, verbose=0)  # fmt: skip
    else:
        model.fit(train, epochs=min(epochs, budget.max_epochs), callbacks=callbacks, shuffle=False, verbose=0)
