"""The closed sets of bar periods and adjustment (dividend) types.

Periods are case-sensitive: ``"1m"`` is one minute, ``"1mon"`` is one month, and ``"1M"`` is an
error (the original system lower-cased table names so that month and minute bars collided).
The names follow xtdata's period names; ``tick`` is not a bar period and is not stored.
"""

from __future__ import annotations

from typing import Final

from .errors import UnknownAdjustError, UnknownPeriodError

__all__ = [
    "PERIODS",
    "INTRADAY_PERIODS",
    "DAILY_OR_LONGER",
    "ADJUSTS",
    "PERIOD_MINUTES",
    "check_period",
    "check_adjust",
    "is_intraday",
]

#: Intraday bar periods and their length in minutes.
PERIOD_MINUTES: Final[dict[str, int]] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}
INTRADAY_PERIODS: Final[tuple[str, ...]] = tuple(PERIOD_MINUTES)
#: Periods whose bars are labelled by a trading date (stored at 00:00 UTC of that date).
DAILY_OR_LONGER: Final[tuple[str, ...]] = ("1d", "1w", "1mon", "1q", "1hy", "1y")
#: Every period a :class:`~bt_data.BarStore` accepts.
PERIODS: Final[tuple[str, ...]] = INTRADAY_PERIODS + DAILY_OR_LONGER
#: Adjustment types, named as xtdata's ``dividend_type``.
ADJUSTS: Final[tuple[str, ...]] = ("none", "front", "back", "front_ratio", "back_ratio")


def check_period(period: str) -> str:
    """Return ``period`` unchanged if it is one of :data:`PERIODS`, else raise.

    Raises:
        UnknownPeriodError: naming the bad value and the accepted ones.
    """
    if not isinstance(period, str) or period not in PERIODS:
        hint = ""
        if isinstance(period, str) and period.lower() in {p.lower() for p in PERIODS}:
            hint = " (periods are case-sensitive: '1m' is a minute, '1mon' is a month)"
        raise UnknownPeriodError(
            f"unknown period {period!r}{hint}; expected one of {', '.join(PERIODS)}"
        )
    return period


def check_adjust(adjust: str) -> str:
    """Return ``adjust`` unchanged if it is one of :data:`ADJUSTS`, else raise.

    Raises:
        UnknownAdjustError: naming the bad value and the accepted ones.
    """
    if not isinstance(adjust, str) or adjust not in ADJUSTS:
        raise UnknownAdjustError(
            f"unknown adjust type {adjust!r}; expected one of {', '.join(ADJUSTS)}"
        )
    return adjust


def is_intraday(period: str) -> bool:
    """True for minute/hour periods whose timestamps are instants, False for date-labelled ones."""
    return check_period(period) in PERIOD_MINUTES
