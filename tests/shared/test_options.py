"""A project's Options dataclass becomes its flags, checks itself before any data is read, reads typed."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from shared import options
from shared.config import RunConfig, UserError
from shared.options import option


def percent(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be in (0, 100]; got {text!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Demo:
    series: str = option("a/b.csv", "the series")
    train_fraction: float = option(0.15, "the first part to train on")
    folds: int = option(4, "test folds")
    csv: str | None = option(None, "a CSV instead")
    conditional: bool = option(False, "condition on the label")
    rule: float = option(99.5, "a percentile", parse=percent)
    fit_fold: str = option("last", "which fold", choices=("last", "first"))

    def __post_init__(self):
        if self.folds < 1:
            raise UserError(f"--folds must be at least 1; got {self.folds}")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_flags(parser, Demo)
    return parser.parse_args(argv)


def test_every_field_is_a_flag_with_its_default_and_type():
    assert options.from_args(Demo, parse()) == dataclasses.asdict(Demo())
    values = options.from_args(
        Demo,
        parse("--train-fraction", "0.3", "--folds", "2", "--csv", "x.csv", "--conditional", "--rule", "90"),
    )
    assert values == {**dataclasses.asdict(Demo()), "train_fraction": 0.3, "folds": 2, "csv": "x.csv"} | {
        "conditional": True,
        "rule": 90.0,
    }


def test_bad_values_stop_at_the_flags(capsys):
    with pytest.raises(SystemExit):
        parse("--rule", "120")
    assert "must be in (0, 100]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--fit-fold", "middle")
    assert "invalid choice: 'middle'" in capsys.readouterr().err
    with pytest.raises(UserError, match="--folds must be at least 1; got 0"):
        options.from_args(Demo, parse("--folds", "0"))


def test_read_back_typed_and_an_unknown_option_is_named():
    cfg = RunConfig(project="demo", options={"folds": 3})
    assert options.read(Demo, cfg) == Demo(folds=3)
    with pytest.raises(UserError, match="hold colour, which this version of demo does not know"):
        options.read(Demo, RunConfig(project="demo", options={"colour": "red"}))
