"""char_lstm: a character-level LSTM language model on Tiny Shakespeare, measured in bits per character."""

import argparse
from pathlib import Path

from projects.char_lstm import data, evaluate, export, generate, model
from shared.project import Command, Project, Splits


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", help="train on this UTF-8 text file instead of Tiny Shakespeare")


def page_info(splits: Splits) -> dict:
    """What the page shows before its first request: a prompt the model can read, the characters it knows."""
    return {"sample_prompt": generate.sample_prompt(splits), "vocabulary": splits.info["vocabulary"][1:]}


def sample_callbacks(splits: Splits, run_dir: Path) -> list:
    return [generate.TextSamples(run_dir, splits.info["vocabulary"], generate.sample_prompt(splits))]


PROJECT = Project(
    name="char_lstm",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 25, "batch_size": 64},
    add_options=add_options,
    for_hparams=data.for_hparams,
    callbacks=sample_callbacks,
    signature_aliases=("generate",),
    extra_endpoints=export.step_endpoint,  # generate_step: one character at a time, for :stream
    page_info=page_info,
    commands={
        "generate": Command(
            "stream text from a trained run: --prompt, --length, --temperature, --top-k, --seed",
            generate.add_arguments,
            generate.run,
        )
    },
)
