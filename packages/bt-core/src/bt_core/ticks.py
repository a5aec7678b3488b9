"""Trade ticks as data: each tick is a one-price bar (open = high = low = close = price,
volume = size) that runs through the same engine as any bar.

Input: a DataFrame, or a CSV/Parquet path, with a time (a DatetimeIndex or a column named
``datetime``, ``time``, ``timestamp``, ``ts`` or ``date``), ``price``, ``size`` (or
``volume``) and optionally ``symbol``. Naive times are UTC.

The engine needs strictly increasing times per symbol, so several ticks of one symbol at the
same time are never passed through silently: by default (``same_time="error"``) they are a
:class:`~bt_core.DataError` naming both rows; ``same_time="merge"`` makes one bar of them
(open = first price, high = max, low = min, close = last price, volume = sum of sizes, in
the input's order). Ticks out of time order are an error naming the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bt_core.data import (
    _DATETIME_NAMES,
    MarketData,
    _lower_columns,
    _read_path,
    _to_utc,
    load_data,
)
from bt_core.errors import DataError, ParameterError

SameTime = Literal["error", "merge"]
_SIZE_NAMES = ("size", "volume")


def ticks_to_bars(
    data: Any, *, symbol: str | None = None, same_time: SameTime = "error"
) -> pd.DataFrame:
    """Ticks (see the module docstring) as a long bar table ``symbol, datetime, open, high,
    low, close, volume``, one row per tick (or per group of same-time ticks when merging).
    ``symbol`` names the series of ticks without a ``symbol`` column (default ``"asset"``)."""
    if same_time not in ("error", "merge"):
        raise ParameterError(
            f"same_time must be 'error' or 'merge', got {same_time!r}", parameter="same_time"
        )
    where = "ticks"
    if isinstance(data, (str, Path)):
        where = str(data)
        data = _read_path(Path(data))
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"ticks must be a DataFrame or a CSV/Parquet path, got {type(data).__name__}"
        )
    if len(data) == 0:
        raise DataError(f"{where}: no ticks")
    names = _lower_columns(data, where)
    if isinstance(data.index, pd.DatetimeIndex):
        times = _to_utc(data.index, where, "index")
    else:
        col = next((c for c in _DATETIME_NAMES if c in names), None)
        if col is None:
            raise DataError(
                f"{where}: no time: expected a DatetimeIndex or one of the columns "
                f"{list(_DATETIME_NAMES)}; columns are {list(names)}"
            )
        times = _to_utc(data[names[col]].to_numpy(), where, col)
    if "price" not in names:
        raise DataError(f"{where}: missing column 'price'; columns are {list(names)}")
    size_col = next((c for c in _SIZE_NAMES if c in names), None)
    if size_col is None:
        raise DataError(f"{where}: missing column 'size' (or 'volume'); columns are {list(names)}")
    price = _numbers(data[names["price"]], where, "price")
    size = _numbers(data[names[size_col]], where, size_col)
    bad = np.flatnonzero(~(price > 0) | ~np.isfinite(price))
    if bad.size:
        r = int(bad[0])
        raise DataError(
            f"{where}: price must be a finite number > 0 at row {r}, got {price[r]}",
            column="price",
            row=r,
        )
    bad = np.flatnonzero(~(size >= 0) | ~np.isfinite(size))
    if bad.size:
        r = int(bad[0])
        raise DataError(
            f"{where}: {size_col} must be a finite number >= 0 at row {r}, got {size[r]}",
            column=size_col,
            row=r,
        )
    if "symbol" in names:
        sym_col = data[names["symbol"]]
        if sym_col.isna().any():
            r = int(np.flatnonzero(sym_col.isna().to_numpy())[0])
            raise DataError(f"{where}: column 'symbol' is empty at row {r}", column="symbol", row=r)
        symbols = sym_col.astype(str).to_numpy()
    else:
        symbols = np.full(len(data), symbol or "asset", dtype=object)
    ts = times.asi8
    frames = []
    for name in pd.unique(symbols):
        rows = np.flatnonzero(symbols == name)
        frames.append(
            _one_symbol(str(name), rows, ts[rows], price[rows], size[rows], where, same_time)
        )
    return pd.concat(frames, ignore_index=True)


def _one_symbol(
    name: str,
    rows: np.ndarray,
    ts: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    where: str,
    same_time: SameTime,
) -> pd.DataFrame:
    step = np.diff(ts)
    back = np.flatnonzero(step < 0)
    if back.size:
        k = int(back[0]) + 1
        raise DataError(
            f"{where}: ticks out of time order at row {int(rows[k])} (symbol {name!r}): "
            f"{pd.Timestamp(int(ts[k]), tz='UTC')} comes after "
            f"{pd.Timestamp(int(ts[k - 1]), tz='UTC')} (row {int(rows[k - 1])}); sort them by time",
            row=int(rows[k]),
            symbol=name,
        )
    same = np.flatnonzero(step == 0)
    if same.size and same_time == "error":
        k = int(same[0]) + 1
        raise DataError(
            f"{where}: ticks at rows {int(rows[k - 1])} and {int(rows[k])} (symbol {name!r}) "
            f"share the time {pd.Timestamp(int(ts[k]), tz='UTC')}; the engine needs one bar "
            "per time: pass same_time='merge' to make one bar of them, or give them distinct "
            "times",
            row=int(rows[k]),
            symbol=name,
        )
    # Start of each group of equal times (every tick when none repeats).
    starts = np.concatenate([[0], np.flatnonzero(step != 0) + 1])
    ends = np.concatenate([starts[1:], [len(ts)]]) - 1
    return pd.DataFrame(
        {
            "symbol": name,
            "datetime": pd.to_datetime(ts[starts], utc=True),
            "open": price[starts],
            "high": np.maximum.reduceat(price, starts),
            "low": np.minimum.reduceat(price, starts),
            "close": price[ends],
            "volume": np.add.reduceat(size, starts),
        }
    )


def _numbers(column: pd.Series, where: str, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        raise DataError(f"{where}: column {name!r} holds booleans, not numbers", column=name)
    try:
        return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: column {name!r} is not numeric: {e}", column=name) from e


def load_ticks(
    data: Any, *, symbol: str | None = None, same_time: SameTime = "error"
) -> MarketData:
    """Ticks as :class:`~bt_core.MarketData` for ``Backtest`` (one one-price bar per tick;
    see :func:`ticks_to_bars`). ``Strategy.timeframe("1min")`` then gives minute bars."""
    return load_data(ticks_to_bars(data, symbol=symbol, same_time=same_time))


__all__ = ["load_ticks", "ticks_to_bars"]
