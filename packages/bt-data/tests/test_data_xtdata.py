"""XtDataProvider against a fake ``xtquant.xtdata`` that follows the documented contract."""

from __future__ import annotations

import datetime as dt
import sys
import types
from typing import Any

import pandas as pd
import pytest

from bt_data import (
    ADJUSTS,
    BarStore,
    MarketDataService,
    ProviderError,
    ProviderUnavailableError,
    XtDataProvider,
)

# The fake module (conftest.FakeXtData); conftest is not importable under importlib mode.
FakeXtData = Any
DAYS = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2020-01-02", "2020-01-31")]


def test_missing_xtquant_raises_a_helpful_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xtquant", None)  # makes the import fail like on Linux
    prov = XtDataProvider()
    with pytest.raises(ProviderUnavailableError, match="Windows only.*MiniQMT") as info:
        prov.fetch_bars(
            "600000.SH", "1d", pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03"), "none"
        )
    assert isinstance(info.value, ImportError)


def test_lazy_import_through_sys_modules(
    monkeypatch: pytest.MonkeyPatch, fake_xt: FakeXtData
) -> None:
    pkg = types.ModuleType("xtquant")
    pkg.xtdata = fake_xt  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xtquant", pkg)
    monkeypatch.setitem(sys.modules, "xtquant.xtdata", fake_xt)
    fake_xt.add_daily("600000.SH", DAYS)
    prov = XtDataProvider()
    prov.prefetch(["600000.SH"], "1d", pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-31"))
    got = prov.fetch_bars(
        "600000.SH", "1d", pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-31"), "none"
    )
    assert len(got) == len(DAYS)


def test_daily_conversion_fields_and_request_shape(fake_xt: FakeXtData) -> None:
    fake_xt.add_daily("600000.SH", DAYS, suspended=("2020-01-08",))
    fake_xt.downloaded.add(("600000.SH", "1d"))
    prov = XtDataProvider(fake_xt)
    got = prov.fetch_bars(
        "600000.SH", "1d", pd.Timestamp("2020-01-06"), pd.Timestamp("2020-01-10"), "none"
    )
    # Beijing-midnight epoch ms becomes the trading date at 00:00 UTC.
    assert got["datetime"].tolist() == [
        pd.Timestamp(d, tz="UTC")
        for d in ["2020-01-06", "2020-01-07", "2020-01-08", "2020-01-09", "2020-01-10"]
    ]
    assert str(got["datetime"].dtype) == "datetime64[ns, UTC]"
    raw = fake_xt.server[("600000.SH", "1d")].loc["20200106":"20200110"]
    assert got["amount"].tolist() == raw["amount"].tolist()
    assert got["close"].tolist() == raw["close"].tolist()
    assert got["pre_close"].tolist() == raw["preClose"].tolist()
    assert got["suspend_flag"].tolist() == [0, 0, 1, 0, 0]
    name, kwargs = fake_xt.calls[-1]
    assert name == "get_market_data_ex"
    assert kwargs["start_time"] == "20200106" and kwargs["end_time"] == "20200110"
    assert kwargs["fill_data"] is False and kwargs["count"] == -1
    assert {"time", "amount", "suspendFlag", "openInterest", "preClose"} <= set(
        kwargs["field_list"]
    )


@pytest.mark.parametrize("adjust", ADJUSTS)
def test_every_dividend_type_is_passed_through(fake_xt: FakeXtData, adjust: str) -> None:
    fake_xt.add_daily("600000.SH", DAYS)
    fake_xt.downloaded.add(("600000.SH", "1d"))
    prov = XtDataProvider(fake_xt)
    lo, hi = pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-31")
    got = prov.fetch_bars("600000.SH", "1d", lo, hi, adjust)
    raw = fake_xt.server[("600000.SH", "1d")]["close"].to_numpy()
    assert got["close"].tolist() == pytest.approx(list(raw * fake_xt.factors[adjust]))
    assert fake_xt.calls[-1][1]["dividend_type"] == adjust


def test_minute_bars_use_utc_instants_and_local_bounds(fake_xt: FakeXtData) -> None:
    fake_xt.add_minutes("600000.SH", ["2020-01-02 09:31", "2020-01-02 09:32", "2020-01-02 13:01"])
    fake_xt.downloaded.add(("600000.SH", "1m"))
    prov = XtDataProvider(fake_xt)
    got = prov.fetch_bars(
        "600000.SH",
        "1m",
        pd.Timestamp("2020-01-02 01:31"),
        pd.Timestamp("2020-01-02 01:32"),
        "none",
    )
    assert got["datetime"].tolist() == [
        pd.Timestamp("2020-01-02 01:31", tz="UTC"),
        pd.Timestamp("2020-01-02 01:32", tz="UTC"),
    ]
    kwargs = fake_xt.calls[-1][1]
    assert (kwargs["start_time"], kwargs["end_time"]) == ("20200102093100", "20200102093200")


def test_empty_answers_and_errors(fake_xt: FakeXtData) -> None:
    prov = XtDataProvider(fake_xt)
    lo, hi = pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-31")
    assert prov.fetch_bars("999999.SH", "1d", lo, hi, "none").empty  # unknown symbol
    fake_xt.add_daily("600000.SH", DAYS)
    assert prov.fetch_bars("600000.SH", "1d", lo, hi, "none").empty  # not downloaded yet
    fake_xt.fail.add("600000.SH")
    with pytest.raises(ProviderError, match="600000.SH.*no connection"):
        prov.fetch_bars("600000.SH", "1d", lo, hi, "none")
    with pytest.raises(ProviderError, match="download_history_data2 failed"):
        prov.prefetch(["600000.SH"], "1d", lo, hi)
    assert prov.trading_dates("SH", dt.date(2020, 1, 1), dt.date(2020, 1, 31)) is None


def test_trading_dates_convert_epoch_ms_to_local_dates(fake_xt: FakeXtData) -> None:
    fake_xt.calendar["SH"] = [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 6)]
    prov = XtDataProvider(fake_xt)
    assert prov.trading_dates("SH", dt.date(2020, 1, 1), dt.date(2020, 1, 5)) == [
        dt.date(2020, 1, 2),
        dt.date(2020, 1, 3),
    ]


def test_service_with_xtdata_partial_data_no_fabrication_and_progress(fake_xt: FakeXtData) -> None:
    # Exchange calendar: all January weekdays but the 1st; 600000.SH suspended on the 15th (no
    # bar served) and only listed from the 6th; 000001.SZ complete.
    cal = [d.date() for d in pd.bdate_range("2020-01-02", "2020-01-31")]
    fake_xt.calendar["SH"] = cal
    fake_xt.calendar["SZ"] = cal
    sh_days = [
        d.strftime("%Y-%m-%d")
        for d in cal
        if d >= dt.date(2020, 1, 6) and d != dt.date(2020, 1, 15)
    ]
    fake_xt.add_daily("600000.SH", sh_days)
    fake_xt.add_daily("000001.SZ", [d.strftime("%Y-%m-%d") for d in cal], seed=3)
    events: list[tuple[int, int, str]] = []
    store = BarStore(":memory:")
    svc = MarketDataService(
        store, XtDataProvider(fake_xt), progress=lambda d, t, m: events.append((d, t, m))
    )
    got = svc.get_bars(["600000.SH", "000001.SZ"], "2020-01-01", "2020-01-31")
    sh = got[got["symbol"] == "600000.SH"]["datetime"].dt.date.tolist()
    assert sh == [dt.date.fromisoformat(d) for d in sh_days]  # nothing invented
    assert len(got[got["symbol"] == "000001.SZ"]) == len(cal)
    # The provider's calendar was used (no request for the 1st, a holiday) ...
    assert any(name == "get_trading_dates" for name, _ in fake_xt.calls)
    # ... one batched download drove the progress callback ...
    downloads = [k for n, k in fake_xt.calls if n == "download_history_data2"]
    assert len(downloads) == 1 and sorted(downloads[0]["stock_list"]) == ["000001.SZ", "600000.SH"]
    assert ("download" in events[0][2]) and events[1][:2] == (2, 2)
    # ... and the suspension and pre-listing days are remembered, not re-asked.
    absent = store.absent("600000.SH")["datetime"].dt.date.tolist()
    assert absent == [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 15)]
    before = len(fake_xt.calls)
    svc.get_bars(["600000.SH", "000001.SZ"], "2020-01-01", "2020-01-31")
    assert [n for n, _ in fake_xt.calls[before:]] == []  # calendar cached, nothing missing
    # With fill_data=True xtdata would have invented a suspended bar on the 15th.
    invented = fake_xt.get_market_data_ex(
        ["time", "suspendFlag"], ["600000.SH"], "1d", "20200115", "20200115", fill_data=True
    )
    assert len(invented["600000.SH"]) == 1


def test_suspended_bar_served_by_xtdata_is_flagged(fake_xt: FakeXtData) -> None:
    fake_xt.add_daily("600000.SH", DAYS, suspended=("2020-01-08",))
    store = BarStore(":memory:")
    svc = MarketDataService(store, XtDataProvider(fake_xt))
    svc.backfill("600000.SH", "2020-01-02", "2020-01-31")
    got = store.read("600000.SH", extra=True)
    flagged = got.loc[got["suspend_flag"] == 1, "datetime"].dt.date.tolist()
    assert flagged == [dt.date(2020, 1, 8)]
    assert got["suspend_flag"].notna().all()
