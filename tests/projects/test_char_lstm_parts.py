"""char_lstm without its command line: the position split and vocabulary, the chunks of a sequence length
(cut by for_hparams, not by load), bad texts and requests, and stepping the cells one character at a time
against the whole model, in Python and through the generate_step signature."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from projects.char_lstm import data
from projects.char_lstm.export import serving_endpoint, step_endpoint
from projects.char_lstm.generate import Generator, TextSamples, check_request, sample
from projects.char_lstm.model import build_model
from shared.config import RunConfig, UserError
from shared.hparams import hyperparameters
from shared.project import Trained


def test_split_by_position_with_a_vocabulary_from_training(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("ab" * 450 + "abcz" * 25)  # 1,000 characters: c and z only in the last tenth
    loaded = data.load(RunConfig(project="char_lstm", options={"text": str(path)}))
    assert "seq_length" not in loaded.info  # the runner asks for_hparams for the chunks, not load
    splits = data.for_hparams(loaded, {"seq_length": 50})
    info = splits.info
    assert info["characters"] == {"train": 900, "validation": 100}
    assert splits.state == data.CharState(vocabulary=data.UNKNOWN + "ab", sample_prompt="ab" * 20)
    assert info["unknown_in_validation"] == 50
    assert info["unigram_entropy_bits"] == pytest.approx(1.0)
    x, y = next(iter(splits.train))
    np.testing.assert_array_equal(x[1:], y[:-1])  # the target is the input one character on
    assert len(list(splits.train)) == 900 // 51 - 1  # one fewer: room for the epoch's random offset
    # validation chunks have one length (256, or what a short text allows), whatever seq_length is
    assert info["validation_length"] == 99 and len(list(splits.validation)) == 1


def test_training_chunks_start_at_a_new_offset_each_epoch():
    tf.random.set_seed(3)
    ids = tf.data.Dataset.range(1_000)
    train = data.training_chunks(ids, 900, 9)
    epochs = [np.stack([x for x, _ in train.as_numpy_iterator()]) for _ in range(6)]
    assert {len(chunks) for chunks in epochs} == {train.cardinality().numpy()} == {89}
    starts = {int(chunks[0, 0]) for chunks in epochs}
    assert len(starts) > 1 and starts <= set(range(10))  # a fresh offset of 0..seq_length per epoch
    for chunks in epochs:  # consecutive, within the training text, never past it
        np.testing.assert_array_equal(np.diff(chunks[:, 0]), 10)
        assert chunks.max() < 900


def test_a_text_read_with_another_vocabulary_is_evaluated_in_the_runs_ids():
    """Re-evaluating reads today's text, its ids in its own vocabulary: they become the run's ids, and a
    character the run never saw becomes id 0, as it would have been in training."""
    today = data.UNKNOWN + "abc"  # today's text has a "b" the training text did not
    chunk = tf.data.Dataset.from_tensors(([1, 2, 3], [2, 3, 1]))  # "abc" -> "bca"
    (x, y), *_ = data.in_vocabulary(chunk, today, data.UNKNOWN + "ac").as_numpy_iterator()
    np.testing.assert_array_equal(x, [1, 0, 2])
    np.testing.assert_array_equal(y, [0, 2, 1])
    assert data.in_vocabulary(chunk, today, today) is chunk  # the data training read: as it is


def test_bad_texts_are_clear_errors(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(("x" * 300 + "\ncaf").encode() + b"\xe9\n")
    with pytest.raises(UserError, match=r"not UTF-8: byte 304 \(line 2\)"):
        data.read_text(latin1)
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(UserError, match="holds 9 characters; at least 20"):
        data.read_text(short)
    with pytest.raises(UserError, match="no such file"):
        data.load(RunConfig(project="char_lstm", options={"text": str(tmp_path / "missing.txt")}))


def test_requests_outside_what_the_model_knows_are_clear_errors():
    vocabulary = data.UNKNOWN + "\n abc"
    assert check_request("a b", 0.8, vocabulary) == [3, 2, 4]
    for prompt, temperature, length, message in (
        ("", 0.8, 10, "the prompt is empty"),
        ("abz!", 0.8, 10, r"never saw in training: '!z'"),
        ("ab", 0.0, 10, "--temperature must be above 0"),
        ("ab", 0.8, 0, "--length must be from 1 to 100000"),
        ("ab", 1e-9, 10, "at least 0.001"),
    ):
        with pytest.raises(UserError, match=message):
            check_request(prompt, temperature, vocabulary, length)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stepping_the_cells_gives_the_whole_models_logits(cell):
    """On an untrained two-layer model, so the check covers states passed between layers, for both cells."""

    model = build_model(hyperparameters({"cell": cell, "layers": 2, "units": 32}))
    ids = np.random.default_rng(0).integers(1, 66, size=30)
    full = model(ids[np.newaxis], training=False).numpy()[0]
    generator, states = Generator(model), None
    states = generator.initial_states()
    for t, i in enumerate(ids):
        logits, states = generator.step(tf.constant([i]), states)
        np.testing.assert_allclose(logits.numpy()[0], full[t], atol=1e-5)


def test_no_sample_from_a_diverged_model(tmp_path):

    with pytest.raises(UserError, match="non-finite logits"):
        sample(np.array([0.0, np.nan, 1.0]), 1.0, 0, np.random.default_rng(0))
    callback = TextSamples(tmp_path, data.UNKNOWN + "ab", "a")
    callback.set_model(build_model(hyperparameters({"units": 16, "layers": 1})))
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": float("nan")})
    callback.on_train_end()
    assert not (tmp_path / "samples").exists()


def test_a_text_too_short_for_one_sequence_is_a_clear_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("ab" * 250)  # its last tenth: 50 characters, under one sequence of 101
    with pytest.raises(
        UserError, match="the validation text \\(50 characters\\) is shorter than one sequence of 101"
    ):
        data.for_hparams(data.load(RunConfig(project="char_lstm", options={"text": str(path)})), {})


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_generate_step_fed_its_own_outputs_writes_what_generate_writes(cell):
    """On an untrained two-layer model, eagerly: the state vector packs and unpacks every layer's states."""

    model = build_model(hyperparameters({"cell": cell, "layers": 2, "units": 32}))
    vocabulary = data.UNKNOWN + "".join(chr(33 + i) for i in range(65))
    kept = Trained(state=data.CharState(vocabulary=vocabulary, sample_prompt="KING:"))
    serve = serving_endpoint(model, kept)[0]
    step, signature, _ = step_endpoint(model, kept)["generate_step"]
    assert signature[1].shape == [2 * 32 * (2 if cell == "lstm" else 1)]  # an LSTM has h and c, a GRU h
    settings = {"temperature": tf.constant(1.5), "top_k": tf.constant(5), "seed": tf.constant(4)}
    expected = serve(prompt=tf.constant("KING:"), length=tf.constant(25), **settings)["text"].numpy().decode()
    text, state, position, written = tf.constant("KING:"), tf.zeros(signature[1].shape), tf.constant(0), ""
    for _ in range(25):
        outputs = step(text=text, state=state, position=position, **settings)
        written += outputs["text"].numpy().decode()
        text, state, position = outputs["next_text"], outputs["next_state"], outputs["next_position"]
    assert written == expected and int(position) == 25
