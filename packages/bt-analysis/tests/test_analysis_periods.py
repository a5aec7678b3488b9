"""infer_periods_per_year: the documented rule on daily, weekly, monthly, intraday and 24/7 data."""

from __future__ import annotations

import pandas as pd
import pytest

import bt_analysis as ba


def a_share_minutes(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """240 one-minute bars per session (09:31-11:30, 13:01-15:00 Asia/Shanghai), in UTC."""
    stamps = []
    for day in days:
        morning = pd.date_range(day + pd.Timedelta("09:31:00"), periods=120, freq="min")
        afternoon = pd.date_range(day + pd.Timedelta("13:01:00"), periods=120, freq="min")
        stamps.append(morning.append(afternoon))
    local = stamps[0].append(stamps[1:])
    return local.tz_localize("Asia/Shanghai").tz_convert("UTC")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2020-01-01", periods=300, tz="UTC"), 252.0),
        (pd.bdate_range("2020-01-01", periods=300), 252.0),  # naive
        (pd.date_range("2020-01-01", periods=400, freq="D", tz="UTC"), 365.0),  # crypto daily
        (pd.date_range("2020-01-03", periods=100, freq="W-FRI"), 52.0),
        (pd.date_range("2020-01-31", periods=36, freq=pd.offsets.BMonthEnd()), 12.0),
        (pd.date_range("2020-03-31", periods=12, freq=pd.offsets.QuarterEnd()), 4.0),
        (pd.date_range("2000-12-31", periods=10, freq=pd.offsets.YearEnd()), 1.0),
        (a_share_minutes(pd.bdate_range("2024-01-02", periods=20)), 240.0 * 252),
        (
            pd.date_range("2024-01-01", periods=24 * 30, freq=pd.offsets.Hour(), tz="UTC"),
            24.0 * 365,
        ),
        (pd.date_range("2024-01-06", periods=1440 * 3, freq="min", tz="UTC"), 1440.0 * 365),
    ],
    ids=[
        "daily-utc",
        "daily-naive",
        "daily-24/7",
        "weekly",
        "monthly",
        "quarterly",
        "yearly",
        "a-share-minutes",
        "hourly-24/7",
        "minutes-24/7-short-span",
    ],
)
def test_inferred_periods(index: pd.DatetimeIndex, expected: float) -> None:
    assert ba.infer_periods_per_year(index) == expected


def test_weekday_market_shifted_onto_sunday_in_utc_is_still_252() -> None:
    """A market whose Monday session is Sunday in UTC (Sydney) covers ~5/7 of the calendar:
    the rule looks at calendar coverage, not at weekday names."""
    local = pd.bdate_range("2023-01-02", periods=200) + pd.Timedelta("10:00:00")
    utc = local.tz_localize("Australia/Sydney").tz_convert("UTC")
    assert (utc.day_of_week == 6).any()
    assert ba.infer_periods_per_year(utc) == 252.0


def test_daily_bars_with_holidays_are_252(sample_close: pd.Series) -> None:
    holidays = sample_close.index.delete([5, 6, 7, 50, 51, 200])
    assert ba.infer_periods_per_year(holidays) == 252.0


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (pd.DatetimeIndex([]), "need at least 2"),
        (pd.DatetimeIndex(["2020-01-01"]), "need at least 2"),
        (pd.DatetimeIndex(["2020-01-02", "2020-01-01", "2020-01-03"]), "unsorted"),
        (pd.DatetimeIndex(["2020-01-01", "2020-01-01", "2020-01-02"]), "duplicate"),
        (pd.DatetimeIndex(["2020-01-01", None, "2020-01-02"]), "NaT"),
        (pd.DatetimeIndex(["2000-01-01", "2003-01-01", "2006-01-01"]), "more than a year"),
        (pd.date_range("2024-01-02 09:31", periods=50, freq="min"), "single date"),
    ],
)
def test_cannot_infer_raises_value_error(index: pd.DatetimeIndex, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ba.infer_periods_per_year(index)


def test_not_a_datetime_index_raises() -> None:
    with pytest.raises(ValueError, match="DatetimeIndex"):
        ba.infer_periods_per_year(pd.RangeIndex(10))  # type: ignore[arg-type]


def test_per_period_rate_compounds_back_to_the_annual_rate() -> None:
    rate = ba.per_period_rate(0.05, 252)
    assert (1 + rate) ** 252 == pytest.approx(1.05, rel=1e-12)
    assert ba.per_period_rate(0.0, 12) == 0.0
    with pytest.raises(ValueError, match="> -1"):
        ba.per_period_rate(-1.0, 252)
    with pytest.raises(ValueError, match="periods_per_year"):
        ba.per_period_rate(0.02, 0)
