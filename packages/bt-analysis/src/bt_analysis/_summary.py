"""The return and drawdown figures of :func:`bt_analysis.performance_metrics`, computed in one
pass over shared intermediates.

Each public function of :mod:`bt_analysis.stats` validates its input, masks NaNs, and
recomputes what it needs (the mean, the deviations from it, a sorted copy, ``1 + r``). Over
the forty-odd figures of one equity curve that is most of the cost: a parameter sweep pays
it once per set, on curves of a million bars. Here every intermediate is computed once and
reused, with the same numpy operations in the same order, so that every figure equals the
public function's bit for bit (the tests compare them on many curves). Returns that come
from a valid equity curve have no NaN; anything else (an infinite ratio) goes to the public
functions, which raise their usual error.
"""

from __future__ import annotations

import numpy as np

from bt_analysis import stats as st

_EPS = np.finfo(np.float64).eps
_NS_PER_DAY = 86_400e9


def _dispersion(v: np.ndarray, d2_sum: float) -> float:
    """:func:`bt_analysis.stats._dispersion` given ``sum((v - mean(v)) ** 2)``: numpy's
    ``std(ddof=1)`` is ``sqrt`` of exactly that sum over ``n - 1``."""
    hi, lo = float(v.max()), float(v.min())
    if hi - lo <= st._CONSTANT_SPREAD * max(1.0, abs(hi), abs(lo)):
        return 0.0
    return float(np.sqrt(np.float64(d2_sum) / (v.size - 1)))


def _percentile_of_sorted(ordered: np.ndarray, q: float) -> np.float64:
    """``np.percentile(x, 100 * q)`` (linear method) of the sorted copy ``ordered`` of
    ``x``, by numpy's own arithmetic: virtual index ``(n - 1) * q``, then the interpolation
    between its neighbours written from the nearer one. np.percentile would select the
    order statistics again (a partition of the whole array per call); the tests check the
    two agree bit for bit."""
    n = ordered.size
    virtual = (n - 1) * np.float64(q)
    if virtual >= n - 1:
        return np.float64(ordered[-1])
    lo = int(np.floor(virtual))
    gamma = virtual - lo
    a, b = np.float64(ordered[lo]), np.float64(ordered[lo + 1])
    diff = b - a
    if gamma >= 0.5:
        return np.float64(b - diff * (1 - gamma))
    return np.float64(a + diff * gamma)


def _reference(r: np.ndarray, ppy: float, rf: float) -> dict[str, float]:
    """The same figures from the public functions (inputs they reject, such as infinite
    returns, raise their errors here)."""
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


def return_stats(r: np.ndarray, ppy: float, rf: float) -> dict[str, float]:
    """cagr, annual_volatility, sharpe, sortino, calmar, omega, tail_ratio, var_95, cvar_95,
    skew, kurtosis and stability of the per-bar returns ``r`` (float64, 1-D), each equal to
    its :mod:`bt_analysis.stats` function's value (``rf`` per bar: Sharpe's risk-free rate,
    Sortino's required return, Omega's threshold)."""
    n = r.size
    ppy = st._check_ppy(ppy)
    if n < 3 or not np.isfinite(r).all():
        return _reference(r, ppy, rf)
    nan = float("nan")
    out: dict[str, float] = {}

    # 1 + r: the compounded growth of cagr and of calmar's drawdown.
    curve = r + 1.0
    ending = np.prod(curve)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cagr = float(np.power(ending, 1.0 / (n / ppy)) - 1.0)
    out["cagr"] = cagr
    # max_drawdown's curve starts at 1 before the first return: its running peak is the
    # running peak of the compounded returns or 1, whichever is higher.
    np.cumprod(curve, out=curve)
    peaks = np.maximum.accumulate(curve)
    np.maximum(peaks, 1.0, out=peaks)
    curve -= peaks
    curve /= peaks
    mdd = float(np.min(curve))
    del curve, peaks
    if mdd < 0:
        calmar = cagr / abs(mdd)
        out["calmar"] = nan if np.isinf(calmar) else float(calmar)
    else:
        out["calmar"] = nan

    # Moments: numpy's std and scipy's skew/kurtosis all start from the same deviations.
    mean = np.mean(r)
    dev = r - mean
    dev2 = dev * dev
    d2_sum = np.add.reduce(dev2)
    disp = _dispersion(r, d2_sum)
    out["annual_volatility"] = float(disp * ppy**0.5)
    if rf == 0.0:
        # r - 0.0 is r, bit for bit: the mean and dispersion above are Sharpe's.
        sharpe_mean, sharpe_disp = mean, disp
    else:
        excess = r - rf
        sharpe_mean = excess.mean()
        sharpe_disp = st._dispersion(excess)
        del excess
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sharpe"] = float(np.float64(sharpe_mean) / np.float64(sharpe_disp) * np.sqrt(ppy))
    if disp == 0.0:
        out["skew"] = out["kurtosis"] = nan
    else:
        # scipy.stats.skew / kurtosis (biased): m3 / m2**1.5 and m4 / m2**2 - 3, with the
        # moments as scipy forms them (the cube as square times value, the fourth power as
        # the square squared) and scipy's rule for a vanishing m2.
        m2 = np.float64(d2_sum / n)
        dev *= dev2
        m3 = np.mean(dev)
        np.multiply(dev2, dev2, out=dev)
        m4 = np.mean(dev)
        with np.errstate(all="ignore"):
            zero = m2 <= (_EPS * mean) ** 2
            out["skew"] = nan if zero else float(m3 / m2**1.5)
            out["kurtosis"] = nan if zero else float(m4 / m2**2.0 - 3)
    del dev, dev2

    # Sortino: the mean excess over the required return and the downside deviation.
    shifted = r - rf if rf != 0.0 else r
    numerator = np.float64(np.mean(shifted) * ppy)
    down = np.minimum(shifted, 0.0)
    down *= down
    downside = float(np.sqrt(np.mean(down)) * np.sqrt(ppy))
    del down
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sortino"] = float(numerator / np.float64(downside))
    gains = float(np.sum(shifted[shifted > 0.0]))
    losses = -float(np.sum(shifted[shifted < 0.0]))
    out["omega"] = gains / losses if losses > 0.0 else nan
    del shifted

    # Quantiles: from one sorted copy (a quantile depends only on the order statistics).
    ordered = np.sort(r)
    p5, p95 = _percentile_of_sorted(ordered, 0.05), _percentile_of_sorted(ordered, 0.95)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tail_ratio"] = float(np.abs(p95) / np.abs(p5))
    out["var_95"] = float(p5)
    k = int((n - 1) * 0.05)
    out["cvar_95"] = float(np.mean(ordered[: k + 1]))
    del ordered

    out["stability"] = st._stability(r)
    return out


def drawdown_summary(values: np.ndarray, stamps: np.ndarray) -> dict[str, float | int | None]:
    """The drawdown figures of :func:`bt_analysis.drawdown.drawdown_segments` that
    performance_metrics reports, without building the table: the deepest depth, the longest
    length in bars and in days, and the bar positions of the deepest drawdown's peak, valley
    and recovery (None if it has not recovered; all None without a drawdown).

    ``values`` is a validated equity curve, ``stamps`` its index in int64 nanoseconds.
    """
    n = values.size
    peaks = np.maximum.accumulate(values)
    below = values < peaks
    if not below.any():
        return {
            "depth": 0.0,
            "length_bars": 0,
            "length_days": 0.0,
            "peak": None,
            "valley": None,
            "recovery": None,
        }
    # Runs of underwater bars (bar 0 is never underwater): starts where below turns on,
    # ends (inclusive) where it turns off.
    flips = np.flatnonzero(below[1:] != below[:-1]) + 1
    starts = flips[below[flips]]
    ends = flips[~below[flips]] - 1
    if ends.size < starts.size:
        ends = np.append(ends, n - 1)
    peak_pos = starts - 1
    recovered = ends + 1 < n
    end_pos = np.where(recovered, ends + 1, n - 1)
    length_bars = end_pos - peak_pos
    length_days = (stamps[end_pos] - stamps[peak_pos]) / _NS_PER_DAY
    # Within a drawdown the running peak is the peak bar's value, and dividing by it keeps
    # the order of the values: the first bar at the lowest ratio lies in the first deepest
    # drawdown, whose depth (valley / peak - 1) is that ratio minus 1.
    ratio = np.divide(values, peaks, out=peaks)
    ratio -= 1.0
    deepest_bar = int(np.argmin(ratio))
    depth = float(ratio[deepest_bar])
    del ratio, below
    seg = int(np.searchsorted(starts, deepest_bar, side="right")) - 1
    lo, hi = int(starts[seg]), int(ends[seg])
    # The valley is the first bar at the lowest value (two values can share a ratio).
    valley = lo + int(np.argmin(values[lo : hi + 1]))
    return {
        "depth": depth,
        "length_bars": int(length_bars.max()),
        "length_days": float(length_days.max()),
        "peak": int(peak_pos[seg]),
        "valley": valley,
        "recovery": int(end_pos[seg]) if recovered[seg] else None,
    }
