"""performance_metrics computes its figures from shared intermediates, a block of the curve
at a time (bt_analysis._summary), and infers periods per year without normalising the index:
every figure must equal, bit for bit, what the public functions (stats.*, drawdown_segments)
and the pandas computation give, whatever the block size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import bt_analysis as ba
from bt_analysis import stats as st
from bt_analysis._summary import (
    _leaves,
    _percentile_of_sorted,
    _Smallest,
    _StreamSum,
    _tree_sum,
    drawdown_summary,
    equity_return_stats,
    return_stats,
)
from bt_analysis._validation import ns_stamps

RETURN_KEYS = (
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "omega",
    "tail_ratio",
    "var_95",
    "cvar_95",
    "skew",
    "kurtosis",
    "stability",
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _expected_returns(r: np.ndarray, ppy: float, rf: float) -> dict[str, float]:
    return {
        "cagr": st.cagr(r, ppy),
        "annual_volatility": st.annual_volatility(r, ppy),
        "sharpe": st.sharpe_ratio(r, ppy, rf),
        "sortino": st.sortino_ratio(r, ppy, rf),
        "calmar": st.calmar_ratio(r, ppy),
        "omega": st.omega_ratio(r, rf),
        "tail_ratio": st.tail_ratio(r),
        "var_95": st.value_at_risk(r, 0.05),
        "cvar_95": st.conditional_value_at_risk(r, 0.05),
        "skew": st.skew(r),
        "kurtosis": st.kurtosis(r),
        "stability": st.stability(r),
    }


#: Block sizes: the default (one block for short series) and small ones, so that the
#: hypothesis series of a few hundred returns cross many block boundaries.
BLOCKS = (128, 136, 1000)


def _check_returns(r: np.ndarray, ppy: float = 252.0, rf: float = 0.0) -> None:
    want = _expected_returns(r, ppy, rf)
    for block in (None, *BLOCKS):
        got = return_stats(r, ppy, rf) if block is None else return_stats(r, ppy, rf, block=block)
        assert set(got) == set(RETURN_KEYS)
        for key in RETURN_KEYS:
            assert _same(got[key], want[key]), (block, key, got[key], want[key])


def _check_drawdown(equity: pd.Series) -> None:
    seg = ba.drawdown_segments(equity)
    for block in (1, 2, 7, None):
        kw = {} if block is None else {"block": block}
        _check_drawdown_with(
            equity, seg, drawdown_summary(equity.to_numpy(), ns_stamps(equity.index), **kw)
        )


def _check_drawdown_with(equity: pd.Series, seg: pd.DataFrame, got: dict) -> None:
    if len(seg) == 0:
        assert got == {
            "depth": 0.0,
            "length_bars": 0,
            "length_days": 0.0,
            "peak": None,
            "valley": None,
            "recovery": None,
        }
        return
    deepest = seg.iloc[int(np.argmin(seg["depth"].to_numpy()))]
    assert _same(got["depth"], float(seg["depth"].min()))
    assert got["length_bars"] == int(seg["length_bars"].max())
    assert _same(got["length_days"], float(seg["length_days"].max()))
    index = equity.index
    assert index[got["peak"]] == deepest["peak"]
    assert index[got["valley"]] == deepest["valley"]
    if pd.isna(deepest["recovery"]):
        assert got["recovery"] is None
    else:
        assert index[got["recovery"]] == deepest["recovery"]


@settings(max_examples=200, deadline=None)
@given(
    hst.lists(hst.integers(-3000, 3000), min_size=0, max_size=400),
    hst.sampled_from([0.0, 0.0001, -0.00002]),
)
def test_return_figures_equal_the_public_functions(bps: list[int], rf: float) -> None:
    _check_returns(np.array(bps, dtype=np.float64) / 10_000, 252.0, rf)


@pytest.mark.parametrize("n", [3, 4, 20, 1001, 200_000])
def test_return_figures_on_long_and_noisy_series(n: int) -> None:
    rng = np.random.default_rng(n)
    r = rng.normal(0.0002, 0.01, n)
    _check_returns(r, 60_480.0)
    _check_returns(r, 365.0, 0.0001)
    # returns of a compounded curve: equal up to rounding noise (no dispersion), heavy tails
    curve = 100.0 * 1.001 ** np.arange(n + 1)
    _check_returns(curve[1:] / curve[:-1] - 1.0)
    _check_returns(rng.standard_t(2, n) * 0.0005)
    _check_returns(np.zeros(n))
    _check_returns(np.abs(r[:2000]))  # no downside: inf Sortino, no Omega


@pytest.mark.parametrize("block", [128, 4096, 1 << 15])
def test_leaf_sums_add_up_to_numpys_sum(block: int) -> None:
    rng = np.random.default_rng(block)
    sizes = [1, 7, 8, 127, 128, 129, 1000, 4097, 65_537, 250_001]
    for n in [*sizes, *rng.integers(1, 300_000, 8)]:
        # Magnitudes over ten decades: any other order of additions shows in the last bits.
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 5, n)
        leaves = _leaves(n, block)
        assert leaves[0][0] == 0 and leaves[-1][1] == n
        assert all(p[1] == q[0] for p, q in zip(leaves, leaves[1:], strict=False))
        assert max(b - a for a, b in leaves) <= block
        parts = [np.add.reduce(x[a:b]) for a, b in leaves]
        assert _tree_sum(n, parts, block) == np.add.reduce(x), n


def test_a_sum_fed_in_pieces_is_numpys_sum() -> None:
    rng = np.random.default_rng(3)
    for n in [0, 1, 5, 200, 3000, 100_003]:
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 5, n)
        s = _StreamSum(n, 128)
        cuts = np.sort(rng.integers(0, n + 1, 40))
        for piece in np.split(x, cuts):
            s.feed(piece)
        assert s.total() == np.sum(x), n


def test_the_smallest_values_are_kept_whatever_the_order() -> None:
    rng = np.random.default_rng(4)
    for n, m in [(10, 1), (5000, 250), (20_000, 1), (20_000, 20_000)]:
        # many ties: a quarter of the values are equal
        x = np.where(rng.random(n) < 0.25, 0.0, rng.standard_normal(n))
        keep = _Smallest(m)
        for piece in np.array_split(x, 17):
            keep.feed(piece)
        assert np.array_equal(keep.ordered(), np.sort(x)[:m])


@settings(max_examples=100, deadline=None)
@given(
    hst.lists(hst.integers(-3000, 3000), min_size=2, max_size=400),
    hst.sampled_from([0.0, 0.0001]),
    hst.sampled_from([128, 200, 1 << 15]),
)
def test_returns_made_from_the_curve_block_by_block(bps: list[int], rf: float, block: int) -> None:
    values = 100.0 * np.cumprod(1.0 + np.array(bps, dtype=np.float64) / 10_000)
    want = return_stats(values[1:] / values[:-1] - 1.0, 252.0, rf)
    got = equity_return_stats(values, 252.0, rf, block=block)
    for key in RETURN_KEYS:
        assert _same(got[key], want[key]), (key, got[key], want[key])


def test_infinite_returns_raise_the_public_error() -> None:
    with pytest.raises(ba.AnalysisInputError, match="infinite value at position 1"):
        return_stats(np.array([0.1, np.inf, 0.2, 0.0]), 252.0, 0.0)


def test_percentile_of_sorted_is_numpys() -> None:
    rng = np.random.default_rng(0)
    for n in [*range(1, 120), 999, 1000, 1001, 54_321]:
        x = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(-6, 4)
        ordered = np.sort(x)
        for q in (0.05, 0.5, 0.95):
            assert _percentile_of_sorted(ordered, q) == np.percentile(x, 100 * q), (n, q)


@settings(max_examples=200, deadline=None)
@given(hst.lists(hst.integers(-4, 4), min_size=1, max_size=300))
def test_drawdown_summary_equals_the_segment_table(steps: list[int]) -> None:
    # Small integer steps: many flat stretches, equal peaks, equal-depth drawdowns.
    values = 100.0 + np.cumsum(np.array(steps, dtype=np.float64))
    values -= min(0.0, float(values.min())) - 1.0
    index = pd.date_range("2021-01-01", periods=values.size, freq="7h", tz="UTC")
    _check_drawdown(pd.Series(values, index=index))


def test_drawdown_summary_takes_the_first_lowest_bar_when_ratios_tie() -> None:
    # Two valley values one ulp apart divide by the peak to the same ratio: the valley is
    # the lower value, as in the segment table, not the first bar at that ratio.
    peak = 20.0
    v = np.full(12, 10.0)
    v[3] = peak
    low = 15.183673469387756
    v[5], v[7] = low, np.nextafter(low, 0.0)
    assert v[5] / peak == v[7] / peak
    index = pd.date_range("2021-01-01", periods=v.size, freq="1D")
    _check_drawdown(pd.Series(v, index=index))
    # Never recovers: the drawdown is open at the last bar.
    falling = pd.date_range("2021-01-01", periods=50, freq="1D")
    _check_drawdown(pd.Series(np.linspace(5.0, 1.0, 50), index=falling))


def _pandas_ppy(index: pd.DatetimeIndex) -> float:
    """infer_periods_per_year's rule, by grouping the normalised index (as before the fast
    path for naive and UTC indexes)."""
    spacing_days = float(np.median(np.diff(index.as_unit("ns").asi8))) / 86_400e9
    if spacing_days >= 4:
        return ba.infer_periods_per_year(index)
    per_date = pd.Series(1, index=index.normalize()).groupby(level=0).size()
    bars_per_day = float(np.median(per_date.to_numpy()))
    dates = index.normalize().unique()
    span = (dates[-1] - dates[0]).days + 1
    if span >= 14:
        days = 365.0 if len(dates) / span > 0.85 else 252.0
    else:
        days = 365.0 if bool((dates.day_of_week >= 5).any()) else 252.0
    return bars_per_day * days


@pytest.mark.parametrize("tz", ["UTC", None])
@pytest.mark.parametrize(
    "index_of",
    [
        lambda tz: pd.date_range("1969-12-20", periods=3000, freq="1min", tz=tz),
        lambda tz: pd.date_range("2024-01-05", periods=500, freq="1h", tz=tz),
        lambda tz: pd.bdate_range("2015-01-01", periods=40, tz=tz) + pd.Timedelta(hours=9),
        lambda tz: pd.date_range("2024-03-01", periods=9, freq="1D", tz=tz),  # has a weekend
        lambda tz: pd.bdate_range("2024-03-04", periods=5, tz=tz),  # no weekend, short
        lambda tz: pd.DatetimeIndex(
            np.sort(
                np.random.default_rng(1).choice(
                    pd.date_range("2018-01-01", periods=5000, freq="1h", tz=tz), 900, False
                )
            )
        ),
    ],
)
def test_periods_per_year_without_normalising_equals_the_pandas_rule(tz, index_of) -> None:
    index = index_of(tz)
    assert ba.infer_periods_per_year(index) == _pandas_ppy(index)


def test_performance_metrics_on_a_million_bars_equals_the_public_functions() -> None:
    rng = np.random.default_rng(5)
    n = 1_000_000
    values = 1e6 * np.cumprod(1.0 + rng.normal(0.0, 0.001, n))
    index = pd.date_range("2022-01-03", periods=n, freq="1min", tz="UTC")
    equity = pd.Series(values, index=index)
    exposure = pd.Series(rng.random(n) * (rng.random(n) > 0.5), index=index)
    m = ba.performance_metrics(equity, exposure=exposure, risk_free=0.02)
    r = values[1:] / values[:-1] - 1.0
    ppy = ba.infer_periods_per_year(index)
    assert ppy == _pandas_ppy(index) == 1440 * 365.0
    want = _expected_returns(r, ppy, ba.per_period_rate(0.02, ppy))
    for key in RETURN_KEYS:
        assert m[key] == float(want[key]), key  # all finite here (JSON-safe None otherwise)
    seg = ba.drawdown_segments(equity)
    assert m["max_drawdown"] == float(seg["depth"].min())
    assert m["max_drawdown_duration_bars"] == int(seg["length_bars"].max())
    assert m["exposure"] == float(exposure.mean())


@pytest.mark.parametrize("n", [1, 2, 3, 500, 70_001, 300_000])
def test_return_moments_equal_numpy_on_the_returns(n: int) -> None:
    rng = np.random.default_rng(n)
    values = 1e5 * np.cumprod(1.0 + rng.standard_t(3, n + 1) * 0.002)
    r = values[1:] / values[:-1] - 1.0
    dev = r - r.mean()
    sq = dev * dev
    got = ba.return_moments(values)
    assert got == (
        n,
        float(r.mean()),
        float(sq.sum()),
        float((dev * sq).sum()),
        float((sq * sq).sum()),
    )


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([1.0], "at least 2 points"),
        ([[1.0, 2.0]], "1-D"),
        ([1.0, 0.0, 2.0], "position 1 is 0.0"),
        ([1.0, 2.0, np.nan], "position 2 is nan"),
    ],
)
def test_return_moments_name_bad_input(values: list, match: str) -> None:
    with pytest.raises(ba.AnalysisInputError, match=match):
        ba.return_moments(np.array(values))
