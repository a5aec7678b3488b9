"""Coarser bars built from the run's bars: weekly from daily, hourly from minutes, minute bars
from ticks, or one bar of every N bars.

The aggregation runs once, in the engine (``bt_engine.Timeframe``): per symbol, open = first
open, high = max, low = min, close = last close, volume = sum over the bucket's bars; rows
where a symbol has no bar are skipped, and a bucket without any bar is no bar.

**When a coarse bar becomes visible.** Buckets are read on the run's trading-day clock (UTC
shifted by ``day_offset_hours``). A time bucket ``[start, end)`` is complete at the first fine
bar of the run (any symbol's row) whose close time, its stamp plus ``bar_length``, is at or
after ``end``; with the default ``bar_length`` of 0 a bar is an instant, so the bucket shows
from the first row stamped at or after its end (for ticks, exactly when the clock passes
the end). A bucket of ``"Nbars"`` is complete at its N-th bar. A bucket that is never
complete within the data, the last and possibly partial one, is not a bar: nothing in the
data says whether more of its bars would have come. The rule uses nothing after the fine
bar it is asked about, so what a strategy reads at bar i is the same when the data ends at i.

Rules: ``"30s"``, ``"5min"``, ``"1h"``, ``"4h"``, ``"1D"``, ``"3D"`` (spans anchored at the
clock's epoch, 1970-01-01 00:00), ``"1W"``/``"W"`` (weeks Monday to Sunday, as pandas' ``W``
= ``W-SUN``) and ``"W-MON"`` ... ``"W-SUN"`` (week ending that day), ``"1M"`` (calendar
month), ``"3M"`` (calendar quarters; N months are anchored at January 1970), ``"10bars"``.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import bt_engine
from bt_core.data import OHLCVLines
from bt_core.errors import ParameterError, engine_errors

if TYPE_CHECKING:
    from bt_core.data import MarketData
    from bt_engine import Engine, Line

FIELDS = ("open", "high", "low", "close", "volume")

BarLength = str | pd.Timedelta | _dt.timedelta | None


def bar_length_ns(bar_length: BarLength) -> int:
    """``bar_length`` (``"1D"``, a Timedelta, None = 0) as int nanoseconds >= 0."""
    if bar_length is None:
        return 0
    try:
        td = pd.Timedelta(bar_length)
    except (ValueError, TypeError) as e:
        raise ParameterError(
            f"bar_length {bar_length!r} is not a duration (e.g. '1D', '1min'): {e}",
            parameter="bar_length",
        ) from e
    if pd.isna(td) or td.value < 0:
        raise ParameterError(
            f"bar_length must be a duration >= 0, got {bar_length!r}", parameter="bar_length"
        )
    return int(td.value)


def build(
    md: MarketData, rule: str, *, bar_length: BarLength = None, day_offset_hours: float = 0.0
) -> bt_engine.Timeframe:
    """The engine's aggregation of ``md`` under ``rule`` (one pass per symbol, in Rust)."""
    if not isinstance(rule, str):
        raise ParameterError(
            f"a timeframe rule must be a string such as '1W', got {rule!r}", parameter="rule"
        )
    with engine_errors():
        return bt_engine.Timeframe(
            md.handle,
            rule,
            day_offset_hours=float(day_offset_hours),
            bar_length=bar_length_ns(bar_length),
        )


def timeframe_bars(
    data: Any,
    rule: str,
    *,
    bar_length: BarLength = None,
    day_offset_hours: float = 0.0,
) -> pd.DataFrame:
    """Every completed coarse bar of ``data`` (anything :func:`bt_core.load_data` takes) as a
    long table: ``symbol, datetime`` (bucket start, UTC; for ``"Nbars"`` its first bar's
    time), ``open, high, low, close, volume``, ``first``/``last`` (fine rows of its first and
    last bar), ``visible_from`` (the fine row from which a strategy sees it) and
    ``visible_at`` (that row's time)."""
    from bt_core.data import load_data

    md = load_data(data)
    tf = build(md, rule, bar_length=bar_length, day_offset_hours=day_offset_hours)
    frames = []
    for s, name in enumerate(md.symbols):
        visible = tf.index("visible_from", s)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": name,
                    "datetime": pd.to_datetime(tf.index("start", s), utc=True),
                    **{f: np.array(tf.field(f, s)) for f in FIELDS},
                    "first": tf.index("first", s),
                    "last": tf.index("last", s),
                    "visible_from": visible,
                    "visible_at": md.index[visible],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def align_timeframe(
    data: Any,
    rule: str,
    *,
    bar_length: BarLength = None,
    day_offset_hours: float = 0.0,
) -> dict[str, pd.DataFrame]:
    """The coarse bars aligned to the fine bars, for vectorized signals: ``{"open": ...,
    "high", "low", "close", "volume", "start"}``, each a DataFrame (fine times x symbols)
    whose row i holds the newest coarse bar visible at fine bar i (NaN / NaT before the
    first one): forward-filled from the bar on which each coarse bar becomes visible, never
    earlier. ``run_signals``/``run_weights`` entries built from it decide on bar i with what
    a strategy would see at bar i."""
    from bt_core.data import load_data

    md = load_data(data)
    tf = build(md, rule, bar_length=bar_length, day_offset_hours=day_offset_hours)
    n = md.n_bars
    out: dict[str, dict[str, np.ndarray]] = {f: {} for f in (*FIELDS, "start")}
    for s, name in enumerate(md.symbols):
        pos = tf.index("counts", s) - 1
        seen = pos >= 0
        take = np.where(seen, pos, 0)
        for f in FIELDS:
            values = tf.field(f, s)
            col = np.full(n, np.nan)
            if len(values):
                col[seen] = values[take[seen]]
            out[f][name] = col
        starts = tf.index("start", s)
        col_ts = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
        if len(starts):
            col_ts[seen] = starts[take[seen]]
        out["start"][name] = col_ts.view("datetime64[ns]")
    frames = {f: pd.DataFrame(cols, index=md.index) for f, cols in out.items()}
    frames["start"] = frames["start"].apply(lambda c: c.dt.tz_localize("UTC"))
    return frames


class TimeframeSymbol(OHLCVLines):
    """One symbol's coarse lines: ``close[-1]`` is the newest complete coarse bar, ``len``
    how many are complete so far (0 before the first; reading one then raises IndexError)."""

    __slots__ = ("_engine", "_lines", "_tf", "index", "symbol")

    def __init__(self, engine: Engine, tf: bt_engine.Timeframe, s: int, symbol: str):
        self._engine = engine
        self._tf = tf
        self._lines: dict[str, Line] = {}
        self.index = s
        self.symbol = symbol

    def field(self, name: str) -> Line:
        line = self._lines.get(name)
        if line is None:
            with engine_errors():
                line = self._engine.timeframe_line(self._tf, name, self.index)
            self._lines[name] = line
        return line

    def visible_from(self) -> np.ndarray:
        """The fine bar from which each coarse bar is visible (calendar facts, not prices)."""
        return self._tf.index("visible_from", self.index)


class TimeframeView(OHLCVLines):
    """What :meth:`bt_core.Strategy.timeframe` returns: ``tf.close`` etc. for single-symbol
    data, ``tf[symbol].close`` always."""

    def __init__(self, engine: Engine, md: MarketData, tf: bt_engine.Timeframe):
        self.rule = tf.rule
        self._md = md
        self._per = [TimeframeSymbol(engine, tf, s, name) for s, name in enumerate(md.symbols)]

    def __getitem__(self, symbol: str | int) -> TimeframeSymbol:
        if isinstance(symbol, int):
            return self._per[symbol]
        return self._per[self._md.symbol_index(symbol)]

    def __len__(self) -> int:
        return len(self._per)

    def _single(self) -> TimeframeSymbol:
        if len(self._per) != 1:
            raise AttributeError(
                f"the data has {len(self._per)} symbols: use timeframe[symbol].close etc."
            )
        return self._per[0]

    def field(self, name: str) -> Line:
        return self._single().field(name)

    def visible_from(self) -> np.ndarray:
        return self._single().visible_from()

    def __repr__(self) -> str:
        return f"TimeframeView(rule={self.rule!r}, symbols={len(self._per)})"


__all__ = [
    "TimeframeSymbol",
    "TimeframeView",
    "align_timeframe",
    "bar_length_ns",
    "build",
    "timeframe_bars",
]
