"""Input checks shared by the metric, drawdown and report functions.

Every check raises :class:`AnalysisInputError` (a ``ValueError``) whose message names the
argument and, where there is one, the offending timestamp or position. Nothing is repaired
silently: a NaN equity value or an unsorted index is an error, never dropped or re-sorted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "AnalysisInputError",
    "check_datetime_index",
    "check_equity",
    "check_series_values",
    "ns_stamps",
]


class AnalysisInputError(ValueError):
    """Bad input to a bt-analysis function (wrong type, NaN, unsorted index, missing column...)."""


def check_datetime_index(index: object, name: str) -> pd.DatetimeIndex:
    """Return ``index`` if it is a strictly increasing :class:`pandas.DatetimeIndex` without NaT.

    Raises :class:`AnalysisInputError` naming ``name`` and the first offending position.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise AnalysisInputError(
            f"{name} must be indexed by a pandas DatetimeIndex, got {type(index).__name__}"
        )
    if index.hasnans:
        pos = int(np.flatnonzero(index.isna())[0])
        raise AnalysisInputError(f"{name} index has a missing timestamp (NaT) at position {pos}")
    # pandas caches both flags on the index (one pass, then free: a sweep checks the same
    # index once per parameter set); the position of a fault needs the differences.
    if len(index) > 1 and not (index.is_monotonic_increasing and index.is_unique):
        stamps = ns_stamps(index)
        bad = np.flatnonzero(np.diff(stamps) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            kind = "duplicate" if stamps[i] == stamps[i - 1] else "unsorted"
            raise AnalysisInputError(
                f"{name} index must be strictly increasing: {kind} timestamp {index[i]} at "
                f"position {i} follows {index[i - 1]}"
            )
    return index


def ns_stamps(index: pd.DatetimeIndex) -> np.ndarray:
    """The timestamps as int64 nanoseconds (a view when the index is in ns already, where
    ``as_unit("ns")`` would copy)."""
    if getattr(index, "unit", "ns") == "ns":
        return index.asi8
    return index.as_unit("ns").asi8


def bad_value(
    name: str, value: float, at: object, pos: int, *, positive: bool = False
) -> AnalysisInputError:
    """The error for the first value of ``name`` (at label ``at``, position ``pos``) that is
    not finite, or not > 0 (``positive``) / >= 0."""
    if not math.isfinite(value):
        return AnalysisInputError(
            f"{name} has a non-finite value ({value}) at {at} (position {pos})"
        )
    if positive:
        return AnalysisInputError(
            f"{name} must be strictly positive (percentage returns and drawdowns are "
            f"undefined otherwise), got {value} at {at} (position {pos})"
        )
    return AnalysisInputError(f"{name} must be >= 0, got {value} at {at} (position {pos})")


def check_series_values(
    series: pd.Series, name: str, *, positive: bool = False, non_negative: bool = False
) -> np.ndarray:
    """Return the values of ``series`` as float64, rejecting NaN/inf and (optionally) signs.

    ``positive`` requires every value > 0; ``non_negative`` requires every value >= 0.
    """
    try:
        if series.dtype == np.float64:
            # Missing is NaN already: the values themselves, not a filled copy (callers
            # only read them).
            values = series.to_numpy()
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError(f"{name} must hold numbers, got dtype {series.dtype}") from exc
    # min and max answer every check without a mask the size of the series (min is NaN when
    # a value is): a sweep validates each set's curves on every core at once.
    lo, hi = (float(values.min()), float(values.max())) if values.size else (1.0, 1.0)
    bad = None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = ~np.isfinite(values)
    elif positive and not lo > 0:
        bad = values <= 0
    elif non_negative and not lo >= 0:
        bad = values < 0
    if bad is not None:
        pos = int(np.flatnonzero(bad)[0])
        raise bad_value(name, float(values[pos]), series.index[pos], pos, positive=positive)
    return values


def check_equity(equity: object, name: str = "equity") -> tuple[pd.Series, np.ndarray]:
    """Validate an equity curve: a non-empty Series on a strictly increasing DatetimeIndex with
    finite, strictly positive values. Returns the series and its float64 values."""
    if not isinstance(equity, pd.Series):
        raise AnalysisInputError(
            f"{name} must be a pandas Series indexed by datetime, got {type(equity).__name__}"
        )
    if len(equity) == 0:
        raise AnalysisInputError(f"{name} is empty")
    check_datetime_index(equity.index, name)
    values = check_series_values(equity, name, positive=True)
    return equity, values
