"""Rust indicators (bt_engine.sma/ema/rsi/atr/bollinger and the bt_core.indicators wrappers)
against pandas / textbook references, including NaN gaps (NaN = no bar: the indicator runs
over the present values and is NaN where the input is absent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bt_engine
from bt_core import indicators

# ----------------------------------------------------------------------------------------
# references (pandas, computed on the present values, scattered back)
# ----------------------------------------------------------------------------------------


def over_present(x: np.ndarray, f: Callable[[pd.Series], pd.Series]) -> np.ndarray:
    mask = ~np.isnan(x)
    out = np.full(len(x), np.nan)
    out[mask] = f(pd.Series(x[mask])).to_numpy(dtype=float)
    return out


def ref_sma(x: np.ndarray, n: int) -> np.ndarray:
    return over_present(x, lambda s: s.rolling(n).mean())


def _seeded_ewm(seed_at: int, seed: float, values: pd.Series, alpha: float) -> pd.Series:
    """NaN before ``seed_at``, ``seed`` there, then ewm(adjust=False) over later values."""
    s = values.astype(float).copy()
    s.iloc[:seed_at] = np.nan
    s.iloc[seed_at] = seed
    return s.ewm(alpha=alpha, adjust=False).mean()


def ref_ema(x: np.ndarray, n: int) -> np.ndarray:
    def f(s: pd.Series) -> pd.Series:
        if len(s) < n:
            return pd.Series(np.nan, index=s.index)
        return _seeded_ewm(n - 1, s.iloc[:n].mean(), s, 2.0 / (n + 1))

    return over_present(x, f)


def ref_rsi(x: np.ndarray, n: int) -> np.ndarray:
    def f(s: pd.Series) -> pd.Series:
        if len(s) <= n:
            return pd.Series(np.nan, index=s.index)
        d = s.diff()
        gain, loss = d.clip(lower=0), (-d).clip(lower=0)
        ag = _seeded_ewm(n, gain.iloc[1 : n + 1].mean(), gain, 1.0 / n)
        al = _seeded_ewm(n, loss.iloc[1 : n + 1].mean(), loss, 1.0 / n)
        rsi = 100.0 - 100.0 / (1.0 + ag / al)
        rsi[(al == 0) & (ag > 0)] = 100.0
        rsi[(al == 0) & (ag == 0)] = 50.0
        return rsi

    return over_present(x, f)


def ref_atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    mask = ~(np.isnan(h) | np.isnan(lo) | np.isnan(c))
    out = np.full(len(c), np.nan)
    hs, ls, cs = (pd.Series(a[mask]) for a in (h, lo, c))
    if len(cs) < n:
        return out
    pc = cs.shift(1)
    tr = pd.concat([hs - ls, (hs - pc).abs(), (ls - pc).abs()], axis=1).max(axis=1)
    tr.iloc[0] = hs.iloc[0] - ls.iloc[0]
    out[mask] = _seeded_ewm(n - 1, tr.iloc[:n].mean(), tr, 1.0 / n).to_numpy()
    return out


def ref_bollinger(x: np.ndarray, n: int, k: float) -> tuple[np.ndarray, ...]:
    mid = over_present(x, lambda s: s.rolling(n).mean())
    sd = over_present(x, lambda s: s.rolling(n).std(ddof=0))
    return mid, mid + k * sd, mid - k * sd


# ----------------------------------------------------------------------------------------
# random series with gaps
# ----------------------------------------------------------------------------------------


def series(seed: int, n: int, gaps: float, *, positive: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if positive:
        x = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    else:
        x = rng.normal(0.0, 10.0, n)
    x[rng.random(n) < gaps] = np.nan
    return x


def ohlc(seed: int, n: int, gaps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    o = np.concatenate([[50.0], c[:-1]])
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.01, n)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.01, n)))
    miss = rng.random(n) < gaps
    for a in (h, lo, c):
        a[miss] = np.nan
    return h, lo, c


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)


CASES = dict(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 300),
    window=st.integers(1, 40),
    gaps=st.sampled_from([0.0, 0.05, 0.3]),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(**CASES, positive=st.booleans())
def test_sma_ema_bollinger_match_pandas(
    seed: int, n: int, window: int, gaps: float, positive: bool
) -> None:
    x = series(seed, n, gaps, positive=positive)
    assert_same(bt_engine.sma(x, window), ref_sma(x, window))
    assert_same(bt_engine.ema(x, window), ref_ema(x, window))
    for k in (2.0, 0.5):
        got_bands, want_bands = bt_engine.bollinger(x, window, k), ref_bollinger(x, window, k)
        for got, want in zip(got_bands, want_bands, strict=True):
            assert_same(got, want)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(**CASES)
def test_rsi_atr_match_references(seed: int, n: int, window: int, gaps: float) -> None:
    x = series(seed, n, gaps)
    assert_same(bt_engine.rsi(x, window), ref_rsi(x, window))
    h, lo, c = ohlc(seed, n, gaps)
    assert_same(bt_engine.atr(h, lo, c, window), ref_atr(h, lo, c, window))


def test_rsi_on_flat_and_monotone_stretches() -> None:
    # Exact Wilder values where losses (or gains) are zero: 100, 0 and 50 (flat).
    up = np.arange(1.0, 30.0)
    assert_same(bt_engine.rsi(up, 14), ref_rsi(up, 14))
    assert bt_engine.rsi(up, 14)[-1] == 100.0
    assert bt_engine.rsi(up[::-1].copy(), 14)[-1] == 0.0
    assert bt_engine.rsi(np.full(30, 7.0), 14)[-1] == 50.0
    steps = np.array([1.0, 2.0, 2.0, 1.0, 1.0, 1.0, 3.0])
    assert_same(bt_engine.rsi(steps, 2), ref_rsi(steps, 2))


def test_sma_is_not_off_by_one() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    got = bt_engine.sma(x, 3)
    assert np.isnan(got[:2]).all()
    assert got[2:].tolist() == [2.0, 3.0, 4.0]


def test_sma_long_series_has_no_drift() -> None:
    # A running sum drifts over many steps; the engine re-sums periodically.
    rng = np.random.default_rng(3)
    x = 1e6 + rng.normal(0, 1.0, 50_000)
    got = bt_engine.sma(x, 37)
    assert_same(got, ref_sma(x, 37))
    exact = np.array([x[i - 36 : i + 1].sum() / 37 for i in range(49_000, 50_000)])
    np.testing.assert_allclose(got[49_000:], exact, rtol=1e-12)


def test_window_one() -> None:
    x = series(1, 50, 0.2)
    np.testing.assert_array_equal(bt_engine.sma(x, 1), x)
    np.testing.assert_array_equal(bt_engine.ema(x, 1), x)
    mid, up, lo = bt_engine.bollinger(x, 1, 2.0)
    np.testing.assert_array_equal(mid, x)
    np.testing.assert_array_equal(up, x)
    np.testing.assert_array_equal(lo, x)
    h, low, c = ohlc(2, 50, 0.2)
    assert_same(bt_engine.atr(h, low, c, 1), ref_atr(h, low, c, 1))
    assert_same(bt_engine.rsi(x, 1), ref_rsi(x, 1))


def test_window_longer_than_data() -> None:
    x = series(1, 10, 0.0)
    for f in (bt_engine.sma, bt_engine.ema, bt_engine.rsi):
        assert np.isnan(f(x, 11)).all()
    assert np.isnan(bt_engine.rsi(x, 10)).all()  # RSI(n) needs n changes: n + 1 values
    assert not np.isnan(bt_engine.sma(x, 10)[-1])
    assert all(np.isnan(b).all() for b in bt_engine.bollinger(x, 11, 2.0))
    h, lo, c = ohlc(1, 10, 0.0)
    assert np.isnan(bt_engine.atr(h, lo, c, 11)).all()
    # Gaps count as absent bars: 10 values with 3 gaps hold only 7 bars.
    g = x.copy()
    g[[2, 5, 7]] = np.nan
    assert np.isnan(bt_engine.sma(g, 8)).all()
    assert np.isnan(bt_engine.sma(np.array([]), 3)).size == 0


def test_all_nan_and_empty_inputs() -> None:
    x = np.full(20, np.nan)
    for f in (bt_engine.sma, bt_engine.ema, bt_engine.rsi):
        assert np.isnan(f(x, 3)).all()
    assert np.isnan(bt_engine.atr(x, x, x, 3)).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: bt_engine.sma(x, 0),
        lambda x: bt_engine.ema(x, 0),
        lambda x: bt_engine.rsi(x, 0),
        lambda x: bt_engine.atr(x, x, x, 0),
        lambda x: bt_engine.bollinger(x, 0, 2.0),
        lambda x: indicators.sma(x, 0),
    ],
)
def test_window_zero_is_an_error(call: Callable[[np.ndarray], Any]) -> None:
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        call(series(1, 20, 0.0))


def test_negative_window_is_an_error() -> None:
    with pytest.raises((ValueError, OverflowError)):
        bt_engine.sma(series(1, 20, 0.0), -3)


def test_other_bad_arguments() -> None:
    x = series(1, 20, 0.0)
    with pytest.raises(ValueError, match="k must be finite"):
        bt_engine.bollinger(x, 5, float("nan"))
    with pytest.raises(ValueError, match="same length"):
        bt_engine.atr(x, x[:-1], x, 3)


def test_wrappers_accept_lists_and_series() -> None:
    x = series(4, 60, 0.1)
    s = pd.Series(x)
    np.testing.assert_array_equal(indicators.sma(s, 5), bt_engine.sma(x, 5))
    np.testing.assert_array_equal(indicators.ema(list(x), 5), bt_engine.ema(x, 5))
    np.testing.assert_array_equal(indicators.rsi(s), bt_engine.rsi(x, 14))
    h, lo, c = ohlc(4, 60, 0.1)
    np.testing.assert_array_equal(indicators.atr(h, lo, c), bt_engine.atr(h, lo, c, 14))
    for a, b in zip(indicators.bollinger(s), bt_engine.bollinger(x, 20, 2.0), strict=True):
        np.testing.assert_array_equal(a, b)
    # A strided (non-contiguous) view is accepted by the wrappers.
    wide = np.stack([x, x]).T
    np.testing.assert_array_equal(indicators.sma(wide[:, 1], 5), bt_engine.sma(x, 5))


def test_inputs_are_not_modified() -> None:
    x = series(5, 100, 0.2)
    before = x.copy()
    bt_engine.sma(x, 5)
    bt_engine.ema(x, 5)
    bt_engine.rsi(x, 5)
    bt_engine.bollinger(x, 5, 2.0)
    np.testing.assert_array_equal(x, before)


def test_crossed_above_and_below_equal_the_explicit_reads() -> None:
    """Line.crossed_above/below are the four-read cross test in one call, NaN-safe."""
    from bt_core import Backtest, Strategy

    rng = np.random.default_rng(5)
    n = 400
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    df = pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close},
        index=pd.date_range("2021-01-01", periods=n, freq="D"),
    )
    seen: list[tuple[int, bool, bool, bool, bool]] = []

    class Probe(Strategy):
        def on_start(self) -> None:
            self.f = self.I(bt_engine.sma, self.data.close, 3)  # NaN for the first 2 bars
            self.s = self.I(bt_engine.sma, self.data.close, 8)
            self.warmup = 0  # every bar, also the NaN warm-up

        def next(self, bar):  # type: ignore[no-untyped-def]
            f, s = self.f, self.s
            up = len(f) >= 2 and f[-2] < s[-2] and f[-1] > s[-1]
            down = len(f) >= 2 and f[-2] > s[-2] and f[-1] < s[-1]
            seen.append((bar.i, up, f.crossed_above(s), down, f.crossed_below(s)))

    Backtest(df, Probe).run()
    assert len(seen) == n
    assert all(u == cu and d == cd for _, u, cu, d, cd in seen)
    assert sum(u for _, u, *_ in seen) > 3 and sum(d for *_, d, _ in seen) > 3
    assert not any(cu or cd for i, _, cu, _, cd in seen if i < 8)  # NaN warm-up never crosses
