"""BarQuery: which bars are wanted, validated once.

One value — symbols, an inclusive time range, a period and an adjustment — shared by
:class:`~bt_data.BarStore` (``read``, ``read_arrow``, ``export``, ``coverage``),
:class:`~bt_data.MarketDataService` (``get_bars``, ``backfill``, ``find_gaps``, ``missing``) and the
``bt-data`` command, so every caller gets the same rules and the same error messages. The older
keyword forms (``store.read("600000.SH", "2020-01-01", period="1d")``) build one of these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .periods import check_adjust, check_period
from .timeutil import DateLike, parse_bound

__all__ = ["BarQuery", "as_query", "normalize_symbols"]


def normalize_symbols(
    symbols: str | Sequence[str] | None, *, name: str = "symbols"
) -> tuple[str, ...] | None:
    """``None`` (every symbol), or the symbols as a tuple in the given order without repeats.

    Raises:
        ValueError: naming ``name`` for an empty list, or a symbol that is not a non-empty string.
    """
    if symbols is None:
        return None
    if isinstance(symbols, str):
        items: list[Any] = [symbols]
    elif isinstance(symbols, Iterable) and not isinstance(symbols, (bytes, Mapping)):
        items = list(symbols)  # lists, tuples, sets, numpy arrays, pandas Series
    else:
        raise ValueError(
            f"parameter {name!r}: expected a symbol, a list of symbols or None, got {symbols!r}"
        )
    for s in items:
        if not isinstance(s, str) or not s:
            raise ValueError(f"parameter {name!r}: {s!r} is not a non-empty string")
    if not items:
        # An empty list is almost always a filter that went wrong; None already means "all".
        raise ValueError(f"parameter {name!r}: the list is empty; pass None for every symbol")
    return tuple(dict.fromkeys(str(s) for s in items))


def _utc(ts: pd.Timestamp | None) -> pd.Timestamp | None:
    return None if ts is None else ts.tz_localize("UTC")


@dataclass(frozen=True, init=False)
class BarQuery:
    """Bars of ``symbols`` with labels in ``[start, end]``, of one period and one adjustment.

    Args:
        symbols: one symbol, a list of them, or ``None`` for every stored symbol (reads only;
            the service needs named symbols). Repeats are dropped, order is kept.
        start, end: inclusive bounds, anything :func:`pandas.Timestamp` parses (``"2020-01-02"``,
            ``"20200102"``, ``datetime``, tz-aware values); naive values mean UTC and a date-only
            ``end`` covers that whole day. ``None`` leaves that side open.
        period: one of :data:`bt_data.PERIODS` (case-sensitive).
        adjust: one of :data:`bt_data.ADJUSTS`.

    Attributes:
        symbols: ``tuple[str, ...]`` or ``None``.
        start, end: tz-aware UTC :class:`pandas.Timestamp` (microsecond resolution) or ``None``;
            a date-only ``end`` is stored as the day's last microsecond.
        period, adjust: as given.

    Raises:
        UnknownPeriodError, UnknownAdjustError: for a period or adjustment outside the sets.
        ValueError: naming the parameter, for bad symbols, an unparsable time, or start > end.
    """

    symbols: tuple[str, ...] | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    period: str
    adjust: str

    def __init__(
        self,
        symbols: str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str = "1d",
        adjust: str = "none",
    ) -> None:
        lo = _utc(parse_bound(start, is_end=False, name="start"))
        hi = _utc(parse_bound(end, is_end=True, name="end"))
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(
                f"parameters 'start'/'end': start {start!r} ({lo}) is after end {end!r} ({hi})"
            )
        # Frozen: the validated fields are set once, here, and never again.
        object.__setattr__(self, "symbols", normalize_symbols(symbols))
        object.__setattr__(self, "start", lo)
        object.__setattr__(self, "end", hi)
        object.__setattr__(self, "period", check_period(period))
        object.__setattr__(self, "adjust", check_adjust(adjust))

    def replace(self, **changes: Any) -> BarQuery:
        """A copy with some fields changed (validated again):
        ``query.replace(period="1m", end=None)``."""
        return dataclasses.replace(self, **changes)

    @property
    def naive_start(self) -> pd.Timestamp | None:
        """``start`` as the naive UTC timestamp the store compares with (``None`` if open)."""
        return None if self.start is None else self.start.tz_localize(None)

    @property
    def naive_end(self) -> pd.Timestamp | None:
        """``end`` as the naive UTC timestamp the store compares with (``None`` if open)."""
        return None if self.end is None else self.end.tz_localize(None)


def as_query(
    symbols: BarQuery | str | Sequence[str] | None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    period: str | None = None,
    adjust: str | None = None,
) -> BarQuery:
    """The :class:`BarQuery` a method was called with: ``symbols`` itself if it is one, else one
    built from the keyword shorthand (``period`` defaults to ``"1d"``, ``adjust`` to ``"none"``).

    Raises:
        TypeError: for a BarQuery together with start/end/period/adjust, which would be ambiguous
            (use ``query.replace(...)``).
    """
    if isinstance(symbols, BarQuery):
        passed = (("start", start), ("end", end), ("period", period), ("adjust", adjust))
        given = [f"{name}={value!r}" for name, value in passed if value is not None]
        if given:
            raise TypeError(
                f"got a BarQuery and {', '.join(given)}: pass either a BarQuery or "
                "symbols/start/end/period/adjust, not both (BarQuery.replace changes a field)"
            )
        return symbols
    return BarQuery(
        symbols,
        start,
        end,
        "1d" if period is None else period,
        "none" if adjust is None else adjust,
    )
