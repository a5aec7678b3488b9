"""Return-series statistics (one number from a series of simple per-bar returns).

Conventions, shared by every function here:

* ``returns`` are simple (not log) returns per bar, a 1-D array or Series; ±inf is rejected.
* NaN is a missing observation. It counts as a bar of elapsed time that compounds as 0 in
  :func:`total_return`, :func:`cagr` and :func:`max_drawdown` (as empyrical does), and is left
  out of every moment or quantile (mean, standard deviation, downside deviation, Omega, tail
  ratio, VaR, CVaR, skew, kurtosis, stability, alpha/beta).
* A statistic that is undefined (too few observations, zero dispersion, no downside) is NaN or
  ±inf exactly as empyrical-reloaded returns it; :func:`bt_analysis.json_safe` turns those
  into ``None`` for JSON. The formulas equal empyrical-reloaded 0.7's on the same input
  (checked by tests); the few deliberate differences are listed in each docstring.
* ``periods_per_year`` annualises (252 for daily bars, see
  :func:`bt_analysis.infer_periods_per_year`); rates given "per period" are per bar.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from bt_analysis._validation import AnalysisInputError

__all__ = [
    "alpha_beta",
    "annual_volatility",
    "cagr",
    "calmar_ratio",
    "conditional_value_at_risk",
    "downside_risk",
    "kurtosis",
    "max_drawdown",
    "omega_ratio",
    "sharpe_ratio",
    "skew",
    "sortino_ratio",
    "stability",
    "tail_ratio",
    "total_return",
    "value_at_risk",
]

ReturnsLike: TypeAlias = "pd.Series | np.ndarray | Sequence[float]"


def _arr(returns: ReturnsLike, name: str = "returns") -> np.ndarray:
    try:
        values = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError(f"{name} must be numeric") from exc
    if values.ndim != 1:
        raise AnalysisInputError(f"{name} must be one-dimensional, got shape {values.shape}")
    if np.isinf(values).any():
        pos = int(np.flatnonzero(np.isinf(values))[0])
        raise AnalysisInputError(f"{name} has an infinite value at position {pos}")
    return values


def _valid(values: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    # Most series have no NaN: the array itself then, not a masked copy of it.
    return values[~missing] if missing.any() else values


def _check_ppy(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not np.isfinite(ppy) or ppy <= 0:
        raise AnalysisInputError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    return ppy


def total_return(returns: ReturnsLike) -> float:
    """Compounded return over the whole series: ``prod(1 + r) - 1`` (NaN bars count as 0).
    NaN for an empty series."""
    r = _arr(returns)
    if r.size == 0:
        return float("nan")
    return float(np.nanprod(r + 1.0) - 1.0)


def cagr(returns: ReturnsLike, periods_per_year: float) -> float:
    """Compound annual growth rate: ``(1 + total_return) ** (periods_per_year / n) - 1`` where
    ``n`` counts every bar (NaN bars included, as elapsed time). NaN for an empty series or a
    negative ending value."""
    r = _arr(returns)
    ppy = _check_ppy(periods_per_year)
    if r.size == 0:
        return float("nan")
    ending = np.nanprod(r + 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return float(np.power(ending, 1.0 / (r.size / ppy)) - 1.0)


def annual_volatility(returns: ReturnsLike, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1) of the returns times ``sqrt(periods_per_year)``.
    NaN with fewer than 2 observations; exactly 0 for returns equal up to rounding noise."""
    r = _arr(returns)
    ppy = _check_ppy(periods_per_year)
    v = _valid(r)
    if r.size < 2 or v.size < 2:
        return float("nan")
    return float(_dispersion(v) * ppy**0.5)


# Returns recovered from an equity curve (equity[t] / equity[t-1] - 1) carry rounding noise of
# a few ulps of 1.0, not of the return itself; spreads below this count as no dispersion.
_CONSTANT_SPREAD = 64 * np.finfo(np.float64).eps


def _dispersion(v: np.ndarray) -> float:
    """Sample std, exactly 0 when all values are equal to within ``64 * eps * max(1, |v|)``.

    empyrical does the same for exactly equal values (the floating mean can differ from them
    in the last bit, turning an infinite ratio into ~1e15). We deliberately extend it to values
    equal up to rounding noise: a constant 1 % return recovered from a compounded equity curve
    differs by ~1e-16 from bar to bar, and a Sharpe ratio of 1e15 from that is noise, not a
    statistic. Returns that truly differ (by more than ~1e-14) are unaffected.
    """
    if v.size < 2:
        return float("nan")
    hi, lo = float(v.max()), float(v.min())
    if hi - lo <= _CONSTANT_SPREAD * max(1.0, abs(hi), abs(lo)):
        return 0.0
    return float(np.std(v, ddof=1))


def sharpe_ratio(
    returns: ReturnsLike, periods_per_year: float, risk_free_per_period: float = 0.0
) -> float:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``.

    ``risk_free_per_period`` is a per-bar rate (see :func:`bt_analysis.per_period_rate`).
    NaN with fewer than 2 bars; ±inf (or NaN for a zero mean) when all returns are equal.
    """
    r = _arr(returns)
    ppy = _check_ppy(periods_per_year)
    if r.size < 2:
        return float("nan")
    v = _valid(r) - risk_free_per_period
    if v.size == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(v.mean()) / np.float64(_dispersion(v)) * np.sqrt(ppy))


def downside_risk(
    returns: ReturnsLike, periods_per_year: float, required_return: float = 0.0
) -> float:
    """Annualised downside deviation below ``required_return`` (per bar):
    ``sqrt(mean(min(r - required, 0) ** 2)) * sqrt(periods_per_year)``. NaN for no data."""
    r = _arr(returns)
    ppy = _check_ppy(periods_per_year)
    v = _valid(r)
    if r.size < 1 or v.size < 1:
        return float("nan")
    down = np.minimum(v - required_return, 0.0)
    return float(np.sqrt(np.mean(down * down)) * np.sqrt(ppy))


def sortino_ratio(
    returns: ReturnsLike, periods_per_year: float, required_return: float = 0.0
) -> float:
    """Annualised Sortino ratio: ``mean(r - required) * periods_per_year / downside_risk``.

    ``required_return`` is per bar. NaN with fewer than 2 bars; +inf when no bar falls below
    the required return (and the mean is positive).
    """
    r = _arr(returns)
    ppy = _check_ppy(periods_per_year)
    if r.size < 2:
        return float("nan")
    v = _valid(r)
    if v.size == 0:
        return float("nan")
    numerator = np.float64(np.mean(v - required_return) * ppy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(numerator / np.float64(downside_risk(r, ppy, required_return)))


def max_drawdown(returns: ReturnsLike) -> float:
    """Largest peak-to-trough fall of the compounded curve, as a negative fraction (-0.25 is a
    25 % drawdown); 0.0 when it never falls. The curve starts at 1 before the first return, so a
    first-bar loss is a drawdown. NaN bars compound as 0. NaN for an empty series."""
    r = _arr(returns)
    if r.size == 0:
        return float("nan")
    curve = np.cumprod(np.concatenate(([1.0], np.where(np.isnan(r), 0.0, r) + 1.0)))
    peaks = np.maximum.accumulate(curve)
    return float(np.min((curve[1:] - peaks[1:]) / peaks[1:]))


def calmar_ratio(returns: ReturnsLike, periods_per_year: float) -> float:
    """CAGR divided by the absolute max drawdown. NaN when there is no drawdown (or the ratio
    is infinite)."""
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return float("nan")
    value = cagr(returns, periods_per_year) / abs(mdd)
    return float("nan") if np.isinf(value) else float(value)


def omega_ratio(returns: ReturnsLike, threshold_per_period: float = 0.0) -> float:
    """Omega ratio at ``threshold_per_period``: sum of excess returns above the threshold over
    the absolute sum below it. NaN with fewer than 2 bars or nothing below the threshold.

    empyrical's ``omega_ratio(returns, required_return=R, annualization=P)`` equals this with
    ``threshold_per_period = per_period_rate(R, P)``.
    """
    r = _arr(returns)
    if r.size < 2:
        return float("nan")
    x = _valid(r) - threshold_per_period
    gains = float(np.sum(x[x > 0.0]))
    losses = -float(np.sum(x[x < 0.0]))
    return gains / losses if losses > 0.0 else float("nan")


def tail_ratio(returns: ReturnsLike) -> float:
    """``|95th percentile| / |5th percentile|`` of the returns (linear interpolation).
    NaN for no data; inf/NaN when the 5th percentile is 0."""
    v = _valid(_arr(returns))
    if v.size < 1:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.abs(np.percentile(v, 95)) / np.abs(np.percentile(v, 5)))


def value_at_risk(returns: ReturnsLike, cutoff: float = 0.05) -> float:
    """Historical VaR: the ``cutoff`` quantile of the returns (a return, usually negative).

    Differs from empyrical on purpose only with NaNs: they are skipped here, while empyrical's
    ``np.percentile`` makes the whole result NaN.
    """
    if not 0 < cutoff < 1:
        raise AnalysisInputError(f"cutoff must be in (0, 1), got {cutoff}")
    v = _valid(_arr(returns))
    if v.size < 1:
        return float("nan")
    return float(np.percentile(v, 100 * cutoff))


def conditional_value_at_risk(returns: ReturnsLike, cutoff: float = 0.05) -> float:
    """Historical CVaR (expected shortfall): the mean of the ``floor((n - 1) * cutoff) + 1``
    lowest returns. NaN for no data."""
    if not 0 < cutoff < 1:
        raise AnalysisInputError(f"cutoff must be in (0, 1), got {cutoff}")
    v = _valid(_arr(returns))
    if v.size < 1:
        return float("nan")
    k = int((v.size - 1) * cutoff)
    return float(np.mean(np.sort(v)[: k + 1]))


def _moment_stat(fn: object, v: np.ndarray) -> float:
    if v.size < 1 or (v.size >= 2 and _dispersion(v) == 0.0):
        # A constant series (up to rounding noise, see _dispersion) has no shape: NaN, where
        # scipy would return the moments of the noise (e.g. a skew of 0.05).
        return float("nan")
    # scipy warns (and returns NaN) for a constant series; NaN is the answer we document.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fn(v))  # type: ignore[operator]


def skew(returns: ReturnsLike) -> float:
    """Sample skewness (biased, ``scipy.stats.skew``) of the non-NaN returns; NaN if constant
    (up to rounding noise). Differs from empyrical's use of scipy only in skipping NaNs (scipy
    propagates them) and in that noise rule."""
    # On first use: importing scipy.stats takes seconds, and the summary every run computes
    # (bt_analysis._summary) does without it.
    from scipy import stats as sps

    return _moment_stat(sps.skew, _valid(_arr(returns)))


def kurtosis(returns: ReturnsLike) -> float:
    """Excess (Fisher) kurtosis, biased (``scipy.stats.kurtosis``), of the non-NaN returns;
    NaN if constant (up to rounding noise). NaNs are skipped (scipy would propagate them)."""
    from scipy import stats as sps  # on first use, as in skew()

    return _moment_stat(sps.kurtosis, _valid(_arr(returns)))


def stability(returns: ReturnsLike) -> float:
    """R² of a least-squares line through the cumulative log returns against bar number.

    NaN with fewer than 2 non-NaN returns or a flat cumulative curve (every return after the
    first is 0; scipy >= 1.14 also gives NaN there, older scipy 0.0). Differs from empyrical
    otherwise only when NaNs leave fewer than 2 observations (empyrical raises there).
    """
    r = _arr(returns)
    v = _valid(r)
    if r.size < 2 or v.size < 2:
        return float("nan")
    return _stability(v)


def _stability(v: np.ndarray) -> float:
    """:func:`stability` of at least 2 checked returns without NaN."""
    # In place: two arrays of the returns' length alive at once, not four. The sums are
    # numpy's pairwise reductions, not BLAS dot products: a threaded BLAS splits a long dot
    # by its thread count (so the last bits depended on the machine and on the caller's
    # thread limits) and its spinning threads took the other core from a parallel sweep.
    n = v.size
    yc = np.log1p(v)
    np.cumsum(yc, out=yc)
    if yc.max() == yc.min():
        # Flat: no R². Tested before centring, where the mean's rounding (a curve of five
        # equal values need not have exactly that mean) would leave noise to fit a line to.
        return float("nan")
    yc -= yc.mean()
    xc = np.arange(n, dtype=np.float64)
    xc -= (n - 1) / 2
    # sum((i - (n - 1) / 2) ** 2) over i < n, exactly.
    sxx = n * (n * n - 1.0) / 12.0
    sxy = float(np.multiply(xc, yc, out=xc).sum())
    syy = float(np.multiply(yc, yc, out=yc).sum())
    if syy == 0.0:
        return float("nan")
    r_value = min(max(sxy / np.sqrt(sxx * syy), -1.0), 1.0)
    return r_value * r_value


def alpha_beta(
    returns: ReturnsLike,
    benchmark_returns: ReturnsLike,
    periods_per_year: float,
    risk_free_per_period: float = 0.0,
) -> tuple[float, float]:
    """CAPM alpha (annualised) and beta of ``returns`` against ``benchmark_returns``.

    Both arrays are aligned by position (equal length). Bars where either is NaN are skipped.
    ``beta = cov(r, b) / var(b)`` (population moments); ``alpha = (1 + mean((r - rf) -
    beta * (b - rf))) ** periods_per_year - 1``. Beta (and alpha) is NaN when the benchmark
    variance is below 1e-30 or there are fewer than 2 bars.
    """
    r = _arr(returns)
    b = _arr(benchmark_returns, "benchmark_returns")
    ppy = _check_ppy(periods_per_year)
    if r.size != b.size:
        raise AnalysisInputError(
            f"returns ({r.size}) and benchmark_returns ({b.size}) must have the same length"
        )
    if r.size < 2:
        return float("nan"), float("nan")
    mask = ~(np.isnan(r) | np.isnan(b))
    if not mask.any():
        return float("nan"), float("nan")
    rv, bv = r[mask], b[mask]
    bc = bv - bv.mean()
    variance = float(np.mean(bc * bc))
    if variance < 1.0e-30:
        return float("nan"), float("nan")
    beta = float(np.mean(bc * rv)) / variance
    excess = (rv - risk_free_per_period) - beta * (bv - risk_free_per_period)
    with np.errstate(invalid="ignore", over="ignore"):
        alpha = float(np.power(1.0 + np.mean(excess), ppy) - 1.0)
    return alpha, beta
