"""Drawdown segments and durations: hand computations and a brute-force cross-check.

The duration convention is ours (empyrical has none): peak = last bar at the running maximum,
recovery = first later bar back at or above the peak; flat equity at the peak is no drawdown.
"""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import bt_analysis as ba


def curve(values: list[float], start: str = "2024-01-01", freq: str = "D") -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    return pd.Series(values, index=index, dtype=np.float64)


def test_flat_equity_at_a_peak_is_not_a_drawdown() -> None:
    # Flat at 100 for three bars, then a dip and a recovery: the drawdown starts at the LAST
    # bar at 100 (day 2), not the first (day 0) as the original system counted.
    eq = curve([100, 100, 100, 90, 95, 100, 100, 100])
    seg = ba.drawdown_segments(eq)
    assert len(seg) == 1
    row = seg.iloc[0]
    assert row["peak"] == eq.index[2]
    assert row["valley"] == eq.index[3]
    assert row["recovery"] == eq.index[5]
    assert row["depth"] == pytest.approx(-0.10)
    assert row["length_bars"] == 3  # day 2 -> day 5
    assert row["length_days"] == 3.0
    assert row["decline_bars"] == 1
    assert bool(row["recovered"])
    m = ba.performance_metrics(eq, periods_per_year=365)
    assert m["max_drawdown_duration_bars"] == 3
    assert m["max_drawdown_duration_days"] == 3.0
    assert m["max_drawdown"] == pytest.approx(-0.10)


def test_constant_equity_has_no_drawdown() -> None:
    eq = curve([100.0] * 10)
    seg = ba.drawdown_segments(eq)
    assert seg.empty
    assert list(seg.columns) == [
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
    assert str(seg["peak"].dtype) == str(eq.index.dtype)
    m = ba.performance_metrics(eq, periods_per_year=252)
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0
    assert m["max_drawdown_peak"] is None


def test_flat_below_the_peak_is_still_a_drawdown_and_open_drawdown_runs_to_the_end() -> None:
    # Weekday bars: Fri 2024-01-05 is the peak; the weekend does not count as bars but counts
    # as calendar days.
    index = pd.bdate_range("2024-01-04", periods=9, tz="UTC")
    eq = pd.Series([100, 110, 99, 99, 99, 112, 112, 100, 101], index=index, dtype=float)
    seg = ba.drawdown_segments(eq)
    assert len(seg) == 2
    first, second = seg.iloc[0], seg.iloc[1]
    assert first["peak"] == index[1] and first["recovery"] == index[5]
    assert first["length_bars"] == 4
    assert first["length_days"] == (index[5] - index[1]).days == 6
    assert first["depth"] == pytest.approx(99 / 110 - 1)
    assert second["peak"] == index[6]
    assert second["valley"] == index[7]
    assert pd.isna(second["recovery"]) and not second["recovered"]
    assert second["length_bars"] == 2  # to the last bar
    m = ba.performance_metrics(eq, periods_per_year=252)
    assert m["max_drawdown_duration_bars"] == 4
    assert m["max_drawdown_duration_days"] == 6.0
    # The longest drawdown (first) is not the deepest (second: 112 -> 100 is -10.7 %, deeper
    # than 110 -> 99 at -10 %): the duration keys describe the longest, the peak/valley/
    # recovery keys the deepest, which is still open.
    assert m["max_drawdown"] == pytest.approx(100 / 112 - 1)
    assert m["max_drawdown_peak"] == index[6].isoformat()
    assert m["max_drawdown_valley"] == index[7].isoformat()
    assert m["max_drawdown_recovery"] is None


def test_underwater_series() -> None:
    eq = curve([100, 120, 90, 120, 130])
    uw = ba.underwater(eq)
    np.testing.assert_allclose(uw.to_numpy(), [0, 0, -0.25, 0, 0])
    assert uw.index.equals(eq.index)


def brute_force_segments(values: np.ndarray) -> list[tuple[int, int, int | None]]:
    """(peak, valley, recovery) positions by walking the curve bar by bar."""
    out: list[tuple[int, int, int | None]] = []
    peak_pos, peak_val = 0, values[0]
    in_dd = False
    valley = 0
    for i in range(1, len(values)):
        v = values[i]
        if in_dd:
            if v >= peak_val:
                out.append((peak_pos, valley, i))
                in_dd = False
                peak_pos, peak_val = i, v
            elif v < values[valley]:
                valley = i
        elif v >= peak_val:
            peak_pos, peak_val = i, v
        else:
            in_dd, valley = True, i
    if in_dd:
        out.append((peak_pos, valley, None))
    return out


@settings(max_examples=150, deadline=None)
@given(steps=hst.lists(hst.sampled_from([-2, -1, 0, 0, 1, 2]), min_size=1, max_size=60))
def test_segments_match_a_bar_by_bar_walk_and_empyrical_depth(steps: list[int]) -> None:
    # Integer steps on a positive level make ties (back exactly at the peak) common.
    values = 100.0 + np.cumsum(np.concatenate(([0], steps))).astype(np.float64)
    eq = curve(list(values))
    seg = ba.drawdown_segments(eq)
    expected = brute_force_segments(values)
    got = [
        (
            eq.index.get_loc(r.peak),
            eq.index.get_loc(r.valley),
            None if pd.isna(r.recovery) else eq.index.get_loc(r.recovery),
        )
        for r in seg.itertuples()
    ]
    assert got == expected
    returns = ba.returns_from_equity(eq).to_numpy()
    mdd = float(seg["depth"].min()) if len(seg) else 0.0
    assert mdd == pytest.approx(ep.max_drawdown(returns), abs=1e-12)
    for r in seg.itertuples():
        end = eq.index.get_loc(r.recovery) if r.recovered else len(eq) - 1
        assert r.length_bars == end - eq.index.get_loc(r.peak)


def test_bad_equity_is_rejected_with_the_timestamp() -> None:
    eq = curve([100, np.nan, 101])
    with pytest.raises(ValueError, match=r"non-finite.*2024-01-02"):
        ba.drawdown_segments(eq)
    with pytest.raises(ValueError, match=r"strictly positive.*2024-01-03"):
        ba.drawdown_segments(curve([100, 50, 0]))
    with pytest.raises(ValueError, match="DatetimeIndex"):
        ba.drawdown_segments(pd.Series([1.0, 2.0]))
    with pytest.raises(ValueError, match="empty"):
        ba.drawdown_segments(pd.Series([], dtype=float, index=pd.DatetimeIndex([])))
