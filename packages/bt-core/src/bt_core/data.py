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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import bt_analysis
import bt_engine
from bt_core.errors import DataError, engine_errors

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = (*PRICE_FIELDS, "volume")


class OHLCVLines:
    """``open``, ``high``, ``low``, ``close`` and ``volume`` as lines, for every view whose
    ``field(name)`` gives a line by name: one symbol's data, ``self.data`` of a
    single-symbol run, and their coarse-timeframe counterparts."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Each view defines it; declared here for the type checker only.
        def field(self, name: str) -> bt_engine.Line: ...

    @property
    def open(self) -> bt_engine.Line:
        return self.field("open")

    @property
    def high(self) -> bt_engine.Line:
        return self.field("high")

    @property
    def low(self) -> bt_engine.Line:
        return self.field("low")

    @property
    def close(self) -> bt_engine.Line:
        return self.field("close")

    @property
    def volume(self) -> bt_engine.Line:
        return self.field("volume")


def inferred_periods_per_year(index: pd.DatetimeIndex) -> float | None:
    """Bars per year inferred from the spacing of ``index``
    (:func:`bt_analysis.infer_periods_per_year`); None when the spacing does not tell (e.g.
    one day of minute bars)."""
    if len(index) < 2:
        return None
    try:
        return bt_analysis.infer_periods_per_year(index)
    except ValueError:
        return None


_DATETIME_NAMES = ("datetime", "date", "time", "timestamp", "ts")


@dataclass(frozen=True)
class MarketData:
    """Aligned, validated bars: a handle to data the engine owns (validated once, in one
    pass), reusable by any number of runs. ``fields[name]`` is a read-only float64 array of
    shape (bars, symbols); extra numeric columns of the input (e.g. ``amount``,
    ``pre_close``) are kept beside OHLCV and reach the engine."""

    handle: bt_engine.Data = field(repr=False)
    index: pd.DatetimeIndex  # UTC
    symbols: tuple[str, ...]

    @classmethod
    def from_handle(
        cls, handle: bt_engine.Data, index: pd.DatetimeIndex | None = None
    ) -> MarketData:
        """Wrap a handle; ``index`` may be given when it is known to equal the handle's times."""
        if index is None:
            index = pd.DatetimeIndex(handle.ts.view("datetime64[ns]")).tz_localize("UTC")
        return cls(handle=handle, index=index, symbols=tuple(handle.symbols))

    @cached_property
    def fields(self) -> dict[str, np.ndarray]:
        names = (*FIELDS, *self.handle.extra_names)
        return {f: self.handle.field(f) for f in names}

    #: What every run on the bars shares, computed once per handle (cached properties).
    FACTS = ("periods_per_year", "buy_hold_return")

    def facts(self) -> dict[str, Any]:
        """:data:`FACTS` and their values (computed now if not yet)."""
        return {k: getattr(self, k) for k in self.FACTS}

    def adopt(self, facts: Mapping[str, Any]) -> MarketData:
        """Take :meth:`facts` computed on the same bars elsewhere (a sweep's parent), so that
        a worker's handle does not compute them again; returns ``self``."""
        self.__dict__.update({k: facts[k] for k in self.FACTS if k in facts})
        return self

    @cached_property
    def periods_per_year(self) -> float | None:
        """:func:`inferred_periods_per_year` of the index, once per data handle: every run
        on it shares its index."""
        return inferred_periods_per_year(self.index)

    @cached_property
    def buy_hold_return(self) -> float | None:
        """Return of holding the data: the one symbol, or an equal-weight mix bought at each
        symbol's first close and held to its last. Once per data handle, as it is the same
        for every run on it."""
        close = self.fields["close"]
        rets = []
        for s in range(close.shape[1]):
            col = close[:, s]
            present = ~np.isnan(col)
            if present.any():
                first = int(np.argmax(present))
                last = col.size - 1 - int(np.argmax(present[::-1]))
                rets.append(col[last] / col[first] - 1.0)
        return float(np.mean(rets)) if rets else None

    @property
    def extra_fields(self) -> tuple[str, ...]:
        return tuple(self.handle.extra_names)

    @property
    def ts(self) -> np.ndarray:
        """Timestamps as int64 nanoseconds since the epoch (UTC), read-only."""
        return self.handle.ts

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
        df = pd.DataFrame({f: self.fields[f][:, s] for f in self.fields}, index=self.index)
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


_NS_RANGE = "1677-09-22 to 2262-04-11 (nanosecond timestamps)"


def _to_utc(values: Any, where: str, column: str) -> pd.DatetimeIndex:
    """Dates as a UTC index: naive values are UTC; values with an offset (which may change
    with daylight saving inside one column, e.g. -05:00 and -04:00) are converted to UTC."""
    try:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        except ValueError as first:
            if isinstance(first, pd.errors.OutOfBoundsDatetime):
                raise
            # pandas guesses one format from the first value; ISO text of mixed precision
            # ("2020-01-01 09:30", then "2020-01-02") is still unambiguous.
            idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601"))
    except (ValueError, TypeError) as e:
        # Locate the first offender so the message can name its row.
        raw = pd.Series(values)
        coerced = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
        bad = np.flatnonzero(coerced.isna().to_numpy() & raw.notna().to_numpy())
        at = f" at row {int(bad[0])} ({raw.iloc[int(bad[0])]!r})" if bad.size else ""
        if isinstance(e, pd.errors.OutOfBoundsDatetime):
            raise DataError(
                f"{where}: column {column!r} has a date outside the supported range "
                f"{_NS_RANGE}{at}",
                column=column,
                row=int(bad[0]) if bad.size else None,
            ) from e
        raise DataError(
            f"{where}: column {column!r} has a value that is not a date{at}: {e}",
            column=column,
            row=int(bad[0]) if bad.size else None,
        ) from e
    if idx.hasnans:
        row = int(np.flatnonzero(idx.isna())[0])
        raise DataError(
            f"{where}: column {column!r} is empty or not a date at row {row}",
            column=column,
            row=row,
        )
    try:
        return idx.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime as e:
        # pandas parses such dates at a coarser unit; the engine's clock is nanoseconds.
        lo = pd.Timestamp.min.tz_localize("UTC")
        hi = pd.Timestamp.max.tz_localize("UTC")
        row = int(np.flatnonzero((idx < lo) | (idx > hi))[0])
        raise DataError(
            f"{where}: column {column!r} has a date outside the supported range {_NS_RANGE}"
            f" at row {row} ({idx[row]})",
            column=column,
            row=row,
        ) from e


#: One symbol's engine input: the column dict, its label for messages, its row numbers and
#: its parsed UTC index.
_Input = tuple[dict[str, np.ndarray], str, "np.ndarray | None", pd.DatetimeIndex]


def _frame_input(df: pd.DataFrame, where: str, rows: np.ndarray | None = None) -> _Input:
    """Parse one symbol's bars into engine columns (int64 ns times, float64 fields).

    What needs pandas happens here (finding columns, parsing dates, converting to numbers);
    every check on the values (time order, prices, volume, ranges) is the engine's one pass,
    whose messages name this ``where`` and, through ``rows``, the user's row numbers.
    """
    names = _lower_columns(df, where)
    if isinstance(df.index, pd.DatetimeIndex):
        idx = _to_utc(df.index, where, "index")
        time_col = None
    else:
        time_col = next((c for c in _DATETIME_NAMES if c in names), None)
        if time_col is None:
            raise DataError(
                f"{where}: no datetime: expected a DatetimeIndex or one of the columns "
                f"{list(_DATETIME_NAMES)}; columns are {list(names)}"
            )
        idx = _to_utc(df[names[time_col]].to_numpy(), where, time_col)
    missing = [c for c in PRICE_FIELDS if c not in names]
    if missing:
        raise DataError(f"{where}: missing columns {missing}; columns are {list(names)}")
    if len(df) == 0:
        raise DataError(f"{where}: no rows")
    cols: dict[str, np.ndarray] = {"ts": np.ascontiguousarray(idx.asi8, dtype=np.int64)}
    for c in FIELDS:
        if c == "volume" and c not in names:
            cols[c] = np.zeros(len(df))
            continue
        cols[c] = _numeric(df[names[c]], where, c)
    for name, label in names.items():
        if name in cols or name in _DATETIME_NAMES or name == "symbol":
            continue
        column = df[label]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            cols[name] = _numeric(column, where, name)
    return cols, where, rows, idx


def _numeric(column: pd.Series, where: str, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        raise DataError(
            f"{where}: column {name!r} holds booleans (True/False), not numbers", column=name
        )
    if column.dtype.kind in "fiu":  # already numbers: no parsing, and no copy for float64
        return np.ascontiguousarray(column.to_numpy(dtype=np.float64))
    try:
        values = pd.to_numeric(column, errors="raise")
        return np.ascontiguousarray(values.to_numpy(dtype=np.float64))
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: column {name!r} is not numeric: {e}", column=name) from e


def _build(inputs: dict[str, _Input]) -> MarketData:
    """Validate (one pass, in the engine) and align the symbols' bars into MarketData.

    Symbols are sorted by name, so that the same bars give the same run whatever order the
    input lists them in (orders decided on one bar are submitted in symbol order).
    """
    inputs = dict(sorted(inputs.items()))
    with engine_errors():
        handle = bt_engine.Data(
            list(inputs),
            [cols for cols, _, _, _ in inputs.values()],
            labels=[where for _, where, _, _ in inputs.values()],
            rows=[rows for _, _, rows, _ in inputs.values()],
        )
    # One symbol: the engine's times are that symbol's, so its parsed index serves as is.
    index = next(iter(inputs.values()))[3] if len(inputs) == 1 else None
    return MarketData.from_handle(handle, index)


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
        per: dict[str, _Input] = {}
        for name, df in data.items():
            if not isinstance(df, pd.DataFrame):
                raise DataError(f"data[{name!r}] must be a DataFrame, got {type(df).__name__}")
            per[str(name)] = _frame_input(df, f"{where}[{name!r}]")
        return _build(per)
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
        # One stable sort groups each symbol's rows in input order (a mask per symbol would
        # scan every row once per symbol: hours for a 5,000-symbol universe).
        codes, uniques = pd.factorize(sym_text)
        names: list[str] = [str(n) for n in uniques]
        if symbol is not None:
            if symbol not in names:
                raise DataError(f"{where}: symbol {symbol!r} not found; symbols are {names}")
            wanted = names.index(symbol)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        # Times and numbers are parsed once for all rows, then split.
        cols, _, _, idx = _frame_input(data, where)
        per = {}
        for k, name in enumerate(names):
            if symbol is not None and k != wanted:
                continue
            rows = order[bounds[k] : bounds[k + 1]].astype(np.int64)
            part = {c: np.ascontiguousarray(v[rows]) for c, v in cols.items()}
            per[name] = (part, f"{where} (symbol {name!r})", rows, idx[rows])
        return _build(per)
    name = symbol or "asset"
    return _build({name: _frame_input(data, where)})
