"""Validation loss in nats, bits and perplexity per character, and samples at a few temperatures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from projects.char_lstm.data import in_vocabulary
from projects.char_lstm.generate import SAMPLE_TEMPERATURES, Generator, generate
from shared.config import RunConfig
from shared.data import batched
from shared.project import Splits
from shared.strategy import global_batch_size

SAMPLE_LENGTH = 500


def evaluate(model: keras.Model, splits: Splits, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    # the training batch: under a strategy every batch must share out over the replicas as training's did
    replicas = model.distribute_strategy.num_replicas_in_sync
    batch = global_batch_size(cfg.batch_size, replicas, cfg.global_batch_size)
    vocabulary, prompt = splits.state.vocabulary, splits.state.sample_prompt
    chunks = in_vocabulary(splits.validation, splits.info["vocabulary"], vocabulary)
    validation = batched(chunks, batch, shuffle=False, seed=cfg.seed, cache=False)
    loss = float(model.evaluate(validation, verbose=0, return_dict=True)["loss"])
    generator = Generator(model)
    samples = {
        t: generate(generator, vocabulary, prompt, SAMPLE_LENGTH, t, seed=cfg.seed)
        for t in SAMPLE_TEMPERATURES
    }
    text = "".join(f"--- temperature {t} ---\n{prompt}{s}\n\n" for t, s in samples.items())
    (run_dir / "samples.txt").write_text(text, encoding="utf-8")
    return {
        "val_loss_nats": loss,
        "val_bpc": loss / math.log(2),
        "val_perplexity": math.exp(loss),
        "unigram_bpc": splits.info["unigram_entropy_bits"],
    }
