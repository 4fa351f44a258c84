"""Reading a CSV a person made: every row kept as text with its line number, so a project can type the cells
and report each bad row by its line instead of coercing it or stopping at the first.

Problems with the whole file (not UTF-8, not CSV, empty, a needed column missing) are a UserError that
names the file and the fix; a row with the wrong number of fields is recorded in `ragged` by its position,
padded or cut to the header's width so its other cells can still be read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shared.config import UserError


@dataclass(frozen=True)
class Rows:
    header: list[str]  # the column names as written (stripped, a byte-order mark removed)
    cells: pd.DataFrame  # one row per data row in file order: its text cells by column, and `line`
    ragged: dict[int, str]  # position in `cells` -> "line N: K fields, the header has M"


def read_rows(
    source: Path | str,
    required: Sequence[str],
    *,
    name: str | None = None,
    key: Callable[[str], str] = str,
    hint: str = "",
) -> Rows:
    """A CSV file (a Path) or CSV text (a str) -> Rows.

    `required`: the columns that must be there, compared after `key` on both sides (e.g. `str.lower` for
    a header in any case); `cells` names them as `required` does. `name` names the source in messages
    (default: the path); `hint` ends the missing-column message (what kind of file is expected).
    """
    name = name or str(source)
    try:
        text = source.read_text(encoding="utf-8-sig") if isinstance(source, Path) else source
        reader = csv.reader(io.StringIO(text), strict=True)  # an unclosed quote is an error, not a row
        header = [cell.strip().lstrip("\ufeff") for cell in next(reader, [])]
        if not header:
            raise UserError(f"{name} is empty; expected a header row with {', '.join(required)}")
        where = {key(cell): i for i, cell in enumerate(header)}
        missing = [column for column in required if key(column) not in where]
        if missing:
            raise UserError(
                f"{name} has no column {', '.join(missing)}; its header has: {', '.join(header)}"
                + (f". {hint}" if hint else "")
            )
        width, rows, lines, ragged = len(header), [], [], {}
        for record in reader:
            if not record:
                continue  # a blank line holds no row (a line of empty cells is a row, with problems)
            if len(record) != width:
                ragged[len(rows)] = f"line {reader.line_num}: {len(record)} fields, the header has {width}"
            rows.append([cell.strip() for cell in (record + [""] * width)[:width]])
            lines.append(reader.line_num)  # the line the row ends on, as a text editor numbers it
    except UnicodeDecodeError as e:
        raise UserError(
            f"{name} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV"
        ) from e
    except csv.Error as e:
        raise UserError(f"{name} is not a readable CSV: {e}") from e
    cells = pd.DataFrame(rows, columns=header, dtype=object).rename(
        columns={header[where[key(column)]]: column for column in required}
    )
    cells.insert(0, "line", lines)
    return Rows(header, cells, ragged)
