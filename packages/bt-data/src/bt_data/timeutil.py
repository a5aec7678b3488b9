"""Time conventions shared by the store, the service and the providers.

Internally a timestamp is a *naive* ``numpy.datetime64[ns]`` / ``pandas.Timestamp`` that means UTC.
Public reads convert it to tz-aware ``datetime64[ns, UTC]``.

* Intraday bars (``1m`` … ``1h``): the UTC instant of the bar label given by the source
  (for A-shares and xtdata the bar's *end* time, e.g. 09:31 Beijing = 01:31 UTC).
* Daily and longer bars: the trading date at 00:00 UTC. This is a date label, not an instant:
  the 2019-01-02 Shanghai session is stored as ``2019-01-02 00:00:00+00:00``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import TypeAlias

import numpy as np
import pandas as pd

__all__ = ["DateLike", "parse_bound", "check_tz", "to_utc_naive_index"]

#: Anything accepted as a range bound: ``"2020-01-02"``, ``"20200102"``, ``"2020-01-02 09:31"``,
#: ``datetime.date``, ``datetime.datetime``, ``pandas.Timestamp`` or ``numpy.datetime64``.
DateLike: TypeAlias = str | dt.date | dt.datetime | pd.Timestamp | np.datetime64

_DATE_ONLY = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}\s*$")
_ONE_US = pd.Timedelta(1, "us")


def parse_bound(value: DateLike | None, *, is_end: bool, name: str) -> pd.Timestamp | None:
    """Parse a range bound into a naive UTC ``pandas.Timestamp`` (microsecond resolution).

    Naive values mean UTC; tz-aware values are converted. A *date-only* value (a
    ``datetime.date`` or a string such as ``"2020-01-02"`` / ``"20200102"``) used as an end bound
    covers that whole UTC day, so ``end="2020-01-02"`` includes the day's intraday bars.
    Both ends of every range are inclusive.

    Raises:
        ValueError: naming ``name`` when the value cannot be parsed.
    """
    if value is None:
        return None
    date_only = (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and bool(_DATE_ONLY.match(value))
    )
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"parameter {name!r}: cannot parse {value!r} as a date/time") from exc
    if ts is pd.NaT:
        raise ValueError(f"parameter {name!r}: {value!r} is not a date/time")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    ts = ts.floor("us")
    if date_only and is_end:
        ts = ts.normalize() + pd.Timedelta(days=1) - _ONE_US
    return ts


def check_tz(tz: str, *, name: str = "tz") -> str:
    """Return ``tz`` if it is a valid IANA time-zone name, else raise ``ValueError`` naming it."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"parameter {name!r}: unknown time zone {tz!r}") from exc
    return tz


def to_utc_naive_index(values: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """``values`` as a naive-UTC ``datetime64[ns]`` numpy array (tz-aware input converted)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return np.asarray(idx.astype("datetime64[ns]"))
