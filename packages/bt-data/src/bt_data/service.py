"""MarketDataService: read the store first, fetch only what is missing, write it back.

Gap detection is exact, not "compare the first and last stored bar": for each symbol it builds
every bar label the calendar expects in the range (:func:`bt_data.calendars.expected_timestamps`),
removes the labels stored and the labels remembered as absent, and merges what is left into
contiguous runs of the calendar's own sequence. Holes at the start, in the middle and at the end
are all found; a holiday is never a hole under a calendar that knows it, and under one that does
not (the weekday default) it is asked for once, found empty, and remembered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .calendars import (
    ProviderCalendar,
    TradingCalendar,
    WeekdayCalendar,
    expected_timestamps,
    market_of,
)
from .errors import ProviderError
from .providers.base import DataProvider, ProgressCallback, SupportsInstruments, SupportsPrefetch
from .query import BarQuery, as_query
from .store import BarStore
from .timeutil import DateLike

__all__ = ["MarketDataService", "Gap", "BackfillReport"]

_ProgressFactory = Callable[[str], "ProgressCallback | None"]


@dataclass(frozen=True)
class Gap:
    """A run of consecutive expected bars that the store lacks.

    Attributes:
        symbol: the symbol.
        start, end: first and last missing bar label (``pandas.Timestamp``, UTC), inclusive.
        bars: how many expected bars the run holds.
    """

    symbol: str
    start: pd.Timestamp
    end: pd.Timestamp
    bars: int


@dataclass
class BackfillReport:
    """What a backfill did: the gaps it saw, provider requests, bars written, keys found absent."""

    gaps: list[Gap] = field(default_factory=list)
    requests: int = 0
    bars_written: int = 0
    absent_recorded: int = 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of the runs of True in a boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class MarketDataService:
    """Bars from the store, with missing intervals backfilled from a provider.

    Args:
        store: the :class:`~bt_data.BarStore`.
        provider: where missing bars come from; ``None`` makes :meth:`get_bars` read-only.
        calendar: expected sessions; default: the provider's trading dates where it has them
            (xtdata ``get_trading_dates``), else Monday–Friday, with A-share intraday sessions.
        absence_horizon: bars the provider did not return are remembered as absent (and not
            asked for again) if they are older than ``now - absence_horizon`` or earlier than a
            bar the provider did return; recent ones may still arrive, so they are asked again.
        progress: ``True`` for a rich progress bar on long backfills, a callable
            ``(done, total, message)``, or ``False``.
        transaction: ``"symbol"`` (default) commits each symbol's bars and absence notes in one
            transaction, so an interrupted multi-symbol backfill keeps the finished symbols;
            ``"all"`` commits the whole backfill in a single transaction.
    """

    def __init__(
        self,
        store: BarStore,
        provider: DataProvider | None = None,
        calendar: TradingCalendar | None = None,
        *,
        absence_horizon: dt.timedelta = dt.timedelta(days=7),
        progress: bool | ProgressCallback = False,
        transaction: str = "symbol",
    ) -> None:
        if transaction not in ("symbol", "all"):
            raise ValueError(
                f"parameter 'transaction': expected 'symbol' or 'all', got {transaction!r}"
            )
        self.store = store
        self.provider = provider
        self.calendar: TradingCalendar
        if calendar is not None:
            self.calendar = calendar
        elif provider is not None:
            self.calendar = ProviderCalendar(provider.trading_dates, WeekdayCalendar())
        else:
            self.calendar = WeekdayCalendar()
        self.absence_horizon = pd.Timedelta(absence_horizon)
        self.progress = progress
        self.transaction = transaction

    # ------------------------------------------------------------------ instruments
    def instruments(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The stored instrument table (all, or of ``symbols``): a plain DataFrame a market
        preset takes as is, e.g. ``RunConfig(market="cn_ashare",
        market_options={"instruments": service.instruments(symbols)})``."""
        return self.store.read_instruments(symbols)

    def write_instruments(self, table: object, *, source: str = "instruments") -> int:
        """Upsert instrument facts (see :meth:`BarStore.write_instruments`)."""
        return self.store.write_instruments(table, source=source)

    def update_instruments(self, symbols: Sequence[str]) -> int:
        """Fetch the facts the provider knows of ``symbols`` and upsert them; facts the
        provider does not give keep their stored value. Returns rows written."""
        if not isinstance(self.provider, SupportsInstruments):
            raise ProviderError(
                f"provider {getattr(self.provider, 'name', None)!r} gives no instrument facts"
            )
        fresh = self.provider.fetch_instruments(list(symbols))
        if fresh.empty:
            return 0
        stored = self.store.read_instruments(list(fresh["symbol"])).set_index("symbol")
        merged = fresh.set_index("symbol")
        if not stored.empty:
            merged = merged.astype(object).where(merged.notna(), stored.reindex(merged.index))
        return self.store.write_instruments(
            merged.reset_index(), source=f"{getattr(self.provider, 'name', 'provider')} instruments"
        )

    # ------------------------------------------------------------------ gaps
    @staticmethod
    def _query(
        symbols: BarQuery | str | Sequence[str],
        start: DateLike | None,
        end: DateLike | None,
        period: str | None,
        adjust: str | None,
    ) -> BarQuery:
        query = as_query(symbols, start, end, period, adjust)
        if query.symbols is None:
            raise ValueError(
                "parameter 'symbols' is required: gaps are found and filled per named symbol"
            )
        if query.start is None:
            raise ValueError("parameter 'start' is required")
        return query

    @staticmethod
    def _bounds(query: BarQuery) -> tuple[pd.Timestamp, pd.Timestamp]:
        lo, hi = query.naive_start, query.naive_end
        assert lo is not None  # _query requires it
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us")
        # Bars cannot exist after now: never count the future as missing (a range wholly in
        # the future then expects nothing).
        hi = now if hi is None or hi > now else hi
        return lo, hi

    def missing(
        self,
        symbols: BarQuery | str | Sequence[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Per symbol, the expected bar labels (naive-UTC ``datetime64[ns]``) that are neither
        stored nor remembered as absent: exactly *calendar − stored − absent*.

        Takes a :class:`~bt_data.BarQuery` (with symbols and a start) or its shorthand, like
        :meth:`find_gaps`."""
        query = self._query(symbols, start, end, period, adjust)
        expected, _, _ = self._plan(query)
        return {s: e[m] for s, (e, m) in expected.items()}

    def _plan(
        self, query: BarQuery
    ) -> tuple[
        dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray], dict[str, np.ndarray]
    ]:
        symbols = list(query.symbols or ())
        period, adjust = query.period, query.adjust
        lo, hi = self._bounds(query)
        bars = self.store.stored_keys(symbols, lo, hi, period, adjust, table="bars")
        absent = self.store.stored_keys(symbols, lo, hi, period, adjust, table="absent_bars")
        plan: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for sym in symbols:
            exp = expected_timestamps(self.calendar, lo, hi, period, market_of(sym))
            have = np.union1d(bars[sym], absent[sym])
            plan[sym] = (exp, ~np.isin(exp, have))
        return plan, bars, absent

    def find_gaps(
        self,
        symbols: BarQuery | str | Sequence[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> list[Gap]:
        """The missing intervals in ``[start, end]`` (inclusive; ``end=None`` means now), merged
        into contiguous runs of the calendar, ordered by symbol then time.

        ``find_gaps(BarQuery(symbols, start, end, period, adjust))``, or the same arguments
        directly as a shorthand (``period`` default ``"1d"``, ``adjust`` default ``"none"``).
        The symbols and ``start`` are required."""
        plan, _, _ = self._plan(self._query(symbols, start, end, period, adjust))
        return self._gaps(plan)

    @staticmethod
    def _gaps(plan: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[Gap]:
        out: list[Gap] = []
        for sym in sorted(plan):
            exp, mask = plan[sym]
            for a, b in _runs(mask):
                out.append(
                    Gap(
                        sym,
                        pd.Timestamp(exp[a]).tz_localize("UTC"),
                        pd.Timestamp(exp[b]).tz_localize("UTC"),
                        b - a + 1,
                    )
                )
        return out

    # ------------------------------------------------------------------ backfill
    def backfill(
        self,
        symbols: BarQuery | str | Sequence[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> BackfillReport:
        """Fetch every missing interval of a :class:`~bt_data.BarQuery` (or of the
        :meth:`find_gaps` shorthand) from the provider and write it back.

        One provider request per gap (per symbol, per contiguous run). Bars the provider returns
        are upserted; expected bars it does not return are remembered as absent (see
        ``absence_horizon``). Rerunning after an interruption fetches only what is still missing.

        Raises:
            ValueError: if there is no provider.
            ProviderError: if the provider fails or answers for another symbol.
        """
        if self.provider is None:
            raise ValueError("backfill needs a provider; this MarketDataService has none")
        provider = self.provider
        query = self._query(symbols, start, end, period, adjust)
        period, adjust = query.period, query.adjust
        plan, stored, _ = self._plan(query)
        gaps = self._gaps(plan)
        report = BackfillReport(gaps=gaps)
        if not gaps:
            return report
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        settled_before = np.datetime64(int((now - self.absence_horizon).value), "ns")
        by_symbol: dict[str, list[Gap]] = {}
        for gap in gaps:
            by_symbol.setdefault(gap.symbol, []).append(gap)
        pending_bars: list[pd.DataFrame] = []
        pending_absent: list[pd.DataFrame] = []
        with self._progress() as progress:
            if isinstance(provider, SupportsPrefetch):
                first = min(g.start for g in gaps).tz_localize(None)
                last = max(g.end for g in gaps).tz_localize(None)
                provider.prefetch(list(by_symbol), period, first, last, progress("download"))
            step = progress("fetch")
            for sym, sym_gaps in by_symbol.items():
                frames: list[pd.DataFrame] = []
                for gap in sym_gaps:
                    got = provider.fetch_bars(
                        sym, period, gap.start.tz_localize(None), gap.end.tz_localize(None), adjust
                    )
                    report.requests += 1
                    if step is not None:
                        step(report.requests, len(gaps), f"{sym} {gap.start:%Y-%m-%d}")
                    if len(got):
                        others = got.loc[got["symbol"] != sym, "symbol"]
                        if len(others):
                            raise ProviderError(
                                f"{provider.name} answered for {others.iloc[0]!r} when asked "
                                f"for {sym!r}"
                            )
                        frames.append(got)
                bars = pd.concat(frames, ignore_index=True) if frames else None
                exp, mask = plan[sym]
                wanted = exp[mask]
                returned = (
                    np.asarray(
                        bars["datetime"].dt.tz_convert("UTC").dt.tz_localize(None),
                        dtype="datetime64[ns]",
                    )
                    if bars is not None
                    else np.empty(0, dtype="datetime64[ns]")
                )
                # The latest bar known to exist: anything the provider lacks before it is settled.
                known = np.concatenate([returned, stored[sym]])
                not_returned = wanted[~np.isin(wanted, returned)]
                settled = not_returned < settled_before
                if known.size:
                    settled |= not_returned < known.max()
                absent_ts = not_returned[settled]
                absent = (
                    pd.DataFrame({"symbol": [sym] * len(absent_ts), "datetime": absent_ts})
                    if len(absent_ts)
                    else None
                )
                report.absent_recorded += len(absent_ts)
                if self.transaction == "symbol":
                    report.bars_written += self.store.write_with_absent(
                        bars,
                        absent,
                        period=period,
                        adjust=adjust,
                        source=f"{provider.name}:{sym}",
                    )
                else:
                    if bars is not None:
                        pending_bars.append(bars)
                    if absent is not None:
                        pending_absent.append(absent)
            if self.transaction == "all" and (pending_bars or pending_absent):
                report.bars_written += self.store.write_with_absent(
                    pd.concat(pending_bars, ignore_index=True) if pending_bars else None,
                    pd.concat(pending_absent, ignore_index=True) if pending_absent else None,
                    period=period,
                    adjust=adjust,
                    source=provider.name,
                )
        return report

    def get_bars(
        self,
        symbols: BarQuery | str | Sequence[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
        *,
        backfill: bool = True,
    ) -> pd.DataFrame:
        """The bars of a :class:`~bt_data.BarQuery` (or of the :meth:`find_gaps` shorthand): the
        store's, after backfilling what is missing.

        Returns:
            :meth:`BarStore.read`'s canonical long format (``symbol, datetime, open, high, low,
            close, volume, amount``; ``datetime64[ns, UTC]``; sorted by symbol, datetime). Bars
            that no source has stay missing: nothing is filled in.
        """
        query = self._query(symbols, start, end, period, adjust)
        if backfill and self.provider is not None:
            self.backfill(query)
        return self.store.read(query)

    # ------------------------------------------------------------------ progress
    @contextmanager
    def _progress(self) -> Iterator[_ProgressFactory]:
        if self.progress is False:
            yield lambda _name: None
            return
        if callable(self.progress):
            cb = self.progress
            yield lambda name: lambda d, t, m: cb(d, t, f"{name}: {m}")
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[msg]}"),
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def factory(name: str) -> ProgressCallback:
                def update(done: int, total: int, msg: str) -> None:
                    if name not in tasks:
                        tasks[name] = bar.add_task(name, total=total, msg="")
                    bar.update(tasks[name], completed=done, total=total, msg=msg[:40])

                return update

            yield factory
