"""`predict RUN_DIR "text" ...`, `--file reviews.txt` (one review a line) or stdin: positive or negative.

Text goes through the run's exported SavedModel (raw strings in). An empty or whitespace-only review gets an
`error:` line of its own and the others are still scored (exit code 1); bytes that are not UTF-8 are
replaced; a review longer than training's sequence length is truncated as in training.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from projects.imdb_gru.data import standardize
from shared.config import UserError
from shared.export import saved_model_of, serve_saved_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/imdb_gru/latest)")
    parser.add_argument("text", nargs="*", help="reviews to score; none: read --file or standard input")
    parser.add_argument("--file", help="a text file with one review per line")


def read_reviews(args: argparse.Namespace) -> list[str]:
    """One review per argument, or per line of the file / standard input (only \\n ends a line)."""
    if args.text:  # arguments keep undecodable bytes as surrogates: replace them as files do
        return [os.fsencode(text).decode("utf-8", errors="replace") for text in args.text]
    data = Path(args.file).read_bytes() if args.file else sys.stdin.buffer.read()
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline ends the last review; it does not start another
    return [line.removesuffix("\r") for line in lines]


def unscorable(reviews: list[str]) -> dict[int, str]:
    """Reviews with no words to score, by position: empty, or nothing left after standardisation."""
    words = standardize(tf.constant(reviews)).numpy() if reviews else []
    problems = {}
    for i, (text, standardized) in enumerate(zip(reviews, words, strict=True)):
        if not text.strip():
            problems[i] = "empty or whitespace only"
        elif not standardized.strip():
            problems[i] = "no words in it (only punctuation or markup)"
    return problems


def run(args: argparse.Namespace) -> int:
    saved_model = saved_model_of(Path(args.run))
    reviews = read_reviews(args)
    if not reviews:
        raise UserError("no reviews given: pass them as arguments, with --file, or on standard input")
    problems = unscorable(reviews)
    for i, reason in problems.items():
        print(f"error: review {i + 1}: {reason}; nothing to score", file=sys.stderr)
    good = [i for i in range(len(reviews)) if i not in problems]
    if good:
        texts = np.array([reviews[i] for i in good], dtype=object)
        scores = serve_saved_model(saved_model, {"text": texts})["positive_probability"]
        for i, score in zip(good, scores, strict=True):
            label = "positive" if score >= 0.5 else "negative"
            snippet = " ".join(reviews[i].split())[:70]
            print(f"{label}\t{score:.4f}\t{snippet}")
    return 0 if len(good) == len(reviews) else 1
