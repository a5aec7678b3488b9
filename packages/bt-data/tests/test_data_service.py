"""MarketDataService: exact gaps, backfill of only what is missing, no fabricated bars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bt_data import (
    BarStore,
    CalendarError,
    DateListCalendar,
    FileProvider,
    MarketDataService,
    ProviderError,
    WeekdayCalendar,
    expected_timestamps,
)
from bt_data.providers.base import empty_bars

Bars = Callable[..., pd.DataFrame]
DAYS_2020 = pd.bdate_range("2020-01-01", "2020-03-31")


class SpyProvider:
    """Wraps a provider and records every fetch; optionally fails for one symbol."""

    name = "spy"

    def __init__(self, inner: FileProvider, fail_on: str | None = None) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.fetches: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []

    def fetch_bars(
        self, symbol: str, period: str, start: pd.Timestamp, end: pd.Timestamp, adjust: str
    ) -> pd.DataFrame:
        self.fetches.append((symbol, start, end))
        if symbol == self.fail_on:
            raise ProviderError(f"simulated outage for {symbol}")
        return self.inner.fetch_bars(symbol, period, start, end, adjust)

    def trading_dates(self, market: str, start: dt.date, end: dt.date) -> list[dt.date] | None:
        return None


@pytest.fixture
def source_dir(tmp_path: Path, bars_factory: Bars) -> Path:
    """Files for three symbols: every weekday of Q1 2020 except 2020-01-01 (a holiday) and, for
    CCC.SZ, a suspension on 2020-02-10..2020-02-12."""
    root = tmp_path / "files"
    root.mkdir()
    days = [d for d in DAYS_2020 if d != pd.Timestamp("2020-01-01")]
    for i, sym in enumerate(["AAA.SH", "BBB.SH", "CCC.SZ"]):
        use = days
        if sym == "CCC.SZ":
            use = [
                d for d in days if not pd.Timestamp("2020-02-10") <= d <= pd.Timestamp("2020-02-12")
            ]
        bars_factory(sym, use, seed=i).drop(columns="symbol").to_csv(
            root / f"{sym}.csv", index=False
        )
    return root


def full(source_dir: Path, symbol: str) -> pd.DataFrame:
    store = BarStore(":memory:")
    store.import_csv(source_dir / f"{symbol}.csv", period="1d", symbol=symbol)
    return store.read(symbol)


def test_holes_at_start_middle_and_end_are_found_and_filled(source_dir: Path) -> None:
    store = BarStore(":memory:")
    truth = full(source_dir, "AAA.SH")
    keep = truth[
        (truth["datetime"] >= pd.Timestamp("2020-01-10", tz="UTC"))
        & (truth["datetime"] <= pd.Timestamp("2020-03-20", tz="UTC"))
        & ~truth["datetime"].between(
            pd.Timestamp("2020-02-03", tz="UTC"), pd.Timestamp("2020-02-07", tz="UTC")
        )
    ]
    store.write(keep, period="1d")
    cal = DateListCalendar(
        [d for d in DAYS_2020 if d != pd.Timestamp("2020-01-01")], valid_from="2020-01-01"
    )
    spy = SpyProvider(FileProvider(source_dir))
    svc = MarketDataService(store, spy, cal)
    gaps = svc.find_gaps("AAA.SH", "2020-01-01", "2020-03-31")
    assert [(g.start.date(), g.end.date(), g.bars) for g in gaps] == [
        (dt.date(2020, 1, 2), dt.date(2020, 1, 9), 6),
        (dt.date(2020, 2, 3), dt.date(2020, 2, 7), 5),
        (dt.date(2020, 3, 23), dt.date(2020, 3, 31), 7),
    ]
    got = svc.get_bars("AAA.SH", "2020-01-01", "2020-03-31")
    # One request per gap, each for exactly the gap.
    assert [(s, a.date(), b.date()) for s, a, b in spy.fetches] == [
        ("AAA.SH", dt.date(2020, 1, 2), dt.date(2020, 1, 9)),
        ("AAA.SH", dt.date(2020, 2, 3), dt.date(2020, 2, 7)),
        ("AAA.SH", dt.date(2020, 3, 23), dt.date(2020, 3, 31)),
    ]
    pd.testing.assert_frame_equal(got, truth)
    assert svc.find_gaps("AAA.SH", "2020-01-01", "2020-03-31") == []
    store.check_integrity()
    spy.fetches.clear()
    svc.get_bars("AAA.SH", "2020-01-01", "2020-03-31")
    assert spy.fetches == []


def test_holidays_are_not_holes_with_a_calendar_that_knows_them(source_dir: Path) -> None:
    store = BarStore(":memory:")
    store.write(full(source_dir, "AAA.SH"), period="1d")
    cal = WeekdayCalendar(holidays=[dt.date(2020, 1, 1)])
    svc = MarketDataService(store, None, cal)
    assert svc.find_gaps("AAA.SH", "2020-01-01", "2020-03-31") == []
    assert (
        MarketDataService(store, None).find_gaps("AAA.SH", "2020-01-01", "2020-01-31")[0].bars == 1
    )


def test_range_starting_on_holiday_or_suspension_downloads_once(source_dir: Path) -> None:
    store = BarStore(":memory:")
    spy = SpyProvider(FileProvider(source_dir))
    svc = MarketDataService(store, spy, WeekdayCalendar())
    first = svc.get_bars(["AAA.SH", "CCC.SZ"], "2020-01-01", "2020-02-28")
    assert len(spy.fetches) == 2
    # Nothing invented for the holiday or the suspension...
    assert pd.Timestamp("2020-01-01", tz="UTC") not in set(first["datetime"])
    ccc = first[first["symbol"] == "CCC.SZ"]["datetime"]
    assert not ccc.between(
        pd.Timestamp("2020-02-10", tz="UTC"), pd.Timestamp("2020-02-12", tz="UTC")
    ).any()
    # ...but remembered, so asking again does not download again.
    absent = store.absent()
    assert sorted(zip(absent["symbol"], absent["datetime"].dt.date, strict=True)) == [
        ("AAA.SH", dt.date(2020, 1, 1)),
        ("CCC.SZ", dt.date(2020, 1, 1)),
        ("CCC.SZ", dt.date(2020, 2, 10)),
        ("CCC.SZ", dt.date(2020, 2, 11)),
        ("CCC.SZ", dt.date(2020, 2, 12)),
    ]
    spy.fetches.clear()
    again = svc.get_bars(["AAA.SH", "CCC.SZ"], "2020-01-01", "2020-02-28")
    assert spy.fetches == []
    pd.testing.assert_frame_equal(again, first)
    assert store.forget_absent("CCC.SZ") == 4
    svc.get_bars(["AAA.SH", "CCC.SZ"], "2020-01-01", "2020-02-28")
    assert [s for s, _, _ in spy.fetches] == ["CCC.SZ", "CCC.SZ"]


def test_recent_missing_bars_are_not_remembered(tmp_path: Path, bars_factory: Bars) -> None:
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    days = pd.bdate_range(today - pd.Timedelta(days=40), today - pd.Timedelta(days=20))
    root = tmp_path / "f"
    root.mkdir()
    bars_factory("AAA.SH", days).drop(columns="symbol").to_csv(root / "AAA.SH.csv", index=False)
    store = BarStore(":memory:")
    svc = MarketDataService(store, FileProvider(root), WeekdayCalendar())
    svc.backfill("AAA.SH", days[0], today)
    absent = store.absent()["datetime"].dt.tz_localize(None)
    # Days after the last real bar but within the horizon (7 days) may still arrive.
    assert absent.max() < today - pd.Timedelta(days=6)
    assert len(svc.find_gaps("AAA.SH", days[0], today)) == 1


def test_interrupted_backfill_rerun_completes_without_duplicates(source_dir: Path) -> None:
    store = BarStore(":memory:")
    symbols = ["AAA.SH", "BBB.SH", "CCC.SZ"]
    broken = MarketDataService(store, SpyProvider(FileProvider(source_dir), fail_on="BBB.SH"))
    with pytest.raises(ProviderError, match="outage"):
        broken.get_bars(symbols, "2020-01-02", "2020-03-31")
    assert store.symbols() == ["AAA.SH"]  # finished symbol kept, failed one wrote nothing
    spy = SpyProvider(FileProvider(source_dir))
    svc = MarketDataService(store, spy)
    got = svc.get_bars(symbols, "2020-01-02", "2020-03-31")
    assert sorted({s for s, _, _ in spy.fetches}) == ["BBB.SH", "CCC.SZ"]
    expected = pd.concat([full(source_dir, s) for s in symbols], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    store.check_integrity()


def test_single_transaction_mode_writes_nothing_on_failure(source_dir: Path) -> None:
    store = BarStore(":memory:")
    svc = MarketDataService(
        store, SpyProvider(FileProvider(source_dir), fail_on="CCC.SZ"), transaction="all"
    )
    with pytest.raises(ProviderError):
        svc.backfill(["AAA.SH", "CCC.SZ"], "2020-01-02", "2020-03-31")
    assert store.count() == 0 and store.absent().empty


def test_provider_answering_for_another_symbol_is_rejected(source_dir: Path) -> None:
    class Liar(SpyProvider):
        def fetch_bars(self, symbol, period, start, end, adjust):  # type: ignore[no-untyped-def]
            return self.inner.fetch_bars("BBB.SH", period, start, end, adjust)

    svc = MarketDataService(BarStore(":memory:"), Liar(FileProvider(source_dir)))
    with pytest.raises(ProviderError, match="answered for 'BBB.SH'"):
        svc.backfill("AAA.SH", "2020-01-02", "2020-01-10")


def test_intraday_gaps_follow_a_share_sessions(tmp_path: Path, bars_factory: Bars) -> None:
    cal = WeekdayCalendar()
    day = pd.Timestamp("2020-01-02")
    labels = expected_timestamps(cal, day, day + pd.Timedelta(hours=23), "1m")
    local = pd.DatetimeIndex(labels).tz_localize("UTC").tz_convert("Asia/Shanghai")
    assert len(labels) == 240
    assert local[0].strftime("%H:%M") == "09:31" and local[119].strftime("%H:%M") == "11:30"
    assert local[120].strftime("%H:%M") == "13:01" and local[-1].strftime("%H:%M") == "15:00"
    assert len(expected_timestamps(cal, day, day + pd.Timedelta(hours=23), "1h")) == 4
    # A store holding the day minus 10:01..10:05 has exactly that hole; lunch is no hole.
    stamps = pd.DatetimeIndex(labels).tz_localize("UTC")
    bars = bars_factory("AAA.SH", list(stamps.tz_localize(None)))
    bars["datetime"] = stamps
    hole = local.strftime("%H:%M").isin(["10:01", "10:02", "10:03", "10:04", "10:05"])
    store = BarStore(":memory:")
    store.write(bars.loc[~hole], period="1m")
    svc = MarketDataService(store, None, cal)
    gaps = svc.find_gaps("AAA.SH", "2020-01-02", "2020-01-02", period="1m")
    assert [(g.start, g.end, g.bars) for g in gaps] == [
        (pd.Timestamp("2020-01-02 02:01", tz="UTC"), pd.Timestamp("2020-01-02 02:05", tz="UTC"), 5)
    ]
    # The provider fills it from a per-period folder.
    root = tmp_path / "files" / "1m"
    root.mkdir(parents=True)
    bars.drop(columns="symbol").to_csv(root / "AAA.SH.csv", index=False)
    svc = MarketDataService(store, FileProvider(tmp_path / "files"), cal)
    got = svc.get_bars("AAA.SH", "2020-01-02", "2020-01-02", period="1m")
    assert len(got) == 240


def test_weekly_gap_detection_is_refused_clearly() -> None:
    svc = MarketDataService(BarStore(":memory:"))
    with pytest.raises(CalendarError, match="1w"):
        svc.find_gaps("AAA.SH", "2020-01-01", "2020-03-01", period="1w")


def test_file_provider_errors(source_dir: Path) -> None:
    prov = FileProvider(source_dir)
    lo, hi = pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-31")
    with pytest.raises(ProviderError, match="no file for 'ZZZ.SH'"):
        prov.fetch_bars("ZZZ.SH", "1d", lo, hi, "none")
    with pytest.raises(ProviderError, match="adjust='front'"):
        prov.fetch_bars("AAA.SH", "1d", lo, hi, "front")
    assert (
        FileProvider(source_dir, missing_ok=True).fetch_bars("ZZZ.SH", "1d", lo, hi, "none").empty
    )
    assert list(empty_bars().columns)[:2] == ["symbol", "datetime"]
    with pytest.raises(ValueError, match="not a folder"):
        FileProvider(source_dir / "nope")


# ---------------------------------------------------------------------- property
WINDOW = [d.date() for d in pd.date_range("2021-03-01", "2021-05-31")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored=st.sets(st.sampled_from(WINDOW)),
    absent=st.sets(st.sampled_from(WINDOW), max_size=10),
    holidays=st.sets(st.sampled_from(WINDOW), max_size=8),
    bounds=st.tuples(st.sampled_from(WINDOW), st.sampled_from(WINDOW)).map(sorted),
)
def test_gaps_are_exactly_calendar_days_minus_stored_days(
    stored: set[dt.date], absent: set[dt.date], holidays: set[dt.date], bounds: list[dt.date]
) -> None:
    start, end = bounds
    store = BarStore(":memory:")
    stored_days = sorted(stored)
    if stored_days:
        n = len(stored_days)
        close = np.linspace(10, 11, n)
        store.write(
            pd.DataFrame(
                {
                    "symbol": "AAA.SH",
                    "datetime": pd.to_datetime(stored_days),
                    "open": close,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": np.ones(n),
                }
            ),
            period="1d",
        )
    only_absent = sorted(absent - stored)
    if only_absent:
        store.write_with_absent(
            None,
            pd.DataFrame({"symbol": "AAA.SH", "datetime": pd.to_datetime(only_absent)}),
            period="1d",
            adjust="none",
            source="test",
        )
    svc = MarketDataService(store, None, WeekdayCalendar(holidays=holidays))

    # Independent oracle: walk the days one by one.
    calendar_days = []
    day = start
    while day <= end:
        if day.weekday() < 5 and day not in holidays:
            calendar_days.append(day)
        day += dt.timedelta(days=1)
    want = [d for d in calendar_days if d not in stored and d not in absent]

    missing = svc.missing("AAA.SH", start, end)["AAA.SH"]
    assert [pd.Timestamp(t).date() for t in missing] == want
    gaps = svc.find_gaps("AAA.SH", start, end)
    covered = []
    for g in gaps:
        run = [d for d in calendar_days if g.start.date() <= d <= g.end.date()]
        assert len(run) == g.bars
        assert all(d in want for d in run)  # a run holds only missing days...
        covered += run
    assert covered == want  # ...and the runs cover all of them
    # Runs are maximal: something present lies between two runs.
    for a, b in zip(gaps, gaps[1:], strict=False):
        between = [d for d in calendar_days if a.end.date() < d < b.start.date()]
        assert between and not any(d in want for d in between)


def test_exchange_calendar_adapter_follows_the_library_contract() -> None:
    class StubXshg:
        """The part of exchange_calendars' API the adapter uses."""

        first_session = pd.Timestamp("2020-01-02")
        last_session = pd.Timestamp("2020-12-31")

        def sessions_in_range(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
            days = pd.bdate_range(start, end)
            return days[~days.isin(pd.to_datetime(["2020-01-24", "2020-01-27"]))]

    from bt_data import ExchangeCalendar

    cal = ExchangeCalendar(StubXshg())
    got = cal.sessions(dt.date(2020, 1, 20), dt.date(2020, 1, 31))
    assert [str(d) for d in got] == [
        "2020-01-20",
        "2020-01-21",
        "2020-01-22",
        "2020-01-23",
        "2020-01-28",
        "2020-01-29",
        "2020-01-30",
        "2020-01-31",
    ]
    with pytest.raises(CalendarError, match="span"):
        cal.sessions(dt.date(2019, 12, 1), dt.date(2020, 1, 31))
    store = BarStore(":memory:")
    gaps = MarketDataService(store, None, cal).find_gaps("AAA.SH", "2020-01-20", "2020-01-31")
    assert [g.bars for g in gaps] == [8]
    with pytest.raises(TypeError, match="sessions_in_range"):
        ExchangeCalendar(object())
