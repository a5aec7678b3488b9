"""Trading calendars: which sessions exist, and which bar labels a session has.

A calendar answers two questions for gap detection:

1. ``sessions(start, end, market)``: the trading dates in ``[start, end]`` (both inclusive) as a
   sorted ``numpy.datetime64[D]`` array.
2. through its :class:`IntradaySessions`, the label of every intraday bar of a trading date.

:func:`expected_timestamps` combines both into the exact set of bar labels a complete store
holds for a range. Calendars never invent bars: they only say where bars *should* be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .errors import CalendarError
from .periods import PERIOD_MINUTES, check_period

__all__ = [
    "IntradaySessions",
    "A_SHARE_SESSIONS",
    "TradingCalendar",
    "WeekdayCalendar",
    "DateListCalendar",
    "ProviderCalendar",
    "ExchangeCalendar",
    "expected_timestamps",
    "market_of",
]


def market_of(symbol: str) -> str | None:
    """Market suffix of an xtdata-style symbol: ``"600000.SH"`` → ``"SH"``; None without a dot."""
    if "." not in symbol:
        return None
    return symbol.rsplit(".", 1)[1]


def _minutes(hhmm: str) -> int:
    try:
        hours, minutes = hhmm.split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError as exc:
        raise CalendarError(f"session time {hhmm!r} is not 'HH:MM'") from exc
    if not 0 <= value <= 24 * 60:
        raise CalendarError(f"session time {hhmm!r} is outside the day")
    return value


@dataclass(frozen=True)
class IntradaySessions:
    """Intraday trading windows of a market, in its local time zone.

    Attributes:
        tz: IANA zone of the windows (``"Asia/Shanghai"`` for SH/SZ).
        windows: ``(open, close)`` pairs as ``"HH:MM"`` local times; each window's length must be
            a multiple of every period used with it.
        label: ``"right"`` labels a bar by its end (xtdata and most Chinese vendors: the first
            1-minute bar of the day is 09:31); ``"left"`` by its start (09:30).
    """

    tz: str = "Asia/Shanghai"
    windows: tuple[tuple[str, str], ...] = (("09:30", "11:30"), ("13:00", "15:00"))
    label: Literal["right", "left"] = "right"

    def offsets(self, period: str) -> np.ndarray:
        """Bar labels of one session as ``timedelta64[ns]`` offsets from local midnight."""
        step = PERIOD_MINUTES.get(check_period(period))
        if step is None:
            raise CalendarError(f"period {period!r} has no intraday bars")
        out: list[int] = []
        for open_, close in self.windows:
            lo, hi = _minutes(open_), _minutes(close)
            if hi <= lo or (hi - lo) % step:
                raise CalendarError(
                    f"session window {open_}-{close} is not a positive multiple of {period!r}"
                )
            starts = range(lo, hi, step)
            out.extend(s + step if self.label == "right" else s for s in starts)
        return np.asarray(out, dtype="timedelta64[m]").astype("timedelta64[ns]")

    def timestamps(self, days: np.ndarray, period: str) -> np.ndarray:
        """All bar labels of the trading dates ``days`` as naive-UTC ``datetime64[ns]``, sorted."""
        days = np.asarray(days, dtype="datetime64[D]").astype("datetime64[ns]")
        offsets = self.offsets(period)
        if days.size == 0 or offsets.size == 0:
            return np.empty(0, dtype="datetime64[ns]")
        local = (days[:, None] + offsets[None, :]).ravel()
        utc = pd.DatetimeIndex(local).tz_localize(self.tz).tz_convert("UTC").tz_localize(None)
        return np.sort(np.asarray(utc.astype("datetime64[ns]")))


#: Shanghai / Shenzhen continuous sessions 09:30–11:30 and 13:00–15:00, bars labelled by end.
A_SHARE_SESSIONS = IntradaySessions()


@runtime_checkable
class TradingCalendar(Protocol):
    """What :class:`~bt_data.MarketDataService` needs from a calendar."""

    @property
    def intraday(self) -> IntradaySessions:
        """Intraday windows used to build minute/hour bar labels."""
        ...

    def sessions(self, start: dt.date, end: dt.date, market: str | None = None) -> np.ndarray:
        """Trading dates in ``[start, end]`` (inclusive) as sorted ``datetime64[D]``."""
        ...


def _date_range(start: dt.date, end: dt.date) -> np.ndarray:
    if end < start:
        return np.empty(0, dtype="datetime64[D]")
    return np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1, dtype="datetime64[D]")


@dataclass(frozen=True)
class WeekdayCalendar:
    """Monday–Friday minus an optional list of holidays. The default when nothing better exists.

    It does not know exchange holidays unless given them, so on its own it reports holidays as
    missing once; :class:`~bt_data.MarketDataService` then remembers that the provider had no data
    for them and does not ask again.
    """

    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    intraday: IntradaySessions = A_SHARE_SESSIONS

    def __init__(
        self, holidays: Iterable[dt.date] = (), intraday: IntradaySessions = A_SHARE_SESSIONS
    ) -> None:
        object.__setattr__(self, "holidays", frozenset(pd.Timestamp(d).date() for d in holidays))
        object.__setattr__(self, "intraday", intraday)

    def sessions(self, start: dt.date, end: dt.date, market: str | None = None) -> np.ndarray:
        """Weekdays in ``[start, end]`` that are not holidays, as ``datetime64[D]``."""
        days = _date_range(start, end)
        days = days[np.is_busday(days)]
        if self.holidays:
            hol = np.asarray(sorted(self.holidays), dtype="datetime64[D]")
            days = days[~np.isin(days, hol)]
        return days


class DateListCalendar:
    """A calendar given as an explicit list of trading dates (e.g. an exchange's published list).

    The list is authoritative for ``[valid_from, valid_to]`` (default: its first and last date);
    ranges reaching outside raise :class:`CalendarError` instead of guessing, because the list
    cannot say whether those days trade.
    """

    def __init__(
        self,
        dates: Iterable[dt.date | str],
        intraday: IntradaySessions = A_SHARE_SESSIONS,
        *,
        valid_from: dt.date | str | None = None,
        valid_to: dt.date | str | None = None,
    ) -> None:
        arr = np.unique(np.asarray([pd.Timestamp(d).date() for d in dates], dtype="datetime64[D]"))
        if arr.size == 0:
            raise CalendarError("DateListCalendar needs at least one trading date")
        self.dates = arr
        self.intraday = intraday
        self.valid_from = (
            np.datetime64(pd.Timestamp(valid_from).date(), "D") if valid_from else arr[0]
        )
        self.valid_to = np.datetime64(pd.Timestamp(valid_to).date(), "D") if valid_to else arr[-1]

    def sessions(self, start: dt.date, end: dt.date, market: str | None = None) -> np.ndarray:
        """Listed dates in ``[start, end]``; raises if the range leaves the valid span."""
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        if lo < self.valid_from or hi > self.valid_to:
            raise CalendarError(
                f"range {start}..{end} leaves the calendar's known span "
                f"{self.valid_from}..{self.valid_to}"
            )
        return self.dates[(self.dates >= lo) & (self.dates <= hi)]


class ProviderCalendar:
    """Trading dates asked from a provider (xtdata ``get_trading_dates``), cached per market.

    ``trading_dates`` is a callable ``(market, start, end) -> list[date] | None``, normally a
    provider's bound ``trading_dates`` method; ``None`` means the provider has no calendar for
    that market and ``fallback`` answers instead.
    """

    def __init__(
        self,
        trading_dates: Callable[[str, dt.date, dt.date], list[dt.date] | None],
        fallback: TradingCalendar | None = None,
        intraday: IntradaySessions = A_SHARE_SESSIONS,
    ) -> None:
        self._trading_dates = trading_dates
        self.fallback: TradingCalendar = fallback if fallback is not None else WeekdayCalendar()
        self.intraday = intraday
        self._cache: dict[tuple[str, dt.date, dt.date], np.ndarray | None] = {}

    def sessions(self, start: dt.date, end: dt.date, market: str | None = None) -> np.ndarray:
        """The provider's trading dates for ``market`` in ``[start, end]``, or the fallback's."""
        if market is None:
            return self.fallback.sessions(start, end, market)
        key = (market, start, end)
        if key not in self._cache:
            got = self._trading_dates(market, start, end)
            self._cache[key] = (
                None
                if got is None
                else np.unique(np.asarray([pd.Timestamp(d).date() for d in got], "datetime64[D]"))
            )
        days = self._cache[key]
        if days is None:
            return self.fallback.sessions(start, end, market)
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        return days[(days >= lo) & (days <= hi)]


class ExchangeCalendar:
    """Adapter for an ``exchange_calendars`` calendar (e.g. ``"XSHG"`` for Shanghai).

    ``exchange_calendars`` is optional: pass its name (imported lazily, raising ``ImportError``
    with the install command if missing) or any object with the library's
    ``sessions_in_range(start, end)``, ``first_session`` and ``last_session``. Ranges outside the
    calendar's known sessions raise :class:`CalendarError` rather than guessing.
    """

    def __init__(
        self, calendar: str | object, intraday: IntradaySessions = A_SHARE_SESSIONS
    ) -> None:
        if isinstance(calendar, str):
            try:
                import exchange_calendars  # type: ignore[import-not-found]
            except ImportError as exc:
                raise ImportError(
                    f"ExchangeCalendar({calendar!r}) needs the optional package "
                    "exchange-calendars: pip install 'pyrust-bt-data[calendars]'"
                ) from exc
            calendar = exchange_calendars.get_calendar(calendar)
        for attr in ("sessions_in_range", "first_session", "last_session"):
            if not hasattr(calendar, attr):
                raise TypeError(f"calendar object {calendar!r} has no {attr!r}")
        self.calendar: Any = calendar
        self.intraday = intraday

    def sessions(self, start: dt.date, end: dt.date, market: str | None = None) -> np.ndarray:
        """The exchange's sessions in ``[start, end]`` as ``datetime64[D]``."""
        first = pd.Timestamp(self.calendar.first_session).date()
        last = pd.Timestamp(self.calendar.last_session).date()
        if start < first or end > last:
            raise CalendarError(
                f"range {start}..{end} leaves the exchange calendar's span {first}..{last}"
            )
        if end < start:
            return np.empty(0, dtype="datetime64[D]")
        got = pd.DatetimeIndex(
            self.calendar.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        )
        if got.tz is not None:
            got = got.tz_localize(None)
        return np.asarray(got.normalize().astype("datetime64[s]"), dtype="datetime64[D]")


def expected_timestamps(
    calendar: TradingCalendar,
    start: pd.Timestamp,
    end: pd.Timestamp,
    period: str,
    market: str | None = None,
) -> np.ndarray:
    """Every bar label a complete store holds in ``[start, end]`` (naive UTC, both inclusive).

    ``1d`` bars are the trading dates at 00:00 UTC; intraday bars come from the calendar's
    :class:`IntradaySessions`. Weekly and longer bars have vendor-specific labels, so gap detection
    refuses them with :class:`CalendarError` (backfill ``1d`` and resample instead).
    """
    check_period(period)
    if end < start:
        return np.empty(0, dtype="datetime64[ns]")
    if period == "1d":
        days = calendar.sessions(start.date(), end.date(), market)
        out = np.asarray(days, dtype="datetime64[D]").astype("datetime64[ns]")
    elif period in PERIOD_MINUTES:
        # Local sessions may sit on the neighbouring UTC date; widen by a day and cut below.
        first = (start - pd.Timedelta(days=1)).date()
        last = (end + pd.Timedelta(days=1)).date()
        days = calendar.sessions(first, last, market)
        out = calendar.intraday.timestamps(days, period)
    else:
        raise CalendarError(
            f"gap detection supports intraday periods and '1d', not {period!r}: "
            "labels of weekly and longer bars differ between vendors"
        )
    lo, hi = np.datetime64(int(start.value), "ns"), np.datetime64(int(end.value), "ns")
    return out[(out >= lo) & (out <= hi)]
