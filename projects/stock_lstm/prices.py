"""Daily prices: the cached CSV or a yfinance download, checked row by row, or generated ones.

Prices come from `<data-dir>/stocks/<TICKER>.csv` (the Yahoo layout: Date, Open, High, Low, Close,
[Adj Close,] Volume), downloaded once with yfinance when missing, or from `--csv PATH`. With an Adj Close
column, Open/High/Low/Close are scaled by Adj Close / Close and Volume by its inverse, so a split is not a
price or volume jump (files whose Close is unadjusted, like Quandl's, have splits in that ratio; yfinance
downloads come adjusted already). A row that cannot be used (a bad date, a missing or non-numeric value,
a price <= 0, the wrong number of fields) is dropped and reported by its line; repeated dates, rows out
of order and gaps of more than a week are reported too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from projects.stock_lstm.features import COLUMNS
from shared.config import UserError
from shared.csv_rows import read_rows
from shared.data import DatasetMissingError

DATASET = "stocks"
DOWNLOAD_START = "2000-01-01"  # when downloading without --start
GAP_DAYS = 6  # calendar days between rows beyond which a gap is reported (a long weekend is 4)
NETWORK_HINTS = ("resolve", "connect", "timed out", "timeout", "network", "curl", "ssl", "proxy")
REFUSAL_HINTS = ("rate limit", "too many requests", "unauthorized", "forbidden")


@dataclass
class Prices:
    """Adjusted daily rows in date order: `ohlcv` [T, 5] (Open, High, Low, Close, Volume)."""

    name: str
    dates: np.ndarray  # datetime64[D]
    ohlcv: np.ndarray
    problems: list[str] = field(default_factory=list)  # rows dropped, by line
    notes: list[str] = field(default_factory=list)  # repeats, order, gaps: reported, rows kept

    def summary(self) -> str:
        text = f"{self.name}: {len(self.dates)} days, {self.dates[0]} to {self.dates[-1]}"
        for kind, items in (("row(s) dropped", self.problems), ("note(s)", self.notes)):
            if items:
                listed = "; ".join(items[:3]) + ("; ..." if len(items) > 3 else "")
                text += f"; {len(items)} {kind}: {listed}"
        return text


def read_prices(path: Path) -> Prices:
    """A Date/Open/High/Low/Close/Volume CSV -> Prices; unusable rows dropped and named by line."""
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    rows = read_rows(
        path,
        ("Date", *COLUMNS),
        key=_column_key,
        hint="The header must name Date, Open, High, Low, Close, Volume (Adj Close optional).",
    )
    adjusted = [cell for cell in rows.header if _column_key(cell) == "adj close"][:1]
    whole = rows.cells.drop(index=list(rows.ragged))  # a row of the wrong width: its cells cannot be trusted
    raw = whole[["line", "Date", *COLUMNS, *adjusted]].rename(columns=dict.fromkeys(adjusted, "Adj Close"))
    return _checked(raw, path.name, list(rows.ragged.values()))


def _column_key(name: str) -> str:
    """Column names match in any case, with _ for a space: adj_close is Adj Close."""
    return name.lower().replace("_", " ")


def _checked(raw: pd.DataFrame, name: str, problems: list[str]) -> Prices:
    numeric = [c for c in (*COLUMNS, "Adj Close") if c in raw]
    frame = pd.DataFrame({"line": raw["line"].to_numpy(dtype=int)})
    # the calendar day as written: a time or a UTC offset after it (yfinance's history()) must not move it
    day = pd.to_datetime(raw["Date"].str[:10], format="%Y-%m-%d", errors="coerce")
    frame["Date"] = day.where(raw["Date"].str[10:].str.fullmatch(r"([ T].*)?")).to_numpy()
    for column in numeric:
        frame[column] = pd.to_numeric(raw[column], errors="coerce").to_numpy()
    texts = {c: raw[c].to_numpy() for c in ("Date", *numeric)}
    usable = np.ones(len(frame), bool)
    for i, line in enumerate(frame["line"].to_numpy()):
        reason = _row_problem(pd.isna(frame["Date"].iat[i]), {c: frame[c].iat[i] for c in numeric}, texts, i)
        if reason:
            problems.append(f"line {line}: {reason}")
            usable[i] = False
    problems.sort(key=lambda text: int(text.split(":")[0].removeprefix("line ")))
    frame = frame[usable]
    if len(frame) < 2:
        raise UserError(f"{name}: {len(frame)} usable row(s)" + (f"; {problems[0]}" if problems else ""))
    notes = []
    if not frame["Date"].is_monotonic_increasing:
        first = frame["line"].to_numpy()[
            np.flatnonzero(np.diff(frame["Date"].to_numpy()) < np.timedelta64(0))[0] + 1
        ]
        notes.append(f"dates out of order from line {first}; sorted by date")
        frame = frame.sort_values("Date", kind="stable")
    repeated = frame["Date"].duplicated(keep="first")
    for line, date in frame.loc[repeated, ["line", "Date"]].itertuples(index=False):
        notes.append(f"line {line} repeats {date.date()}; the first row of that date is kept")
    frame = frame[~repeated]
    dates = frame["Date"].to_numpy().astype("datetime64[D]")
    steps = np.diff(dates).astype(int)
    for i in np.flatnonzero(steps > GAP_DAYS):
        notes.append(f"no rows from {dates[i]} to {dates[i + 1]} ({steps[i]} days)")
    prices = frame[list(COLUMNS)].to_numpy(np.float64)
    if "Adj Close" in frame:  # split- and dividend-adjusted: scale O/H/L/C by the same factor
        factor = frame["Adj Close"].to_numpy() / frame["Close"].to_numpy()
        prices[:, :4] *= factor[:, None]
        prices[:, 4] /= factor  # volume in today's shares, as Yahoo reports it: a split is no volume jump
    return Prices(name, dates, prices, problems, notes)


def _row_problem(
    bad_date: bool, values: dict[str, float], texts: dict[str, np.ndarray], i: int
) -> str | None:
    if bad_date:
        return f"Date {texts['Date'][i]!r} is not a date (YYYY-MM-DD)"
    for column, value in values.items():
        if not np.isfinite(value):
            return f"{column} {texts[column][i]!r} is not a number"
        if column != "Volume" and value <= 0:
            return f"{column} is {texts[column][i]}: prices must be positive"
        if value < 0:
            return f"Volume is {texts[column][i]}: it cannot be negative"
    return None


def cache_path(data_dir: Path, ticker: str) -> Path:
    return Path(data_dir) / DATASET / f"{ticker.upper()}.csv"


def in_range(prices: Prices, start: str | None, end: str | None) -> Prices:
    """The rows from `start` to `end` (both included); a range the data does not reach is an error."""
    keep = np.ones(len(prices.dates), bool)
    for bound, compare in ((start, np.greater_equal), (end, np.less_equal)):
        if bound:  # a date: the options checked it
            keep &= compare(prices.dates, np.datetime64(bound, "D"))
    if keep.sum() < 2:
        raise UserError(
            f"{prices.name} holds {prices.dates[0]} to {prices.dates[-1]}: nothing from "
            f"{start or 'its start'} to {end or 'its end'}. "
            "A cached file is used as it is: delete it to download another range."
        )
    return Prices(prices.name, prices.dates[keep], prices.ohlcv[keep], prices.problems, prices.notes)


class _Collect(logging.Handler):
    """yfinance logs why a download failed instead of raising; this keeps those messages."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def download_prices(ticker: str, start: str | None, end: str | None, path: Path) -> Path:
    """Downloads adjusted daily OHLCV with yfinance into `path`. yfinance returns an empty frame, not an
    error, when offline or for an unknown ticker: that is an error here saying which it looks like."""
    hint = (
        f"To fix: put a Date,Open,High,Low,Close,Volume CSV for {ticker} at {path}, point --data-dir "
        "(or DATA_DIR) at a folder holding stocks/<TICKER>.csv, or pass --csv PATH."
    )
    if os.environ.get("DATA_OFFLINE"):
        raise DatasetMissingError(
            f"{path} is not there and DATA_OFFLINE is set, so no download was tried. {hint}"
        )
    import yfinance as yf

    # yfinance's end is exclusive; without one, up to yesterday (UTC), so a session still trading today
    # is never cached as a finished day
    stop = pd.Timestamp(end) + pd.Timedelta(days=1) if end else pd.Timestamp.now(tz="UTC").normalize()
    last = stop.strftime("%Y-%m-%d")
    collect, logger = _Collect(), logging.getLogger("yfinance")
    logger.addHandler(collect)
    try:
        frame = yf.download(
            ticker,
            start=start or DOWNLOAD_START,
            end=last,
            auto_adjust=True,
            progress=False,
            threads=False,
            multi_level_index=False,
        )
    finally:
        logger.removeHandler(collect)
    if frame is None or frame.dropna(how="all").empty:
        said = " ".join(collect.messages)[-300:]
        if any(word in said.lower() for word in NETWORK_HINTS):
            cause = "yfinance could not reach Yahoo Finance (no network?)"
        elif any(word in said.lower() for word in REFUSAL_HINTS):
            cause = "Yahoo Finance refused the request (rate limited?); try again later"
        elif said:
            cause = f"yfinance found no prices for {ticker!r}: an unknown ticker, or none in that range"
        else:
            cause = f"yfinance returned no rows for {ticker!r}: offline, or an unknown ticker"
        raise DatasetMissingError(
            f"{path} is not there and {cause}" + (f" (it said: {said})" if said else "") + f". {hint}"
        )
    frame = frame[list(COLUMNS)].dropna()
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")
    frame.index.name = "Date"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    frame.to_csv(partial)
    os.replace(partial, path)  # never a half-written file where a cache is trusted
    print(f"downloaded {len(frame)} days of {ticker} into {path}", flush=True)
    return path


def synthetic_prices(
    n: int = 2_000, seed: int = 0, autocorrelation: float = 0.0, volatility: float = 0.01
) -> Prices:
    """Generated business days: log returns r_t = a * r_{t-1} + noise (a random walk for a = 0)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, volatility, n)
    returns = np.zeros(n)
    for t in range(n):
        returns[t] = autocorrelation * (returns[t - 1] if t else 0.0) + noise[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, volatility / 4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, n)))
    volume = np.round(rng.lognormal(13.0, 0.3, n))
    dates = pd.bdate_range("2000-01-03", periods=n).to_numpy().astype("datetime64[D]")
    name = "random walk" if autocorrelation == 0 else f"AR(1) returns, a={autocorrelation}"
    return Prices(name, dates, np.stack([open_, high, low, close, volume], axis=1))
