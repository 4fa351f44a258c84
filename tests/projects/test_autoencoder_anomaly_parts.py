"""autoencoder_anomaly without training: reading series (bad rows named by line), NAB's archive and
windows, scoring and detection metrics, and the settings and windows checked before anything is trained."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from projects.autoencoder_anomaly.data import Options, read_nab
from projects.autoencoder_anomaly.detect import overlap_average, threshold_from
from projects.autoencoder_anomaly.evaluate import detection_scores
from projects.autoencoder_anomaly.series import parse_series, synthetic_series, window_starts
from shared.config import UserError
from tests.conftest import run_cli


def series_csv(series, rows: slice = slice(None)) -> str:
    stamps = [str(t).replace("T", " ") for t in series.timestamps[rows]]
    values = [f"{v:.5f}" for v in series.values[rows]]
    return "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=True))


def test_bad_rows_are_named_by_line_and_never_become_numbers():
    text = (
        "timestamp,value\n"
        "2020-01-01 00:00:00,1.0\n"
        "2020-01-01 00:05:00,abc\n"  # line 3
        "yesterday,2.0\n"  # line 4
        "2020-01-01 00:15:00,\n"  # line 5
        "2020-01-01 00:20:00,inf\n"  # line 6
        "\n"
        "2020-01-01 01:20:00,3.0\n"  # line 8: a gap of an hour
        "2020-01-01 01:10:00,4.0\n"  # line 9: back in time
        "2020-01-01 01:15:00,5.0\n"
        ",\n"  # line 11: a row of empty cells is a row with a problem, not a blank line
        "2020,6.0\n"  # line 12: a year alone is not a timestamp
        "2020-01-01 01:25:00,1,234\n"  # line 13: a thousands separator, not a value of 1
    )
    series = parse_series(text, "s.csv")
    assert sorted(series.problems) == [3, 4, 5, 6, 11, 12, 13]
    assert series.problems[13] == "line 13: 3 fields, the header has 2"
    assert "line 3: value 'abc' is not a finite number" in series.problems[3]
    assert "line 4: timestamp 'yesterday' is not a date and time" in series.problems[4]
    assert np.isnan(series.values[1:5]).all() and list(series.values[[0, 5, 6, 7]]) == [1, 3, 4, 5]
    assert series.step_seconds == 300
    assert any(note.startswith("line 8: gap of 1 h") for note in series.notes), series.notes
    assert any(note.startswith("line 9: timestamp is not after") for note in series.notes)
    assert len(parse_series("\ufefftimestamp,value\n2020-01-01,1\n", "bom.csv").values) == 1  # a BOM
    assert len(parse_series("Timestamp,VALUE\n2020-01-01,1\n", "case.csv").values) == 1  # any case
    with pytest.raises(UserError, match=r"s\.csv has no column timestamp, value; its header has: time, val"):
        parse_series("time,val\n1,2\n", "s.csv")


def test_no_window_crosses_an_unusable_row():
    usable = np.ones(20, dtype=bool)
    usable[7] = False
    starts = window_starts(usable, 4)
    assert list(starts) == [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    assert list(window_starts(usable, 4, stop=12)) == [0, 1, 2, 3, 8]


def test_labels_follow_nab_windows_both_ends_included():
    series = synthetic_series(seed=1)
    assert len(series.windows) == 6 and series.labels.sum() > 0
    inside = series.timestamps[series.labels == 1]
    for start, end in series.windows:  # each window's first and last timestamps are labelled
        assert np.datetime64(start.replace(" ", "T")) in inside
        assert np.datetime64(end.replace(" ", "T")) in inside
    assert series.labels.sum() == 6 * 81  # 81 rows of 5 minutes from start to end, both included


def test_overlap_average_and_threshold_rules():
    per_window = np.array([[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])  # two windows of 3 over 4 rows
    np.testing.assert_allclose(overlap_average(per_window).numpy(), [1.0, 2.5, 2.5, 4.0])
    scores = np.array([np.nan, 1.0, 2.0, 3.0, 4.0])
    assert threshold_from(scores, "max") == 4.0
    assert threshold_from(scores, "50") == 2.5
    assert threshold_from(scores, "2sigma") == pytest.approx(2.5 + 2 * np.std([1.0, 2, 3, 4]))


def test_window_level_detection_counts_events_not_rows():
    labels = np.zeros(100, dtype=int)
    labels[20:30] = 1  # window A: found
    labels[60:70] = 1  # window B: missed
    scores = np.zeros(100)
    scores[25:28] = 5  # one detection in A
    scores[80:90] = 5  # one false alarm of ten rows
    scores[95] = np.nan  # unscored: neither flagged nor counted in the AUCs
    result = detection_scores(scores, labels, threshold=1.0)
    assert (result["detections"], result["false_alarms"], result["windows_found"]) == (2, 1, 1)
    assert result["precision"] == 0.5 and result["recall"] == 0.5 and result["f1"] == 0.5
    assert 0 < result["pr_auc"] < 1 and result["flagged_rows"] == 13
    nothing = detection_scores(np.zeros(100), labels, threshold=1.0)
    assert (nothing["detections"], nothing["precision"], nothing["recall"], nothing["f1"]) == (0, None, 0, 0)
    clean = detection_scores(scores, np.zeros(100, dtype=int), threshold=1.0)
    assert clean["recall"] is None and clean["f1"] is None and clean["false_alarms"] == 2


def write_nab(tmp_path: Path, series: dict[str, object]) -> Path:
    """A NAB archive in the mirror's layout holding the given generated series."""
    path = tmp_path / "data" / "nab" / "NAB_data_labels.tar.gz"
    path.parent.mkdir(parents=True)
    windows = {name: s.windows for name, s in series.items()}
    files = {f"NAB/data/{name}": series_csv(s) for name, s in series.items()}
    files["NAB/labels/combined_windows.json"] = json.dumps(windows)
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tmp_path / "data"


def test_nab_archive_is_read_and_a_missing_one_names_where_it_looked(tmp_path, monkeypatch):
    data_dir = write_nab(tmp_path, {"cat/a.csv": synthetic_series(n=500, seed=2)})
    series = read_nab(data_dir, "cat/a.csv")
    assert len(series.values) == 500 and series.labels.sum() > 0
    with pytest.raises(UserError, match=r"holds no NAB/data/cat/b\.csv"):
        read_nab(data_dir, "cat/b.csv")
    with pytest.raises(UserError, match=r"--series must look like <category>/<name>\.csv"):
        Options(series="a.csv")  # checked with the flags, before any file is read
    monkeypatch.setenv("DATA_OFFLINE", "1")
    with pytest.raises(UserError, match=r"looked for .*NAB_data_labels\.tar\.gz.*combined_windows\.json"):
        read_nab(tmp_path / "empty", "cat/a.csv")


def test_a_probationary_part_too_short_for_the_window_is_a_clear_error(tmp_path, session_dir):
    args = ("--smoke", "--epochs", "1", "--train-fraction", "0.1", "--hp", "window=256")
    result = run_cli("autoencoder_anomaly", "train", *args, "--run-dir", str(tmp_path / "r"), cwd=session_dir)
    assert result.returncode == 2
    assert "Use a shorter window (--hp window=..., at most 96 here)" in result.stderr, result.stderr[-2000:]
    result = run_cli("autoencoder_anomaly", "train", "--smoke", "--threshold", "101", cwd=session_dir)
    assert result.returncode == 2 and "must be max, a percentile in (0, 100] or <k>sigma" in result.stderr


def test_a_train_fraction_outside_zero_and_one_is_a_clear_error(tmp_path, session_dir):
    args = ("--smoke", "--train-fraction", "1.5", "--run-dir", str(tmp_path / "r"))
    result = run_cli("autoencoder_anomaly", "train", *args, cwd=session_dir)
    assert result.returncode == 2 and "--train-fraction must be between 0 and 1; got 1.5" in result.stderr
    assert not (tmp_path / "r").exists()  # checked before a run folder is made
