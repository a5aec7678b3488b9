"""Drawdowns of an equity curve: the underwater series and the table of drawdown segments.

Convention (deliberately not empyrical's, which has no duration): a drawdown starts at the
*last* bar at which equity stood at its running maximum (the peak) and ends at the first later
bar whose equity is back at or above that peak (the recovery). Equity that stays flat at its
peak is therefore never a drawdown; equity that stays flat *below* the peak is. A drawdown
still open at the last bar has no recovery; its length runs to the last bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bt_analysis._validation import check_equity

__all__ = ["drawdown_segments", "underwater"]

_DAY = pd.Timedelta(days=1)

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
    index = series.index
    n = values.size
    peaks = np.maximum.accumulate(values)
    below = values < peaks
    # Runs of consecutive underwater bars: starts where below turns on, ends where it turns off.
    edges = np.diff(np.concatenate(([0], below.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # inclusive last underwater bar
    rows = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        peak_pos = s - 1  # bar 0 is never underwater, so s >= 1 and s - 1 is at the peak
        valley_pos = s + int(np.argmin(values[s : e + 1]))
        recovered = e + 1 < n
        end_pos = e + 1 if recovered else n - 1
        rows.append(
            {
                "peak": index[peak_pos],
                "valley": index[valley_pos],
                "recovery": index[e + 1] if recovered else pd.NaT,
                "peak_equity": float(values[peak_pos]),
                "valley_equity": float(values[valley_pos]),
                "depth": float(values[valley_pos] / values[peak_pos] - 1.0),
                "length_bars": int(end_pos - peak_pos),
                "length_days": float((index[end_pos] - index[peak_pos]) / _DAY),
                "decline_bars": int(valley_pos - peak_pos),
                "recovered": bool(recovered),
            }
        )
    table = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    # Keep the index dtype (tz-aware UTC stays tz-aware) even for an empty or open-ended table.
    for col in ("peak", "valley", "recovery"):
        table[col] = pd.Series(
            pd.DatetimeIndex(table[col].tolist(), dtype=str(index.dtype)), index=table.index
        )
    return table.astype(
        {
            "peak_equity": "float64",
            "valley_equity": "float64",
            "depth": "float64",
            "length_bars": "int64",
            "length_days": "float64",
            "decline_bars": "int64",
            "recovered": "bool",
        }
    )
