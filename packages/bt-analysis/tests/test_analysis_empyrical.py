"""Every return statistic equals empyrical-reloaded's on the same input (to 1e-9).

Random series come from hypothesis (returns in whole basis points, -50 %..+50 %), with the
edge cases pinned by ``@example``: empty, one observation, constant, all losses, all gains,
zeros, and NaNs. Where bt-analysis differs from empyrical on purpose (VaR, skew and kurtosis
skip NaNs; stability with fewer than two valid points), the test says so and compares against
empyrical on the NaN-free input instead, after showing that empyrical's own answer differs.
"""

from __future__ import annotations

import math
import warnings

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import example, given, settings
from hypothesis import strategies as hst

import bt_analysis as ba
from bt_analysis import stats as st

PPY = [252.0, 52.0, 12.0, 365.0, 60480.0]
EDGE_CASES = [
    [],
    [0.01],
    [-0.02],
    [0.01] * 10,
    [0.0] * 10,
    [-0.01, -0.02, -0.03, -0.015, -0.5],
    [0.01, 0.02, 0.03, 0.015],
    [np.nan, 0.01],
    [np.nan, np.nan, np.nan],
    [0.01, np.nan, -0.02, 0.03, np.nan, -0.01],
    [-0.5, 0.5, -0.5, 0.5],
    # A flat cumulative curve whose mean does not round to its value (found by hypothesis):
    # stability is NaN, not the R² of a line through rounding noise.
    [0.0001, 0.0, 0.0, 0.0, 0.0],
]

basis_points = hst.integers(min_value=-5000, max_value=5000).map(lambda v: v / 10_000)


@hst.composite
def returns_arrays(draw: hst.DrawFn, nans: bool = True) -> np.ndarray:
    arr = np.asarray(draw(hst.lists(basis_points, max_size=80)), dtype=np.float64)
    if nans and arr.size and draw(hst.booleans()):
        mask = draw(hst.lists(hst.booleans(), min_size=arr.size, max_size=arr.size))
        arr[np.asarray(mask, dtype=bool)] = np.nan
    return arr


def assert_same(ours: float | None, ref: object) -> None:
    """Both NaN, the same infinity, or equal to rel 1e-9 (abs 1e-10 near zero)."""
    ref_f = float(ref)  # type: ignore[arg-type]
    assert ours is not None
    if math.isnan(ref_f):
        assert math.isnan(ours), f"expected NaN, got {ours}"
    elif math.isinf(ref_f):
        assert ours == ref_f, f"expected {ref_f}, got {ours}"
    else:
        assert ours == pytest.approx(ref_f, rel=1e-9, abs=1e-10), f"{ours} != {ref_f}"


def _ref(fn, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def with_edge_cases(**fixed):
    """Pin every EDGE_CASES series as an explicit example (other arguments from ``fixed``)."""

    def decorate(test):
        for case in EDGE_CASES:
            test = example(r=np.asarray(case, dtype=np.float64), **fixed)(test)
        return test

    return decorate


@settings(max_examples=150, deadline=None)
@with_edge_cases()
@given(r=returns_arrays())
def test_return_level_statistics_equal_empyrical(r: np.ndarray) -> None:
    assert_same(st.total_return(r), _ref(ep.cum_returns_final, r))
    assert_same(st.max_drawdown(r), _ref(ep.max_drawdown, r))
    assert_same(st.tail_ratio(r), _ref(ep.tail_ratio, r))
    assert_same(st.conditional_value_at_risk(r), _ref(ep.conditional_value_at_risk, r))
    for ppy in PPY:
        assert_same(st.cagr(r, ppy), _ref(ep.annual_return, r, annualization=ppy))
        assert_same(st.annual_volatility(r, ppy), _ref(ep.annual_volatility, r, annualization=ppy))
        assert_same(st.calmar_ratio(r, ppy), _ref(ep.calmar_ratio, r, annualization=ppy))
        assert_same(st.sharpe_ratio(r, ppy), _ref(ep.sharpe_ratio, r, annualization=ppy))
        assert_same(st.sortino_ratio(r, ppy), _ref(ep.sortino_ratio, r, annualization=ppy))
        assert_same(st.downside_risk(r, ppy), _ref(ep.downside_risk, r, annualization=ppy))


@settings(max_examples=100, deadline=None)
@with_edge_cases(annual=0.05)
@given(r=returns_arrays(), annual=hst.sampled_from([0.0, 0.03, 0.1, -0.02]))
def test_rates_convert_like_empyrical(r: np.ndarray, annual: float) -> None:
    """A risk-free / required annual rate is turned into a per-bar rate the way empyrical's
    omega_ratio does; Sharpe, Sortino and Omega then equal empyrical's with that rate."""
    for ppy in (252.0, 12.0):
        rf = ba.per_period_rate(annual, ppy)
        assert_same(
            st.omega_ratio(r, rf),
            _ref(ep.omega_ratio, r, required_return=annual, annualization=ppy),
        )
        assert_same(st.sharpe_ratio(r, ppy, rf), _ref(ep.sharpe_ratio, r, rf, annualization=ppy))
        assert_same(
            st.sortino_ratio(r, ppy, rf),
            _ref(ep.sortino_ratio, r, required_return=rf, annualization=ppy),
        )


@settings(max_examples=150, deadline=None)
@with_edge_cases()
@given(r=returns_arrays())
def test_var_skew_kurtosis_stability_equal_empyrical_on_observed_returns(r: np.ndarray) -> None:
    observed = r[~np.isnan(r)]
    has_nan = observed.size < r.size
    if has_nan and observed.size:
        # The deliberate difference: empyrical's VaR (np.percentile) and scipy's moments
        # propagate a NaN to the whole result; we skip missing observations.
        assert math.isnan(_ref(ep.value_at_risk, r))
        assert math.isnan(_ref(scipy.stats.skew, r))
    assert_same(st.value_at_risk(r), _ref(ep.value_at_risk, observed))
    assert_same(st.value_at_risk(r, 0.01), _ref(ep.value_at_risk, observed, 0.01))
    assert_same(st.skew(r), _ref(scipy.stats.skew, observed) if observed.size else np.nan)
    assert_same(st.kurtosis(r), _ref(scipy.stats.kurtosis, observed) if observed.size else np.nan)
    flat = observed.size >= 2 and np.ptp(np.cumsum(np.log1p(observed))) == 0
    if observed.size >= 2 and not flat:
        assert_same(st.stability(r), _ref(ep.stability_of_timeseries, r))
    elif observed.size >= 2:
        # A flat cumulative curve has no R²: NaN (scipy >= 1.14 agrees; older scipy said 0.0).
        assert math.isnan(st.stability(r))
    else:
        # empyrical raises inside scipy.linregress here when NaNs leave < 2 points.
        assert math.isnan(st.stability(r))


@settings(max_examples=150, deadline=None)
@given(
    pairs=hst.lists(hst.tuples(basis_points, basis_points), max_size=60),
    nan_mask=hst.lists(hst.sampled_from([0, 0, 0, 1, 2]), max_size=60),
    annual_rf=hst.sampled_from([0.0, 0.02]),
)
@example(pairs=[(0.01, 0.02)] * 5, nan_mask=[], annual_rf=0.0)  # constant benchmark
@example(pairs=[(0.01, 0.02)], nan_mask=[], annual_rf=0.0)  # one observation
@example(pairs=[], nan_mask=[], annual_rf=0.0)
def test_alpha_beta_equal_empyrical(pairs, nan_mask, annual_rf) -> None:
    r = np.array([p[0] for p in pairs], dtype=np.float64)
    b = np.array([p[1] for p in pairs], dtype=np.float64)
    for i, m in enumerate(nan_mask[: len(pairs)]):
        if m == 1:
            r[i] = np.nan
        elif m == 2:
            b[i] = np.nan
    for ppy in (252.0, 52.0):
        rf = ba.per_period_rate(annual_rf, ppy)
        alpha, beta = st.alpha_beta(r, b, ppy, rf)
        ref_alpha, ref_beta = _ref(ep.alpha_beta, r, b, risk_free=rf, annualization=ppy)
        assert_same(beta, ref_beta)
        assert_same(alpha, ref_alpha)


@settings(max_examples=80, deadline=None)
@example(r=np.array([0.01] * 8))
@example(r=np.array([-0.01, -0.02, -0.03, -0.04]))
@example(r=np.array([0.05]))
@given(r=returns_arrays(nans=False))
def test_performance_metrics_equal_empyrical_on_equity(r: np.ndarray, equity_from_returns) -> None:
    """The dict from an equity curve carries empyrical's numbers for the returns that built the
    curve (None where empyrical has NaN or inf)."""
    equity = equity_from_returns(r, start=250_000.0)
    rf_annual = 0.02
    m = ba.performance_metrics(equity, periods_per_year=252, risk_free=rf_annual)
    rf = ba.per_period_rate(rf_annual, 252)
    np.testing.assert_allclose(ba.returns_from_equity(equity).to_numpy(), r, atol=1e-12)
    # The reference sees the exact returns that built the curve (the ones recovered from the
    # equity carry ~1e-16 of rounding noise; see the last test of this file).
    rets = r

    def check(key: str, ref: object) -> None:
        ref_f = float(ref)  # type: ignore[arg-type]
        if not math.isfinite(ref_f):
            assert m[key] is None, (key, m[key], ref_f)
        else:
            assert_same(m[key], ref_f)  # type: ignore[arg-type]

    check("total_return", _ref(ep.cum_returns_final, rets) if rets.size else 0.0)
    check("cagr", _ref(ep.annual_return, rets, annualization=252))
    check("annual_volatility", _ref(ep.annual_volatility, rets, annualization=252))
    check("sharpe", _ref(ep.sharpe_ratio, rets, rf, annualization=252))
    check("sortino", _ref(ep.sortino_ratio, rets, required_return=rf, annualization=252))
    check("calmar", _ref(ep.calmar_ratio, rets, annualization=252))
    check("omega", _ref(ep.omega_ratio, rets, required_return=rf_annual, annualization=252))
    check("max_drawdown", _ref(ep.max_drawdown, rets) if rets.size else 0.0)
    check("tail_ratio", _ref(ep.tail_ratio, rets))
    check("var_95", _ref(ep.value_at_risk, rets) if rets.size else np.nan)
    check("cvar_95", _ref(ep.conditional_value_at_risk, rets))
    check("skew", _ref(scipy.stats.skew, rets) if rets.size else np.nan)
    check("kurtosis", _ref(scipy.stats.kurtosis, rets) if rets.size else np.nan)
    check("stability", _ref(ep.stability_of_timeseries, rets))


def test_performance_metrics_alpha_beta_equal_empyrical(sample_close: pd.Series) -> None:
    """Benchmark given as prices on a partly overlapping index: alpha/beta use the returns of
    both over the common timestamps, as empyrical's alpha_beta does on those returns."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0002, 0.004, sample_close.size)
    equity = 1e6 * (sample_close / sample_close.iloc[0]) ** 0.6 * np.exp(np.cumsum(noise))
    bench = sample_close.iloc[40:]  # starts later than the equity
    m = ba.performance_metrics(equity, benchmark=bench, risk_free=0.03)
    common = equity.index.intersection(bench.index)
    r = equity.loc[common].pct_change().iloc[1:]
    b = bench.loc[common].pct_change().iloc[1:]
    rf = ba.per_period_rate(0.03, 252)
    ref_alpha, ref_beta = ep.alpha_beta(r, b, risk_free=rf, annualization=252)
    assert_same(m["beta"], ref_beta)  # type: ignore[arg-type]
    assert_same(m["alpha"], ref_alpha)  # type: ignore[arg-type]
    assert 0.3 < m["beta"] < 0.9  # type: ignore[operator]
    assert_same(m["benchmark_total_return"], bench.iloc[-1] / bench.iloc[0] - 1)  # type: ignore[arg-type]


def test_rounding_noise_counts_as_no_dispersion_unlike_empyrical(equity_from_returns) -> None:
    """A deliberate difference (Sharpe, volatility, skew, kurtosis): a constant 1 % return
    recovered from a compounded equity curve differs by ~1e-16 between bars. empyrical divides
    by that noise and reports a Sharpe of ~1e15; we treat a spread below 64 ulps of 1.0 as none
    (Sharpe inf, volatility 0, skew and kurtosis NaN)."""
    r = ba.returns_from_equity(equity_from_returns(np.full(20, 0.01))).to_numpy()
    assert r.max() != r.min()  # the noise is real
    assert abs(_ref(ep.sharpe_ratio, r, annualization=252)) > 1e12
    assert st.sharpe_ratio(r, 252) == math.inf
    assert st.annual_volatility(r, 252) == 0.0
    assert not math.isnan(_ref(scipy.stats.skew, r))  # scipy: the skew of the noise
    assert math.isnan(st.skew(r)) and math.isnan(st.kurtosis(r))
    # A genuine spread of 1e-12 is still a spread:
    r2 = np.array([0.01, 0.01 + 1e-12] * 5)
    assert_same(st.sharpe_ratio(r2, 252), _ref(ep.sharpe_ratio, r2, annualization=252))
