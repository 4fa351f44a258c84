"""imdb_gru: the review archive and its settings, and training, serving, predicting and comparing on generated
reviews (the model's own parts: test_imdb_gru_model.py)."""

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
from tests.conftest import last_line, run_cli
from tests.project_checks import check_run_folder_is_all_it_needs
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
    from shared.cli import build_parser, config_from_args
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
    args = build_parser(PROJECT).parse_args(["train", "--validation-reviews", "100"])
    with pytest.raises(UserError, match="--validation-reviews 100: give 500-12,500 reviews"):
        config_from_args(PROJECT, args)
    with pytest.raises(UserError, match="--validation-reviews 20000: give 500-12,500 reviews"):
        load(RunConfig(project="imdb_gru", smoke=True, options={"validation_reviews": 20_000}))


def test_bad_validation_reviews_are_refused_with_the_reason(tmp_path):
    for value, message in (("100", "100: give 500-12,500 reviews"), ("many", "invalid int value: 'many'")):
        result = run_cli("imdb_gru", "train", "--smoke", "--validation-reviews", value, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_an_archive_without_reviews_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="holds no aclImdb/train"):
        read_reviews(write_archive(tmp_path / "a.tar.gz", {"other/file.txt": b"x"}))
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(UserError, match=r"is not a readable tar\.gz"):
        read_reviews(tmp_path / "broken.tar.gz")


def test_standardization_removes_html_breaks_and_punctuation():
    text = standardize(tf.constant(["Great!<br /><br />A MUST-see, really."])).numpy()[0].decode()
    assert text.split() == ["great", "a", "must", "see", "really"]


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
    with np.load(trained / "examples.npz") as kept:  # test reviews as text, to check every export with
        assert kept["text"].dtype.kind == "U" and len(kept["text"]) == 32
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


def test_compare_trains_every_cell_on_one_budget_with_the_projects_own_flags(session_dir):
    folder = session_dir / "imdb_compare"
    args = ("--smoke", "--epochs", "1", *FAST[3:], "--validation-reviews", "600", "--run-dir", str(folder))
    result = run_cli("imdb_gru", "compare", *args, cwd=session_dir, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(folder / "compare.csv", index_col=0)
    variants = ["simple_rnn", "lstm", "gru", "bidirectional_gru"]
    assert list(table.index) == variants
    assert {"test_accuracy", "parameters", "seconds_per_epoch"} <= set(table.columns)
    assert (folder / "validation_curves.png").is_file() and "| bidirectional_gru |" in (
        folder / "compare.md"
    ).read_text()
    for name in variants:  # every variant ran with the project's flag and its own cell
        run = json.loads((folder / name / "config.json").read_text())["run"]
        assert run["options"] == {"validation_reviews": 600}, name
        assert run["hparams"]["units"] == 16 and run["hparams"]["cell"] in name, name


def test_compare_refuses_a_bad_project_flag_before_training(tmp_path):
    from projects.imdb_gru import PROJECT
    from shared.cli import build_parser, run

    folder = tmp_path / "compare"
    args = build_parser(PROJECT).parse_args(
        ["compare", "--smoke", "--validation-reviews", "100", "--run-dir", str(folder)]
    )
    with pytest.raises(UserError, match="--validation-reviews 100: give 500-12,500 reviews"):
        run(PROJECT, args)
    assert not folder.exists()


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


def test_the_run_folder_is_all_the_model_needs(trained, tmp_path):
    check_run_folder_is_all_it_needs("imdb_gru", trained, tmp_path)
