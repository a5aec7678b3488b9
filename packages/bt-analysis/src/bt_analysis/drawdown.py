"""Drawdowns of an equity curve: the underwater series and the table of drawdown segments.

Convention (deliberately not empyrical's, which has no duration): a drawdown starts at the
*last* bar at which equity stood at its running maximum (the peak) and ends at the first later
bar whose equity is back at or above that peak (the recovery). Equity that stays flat at its
peak is therefore never a drawdown; equity that stays flat *below* the peak is. A drawdown
still open at the last bar has no recovery; its length runs to the last bar.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from bt_analysis._validation import check_equity, ns_stamps

__all__ = ["SEGMENT_COLUMNS", "drawdown_segments", "underwater"]

_NS_PER_DAY = 86_400e9

SEGMENT_COLUMNS = [
    "peak",
    "valley",
    "recovery",
    "peak_equity",
    "valley_equity",
    "depth",
    "length_bars",
    "length_days",
    "decline_bars",
    "recovered",
]


def underwater(equity: pd.Series) -> pd.Series:
    """Drawdown per bar: ``equity / running_max(equity) - 1`` (0 at a new high, negative below).

    ``equity`` must be a Series on a strictly increasing DatetimeIndex with finite, strictly
    positive values (else :class:`bt_analysis.AnalysisInputError`).
    """
    series, values = check_equity(equity)
    peaks = np.maximum.accumulate(values)
    return pd.Series(values / peaks - 1.0, index=series.index, name="drawdown")


def _empty_segments(index: pd.DatetimeIndex) -> pd.DataFrame:
    times = pd.DatetimeIndex([], dtype=str(index.dtype))
    return pd.DataFrame(
        {
            "peak": times,
            "valley": times,
            "recovery": times,
            "peak_equity": np.empty(0),
            "valley_equity": np.empty(0),
            "depth": np.empty(0),
            "length_bars": np.empty(0, dtype=np.int64),
            "length_days": np.empty(0),
            "decline_bars": np.empty(0, dtype=np.int64),
            "recovered": np.empty(0, dtype=bool),
        }
    )


def drawdown_segments(equity: pd.Series) -> pd.DataFrame:
    """One row per drawdown of ``equity``, in chronological order.

    Columns:
        peak, valley, recovery: timestamps (index dtype); ``recovery`` is NaT while the
            drawdown is still open at the last bar.
        peak_equity, valley_equity: equity at the peak and at the lowest bar (first lowest).
        depth: ``valley_equity / peak_equity - 1`` (negative fraction).
        length_bars: bars from peak to recovery (or to the last bar if not recovered).
        length_days: the same span in days (float, calendar time).
        decline_bars: bars from peak to valley.
        recovered: whether the equity got back to the peak.

    An equity curve that never falls gives an empty table with these columns. The most
    negative ``depth`` equals :func:`bt_analysis.stats.max_drawdown` of the curve's returns.
    """
    series, values = check_equity(equity)
    index = cast(pd.DatetimeIndex, series.index)
    n = values.size
    peaks = np.maximum.accumulate(values)
    below = values < peaks
    # Runs of consecutive underwater bars: starts where below turns on, ends where it turns off.
    edges = np.diff(np.concatenate(([0], below.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # inclusive last underwater bar
    if starts.size == 0:
        return _empty_segments(index)
    # Vectorised per segment (a minute-bar run can have tens of thousands of drawdowns).
    under = np.flatnonzero(below)  # positions of underwater bars, grouped by segment
    segment_of = np.searchsorted(starts, under, side="right") - 1
    segment_min = np.minimum.reduceat(values[under], np.searchsorted(under, starts))
    at_min = values[under] == segment_min[segment_of]
    first_min = np.unique(segment_of[at_min], return_index=True)[1]
    valley_pos = under[at_min][first_min]  # first lowest bar of each segment
    peak_pos = starts - 1  # bar 0 is never underwater, so s >= 1 and s - 1 is at the peak
    recovered = ends + 1 < n
    end_pos = np.where(recovered, ends + 1, n - 1)
    peak_time = index[peak_pos]
    stamps = ns_stamps(index)
    return pd.DataFrame(
        {
            "peak": peak_time,
            "valley": index[valley_pos],
            "recovery": index[end_pos].where(recovered),
            "peak_equity": values[peak_pos],
            "valley_equity": values[valley_pos],
            "depth": values[valley_pos] / values[peak_pos] - 1.0,
            "length_bars": end_pos - peak_pos,
            "length_days": (stamps[end_pos] - stamps[peak_pos]) / _NS_PER_DAY,
            "decline_bars": valley_pos - peak_pos,
            "recovered": recovered,
        }
    )
