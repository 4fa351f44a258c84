"""imdb_gru: the review archive, and training, serving, predicting and comparing on generated reviews."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from projects.imdb_gru.data import Reviews, read_reviews, standardize, validation_split
from shared.config import UserError
from tests.conftest import last_line, run_cli, run_script
from tests.serving_helpers import check_served_like_in_process

# a short budget: 60 tokens, a small GRU; the generated reviews are at most ~65 words long
FAST = (
    *("--smoke", "--epochs", "3", "--hp", "sequence_length=60", "--hp", "units=16"),
    *("--hp", "embedding_dim=32", "--hp", "learning_rate=0.01", "--hp", "dropout=0.2"),
    *("--hp", "embedding_dropout=0.1", "--hp", "bigram_buckets=5000"),
)


def write_archive(path: Path, reviews: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in reviews.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_archive_reviews_are_read_with_labels_and_bad_bytes_replaced(tmp_path):
    path = write_archive(
        tmp_path / "a.tar.gz",
        {
            "aclImdb/train/pos/0_9.txt": b"Loved it.<br />Great",
            "aclImdb/train/neg/1_2.txt": b"Awful \xff film",  # not UTF-8: replaced, not fatal
            "aclImdb/test/pos/0_10.txt": b"Superb",
            "aclImdb/test/neg/3_1.txt": b"Dull",
            "aclImdb/train/unsup/5_0.txt": b"no label",
            "aclImdb/README": b"readme",
            "aclImdb/train/urls_pos.txt": b"http://www.imdb.com/title/tt0000007/usercomments\n",
            "aclImdb/train/urls_neg.txt": b"a\nhttp://www.imdb.com/title/tt0000042/usercomments\n",
        },
    )
    reviews = read_reviews(path)
    texts, labels, films = reviews["train"]
    assert texts == ["Awful \ufffd film", "Loved it.<br />Great"] and list(labels) == [0, 1]
    assert films == ["tt0000042", "tt0000007"]  # line N of urls_<label>.txt is review N's film
    assert list(reviews["test"].labels) == [0, 1] and reviews["test"].films is None  # no test urls


def test_validation_reviews_are_of_films_not_trained_on():
    rng = np.random.default_rng(0)
    films = [f"tt{n}" for n in rng.integers(0, 300, 3_000)]
    liked = {film: int(rng.random() < 0.3) for film in set(films)}  # each film's reviews share a label
    labels = np.array([liked[film] for film in films], np.int32)
    texts = [f"review {i} of {film}" for i, film in enumerate(films)]
    films[5] = None  # a review whose film is not listed: a group of its own
    train_x, val_x, _, val_y, how = validation_split(Reviews(texts, labels, films), 600, seed=1)
    film_of = dict(zip(texts, films, strict=True))
    assert not {film_of[t] for t in train_x} & {film_of[t] for t in val_x} - {None}
    assert len(train_x) + len(val_x) == 3_000 and 450 < len(val_x) < 750
    assert how == "films not in the training split (1 with no listed film, each its own group)"
    assert abs(val_y.mean() - labels.mean()) < 0.03  # stratified by label as well
    _, val_x, _, _, how = validation_split(Reviews(texts, labels, None), 600, seed=1)
    assert len(val_x) == 600 and how.startswith("random reviews")


def test_validation_reviews_option_sets_the_held_out_share(tmp_path):
    from projects.imdb_gru import PROJECT
    from projects.imdb_gru.data import load
    from shared.cli import build_parser
    from shared.config import RunConfig

    rng = np.random.default_rng(0)
    reviews = {
        f"aclImdb/{split}/{label}/{i}_5.txt": f"review {i} {' '.join(rng.choice(list('abcdef'), 9))}".encode()
        for split, count in (("train", 1_500), ("test", 20))
        for label in ("pos", "neg")
        for i in range(count // 2)
    }
    (tmp_path / "imdb").mkdir()
    write_archive(tmp_path / "imdb" / "aclImdb_labelled.tar.gz", reviews)
    for held_out in (500, 1_000):
        cfg = RunConfig(project="imdb_gru", data_dir=str(tmp_path), options={"validation_reviews": held_out})
        sizes = load(cfg).info["sizes"]
        assert sizes == {"train": 1_500 - held_out, "validation": held_out, "test": 20}
    with pytest.raises(SystemExit):
        build_parser(PROJECT).parse_args(["train", "--validation-reviews", "100"])


def test_weight_decay_reaches_the_optimizer():
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    hp = kt.HyperParameters()
    hp.Fixed("weight_decay", 0.5)
    assert build_model(hp).optimizer.weight_decay == 0.5
    assert build_model(kt.HyperParameters()).optimizer.weight_decay is None  # off by default


def test_bad_validation_reviews_weight_decay_and_word_pair_settings_are_refused_with_the_reason(tmp_path):
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    for value, message in (("100", "100: give 500-12,500 reviews"), ("many", "invalid validation_reviews")):
        result = run_cli("imdb_gru", "train", "--smoke", "--validation-reviews", value, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    hp = kt.HyperParameters()
    hp.Fixed("weight_decay", -0.5)
    with pytest.raises(UserError, match=r"weight_decay must be 0 or more; got -0\.5"):
        build_model(hp)
    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1)
    with pytest.raises(UserError, match=r"bigram_buckets must be 0 \(no word pairs\) or at least 2; got 1"):
        build_model(hp)
    hp = kt.HyperParameters()
    hp.Fixed("bigram_dropout", 1.0)
    with pytest.raises(
        UserError, match=r"bigram_dropout is the share of word pairs dropped: .* below 1; got 1\.0"
    ):
        build_model(hp)


def test_negative_word_pair_settings_are_refused_with_the_reason():
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    for name, value, message in (
        ("bigram_buckets", -5, r"bigram_buckets must be 0 \(no word pairs\) or at least 2; got -5"),
        ("bigram_dropout", -0.1, r"bigram_dropout is the share of word pairs dropped: .*; got -0\.1"),
    ):
        hp = kt.HyperParameters()
        hp.Fixed(name, value)
        with pytest.raises(UserError, match=message):
            build_model(hp)


def test_an_archive_without_reviews_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="holds no aclImdb/train"):
        read_reviews(write_archive(tmp_path / "a.tar.gz", {"other/file.txt": b"x"}))
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(UserError, match=r"is not a readable tar\.gz"):
        read_reviews(tmp_path / "broken.tar.gz")


def test_standardization_removes_html_breaks_and_punctuation():
    text = standardize(tf.constant(["Great!<br /><br />A MUST-see, really."])).numpy()[0].decode()
    assert text.split() == ["great", "a", "must", "see", "really"]


def test_max_and_mean_pooling_sees_only_real_tokens():
    from projects.imdb_gru.model import MaxAndMeanPooling

    states = np.array([[[1, -2], [-3, -4], [9, 9]], [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]], "float32")
    mask = np.array([[True, True, False], [False, False, False]])  # row 2: a text with no words at all
    pooled = np.asarray(MaxAndMeanPooling()(states, mask=mask))
    np.testing.assert_allclose(pooled, [[1.0, -2.0, -1.0, -3.0], [0.0, 0.0, 0.0, 0.0]])


def test_word_pairs_are_hashed_per_position_and_masked_as_the_words():
    import keras_tuner as kt

    from projects.imdb_gru.model import BigramIds, build_model

    ids = np.zeros((2, 600), "int64")
    ids[0, :5], ids[1, :3] = [5, 6, 7, 5, 6], [5, 6, 7]
    pairs = np.asarray(BigramIds(1000)(ids))
    assert (pairs[:, 0] > 0).all() and (pairs[0, 5:] == 0).all() and (pairs[1, 3:] == 0).all()
    assert pairs[0, 1] == pairs[0, 4] == pairs[1, 1] != pairs[0, 2]  # (5, 6) is one pair wherever it is
    assert pairs.min() >= 0 and pairs.max() < 1000
    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1000)
    model = build_model(hp)
    # padding stays masked: the shorter review scores the same alone as beside the longer one
    np.testing.assert_allclose(np.asarray(model(ids))[1], np.asarray(model(ids[1:]))[0], atol=1e-6)


def test_bigram_dropout_drops_whole_pairs_in_training_only():
    import keras
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    hp = kt.HyperParameters()
    hp.Fixed("bigram_buckets", 1000)
    hp.Fixed("bigram_dropout", 0.3)
    embedder = build_model(hp).get_layer("embedder")
    assert embedder.get_layer("words_and_pairs").input[1] is embedder.get_layer("bigram_dropout").output
    pairs = keras.Model(embedder.input, embedder.get_layer("bigram_embedding").output)
    dropped = keras.Model(embedder.input, embedder.get_layer("bigram_dropout").output)
    ids = np.tile(np.random.default_rng(0).integers(2, 20_000, (1, 600)), (4, 1))  # one review, 4 times
    kept = np.asarray(pairs(ids)) / 0.7  # what a kept pair's vector becomes (scaled by 1 / (1 - 0.3))
    out = np.asarray(dropped(ids, training=True))
    zero, whole = (out == 0).all(-1), np.isclose(out, kept, atol=1e-6).all(-1)
    assert (zero | whole).all()  # every pair is dropped or kept as a whole vector
    assert (abs(zero.mean(1) - 0.3) < 0.1).all()  # 30% of them, in every review
    assert all((zero[0] != zero[i]).any() for i in (1, 2, 3))  # a fresh choice for each review
    np.testing.assert_allclose(np.asarray(dropped(ids)), np.asarray(pairs(ids)))  # none dropped to predict


NO_DROPOUT = {"bigram_dropout": 0.0, "embedding_dropout": 0.0, "word_dropout": 0.0, "dropout": 0.0}


def small_adversarial_model(epsilon: float, **values):
    import keras_tuner as kt

    from projects.imdb_gru.model import build_model

    # no dropout after the embeddings: two passes over the same reviews must see the same network
    values = {"embedding_dim": 16, "units": 8, "bigram_buckets": 500, "dropout": 0.0, **values}
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    hp.Fixed("adversarial_epsilon", epsilon)
    return build_model(hp)


def short_reviews(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, 600), "int64")
    for i in range(count):
        ids[i, : 4 + 5 * i] = rng.integers(2, 20_000, 4 + 5 * i)
    return ids


def test_the_adversarial_push_raises_the_loss_and_is_epsilon_of_each_reviews_norm():
    import keras

    keras.utils.set_random_seed(0)
    model = small_adversarial_model(0.05)
    ids = short_reviews(6)
    labels = np.array([0, 1, 0, 1, 1, 0], "float32")
    embedded, tokens = model.get_layer("embedder")(ids)
    with tf.GradientTape() as tape:
        tape.watch(embedded)
        loss, _ = model.loss_at(embedded, tokens, labels)
    push = model.push_along(tape.gradient(loss, embedded), embedded, tokens)
    real = (np.asarray(tokens) != 0)[:, :, None]
    norm = lambda x: np.sqrt((np.asarray(x) ** 2).sum(axis=(1, 2)))  # noqa: E731
    np.testing.assert_allclose(norm(push), 0.05 * norm(np.asarray(embedded) * real), rtol=1e-4)
    assert (np.asarray(push)[~real[:, :, 0]] == 0).all()  # padding is neither pushed nor counted
    pushed, _ = model.loss_at(embedded + push, tokens, labels)
    pulled, _ = model.loss_at(embedded - push, tokens, labels)
    assert float(pushed) > float(loss) > float(pulled)  # along the gradient: up; against it: down


def test_an_adversarial_step_descends_the_clean_plus_the_pushed_loss(tmp_path):
    """One `fit` step with plain SGD moves every weight by the learning rate x the gradient of the clean
    loss plus the loss at the pushed embeddings, computed here in one plain backward pass."""
    import keras

    keras.utils.set_random_seed(0)
    model = small_adversarial_model(0.05, **NO_DROPOUT)
    model.compile(keras.optimizers.SGD(0.5), keras.losses.BinaryCrossentropy())
    ids, labels = short_reviews(8, seed=1), (np.arange(8) % 2).astype("float32")
    before = [np.asarray(w) for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        embedded, tokens = model.get_layer("embedder")(ids)
        with tf.GradientTape() as inner:
            inner.watch(embedded)
            loss, _ = model.loss_at(embedded, tokens, labels)
        push = tf.stop_gradient(model.push_along(inner.gradient(loss, embedded), embedded, tokens))
        total = loss + model.loss_at(embedded + push, tokens, labels)[0]
    expected = [
        w - 0.5 * np.asarray(tf.convert_to_tensor(g))
        for w, g in zip(before, tape.gradient(total, model.trainable_weights), strict=True)
    ]
    dataset = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    for weight, want in zip(model.trainable_weights, expected, strict=True):
        np.testing.assert_allclose(np.asarray(weight), want, atol=1e-5, err_msg=weight.path)
    assert history.history["loss"][0] == pytest.approx(float(loss), rel=1e-5)  # the clean loss is reported
    model.save(tmp_path / "model.keras")
    assert keras.saving.load_model(tmp_path / "model.keras").adversarial_epsilon == 0.05


def test_adversarial_training_under_mixed_precision(tmp_path):
    """float16 embeddings and a loss-scaling optimizer: the push still has a gradient to follow (a loss
    scaled outside the tape gave none) and the run trains and exports."""
    run_dir = tmp_path / "run"
    args = (*FAST[:2], "2", *FAST[3:], "--mixed-precision", "on", "--run-dir", str(run_dir))
    result = run_cli("imdb_gru", "train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "config.json").read_text())["runtime"]["dtype_policy"] == "mixed_float16"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8, metrics["test_accuracy"]  # chance is 0.5


def test_bad_adversarial_epsilon_is_refused_with_the_reason():
    with pytest.raises(UserError, match=r"adversarial_epsilon must be 0 \(off\) or more; got -0\.1"):
        small_adversarial_model(-0.1)


ADVERSARIAL_REPLICA_CHECK = r"""
import contextlib, json
import numpy as np
import tensorflow as tf
from shared.strategy import make_strategy
strategy = make_strategy("mirrored", 2)  # first: it splits the CPU
import keras
from projects.imdb_gru import PROJECT
from shared.project import Splits
from shared.runner import build_checked

# no dropout, so every model sees the same network and their steps can be compared
values = {"embedding_dim": 16, "units": 8, "bigram_buckets": 500, "bigram_dropout": 0.0,
          "embedding_dropout": 0.0, "word_dropout": 0.0, "dropout": 0.0}
rng = np.random.default_rng(0)
ids = np.zeros((16, 600), "int64")
for i in range(16):
    ids[i, : 5 + 3 * i] = rng.integers(2, 20_000, 5 + 3 * i)
dataset = tf.data.Dataset.from_tensor_slices((ids, (np.arange(16) % 2).astype("float32"))).batch(16)
splits = Splits(None, None, None)
keras.utils.set_random_seed(0)
start = build_checked(PROJECT, values, splits)[0].get_weights()

def one_step(epsilon, scope):
    with scope:
        model = build_checked(PROJECT, {**values, "adversarial_epsilon": epsilon}, splits)[0]
        model.set_weights(start)
        # plain SGD: its step is proportional to the gradient, so a gradient twice too big shows
        model.compile(keras.optimizers.SGD(0.5), keras.losses.BinaryCrossentropy())
    model.fit(dataset, epochs=1, verbose=0)
    return model.get_weights()

def largest_gap(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

one = one_step(0.05, contextlib.nullcontext())
two = one_step(0.05, strategy.scope())
plain = one_step(0.0, contextlib.nullcontext())
plain_two = one_step(0.0, strategy.scope())
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "moved": largest_gap(one, start),
                  "gap": largest_gap(one, two), "adversarial_part": largest_gap(one, plain),
                  "plain_gap": largest_gap(plain, plain_two)}))
"""


def test_an_adversarial_step_on_two_replicas_updates_as_one_step_on_one(tmp_path):
    """The same weights and global batch of 16: one adversarial step on one device and one on two
    replicas (8 reviews each) must leave the same weights; a loss averaged over the replica's batch
    instead of the global one would double the step. The adversarial part must change the step."""
    outcome = run_script(ADVERSARIAL_REPLICA_CHECK, cwd=tmp_path)
    assert outcome["replicas"] == 2
    assert outcome["moved"] > 1e-3, outcome
    assert outcome["gap"] < 1e-5, outcome
    assert outcome["adversarial_part"] > 1e-4, outcome
    assert outcome["plain_gap"] < 1e-5, outcome  # and so do plain steps


@pytest.fixture(scope="module")
def trained(session_dir) -> Path:
    run_dir = session_dir / "imdb_run"
    result = run_cli("imdb_gru", "train", *FAST, "--run-dir", str(run_dir), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(result.stdout) == str(run_dir)
    return run_dir


def test_train_on_generated_reviews_beats_chance(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8, metrics["test_accuracy"]  # chance is 0.5
    assert metrics["test_roc_auc"] > 0.85
    assert metrics["export_max_abs_diff_positive_probability"] <= 1e-5  # raw strings, fresh process
    assert (trained / "preprocessor.keras").is_file()
    for plot in ("confusion_matrix", "roc_curve", "training_curves"):
        assert (trained / "plots" / f"{plot}.png").is_file()
    mistakes = pd.read_csv(trained / "tables" / "most_confident_mistakes.csv", index_col=0)
    assert list(mistakes.columns) == ["true", "positive_probability", "review"]


def test_saved_model_takes_raw_strings(trained):
    import keras

    from shared.export import check_in_fresh_process, serve_saved_model

    texts = np.array(["A wonderful, moving film.<br />The best!", "Awful. A waste, boring and dull."])
    vectorizer = keras.saving.load_model(str(trained / "preprocessor.keras"))
    model = keras.saving.load_model(str(trained / "model.keras"))
    expected = np.asarray(model(vectorizer(tf.constant(texts)))).reshape(-1)
    differences = check_in_fresh_process(
        trained / "saved_model", {"text": texts}, {"positive_probability": expected}
    )
    assert differences["positive_probability"] <= 1e-5
    assert expected[0] > 0.5 > expected[1]
    # each batch is cut to its longest review: a review scores the same alone as beside a longer one
    alone = [np.asarray(model(vectorizer(tf.constant([text])))).item() for text in texts]
    np.testing.assert_allclose(alone, expected, atol=1e-6)

    # a review longer than training's 60 tokens scores as its first 60 do, in the SavedModel too
    head = " ".join(["awful"] * 30 + ["film"] * 30)
    long_review = head + " " + " ".join(["wonderful"] * 700)
    served = serve_saved_model(trained / "saved_model", {"text": np.array([head, long_review])})
    first, truncated = served["positive_probability"]
    np.testing.assert_allclose(first, truncated, atol=1e-6)


def test_predict_scores_text_and_names_empty_lines(trained, tmp_path, session_dir):
    reviews = tmp_path / "reviews.txt"
    reviews.write_bytes(
        b"Brilliant and superb, the best film\r\n   \nawful terrible \xff worst \xc2\x85 dull\n!!! <br />\n"
    )
    result = run_cli("imdb_gru", "predict", str(trained), "--file", str(reviews), cwd=session_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: review 2: empty or whitespace only" in result.stderr
    assert "error: review 4: no words in it" in result.stderr
    lines = result.stdout.strip().splitlines()  # U+0085 inside review 3 does not split it
    assert len(lines) == 2 and lines[0].startswith("positive\t") and lines[1].startswith("negative\t")

    undecodable = os.fsdecode(b"loved it \xff wonderful")  # bytes that are not UTF-8, as an argument
    result = run_cli("imdb_gru", "predict", str(trained), undecodable, cwd=session_dir)
    assert result.returncode == 0 and result.stdout.startswith("positive\t"), result.stderr[-2000:]


def test_compare_trains_every_cell_on_one_budget(session_dir):
    folder = session_dir / "imdb_compare"
    args = ("--smoke", "--epochs", "1", *FAST[3:], "--run-dir", str(folder))
    result = run_cli("imdb_gru", "compare", *args, cwd=session_dir, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(folder / "comparison.csv", index_col=0)
    assert list(table.index) == ["simple_rnn", "lstm", "gru", "bidirectional_gru"]
    assert {"test_accuracy", "parameters", "seconds_per_epoch"} <= set(table.columns)
    assert (folder / "validation_curves.png").is_file()


def test_bag_of_words_baseline_learns_the_sentiment_words(session_dir):
    folder = session_dir / "imdb_baseline"
    result = run_cli("imdb_gru", "baseline", "--smoke", "--run-dir", str(folder), cwd=session_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads((folder / "baseline.json").read_text())
    assert outcome["test_accuracy"] > 0.9 and outcome["test_roc_auc"] > 0.95, outcome  # chance is 0.5
    # the C with the best validation accuracy (fit_on_validation never receives the test reviews)
    chosen = max(outcome["validation_accuracy"].items(), key=lambda kv: kv[1])[0]
    assert outcome["chosen_C"] == float(chosen)
    assert outcome["data"]["sizes"] == {"train": 1_200, "validation": 400, "test": 400}


def test_missing_archive_names_both_files(tmp_path, monkeypatch):
    from projects.imdb_gru.data import archive_path
    from shared.data import DatasetMissingError

    monkeypatch.setenv("DATA_OFFLINE", "1")
    with pytest.raises(
        DatasetMissingError, match=r"aclImdb_v1\.tar\.gz.*aclImdb_labelled\.tar\.gz is read instead"
    ):
        archive_path(tmp_path)


def test_predict_without_an_export_or_without_reviews(tmp_path):
    import argparse

    from projects.imdb_gru import predict

    with pytest.raises(UserError, match="has no saved_model"):
        predict.run(argparse.Namespace(run=str(tmp_path), text=["good"], file=None))
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "saved_model.pb").touch()  # past the export check, to the review check
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="no reviews given"):
        predict.run(argparse.Namespace(run=str(tmp_path), text=[], file=str(tmp_path / "empty.txt")))


def test_served_over_tf_serving_rest_and_kserve_v2_like_in_process(trained, tmp_path):
    reviews = ["A wonderful, moving film. I loved it!", "Dull and far too long.", "", "ça a été génial 🎬"]
    check_served_like_in_process(trained, "imdb_gru", {"text": np.array(reviews, dtype=object)}, cwd=tmp_path)


# the SLOW review's request is held back until another reply has come in: its reply then always arrives last,
# after the answer to newer text, the order a slow server makes by chance
HOLD_BACK_SLOW = """
const send = window.fetch;
window.fetch = async (path, options) => {
  if (options && String(options.body).includes("SLOW")) {
    const before = window.exchanges.length;
    while (window.exchanges.length === before) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return send(path, options);
};
"""


def retype(box, text: str) -> None:
    """What a person does: select all, delete, type (each its own call: a held Ctrl would spoil the text)."""
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACK_SPACE)
    if text:
        box.send_keys(text)


def shown_answer(driver, url: str, review: str) -> float:
    """Waits for the page's answer to `review`; checks it is the REST API's for the same request."""
    from tests.browser import exchanges, same_reply_from_the_api, text_of, wait_for

    def exchange():
        found = [e for e in exchanges(driver) if e["request"] == {"instances": [review]}]
        return found[-1] if found and text_of(driver, "#probability") != "-" else None

    reply = same_reply_from_the_api(url, wait_for(exchange, "the answer to the review"))
    probability = reply["predictions"][0]
    assert text_of(driver, "#probability") == f"{probability:.4f}"
    assert text_of(driver, "#verdict") == ("positive" if probability >= 0.5 else "negative")
    return probability


def test_page_scores_the_review_as_it_is_typed_and_only_the_latest(trained, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.browser import exchanges, labelled, on_a_phone, screenshot, served_page, text_of, wait_for

    with served_page("imdb_gru", trained, tmp_path) as (driver, url):
        box = driver.find_element(By.ID, "review")
        review = "A wonderful, moving film. I loved it, the best of the year!"
        box.send_keys(review)
        assert shown_answer(driver, url, review) > 0.5
        # typed in one go: one request once typing paused, not one per key
        assert len(exchanges(driver)) <= 2, [e["request"] for e in exchanges(driver)]

        driver.execute_script(HOLD_BACK_SLOW)
        slow, newer = "SLOW, dull and boring: the worst film.", "Brilliant and superb, a joy to watch."
        retype(box, slow)
        sent = len(exchanges(driver))
        time.sleep(0.8)  # past the debounce: the slow review's request is out (held back)
        retype(box, newer)
        probability = shown_answer(driver, url, newer)
        wait_for(lambda: len(exchanges(driver)) == sent + 2, "the held-back reply")
        assert exchanges(driver)[-1]["request"] == {"instances": [slow]}  # it did come in last
        assert text_of(driver, "#probability") == f"{probability:.4f}"  # and is not shown
        labelled(driver)
        screenshot(driver, "imdb_gru")
        on_a_phone(driver, "imdb_gru")

        sent = len(exchanges(driver))
        retype(box, "")
        time.sleep(0.8)
        assert text_of(driver, "#probability") == "-" and text_of(driver, "#verdict") == "-"
        assert driver.find_element(By.ID, "hint").is_displayed()  # asks for a review
        assert not driver.find_element(By.ID, "error").is_displayed()
        assert len(exchanges(driver)) == sent  # nothing is sent for an empty box
