"""Periods per year from the spacing of a datetime index."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bt_analysis._validation import AnalysisInputError, check_datetime_index, ns_stamps

__all__ = ["infer_periods_per_year", "per_period_rate"]

_NS_PER_DAY = 86_400 * 1_000_000_000
# A market that trades every calendar day has bars on (almost) every date of its span; a
# five-day market at most 5/7 ~ 0.71 of them. The cut-off sits between the two.
_CALENDAR_COVERAGE_24_7 = 0.85
_MIN_SPAN_FOR_COVERAGE_DAYS = 14


def _days_per_year(n_dates: int, span_days: int, any_weekend: bool) -> float:
    """252 for markets closed at weekends, 365 for markets that trade every day (crypto),
    from the number of distinct dates, the calendar days they span and whether one of them
    is a Saturday or Sunday."""
    if span_days >= _MIN_SPAN_FOR_COVERAGE_DAYS:
        # Coverage of the calendar, not the weekday of each bar: a market whose Monday session
        # falls on Sunday in UTC (Sydney, Auckland) still covers only ~5/7 of the dates.
        coverage = n_dates / span_days
        return 365.0 if coverage > _CALENDAR_COVERAGE_24_7 else 252.0
    # Too short to measure coverage: any bar on a Saturday or Sunday means a 7-day market.
    return 365.0 if any_weekend else 252.0


def _trading_days_per_year(index: pd.DatetimeIndex) -> float:
    """:func:`_days_per_year` of the index's dates in its own time zone."""
    dates = index.normalize().unique()
    return _days_per_year(
        len(dates), (dates[-1] - dates[0]).days + 1, bool((dates.day_of_week >= 5).any())
    )


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Infer how many bars make a year from the spacing of ``index``.

    Rule (``d`` = median spacing between consecutive timestamps, in days):

    * ``d < 4`` (daily or intraday bars): ``bars_per_day * days_per_year``, where
      ``bars_per_day`` is the median number of bars per calendar date found in the data (1 for
      daily bars, 240 for A-share one-minute bars, 4 for A-share hourly bars, 1440 for 24/7
      minute bars) and ``days_per_year`` is 365 when the market trades every day (bars on more
      than 85 % of the calendar dates of a span of at least 14 days; for shorter spans, any bar
      on a Saturday or Sunday) and 252 otherwise. So daily weekday bars give 252, A-share
      minute bars 240 * 252 = 60480, daily crypto bars 365.
    * ``4 <= d < 10``: weekly, 52.   ``10 <= d < 45``: monthly, 12.   ``45 <= d < 135``:
      quarterly, 4.   ``135 <= d < 250``: half-yearly, 2.   ``250 <= d < 400``: yearly, 1.

    Calendar dates are taken in the index's own time zone (UTC for engine output).

    Raises:
        AnalysisInputError (a ValueError): fewer than 2 timestamps, NaT, unsorted or duplicate
            timestamps, intraday bars all on one date, or a median spacing of 400 days or more.
    """
    check_datetime_index(index, "index")
    if len(index) < 2:
        raise AnalysisInputError(
            f"cannot infer periods per year from {len(index)} timestamp(s); need at least 2 "
            "(or pass periods_per_year explicitly)"
        )
    stamps = ns_stamps(index)
    # The spacings are a fresh array: numpy may partition it in place rather than copy it.
    spacing_days = float(np.median(np.diff(stamps), overwrite_input=True)) / _NS_PER_DAY
    if spacing_days < 4:
        utc = index.tz is None or str(index.tz) == "UTC"
        if utc:
            # Naive or UTC: a date is a whole number of days since the epoch, and the
            # (sorted) index gives its dates in order, so runs of equal day numbers are the
            # bars of each date -- the same counts as grouping the normalised index, without
            # building it (a minute-bar run has a million bars).
            days = stamps // _NS_PER_DAY
            firsts = np.flatnonzero(days[1:] != days[:-1]) + 1
            per_date = np.diff(np.concatenate(([0], firsts, [days.size])))
            n_dates = per_date.size
        else:
            per_date = pd.Series(1, index=index.normalize()).groupby(level=0).size().to_numpy()
            n_dates = len(per_date)
        if n_dates < 2:
            # One date only: how many bars make a session is unknowable from part of one day.
            raise AnalysisInputError(
                f"cannot infer periods per year from intraday bars on a single date "
                f"({index[0].date()}); pass periods_per_year explicitly"
            )
        bars_per_day = float(np.median(per_date))
        if utc:
            dates = np.concatenate((days[:1], days[firsts]))
            return bars_per_day * _days_per_year(
                n_dates, int(dates[-1] - dates[0]) + 1, bool(((dates + 3) % 7 >= 5).any())
            )
        return bars_per_day * _trading_days_per_year(index)
    for upper, periods in ((10, 52.0), (45, 12.0), (135, 4.0), (250, 2.0), (400, 1.0)):
        if spacing_days < upper:
            return periods
    raise AnalysisInputError(
        f"cannot infer periods per year: median bar spacing is {spacing_days:.1f} days "
        "(more than a year); pass periods_per_year explicitly"
    )


def per_period_rate(annual_rate: float, periods_per_year: float) -> float:
    """Convert an annual rate to the per-bar rate that compounds to it:
    ``(1 + annual_rate) ** (1 / periods_per_year) - 1`` (the convention empyrical's
    ``omega_ratio`` uses for its required return)."""
    if not np.isfinite(annual_rate) or annual_rate <= -1:
        raise AnalysisInputError(f"annual rate must be finite and > -1, got {annual_rate}")
    if not np.isfinite(periods_per_year) or periods_per_year <= 0:
        raise AnalysisInputError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    if annual_rate == 0:
        return 0.0
    return float((1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0)
