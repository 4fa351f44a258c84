"""The shared CSV reader keeps every row's text and line, and names what is wrong with the whole file."""

from __future__ import annotations

import pytest

from shared.config import UserError
from shared.csv_rows import read_rows


def test_rows_keep_their_text_and_line_and_ragged_rows_are_named(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(
        '\ufeffDate, Close ,Note\n2020-01-02,3.5,a\n\n2020-01-03,4\n2020-01-06,"5",x,y\n",",1,"two\nlines"\n'
    )
    rows = read_rows(path, ["date", "close"], key=str.lower)
    assert rows.header == ["Date", "Close", "Note"]
    assert list(rows.cells.columns) == ["line", "date", "close", "Note"]
    assert rows.cells["line"].tolist() == [2, 4, 5, 7]  # the blank line 3 holds no row
    assert rows.cells["close"].tolist() == ["3.5", "4", "5", "1"]
    assert rows.cells["Note"].tolist() == ["a", "", "x", "two\nlines"]
    assert rows.ragged == {1: "line 4: 2 fields, the header has 3", 2: "line 5: 4 fields, the header has 3"}


def test_file_problems_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"x\.csv has no column value; its header has: timestamp, v\. need"):
        read_rows("timestamp,v\n1,2\n", ["timestamp", "value"], name="x.csv", hint="need timestamp,value")
    with pytest.raises(UserError, match=r"y\.csv is empty; expected a header row with a, b"):
        read_rows("", ["a", "b"], name="y.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin\.csv is not UTF-8 text .* save it as UTF-8 CSV"):
        read_rows(latin, ["name"])
    with pytest.raises(UserError, match="is not a readable CSV"):
        read_rows('a\n"unclosed\n', ["a"], name="q.csv")
