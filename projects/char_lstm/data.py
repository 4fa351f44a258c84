"""Tiny Shakespeare (or any UTF-8 text) as character ids: split by position, vocabulary from training.

The first 90% of the characters train and the last 10% validate, as nanoGPT's `shakespeare_char` splits
them, so validation losses compare. The vocabulary is the training text's characters, sorted, after id 0,
which stands for any character the training text does not have (the validation text may hold some).
The vocabulary and the sample prompt are the run's state (`CharState`, state.json): what generating needs.
Training examples are consecutive non-overlapping chunks of `seq_length + 1` characters: the model reads
the first `seq_length` and predicts each next one (teacher forcing). The chunks start at a new random
offset each epoch, so the boundaries move and every character is read after contexts of every length.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared import options
from shared.config import RunConfig, UserError
from shared.data import RemoteFile, locate
from shared.options import option
from shared.project import Splits

SHAKESPEARE = RemoteFile(
    dataset="shakespeare",
    filename="input.txt",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
)
TRAIN_SHARE = 0.9
UNKNOWN = "\ufffd"  # id 0's character: shown where the text had a character the vocabulary lacks
DEFAULT_SEQ_LENGTH = 100
# validation chunks have one length whatever the model's seq_length: a longer chunk gives more context and
# a lower loss, which would otherwise reward long sequences for themselves; 256 is nanoGPT's block size
VALIDATION_LENGTH = 256
MIN_CHARACTERS = 20
PROMPT_LENGTH = 40  # the sample prompt's most characters


@dataclasses.dataclass(frozen=True)
class Options:
    text: str | None = option(None, "train on this UTF-8 text file instead of Tiny Shakespeare")


@dataclasses.dataclass(frozen=True)
class CharState:
    """What a trained model needs from its text: kept in the run folder as state.json."""

    # the training text's characters, sorted, after UNKNOWN: the model's id i is vocabulary[i]
    vocabulary: str
    # the training text's first line: the samples' prompt, and the page's first one
    sample_prompt: str


def sample_prompt(train_text: str) -> str:
    """The training text's first line (40 characters at most), ending in its newline if the text has
    newlines: a prompt made of known characters."""
    line = train_text[:PROMPT_LENGTH].split("\n", 1)[0]
    return line + "\n" if "\n" in train_text else line


def read_text(path: Path) -> str:
    """A UTF-8 text file; bytes that are not UTF-8 are a clear error naming where they are."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(
            f"{path} is not UTF-8: byte {e.start} (line {line}) is {data[e.start : e.start + 1]!r}. "
            "Convert it, e.g. `iconv -f latin1 -t utf-8`."
        ) from e
    if len(text) < MIN_CHARACTERS:  # a longer one can still be too short for its sequences: for_hparams
        raise UserError(f"{path} holds {len(text)} characters; at least {MIN_CHARACTERS} are needed")
    return text


def repeating_text(n: int = 60_000, seed: int = 0) -> str:
    """Generated text with a strong pattern: one short verse over and over, so each next character is
    nearly determined by the ones before it."""
    verse = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n"
    text = verse * (n // len(verse) + 1)
    return text[:n]


def text_for(cfg: RunConfig) -> tuple[str, str]:
    """(name, text): generated (--smoke), --text PATH, or Tiny Shakespeare from the data directory."""
    if cfg.smoke:
        return "a repeating verse", repeating_text(seed=cfg.seed)
    given = options.read(Options, cfg).text
    if given:
        path = Path(given)
        if not path.is_file():
            raise UserError(f"--text {path}: no such file")
        return path.name, read_text(path)
    return "tiny shakespeare", read_text(locate(SHAKESPEARE, cfg.resolved_data_dir()))


def load(cfg: RunConfig) -> Splits:
    """Every split holds the whole text's ids in order: `for_hparams` (which the runner calls) cuts the
    training and validation chunks of the model's `seq_length` from them."""
    name, text = text_for(cfg)
    split = math.floor(TRAIN_SHARE * len(text))
    train_text, validation_text = text[:split], text[split:]
    vocabulary = [UNKNOWN, *sorted(set(train_text) - {UNKNOWN})]
    index = {char: i for i, char in enumerate(vocabulary)}
    train_ids = np.array([index[c] for c in train_text], np.int32)
    validation_ids = np.array([index.get(c, 0) for c in validation_text], np.int32)
    counts = np.bincount(train_ids, minlength=len(vocabulary))[1:]
    probabilities = counts[counts > 0] / counts.sum()
    state = CharState(vocabulary="".join(vocabulary), sample_prompt=sample_prompt(train_text))
    info = {
        "text": name,
        "characters": {"train": len(train_text), "validation": len(validation_text)},
        # the characters this text's ids stand for: the trained vocabulary is the state's
        "vocabulary": state.vocabulary,
        "vocabulary_size": len(vocabulary),
        "unknown_in_validation": int((validation_ids == 0).sum()),
        # bits per character of a model that knows only how often each character occurs
        "unigram_entropy_bits": float(-(probabilities * np.log2(probabilities)).sum()),
    }
    stream = tf.data.Dataset.from_tensor_slices(np.concatenate([train_ids, validation_ids]))
    return Splits(train=stream, validation=stream, test=stream, info=info, state=state)


def in_vocabulary(chunks: tf.data.Dataset, read_with: str, vocabulary: str) -> tf.data.Dataset:
    """(input, target) chunks of ids into `read_with`, as ids into `vocabulary` (0: a character it lacks).

    Re-evaluating a run reads today's text, whose vocabulary is its own: the model's ids are the run's."""
    if read_with == vocabulary:
        return chunks
    index = {char: i for i, char in enumerate(vocabulary)}
    ids = tf.constant([index.get(char, 0) for char in read_with], tf.int32)
    return chunks.map(lambda x, y: (tf.gather(ids, x), tf.gather(ids, y)))


def chunks(ids: tf.data.Dataset, seq_length: int) -> tf.data.Dataset:
    """(input, target) pairs: chunks of seq_length + 1 ids, the target shifted one character on."""
    return ids.batch(seq_length + 1, drop_remainder=True).map(lambda chunk: (chunk[:-1], chunk[1:]))


def training_chunks(ids: tf.data.Dataset, size: int, seq_length: int) -> tf.data.Dataset:
    """The chunks of `size` ids after skipping a random 0..seq_length of them, drawn anew each epoch.

    nanoGPT samples windows at random positions for the same reason: fixed boundaries would always show
    a character at the same place in its chunk. One chunk fewer than the text holds keeps every epoch
    the same number of steps whatever the offset.
    """
    count = max(1, size // (seq_length + 1) - 1)
    most = min(seq_length, size - count * (seq_length + 1))
    # unseeded: the global seed (--seed) makes the offsets of a run repeatable
    offsets = tf.data.Dataset.random(rerandomize_each_iteration=True).take(1)
    return offsets.flat_map(
        lambda r: chunks(ids.take(size).skip(r % (most + 1)), seq_length).take(count)
    ).apply(tf.data.experimental.assert_cardinality(count))


def for_hparams(splits: Splits, values: dict) -> Splits:
    """Training and validation chunks of the model's `seq_length`."""
    seq_length = int(values.get("seq_length", DEFAULT_SEQ_LENGTH))
    if splits.info.get("seq_length") == seq_length:
        return splits
    train_size, validation_size = splits.info["characters"]["train"], splits.info["characters"]["validation"]
    if min(train_size, validation_size) < seq_length + 1:
        raise UserError(
            f"the validation text ({validation_size} characters) is shorter than one sequence of "
            f"{seq_length + 1}; use a longer text or a shorter --hp seq_length=..."
        )
    validation_length = min(VALIDATION_LENGTH, validation_size - 1)
    return Splits(
        train=training_chunks(splits.test, train_size, seq_length),
        validation=chunks(splits.test.skip(train_size), validation_length),
        test=splits.test,
        info={**splits.info, "seq_length": seq_length, "validation_length": validation_length},
        state=splits.state,
        cache_train=False,  # a cache would freeze the first epoch's offset
    )
