"""The return and drawdown figures of :func:`bt_analysis.performance_metrics`, computed from
shared intermediates, a block of the curve at a time.

Each public function of :mod:`bt_analysis.stats` validates its input, masks NaNs, and
recomputes what it needs (the mean, the deviations from it, a sorted copy, ``1 + r``). Over
the forty-odd figures of one equity curve that is most of the cost: a parameter sweep pays
it once per set, on curves of a million bars. Here every intermediate is computed once and
reused, with the same numpy operations in the same order, so that every figure equals the
public function's bit for bit (the tests compare them on many curves). Returns that come
from a valid equity curve have no NaN; anything else (an infinite ratio) goes to the public
functions, which raise their usual error.

Memory: the returns are made from the curve, used and dropped one block at a time (two
passes: the deviations need the mean), so that the figures of a curve of any length take a
few blocks of memory beside the curve, not a dozen arrays of its length; a sweep computes
them for a set on every core at once. The blocks are the leaves of the tree by which numpy
sums a contiguous float64 array (``np.add.reduce`` halves it, at a multiple of 8, down to
runs of at most 128): each leaf's sum is numpy's own, and adding them up the same tree gives
numpy's sum of the whole, bit for bit. A running product, maximum or sum crosses a block
boundary by carrying its last value into the next block's first element.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bt_analysis import stats as st

_EPS = np.finfo(np.float64).eps
_NS_PER_DAY = 86_400e9

#: Returns per block (at most; at least 128, numpy's smallest split). 2**15 float64 are
#: 256 KiB: a block's dozen intermediates stay in the cache.
BLOCK = 1 << 15


def _half(m: int) -> int:
    # numpy's split of a run of m > 128 values: half, rounded down to a multiple of 8.
    h = m // 2
    return h - h % 8


def _leaves(n: int, block: int) -> list[tuple[int, int]]:
    """The runs ``[a, b)`` of at most ``block`` values, in order, at which numpy's pairwise
    summation of ``n`` values stops splitting (``block`` >= 128)."""
    out: list[tuple[int, int]] = []
    stack = [(0, n)]
    while stack:
        a, m = stack.pop()
        if m <= block:
            out.append((a, a + m))
        else:
            h = _half(m)
            stack.append((a + h, m - h))
            stack.append((a, h))
    return out


def _tree_sum(n: int, parts: list[np.float64], block: int) -> np.float64:
    """numpy's sum of ``n`` values from the sums of its leaves (:func:`_leaves`), in order."""
    it = iter(parts)

    def node(m: int) -> np.float64:
        if m <= block:
            return next(it)
        h = _half(m)
        left = node(h)
        return left + node(m - h)

    return node(n)


class _StreamSum:
    """numpy's sum of ``n`` values that arrive in pieces of any size (the values of a mask
    over each block): at most a leaf of them is held."""

    def __init__(self, n: int, block: int) -> None:
        self.n, self.block = n, block
        self.sizes = [b - a for a, b in _leaves(n, block)] if n else []
        self.held: list[np.ndarray] = []
        self.count = 0
        self.parts: list[np.float64] = []

    def feed(self, x: np.ndarray) -> None:
        while x.size:
            need = self.sizes[len(self.parts)] - self.count
            self.held.append(x[:need])
            self.count += min(need, x.size)
            x = x[need:]
            if self.count == self.sizes[len(self.parts)]:
                leaf = self.held[0] if len(self.held) == 1 else np.concatenate(self.held)
                self.parts.append(np.add.reduce(leaf))
                self.held, self.count = [], 0

    def total(self) -> np.float64:
        if self.n == 0:
            return np.float64(0.0)
        return _tree_sum(self.n, self.parts, self.block)


class _Smallest:
    """The ``m`` smallest values fed (as a multiset), in memory for about ``1.25 m`` of
    them: a value above the ``m``-th smallest kept so far can never be among them."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.held: list[np.ndarray] = []
        self.size = 0
        self.bound = np.inf

    def feed(self, x: np.ndarray) -> None:
        if self.bound < np.inf:
            x = x[x <= self.bound]
        self.held.append(x)
        self.size += x.size
        if self.size > self.m + self.m // 4 + 1024:
            self._shrink()

    def _shrink(self) -> None:
        # A copy: the pieces may be views of the caller's array, and the kept values must
        # not keep a larger array alive.
        v = np.concatenate(self.held)
        if v.size > self.m:
            v.partition(self.m - 1)
            v = v[: self.m].copy()
        if v.size == self.m:
            self.bound = v.max()
        self.held, self.size = [v], v.size

    def ordered(self) -> np.ndarray:
        self._shrink()
        return np.sort(self.held[0])


def _dispersion(hi: np.float64, lo: np.float64, n: int, d2_sum: np.float64) -> float:
    """:func:`bt_analysis.stats._dispersion` of ``n`` values with maximum ``hi``, minimum
    ``lo`` and ``sum((v - mean(v)) ** 2) == d2_sum``: numpy's ``std(ddof=1)`` is ``sqrt``
    of exactly that sum over ``n - 1``."""
    hi_, lo_ = float(hi), float(lo)
    if hi_ - lo_ <= st._CONSTANT_SPREAD * max(1.0, abs(hi_), abs(lo_)):
        return 0.0
    return float(np.sqrt(np.float64(d2_sum) / (n - 1)))


def _quantile(at: Callable[[int], np.float64], n: int, q: float) -> np.float64:
    """``np.percentile(x, 100 * q)`` (linear method) of ``n`` values whose ``i``-th smallest
    is ``at(i)``, by numpy's own arithmetic: virtual index ``(n - 1) * q``, then the
    interpolation between its neighbours written from the nearer one. np.percentile would
    select the order statistics again (a partition of the whole array per call); the tests
    check the two agree bit for bit."""
    virtual = (n - 1) * np.float64(q)
    if virtual >= n - 1:
        return np.float64(at(n - 1))
    lo = int(np.floor(virtual))
    gamma = virtual - lo
    a, b = np.float64(at(lo)), np.float64(at(lo + 1))
    diff = b - a
    if gamma >= 0.5:
        return np.float64(b - diff * (1 - gamma))
    return np.float64(a + diff * gamma)


def _percentile_of_sorted(ordered: np.ndarray, q: float) -> np.float64:
    """``np.percentile(x, 100 * q)`` of the sorted copy ``ordered`` of ``x``."""
    return _quantile(ordered.__getitem__, ordered.size, q)


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


#: ``returns(a, b)``: the returns ``a`` to ``b`` (exclusive), an array nobody changes.
Returns = Callable[[int, int], np.ndarray]


def return_stats(r: np.ndarray, ppy: float, rf: float, *, block: int = BLOCK) -> dict[str, float]:
    """cagr, annual_volatility, sharpe, sortino, calmar, omega, tail_ratio, var_95, cvar_95,
    skew, kurtosis and stability of the per-bar returns ``r`` (float64, 1-D), each equal to
    its :mod:`bt_analysis.stats` function's value (``rf`` per bar: Sharpe's risk-free rate,
    Sortino's required return, Omega's threshold)."""
    n = r.size
    if n < 3:
        return _reference(r, st._check_ppy(ppy), rf)
    return _figures(lambda a, b: r[a:b], n, ppy, rf, block) or _reference(r, ppy, rf)


def equity_return_stats(
    values: np.ndarray, ppy: float, rf: float, *, block: int = BLOCK
) -> dict[str, float]:
    """:func:`return_stats` of the returns ``values[t] / values[t - 1] - 1`` of a validated
    equity curve, without an array of them: each block is made from the curve when needed."""
    n = values.size - 1
    returns = curve_returns(values)
    got = _figures(returns, n, ppy, rf, block) if n >= 3 else None
    return got or _reference(returns(0, n), st._check_ppy(ppy), rf)


def curve_returns(values: np.ndarray) -> Returns:
    """The returns ``values[t] / values[t - 1] - 1`` of an equity curve, ``a`` to ``b``,
    made when asked for (the same operations as on the whole curve: the same bits)."""

    def returns(a: int, b: int) -> np.ndarray:
        out = np.divide(values[a + 1 : b + 1], values[a:b])
        out -= 1.0
        return out

    return returns


def moment_sums(
    returns: Returns, n: int, *, block: int = BLOCK
) -> tuple[np.float64, np.float64, np.float64, np.float64]:
    """The mean of ``n >= 1`` returns and the sums of their deviations from it squared,
    cubed and to the fourth power, each sum numpy's ``np.add.reduce`` of the whole array
    (the cube formed as square times value, the fourth power as the square squared)."""
    leaves = _leaves(n, block)
    mean = _tree_sum(n, [np.add.reduce(returns(a, b)) for a, b in leaves], block) / n
    parts: tuple[list[np.float64], ...] = ([], [], [])
    for a, b in leaves:
        dev = returns(a, b)
        dev -= mean
        dev2 = dev * dev
        parts[0].append(np.add.reduce(dev2))
        dev *= dev2
        parts[1].append(np.add.reduce(dev))
        np.multiply(dev2, dev2, out=dev)
        parts[2].append(np.add.reduce(dev))
    d2, d3, d4 = (_tree_sum(n, p, block) for p in parts)
    return mean, d2, d3, d4


def _figures(
    returns: Returns, n: int, ppy: float, rf: float, block: int
) -> dict[str, float] | None:
    """The figures of :func:`return_stats` from ``n >= 3`` returns made a block at a time
    (None if one is not finite: the public functions then raise their errors)."""
    ppy = st._check_ppy(ppy)
    leaves = _leaves(n, block)
    nan = float("nan")

    # First pass: everything that needs no mean.
    sums: dict[str, list[np.float64]] = {k: [] for k in ("r", "shifted", "down", "logs")}
    log_carries: list[np.float64] = []
    growth = peak = np.float64(1.0)
    mdd = np.float64(np.inf)
    hi = lo = s_hi = s_lo = np.float64(np.nan)
    n_gain = n_loss = 0
    # Quantiles: the order statistics around the 5th and 95th percentiles and below the
    # CVaR cut-off, kept from each end of the returns.
    k_cvar = int((n - 1) * 0.05)
    m_low = max(int(np.floor((n - 1) * np.float64(0.05))) + 2, k_cvar + 1)
    m_high = n - int(np.floor((n - 1) * np.float64(0.95)))
    lows, highs = _Smallest(min(m_low, n)), _Smallest(m_high)
    log_sum = np.float64(0.0)
    for i, (a, b) in enumerate(leaves):
        rb = returns(a, b)
        if not np.isfinite(rb).all():
            return None
        sums["r"].append(np.add.reduce(rb))
        bh, bl = rb.max(), rb.min()
        hi = bh if i == 0 else max(hi, bh)
        lo = bl if i == 0 else min(lo, bl)
        # 1 + r compounded (cagr's ending value is the last product; np.prod multiplies in
        # order) and its drawdown from a running peak that starts at 1.
        curve = rb + 1.0
        curve[0] *= growth
        np.cumprod(curve, out=curve)
        growth = curve[-1]
        peaks = np.maximum.accumulate(curve)
        np.maximum(peaks, peak, out=peaks)
        peak = peaks[-1]
        curve -= peaks
        curve /= peaks
        mdd = np.minimum(mdd, curve.min())
        del curve, peaks
        # r - rf: Sharpe's excess returns, Sortino's and Omega's shifted returns.
        shifted = rb - rf if rf != 0.0 else rb
        if rf != 0.0:
            sums["shifted"].append(np.add.reduce(shifted))
            bh, bl = shifted.max(), shifted.min()
            s_hi = bh if i == 0 else max(s_hi, bh)
            s_lo = bl if i == 0 else min(s_lo, bl)
        down = np.minimum(shifted, 0.0)
        down *= down
        sums["down"].append(np.add.reduce(down))
        del down
        n_gain += int(np.count_nonzero(shifted > 0.0))
        n_loss += int(np.count_nonzero(shifted < 0.0))
        lows.feed(rb)
        highs.feed(np.negative(rb))
        # Cumulative log returns (stability), summed for their mean.
        logs = np.log1p(rb)
        logs[0] += log_sum
        log_carries.append(log_sum)
        np.cumsum(logs, out=logs)
        log_sum = logs[-1]
        sums["logs"].append(np.add.reduce(logs))
        del logs, rb, shifted

    def total(key: str) -> np.float64:
        return _tree_sum(n, sums[key], block)

    out: dict[str, float] = {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cagr = float(np.power(growth, 1.0 / (n / ppy)) - 1.0)
    out["cagr"] = cagr
    mdd_ = float(mdd)
    if mdd_ < 0:
        calmar = cagr / abs(mdd_)
        out["calmar"] = nan if np.isinf(calmar) else float(calmar)
    else:
        out["calmar"] = nan
    mean = total("r") / n
    # r - 0.0 is r, bit for bit: without a risk-free rate the shifted returns are r.
    shifted_mean = mean if rf == 0.0 else total("shifted") / n
    log_mean = total("logs") / n

    # Second pass: the deviations from the means.
    dev_sums: dict[str, list[np.float64]] = {k: [] for k in ("d2", "d3", "d4", "s2", "xy", "yy")}
    gains, losses = _StreamSum(n_gain, block), _StreamSum(n_loss, block)
    centre = (n - 1) / 2
    for i, (a, b) in enumerate(leaves):
        rb = returns(a, b)
        # numpy's std and scipy's skew/kurtosis start from the same deviations; scipy forms
        # the cube as square times value and the fourth power as the square squared.
        dev = rb - mean
        dev2 = dev * dev
        dev_sums["d2"].append(np.add.reduce(dev2))
        dev *= dev2
        dev_sums["d3"].append(np.add.reduce(dev))
        np.multiply(dev2, dev2, out=dev)
        dev_sums["d4"].append(np.add.reduce(dev))
        del dev, dev2
        shifted = rb - rf if rf != 0.0 else rb
        if rf != 0.0:
            ex = shifted - shifted_mean
            ex *= ex
            dev_sums["s2"].append(np.add.reduce(ex))
            del ex
        gains.feed(shifted[shifted > 0.0])
        losses.feed(shifted[shifted < 0.0])
        # stability: the centred cumulative log returns against the centred bar number.
        logs = np.log1p(rb)
        logs[0] += log_carries[i]
        np.cumsum(logs, out=logs)
        logs -= log_mean
        x = np.arange(a, b, dtype=np.float64)
        x -= centre
        x *= logs
        dev_sums["xy"].append(np.add.reduce(x))
        logs *= logs
        dev_sums["yy"].append(np.add.reduce(logs))
        del logs, x, rb, shifted

    def dev_total(key: str) -> np.float64:
        return _tree_sum(n, dev_sums[key], block)

    d2_sum = dev_total("d2")
    disp = _dispersion(hi, lo, n, d2_sum)
    out["annual_volatility"] = float(disp * ppy**0.5)
    # r - 0.0 is r, bit for bit: without a risk-free rate the dispersion above is Sharpe's.
    sharpe_disp = disp if rf == 0.0 else _dispersion(s_hi, s_lo, n, dev_total("s2"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sharpe"] = float(np.float64(shifted_mean) / np.float64(sharpe_disp) * np.sqrt(ppy))
    if disp == 0.0:
        out["skew"] = out["kurtosis"] = nan
    else:
        # scipy.stats.skew / kurtosis (biased): m3 / m2**1.5 and m4 / m2**2 - 3, with
        # scipy's rule for a vanishing m2.
        m2 = np.float64(d2_sum / n)
        m3 = dev_total("d3") / n
        m4 = dev_total("d4") / n
        with np.errstate(all="ignore"):
            zero = m2 <= (_EPS * mean) ** 2
            out["skew"] = nan if zero else float(m3 / m2**1.5)
            out["kurtosis"] = nan if zero else float(m4 / m2**2.0 - 3)

    # Sortino: the mean excess over the required return and the downside deviation.
    numerator = np.float64(shifted_mean * ppy)
    downside = float(np.sqrt(total("down") / n) * np.sqrt(ppy))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sortino"] = float(numerator / np.float64(downside))
    gain, loss = float(gains.total()), -float(losses.total())
    out["omega"] = gain / loss if loss > 0.0 else nan

    # Quantiles from the kept ends: the i-th smallest and (negated) the i-th largest.
    low, high = lows.ordered(), highs.ordered()
    p5 = _quantile(low.__getitem__, n, 0.05)
    p95 = _quantile(lambda i: -high[n - 1 - i], n, 0.95)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tail_ratio"] = float(np.abs(p95) / np.abs(p5))
    out["var_95"] = float(p5)
    out["cvar_95"] = float(np.mean(low[: k_cvar + 1]))

    # stability: R² of the least-squares line; sum((i - centre) ** 2) over i < n, exactly.
    sxx = n * (n * n - 1.0) / 12.0
    sxy, syy = float(dev_total("xy")), float(dev_total("yy"))
    if syy == 0.0:
        out["stability"] = nan
    else:
        r_value = min(max(sxy / np.sqrt(sxx * syy), -1.0), 1.0)
        out["stability"] = r_value * r_value
    return out


def _first_argmin(x: np.ndarray, block: int) -> int:
    """``np.argmin(x)``, a block at a time: numpy copies a read-only array (the engine's
    curves are) whole to find its argmin."""
    best, where = np.float64(np.inf), 0
    for a in range(0, x.size, block):
        part = x[a : a + block]
        j = int(np.argmin(part))
        if part[j] < best:
            best, where = part[j], a + j
    return where


def drawdown_summary(
    values: np.ndarray, stamps: np.ndarray, *, block: int = BLOCK
) -> dict[str, float | int | None]:
    """The drawdown figures of :func:`bt_analysis.drawdown.drawdown_segments` that
    performance_metrics reports, without building the table: the deepest depth, the longest
    length in bars and in days, and the bar positions of the deepest drawdown's peak, valley
    and recovery (None if it has not recovered; all None without a drawdown).

    ``values`` is a validated equity curve, ``stamps`` its index in int64 nanoseconds. The
    running peak is made a block at a time and each drawdown is reduced to the figures as
    it closes: memory for a block, however many drawdowns the curve has.
    """
    n = values.size
    peak = values[0]
    open_start = -1  # first underwater bar of the drawdown still open, -1 if none
    longest_bars, longest_days = 0, -np.inf
    depth = np.float64(np.inf)
    deep_start, deep_end = -1, -1  # the deepest drawdown's first and last bar; -1: open
    for a in range(0, n, block):
        v = values[a : a + block]
        peaks = np.maximum.accumulate(v)
        np.maximum(peaks, peak, out=peaks)
        peak = peaks[-1]
        below = v < peaks
        # Runs of underwater bars (bar 0 never is): starts where below turns on, ends
        # (inclusive) where it turns off; the block's first bar is judged against the last
        # bar of the block before.
        flips = np.flatnonzero(below[1:] != below[:-1]) + 1
        if bool(below[0]) != (open_start >= 0):
            flips = np.concatenate(([0], flips))
        on = below[flips]
        ends = flips[~on] + (a - 1)
        starts = flips[on] + a
        if open_start >= 0:
            starts = np.concatenate(([open_start], starts))
            if deep_start == open_start and deep_end < 0 and ends.size:
                deep_end = int(ends[0])
        # Starts and ends alternate: the first len(ends) starts are closed in this block.
        k = ends.size
        if k:
            peak_pos, end_pos = starts[:k] - 1, ends + 1
            longest_bars = max(longest_bars, int((end_pos - peak_pos).max()))
            days = (stamps[end_pos] - stamps[peak_pos]) / _NS_PER_DAY
            longest_days = max(longest_days, float(days.max()))
        # Within a drawdown the running peak is the peak bar's value, and dividing by it
        # keeps the order of the values: the first bar at the lowest ratio lies in the
        # first deepest drawdown, whose depth (valley / peak - 1) is that ratio minus 1.
        if below.any():
            ratio = np.divide(v, peaks, out=peaks)
            ratio -= 1.0
            j = int(np.argmin(ratio))
            if ratio[j] < depth:
                depth = ratio[j]
                seg = int(np.searchsorted(starts, a + j, side="right")) - 1
                deep_start = int(starts[seg])
                deep_end = int(ends[seg]) if seg < k else -1
        open_start = int(starts[k]) if starts.size > k else -1
        del peaks, below
    if deep_start < 0:
        return {
            "depth": 0.0,
            "length_bars": 0,
            "length_days": 0.0,
            "peak": None,
            "valley": None,
            "recovery": None,
        }
    if open_start >= 0:
        # Still underwater at the last bar: the drawdown runs to it, unrecovered.
        longest_bars = max(longest_bars, n - open_start)
        days = (stamps[n - 1] - stamps[open_start - 1]) / _NS_PER_DAY
        longest_days = max(longest_days, float(days))
    recovered = deep_end >= 0
    last = deep_end if recovered else n - 1
    # The valley is the first bar at the lowest value (two values can share a ratio).
    valley = deep_start + _first_argmin(values[deep_start : last + 1], block)
    return {
        "depth": float(depth),
        "length_bars": longest_bars,
        "length_days": longest_days,
        "peak": deep_start - 1,
        "valley": valley,
        "recovery": deep_end + 1 if recovered else None,
    }
