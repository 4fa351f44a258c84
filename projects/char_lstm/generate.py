"""Text from a trained model, one character at a time, with each recurrent layer's state carried along.

`Generator` steps the model's own layers: the embedding, each RNN layer's cell (so there is no copy of the
weights) and the output layer. The prompt is read once, character by character; after that each new
character costs one step, however long the text already is. `python -m projects.char_lstm generate RUN_DIR`
streams the text as it comes; the same seed gives the same text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.config import UserError
from shared.run_folder import load_run
from shared.trained import load_state

SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
MIN_TEMPERATURE = 1e-3  # lower divides the logits into overflow; --top-k 1 is greedy anyway
MAX_LENGTH = 100_000  # characters per request


class Generator:
    """The next character's logits from one character and the recurrent states."""

    def __init__(self, model: keras.Model):
        self.embedding = model.get_layer("embedding")
        self.cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        self.output = model.get_layer("logits")
        self.step_compiled = tf.function(self.step, reduce_retracing=True)

    def initial_states(self, batch: int = 1) -> list:
        return [cell.get_initial_state(batch) for cell in self.cells]

    def step(self, ids: tf.Tensor, states: list) -> tuple[tf.Tensor, list]:
        """ids [B] -> (logits [B, vocabulary], new states)."""
        x = self.embedding(ids)
        new_states = []
        for cell, state in zip(self.cells, states, strict=True):
            x, state = cell(x, state, training=False)
            new_states.append(state)
        return self.output(x), new_states


def check_request(prompt: str, temperature: float, vocabulary: str, length: int = 1) -> list[int]:
    """The prompt's ids; an empty prompt, a character the model never saw or a temperature <= 0 is a
    UserError that says which."""
    if not prompt:
        raise UserError("the prompt is empty; give at least one character, e.g. --prompt 'ROMEO:'")
    if not temperature >= MIN_TEMPERATURE:
        raise UserError(
            f"--temperature must be above 0, at least {MIN_TEMPERATURE} (1 samples as trained, lower is "
            f"safer; --top-k 1 is greedy); got {temperature}"
        )
    if not 1 <= length <= MAX_LENGTH:
        raise UserError(f"--length must be from 1 to {MAX_LENGTH}; got {length}")
    index = {char: i for i, char in enumerate(vocabulary) if i > 0}  # id 0: characters it never saw
    unknown = sorted({char for char in prompt if char not in index})
    if unknown:
        raise UserError(
            f"the prompt has characters the model never saw in training: {''.join(unknown)!r}. "
            f"Its vocabulary: {vocabulary[1:]!r}"
        )
    return [index[char] for char in prompt]


def sample(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """One id from softmax(logits / temperature), among the top_k most likely when top_k > 0 (characters
    tied with the k-th likeliest are kept too); never id 0."""
    if not np.all(np.isfinite(logits)):
        raise UserError("the model gave non-finite logits: its weights have diverged; train it again")
    scaled = logits.astype(np.float64) / temperature
    scaled[0] = -np.inf  # "a character it never saw" is not something to write
    if top_k > 0:
        scaled[scaled < np.sort(scaled)[-min(top_k, len(scaled))]] = -np.inf
    probabilities = np.exp(scaled - scaled.max())
    return int(rng.choice(len(scaled), p=probabilities / probabilities.sum()))


def generate(
    generator: Generator,
    vocabulary: str,
    prompt: str,
    length: int,
    temperature: float = 0.8,
    top_k: int = 0,
    seed: int = 0,
    on_character: Callable[[str], None] | None = None,
) -> str:
    """`length` characters after `prompt` (not included); each is passed to `on_character` as it comes."""
    ids = check_request(prompt, temperature, vocabulary, length)
    states = generator.initial_states()
    for i in ids:
        logits, states = generator.step_compiled(tf.constant([i]), states)
    rng = np.random.default_rng(seed)
    text = []
    for _ in range(length):
        next_id = sample(np.asarray(logits)[0], temperature, top_k, rng)
        text.append(vocabulary[next_id])
        if on_character is not None:
            on_character(text[-1])
        logits, states = generator.step_compiled(tf.constant([next_id]), states)
    return "".join(text)


class TextSamples(keras.callbacks.Callback):
    """After each epoch: a sample at a few temperatures into samples/epoch_NNN.txt and TensorBoard text."""

    def __init__(self, run_dir: Path, vocabulary: str, prompt: str, length: int = 300, seed: int = 0):
        super().__init__()
        self.folder, self.vocabulary, self.prompt = run_dir / "samples", vocabulary, prompt
        self.length, self.seed = length, seed
        self.writer = self.generator = None
        self.logs_dir = run_dir / "logs" / "samples"

    def on_train_begin(self, logs=None):
        self.generator = Generator(self.model)  # it steps the model's own layers: always today's weights
        self.writer = tf.summary.create_file_writer(str(self.logs_dir))

    def on_train_end(self, logs=None):
        self.writer.close()

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training or not np.isfinite((logs or {}).get("loss", 0.0)):
            return  # stopped (a NaN loss, early stopping): nothing worth sampling
        samples = {
            t: generate(self.generator, self.vocabulary, self.prompt, self.length, t, seed=self.seed)
            for t in SAMPLE_TEMPERATURES
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        text = "".join(f"--- temperature {t} ---\n{self.prompt}{s}\n\n" for t, s in samples.items())
        (self.folder / f"epoch_{epoch + 1:03d}.txt").write_text(text, encoding="utf-8")
        with self.writer.as_default():
            for t, s in samples.items():
                # a code block: TensorBoard renders markdown, and Shakespeare's text is not markdown
                tf.summary.text(f"sample/temperature_{t}", f"```\n{self.prompt}{s}\n```", step=epoch + 1)
        self.writer.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/char_lstm/latest)")
    parser.add_argument("--prompt", default="ROMEO:", help="text to start from (default: %(default)s)")
    parser.add_argument("--length", type=int, default=500, help="characters to write (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.8, help="(default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest only; 0: all")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same text")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    load_run(run_dir)
    from projects.char_lstm import PROJECT  # the package imports this module

    vocabulary = load_state(PROJECT, run_dir).vocabulary
    check_request(args.prompt, args.temperature, vocabulary, args.length)  # before loading the model
    if args.top_k < 0:
        raise UserError(f"--top-k must be 0 (off) or positive; got {args.top_k}")
    model = keras.models.load_model(str(run_dir / "model.keras"), compile=False)
    sys.stdout.write(args.prompt)

    def stream(char: str) -> None:
        sys.stdout.write(char)
        sys.stdout.flush()

    generate(
        Generator(model),
        vocabulary,
        args.prompt,
        args.length,
        args.temperature,
        args.top_k,
        args.seed,
        stream,
    )
    sys.stdout.write("\n")
    return 0
