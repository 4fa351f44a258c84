"""A project's own settings (`--dataset`, `--series`...): one typed dataclass, from which its flags are made.

Each field is one flag (`train_fraction` -> `--train-fraction`); its default is the flag's default and its
`option(...)` help is the flag's help. The dataclass checks its values in `__post_init__` (raising UserError),
so a bad combination stops the command before any data is read; `config.json` records the values as a dict
(`RunConfig.options`), and the project reads them back typed with `read(cfg)`.

    @dataclass(frozen=True)
    class Options:
        series: str = option("realKnownCause/nyc_taxi.csv", "the NAB series, <category>/<name>.csv")
        train_fraction: float = option(0.15, "the first part of the series to train on")
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from shared.config import RunConfig, UserError


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
) -> Any:
    """A field of a project's Options dataclass: its default and its flag's help.

    `parse` turns the flag's text into the value (an argparse `type`, raising ArgumentTypeError for a bad
    one); by default the field's annotation (int, float, str) does. A bool field is an on/off flag.
    """
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices, "parse": parse, "metavar": metavar}
    )


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, options_type: type) -> None:
    """One flag per field of `options_type`, with its default and help."""
    hints = typing.get_type_hints(options_type)
    for field in dataclasses.fields(options_type):
        meta, kind = field.metadata, hints[field.name]
        shown = "" if field.default in (None, False) else " (default: %(default)s)"
        common = dict(dest=field.name, default=field.default, help=meta.get("help", "") + shown)
        if kind is bool:
            parser.add_argument(flag(field.name), action="store_true", **common)
            continue
        parse = meta.get("parse") or _plain_type(kind)
        parser.add_argument(
            flag(field.name), type=parse, choices=meta.get("choices"), metavar=meta.get("metavar"), **common
        )


def _plain_type(kind: Any) -> type:
    """int, float or str from an annotation such as `int`, `float | None` or `str | None`."""
    for candidate in (int, float, str):
        if kind is candidate or candidate in typing.get_args(kind):
            return candidate
    raise TypeError(f"an option of type {kind} needs parse=")


def from_args(options_type: type, args: argparse.Namespace) -> dict[str, Any]:
    """The values the flags gave, checked by the dataclass (UserError), as the dict config.json records."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(options_type)}
    return dataclasses.asdict(options_type(**values))


def read(options_type: type, cfg: RunConfig) -> Any:
    """The run's options, typed; a config.json from a version with other options is a clear error."""
    names = {field.name for field in dataclasses.fields(options_type)}
    unknown = sorted(set(cfg.options) - names)
    if unknown:
        raise UserError(
            f"the run's options hold {', '.join(unknown)}, which this version of {cfg.project} does not "
            "know; train the run again"
        )
    return options_type(**cfg.options)  # missing ones take their defaults
