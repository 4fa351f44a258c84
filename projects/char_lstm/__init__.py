"""char_lstm: a character-level LSTM language model on Tiny Shakespeare, measured in bits per character."""

from pathlib import Path

from projects.char_lstm import data, evaluate, export, generate, model
from shared.project import Command, Project, Splits, Trained


def page_info(trained: Trained) -> dict:
    """What the page shows before its first request: a prompt the model can read, the characters it knows."""
    state: data.CharState = trained.state
    return {"sample_prompt": state.sample_prompt, "vocabulary": state.vocabulary[1:]}


def sample_callbacks(splits: Splits, run_dir: Path) -> list:
    return [generate.TextSamples(run_dir, splits.state.vocabulary, splits.state.sample_prompt)]


PROJECT = Project(
    name="char_lstm",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 25, "batch_size": 64},
    options=data.Options,
    for_hparams=data.for_hparams,  # the chunks of the model's seq_length
    callbacks=sample_callbacks,
    signature_aliases=("generate",),
    extra_endpoints=export.step_endpoint,  # generate_step: one character at a time, for :stream
    page_info=page_info,
    state_type=data.CharState,
    commands={
        "generate": Command(
            "stream text from a trained run: --prompt, --length, --temperature, --top-k, --seed",
            generate.add_arguments,
            generate.run,
        )
    },
)
