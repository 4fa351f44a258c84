"""The Large Movie Review Dataset (Maas et al. 2011) as raw text, and the TextVectorization adapted on it.

25,000 labelled reviews train (about 5,000 of them, whole films at a time, are held out for validation) and
25,000 test.
Reviews are read straight from the tar.gz: `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`. Bytes that
are not UTF-8 are replaced, never fatal. The vectorizer is adapted on the training split only.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from shared import options
from shared.config import RunConfig, UserError
from shared.data import DatasetMissingError, RemoteFile, locate
from shared.options import option
from shared.project import Splits

LABELLED = RemoteFile(dataset="imdb", filename="aclImdb_labelled.tar.gz")  # the labelled folders only
ORIGINAL = RemoteFile(
    dataset="imdb",
    filename="aclImdb_v1.tar.gz",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
)
MAX_TOKENS = 30_000  # the vectorizer's vocabulary; the model's `vocab_size` hp uses the most frequent part
MAX_LENGTH = 600  # tokens kept per review; the model's `sequence_length` hp keeps the first part
CLASS_NAMES = ["negative", "positive"]
REVIEW_PATH = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_\d+\.txt$")
URLS_PATH = re.compile(r"aclImdb/(train|test)/urls_(pos|neg)\.txt$")
FILM = re.compile(r"tt\d+")  # an IMDB title id, as in http://www.imdb.com/title/tt0453418/usercomments
SMOKE_SIZES = {"train": 1_600, "test": 400}
# training batches hold reviews of about the same number of words (half of IMDB's are under 175), so the
# recurrent layers step over little padding: the model trims each batch to its longest review
LENGTH_BUCKETS = (64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512)


@dataclass(frozen=True)
class Options:
    validation_reviews: int = option(
        5_000, "training reviews held out to choose the epoch, about (whole films at a time)"
    )

    def __post_init__(self):
        if not 500 <= self.validation_reviews <= 12_500:
            count = self.validation_reviews
            raise UserError(f"--validation-reviews {count}: give 500-12,500 reviews (whole films at a time)")


def word_count(text: tf.Tensor) -> tf.Tensor:
    """About the number of tokens the vectorizer makes of one raw review, cheaply."""
    return tf.size(tf.strings.split(text), out_type=tf.int32)


@keras.saving.register_keras_serializable(package="imdb_gru")
def standardize(text: tf.Tensor) -> tf.Tensor:
    """Lower case; HTML line breaks, punctuation and every other non-letter, non-digit to spaces.

    keras-io's recipe strips ASCII punctuation only; then control and Unicode line-break characters stay
    inside tokens, and the saved vocabulary file (one token a line) no longer reads back as it was written.
    """
    text = tf.strings.lower(text, encoding="utf-8")  # É -> é too, not only ASCII
    text = tf.strings.regex_replace(text, r"<br\s*/?>", " ")
    return tf.strings.regex_replace(text, r"[^\pL\pN]+", " ")


def vectorizer(max_tokens: int = MAX_TOKENS, length: int = MAX_LENGTH) -> keras.layers.TextVectorization:
    return keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, output_sequence_length=length, name="vectorizer"
    )


def archive_path(data_dir: Path) -> Path:
    """The mirror's labelled archive if present, else the original (downloaded when online)."""
    labelled = Path(data_dir) / LABELLED.dataset / LABELLED.filename
    if labelled.is_file():
        return labelled
    try:
        return locate(ORIGINAL, data_dir)
    except DatasetMissingError as e:
        raise DatasetMissingError(f"{e} ({labelled} is read instead when it is there.)") from None


class Reviews(NamedTuple):
    texts: list[str]
    labels: np.ndarray  # 1 = positive
    films: list[str] | None  # the IMDB title each review is about, when the archive lists them


def read_reviews(path: Path) -> dict[str, Reviews]:
    """{"train"|"test": Reviews} from the archive, in name order.

    `films` comes from `urls_pos.txt` / `urls_neg.txt`, whose line N is the film of review N_*.txt.
    """
    found: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    urls: dict[tuple[str, str], list[str]] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                match = REVIEW_PATH.search(member.name)
                listing = URLS_PATH.search(member.name)
                if match and member.isfile():
                    raw = archive.extractfile(member).read()
                    text = raw.decode("utf-8", errors="replace")
                    found[match[1]].append((member.name, text, int(match[2] == "pos")))
                elif listing and member.isfile():
                    lines = archive.extractfile(member).read().decode("utf-8", errors="replace")
                    urls[(listing[1], listing[2])] = lines.splitlines()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UserError(
            f"{path} is not a readable tar.gz of aclImdb/ ({e}); delete it and get it again"
        ) from e
    for split, rows in found.items():
        if not rows:
            raise UserError(
                f"{path} holds no aclImdb/{split}/{{pos,neg}}/*.txt reviews; is it the IMDB archive?"
            )
    return {split: _reviews(split, sorted(rows), urls) for split, rows in found.items()}


def _reviews(split: str, rows: list[tuple[str, str, int]], urls: dict) -> Reviews:
    films = []
    for name, _, label in rows:
        listing = urls.get((split, "pos" if label else "neg"), [])
        number = int(REVIEW_PATH.search(name)[3])
        film = FILM.search(listing[number]) if number < len(listing) else None
        films.append(film[0] if film else None)
    return Reviews(
        [text for _, text, _ in rows],
        np.array([label for *_, label in rows], np.int32),
        films if any(films) else None,  # None: the archive lists no films at all
    )


POSITIVE = ["great", "excellent", "wonderful", "loved", "brilliant", "superb", "moving", "best"]
NEGATIVE = ["awful", "terrible", "boring", "worst", "waste", "dull", "poor", "hated"]
NEUTRAL = [
    "the",
    "a",
    "film",
    "movie",
    "story",
    "plot",
    "actor",
    "scene",
    "and",
    "of",
    "it",
    "was",
    "to",
    "in",
    "this",
    "with",
    "that",
    "on",
    "for",
    "as",
]


def generate_reviews(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Made-up reviews whose label is decided by their sentiment words, with HTML breaks as IMDB has."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int32)
    texts = []
    for label in labels:
        words = list(rng.choice(NEUTRAL, rng.integers(20, 60)))
        for _ in range(rng.integers(2, 5)):
            words.insert(rng.integers(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words[:15]) + ".<br /><br />" + " ".join(words[15:]) + "!")
    return texts, labels


def validation_split(train: Reviews, size: int, seed: int):
    """(train texts, validation texts, train labels, validation labels, how): about `size` reviews.

    By film when the archive lists films: the test reviews are of other films than the training ones, so
    a validation split of films the model never saw measures what the test will, while reviews of
    films it trained on reward remembering names and titles. Stratified by label either way.
    """
    texts, labels = np.array(train.texts, dtype=object), train.labels
    if train.films is not None:
        # a review whose film is not listed is a group of its own: it cannot share a film across the split
        groups = [film or f"unlisted {i}" for i, film in enumerate(train.films)]
        folds = StratifiedGroupKFold(
            n_splits=max(2, round(len(labels) / size)), shuffle=True, random_state=seed
        )
        kept, held = next(folds.split(texts, labels, groups=groups))
        unlisted = sum(film is None for film in train.films)
        how = "films not in the training split" + (
            f" ({unlisted} with no listed film, each its own group)" if unlisted else ""
        )
    else:
        kept, held = train_test_split(
            np.arange(len(labels)), test_size=size, stratify=labels, random_state=seed
        )
        how = "random reviews (the archive lists no films)"
    return list(texts[kept]), list(texts[held]), labels[kept], labels[held], how


def load(cfg: RunConfig) -> Splits:
    validation_reviews = options.read(Options, cfg).validation_reviews
    if cfg.smoke:
        reviews = {
            split: Reviews(*generate_reviews(size, seed=cfg.seed + i), films=None)
            for i, (split, size) in enumerate(SMOKE_SIZES.items())
        }
        source, validation_size = "generated (--smoke)", SMOKE_SIZES["test"]
    else:
        path = archive_path(cfg.resolved_data_dir())
        reviews = read_reviews(path)
        source, validation_size = str(path), validation_reviews
    train_x, val_x, train_y, val_y, validation_by = validation_split(
        reviews["train"], validation_size, cfg.seed
    )
    test_x, test_y, _ = reviews["test"]
    preprocessor = vectorizer()
    preprocessor.adapt(tf.data.Dataset.from_tensor_slices(train_x).batch(1024))  # the training split only
    return Splits(
        train=tf.data.Dataset.from_tensor_slices((train_x, train_y)),
        validation=tf.data.Dataset.from_tensor_slices((val_x, val_y)),
        test=tf.data.Dataset.from_tensor_slices((test_x, test_y)),
        info={
            "source": source,
            "sizes": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
            "positive_share": {"train": float(train_y.mean()), "test": float(test_y.mean())},
            "validation_reviews_of": validation_by,
            "vocabulary": preprocessor.vocabulary_size(),
            "max_length": MAX_LENGTH,
            "class_names": CLASS_NAMES,
        },
        preprocessor=preprocessor,
        bucket_by_length=(word_count, LENGTH_BUCKETS),
    )
