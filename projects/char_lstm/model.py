"""The language model: character ids in, the next character's logits at every position out.

An embedding, a stack of LSTM (or GRU) layers with dropout between them, and a dense layer to the
vocabulary. Trained with teacher forcing on chunks of `seq_length` characters; the loss is the mean
cross-entropy in nats per character, so `val_loss` is the number the README reports.
"""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers

from projects.char_lstm.data import DEFAULT_SEQ_LENGTH
from shared.project import Splits

RNN_CELLS = {"lstm": layers.LSTM, "gru": layers.GRU}


def build_model(hp: kt.HyperParameters, splits: Splits | None = None) -> keras.Model:
    vocabulary_size = len(splits.state.vocabulary) if splits is not None else 66
    hp.Int("seq_length", 50, 200, step=50, default=DEFAULT_SEQ_LENGTH)  # the chunks: see data.for_hparams
    embedding = hp.Int("embedding", 32, 256, step=32, default=64)
    cell = hp.Choice("cell", list(RNN_CELLS), default="lstm")
    depth = hp.Int("layers", 1, 3, default=2)
    units = hp.Int("units", 128, 768, step=128, default=512)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.4)
    learning_rate = hp.Float("learning_rate", 3e-4, 1e-2, sampling="log", default=2e-3)
    clipnorm = hp.Float("clipnorm", 0.5, 5.0, default=1.0)

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = layers.Embedding(vocabulary_size, embedding, name="embedding")(ids)
    for i in range(depth):
        x = RNN_CELLS[cell](units, return_sequences=True, name=f"rnn{i + 1}")(x)
        x = layers.Dropout(dropout, name=f"dropout{i + 1}")(x)
    logits = layers.Dense(vocabulary_size, dtype="float32", name="logits")(x)
    model = keras.Model(ids, logits, name=f"char_{cell}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model
