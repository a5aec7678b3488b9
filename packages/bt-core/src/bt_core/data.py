"""Turn user data into the engine's columnar layout, validating it on the way.

Accepted inputs (see :func:`load_data`): a wide DataFrame (DatetimeIndex + OHLCV columns, any
case), a long DataFrame (``symbol, datetime, open, high, low, close, volume``), a dict of
symbol -> DataFrame, or a CSV/Parquet path holding either layout. Naive timestamps are taken
as UTC. Symbols are aligned on the union of their timestamps; a symbol without a bar at a
time gets NaN there (the engine treats it as "no bar", never as a price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core.errors import DataError

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = (*PRICE_FIELDS, "volume")
_DATETIME_NAMES = ("datetime", "date", "time", "timestamp", "ts")


@dataclass(frozen=True)
class MarketData:
    """Aligned bars: ``fields[name]`` is a C-contiguous float64 array of shape (bars, symbols)."""

    index: pd.DatetimeIndex  # UTC
    symbols: tuple[str, ...]
    fields: dict[str, np.ndarray] = field(repr=False)

    @property
    def ts(self) -> np.ndarray:
        """Timestamps as int64 nanoseconds since the epoch (UTC)."""
        return np.ascontiguousarray(self.index.asi8, dtype=np.int64)

    @property
    def n_bars(self) -> int:
        return len(self.index)

    def symbol_index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            known = ", ".join(self.symbols)
            raise DataError(f"unknown symbol {symbol!r}; the data has: {known}") from None

    def frame(self, symbol: str) -> pd.DataFrame:
        """One symbol's bars (rows where it has a bar) as a DataFrame."""
        s = self.symbol_index(symbol)
        df = pd.DataFrame({f: self.fields[f][:, s] for f in FIELDS}, index=self.index)
        return df[~np.isnan(df["close"].to_numpy())]


def _read_path(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:  # parser errors are ValueError subclasses
        raise DataError(f"cannot read {path}: {e}") from e
    raise DataError(f"unsupported data file type {suffix!r} ({path}); use .csv or .parquet")


def _lower_columns(df: pd.DataFrame, where: str) -> dict[str, Any]:
    """Lower-cased column name -> the user's column label (no data is copied)."""
    names = {str(c).strip().lower(): c for c in df.columns}
    if len(names) != len(df.columns):
        lowered = [str(c).strip().lower() for c in df.columns]
        dup = sorted({c for c in lowered if lowered.count(c) > 1})
        raise DataError(f"{where}: duplicate columns after lower-casing: {dup}")
    return names


def _to_utc(values: Any, where: str, column: str) -> pd.DatetimeIndex:
    try:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(values))
        except ValueError:
            # pandas guesses one format from the first value; ISO text of mixed precision
            # ("2020-01-01 09:30", then "2020-01-02") is still unambiguous.
            idx = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
    except (ValueError, TypeError) as e:
        # Locate the first offender so the message can name its row.
        coerced = pd.to_datetime(pd.Series(values), errors="coerce")
        bad = np.flatnonzero(coerced.isna().to_numpy() & pd.notna(pd.Series(values)).to_numpy())
        at = f" at row {int(bad[0])} ({pd.Series(values).iloc[int(bad[0])]!r})" if bad.size else ""
        raise DataError(
            f"{where}: column {column!r} has a value that is not a date{at}: {e}"
        ) from e
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise DataError(f"{where}: column {column!r} is empty or not a date at row {row}")
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns")


def _frame_to_bars(
    df: pd.DataFrame, where: str, rows: np.ndarray | None = None
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Validate one symbol's bars; return its UTC index and float64 columns.

    ``rows`` maps each row of ``df`` to its 0-based row number in the user's input, so that
    messages about one symbol of a long table point at the right row.
    """
    names = _lower_columns(df, where)

    def row(r: int) -> int:
        return int(rows[r]) if rows is not None else r

    if isinstance(df.index, pd.DatetimeIndex):
        idx = _to_utc(df.index, where, "index")
    else:
        name = next((c for c in _DATETIME_NAMES if c in names), None)
        if name is None:
            raise DataError(
                f"{where}: no datetime: expected a DatetimeIndex or one of the columns "
                f"{list(_DATETIME_NAMES)}; columns are {list(names)}"
            )
        idx = _to_utc(df[names[name]].to_numpy(), where, name)
    missing = [c for c in PRICE_FIELDS if c not in names]
    if missing:
        raise DataError(f"{where}: missing columns {missing}; columns are {list(names)}")
    if len(df) == 0:
        raise DataError(f"{where}: no rows")
    cols: dict[str, np.ndarray] = {}
    for c in FIELDS:
        if c == "volume" and c not in names:
            cols[c] = np.zeros(len(df))
            continue
        try:
            column = pd.to_numeric(df[names[c]], errors="raise")
            cols[c] = column.to_numpy(dtype=np.float64, copy=True)
        except (ValueError, TypeError) as e:
            raise DataError(f"{where}: column {c!r} is not numeric: {e}") from e
    diffs = np.diff(idx.asi8)
    bad = np.flatnonzero(diffs <= 0)
    if bad.size:
        r = int(bad[0]) + 1
        kind = "duplicate" if diffs[bad[0]] == 0 else "unsorted"
        raise DataError(
            f"{where}: {kind} timestamps at row {row(r)}: {idx[r]} is not after {idx[r - 1]}"
            " (sort the data and drop duplicates first)"
        )
    for c in PRICE_FIELDS:
        v = cols[c]
        bad_rows = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad_rows.size:
            r = int(bad_rows[0])
            raise DataError(
                f"{where}: column {c!r} must hold finite prices > 0; "
                f"row {row(r)} ({idx[r]}) is {v[r]}"
                f" ({bad_rows.size} bad rows in all)"
            )
    vol = cols["volume"]
    bad_rows = np.flatnonzero(~np.isfinite(vol) | (vol < 0))
    if bad_rows.size:
        r = int(bad_rows[0])
        raise DataError(
            f"{where}: column 'volume' must be finite and >= 0; row {row(r)} is {vol[r]}"
        )
    o, h, lo, cl = cols["open"], cols["high"], cols["low"], cols["close"]
    bad_rows = np.flatnonzero(h < lo)
    if bad_rows.size:
        r = int(bad_rows[0])
        raise DataError(f"{where}: high < low at row {row(r)} ({idx[r]}): high={h[r]}, low={lo[r]}")
    bad_rows = np.flatnonzero((o > h) | (o < lo) | (cl > h) | (cl < lo))
    if bad_rows.size:
        r = int(bad_rows[0])
        raise DataError(
            f"{where}: open/close outside [low, high] at row {row(r)} ({idx[r]}): "
            f"open={o[r]}, high={h[r]}, low={lo[r]}, close={cl[r]}"
        )
    return idx, cols


def _align(per_symbol: dict[str, tuple[pd.DatetimeIndex, dict[str, np.ndarray]]]) -> MarketData:
    symbols = tuple(per_symbol)
    if len(symbols) == 1:
        idx, cols = per_symbol[symbols[0]]
        fields = {f: np.ascontiguousarray(cols[f].reshape(-1, 1)) for f in FIELDS}
        return MarketData(index=idx, symbols=symbols, fields=fields)
    union = per_symbol[symbols[0]][0]
    for s in symbols[1:]:
        union = union.union(per_symbol[s][0])
    fields = {f: np.full((len(union), len(symbols)), np.nan) for f in FIELDS}
    for j, s in enumerate(symbols):
        idx, cols = per_symbol[s]
        pos = union.get_indexer(idx)
        for f in FIELDS:
            fields[f][pos, j] = cols[f]
    return MarketData(index=union, symbols=symbols, fields=fields)


def load_data(data: Any, *, symbol: str | None = None) -> MarketData:
    """Validate and align ``data`` (see the module docstring) into :class:`MarketData`.

    ``symbol`` names the series of single-symbol data that has no ``symbol`` column, and
    selects one symbol from long data.
    """
    if isinstance(data, MarketData):
        return data
    where = "data"
    if isinstance(data, (str, Path)):
        where = str(data)
        data = _read_path(Path(data))
    if isinstance(data, Mapping):
        if not data:
            raise DataError("data: the dict of DataFrames is empty")
        per = {}
        for name, df in data.items():
            if not isinstance(df, pd.DataFrame):
                raise DataError(f"data[{name!r}] must be a DataFrame, got {type(df).__name__}")
            per[str(name)] = _frame_to_bars(df, f"{where}[{name!r}]")
        return _align(per)
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            "data must be a DataFrame, a dict of DataFrames, a MarketData or a CSV/Parquet path;"
            f" got {type(data).__name__}"
        )
    if len(data) == 0:
        raise DataError(f"{where}: no rows")
    columns = _lower_columns(data, where)
    if "symbol" in columns:
        sym_col = data[columns["symbol"]]
        if sym_col.isna().any():
            r = int(np.flatnonzero(sym_col.isna().to_numpy())[0])
            raise DataError(f"{where}: column 'symbol' is empty at row {r}")
        sym_text = sym_col.astype(str).to_numpy()
        names: list[str] = [str(n) for n in pd.unique(sym_text)]
        if symbol is not None:
            if symbol not in names:
                raise DataError(f"{where}: symbol {symbol!r} not found; symbols are {names}")
            names = [symbol]
        per = {}
        for name in names:
            mask = sym_text == name
            per[name] = _frame_to_bars(
                data[mask], f"{where} (symbol {name!r})", rows=np.flatnonzero(mask)
            )
        return _align(per)
    name = symbol or "asset"
    return _align({name: _frame_to_bars(data, where)})
