"""Windowed indicators are exact where it matters and survive hostile inputs.

- Decimal prices: two averages whose exact means are equal come out as the same double, so a
  fast SMA that only touches the slow one is no strict cross and makes no trade. (pandas'
  rolling mean and a fresh float sum per window each break about half of such ties by an
  ulp; wherever they do keep a tie, so does the engine.)
- Every average is within rounding of a fresh sum of its window, also after a huge value has
  left the window.
- Windows longer than the data (or than any array) are all-NaN at once; windows that are no
  machine integer are a ValueError naming ``window``, never a Rust panic.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bt_engine
from bt_core import Backtest, ParameterError, Strategy
from bt_core import indicators as ind

FAST, SLOW = 10, 30


def tie_walk(seed: int, n: int, start: int = 10_000, step: int = 40) -> np.ndarray:
    """Prices in cents: a random walk where, every few bars, the price is the one that makes
    the 10-bar mean equal the 30-bar mean exactly (when that is a positive whole cent)."""
    rng = np.random.default_rng(seed)
    u = [start]
    level, want = start, False
    while len(u) < n:
        t = len(u)
        level = max(level + int(rng.integers(-step, step + 1)), start // 2)
        nxt = level
        want |= t % 7 == 0
        if want and t >= SLOW:
            a, b = sum(u[t - FAST + 1 : t]), sum(u[t - SLOW + 1 : t])
            num = FAST * b - SLOW * a  # SLOW * (a + c) == FAST * (b + c)
            if num % (SLOW - FAST) == 0 and num > 0:
                nxt, want = num // (SLOW - FAST), False
        u.append(nxt)
    return np.array(u, dtype=np.int64)


def touching_walk(seed: int, n: int, *, bump: int = 0) -> np.ndarray:
    """Prices in cents whose 10-bar mean, once below the 30-bar mean, may touch it exactly but
    never rise strictly above it. ``bump`` cents added to each touching price turn every touch
    into a strict cross (the control)."""
    rng = np.random.default_rng(seed)
    u = [20_000 - 7 * i for i in range(SLOW)]
    while len(u) < n:
        t = len(u)
        a, b = sum(u[t - 9 :]), sum(u[t - 29 :])
        below = 3 * (a + u[t - 10]) < b + u[t - 30]
        c = u[-1] + int(rng.integers(-30, 41))
        cap = (b - 3 * a) // 2  # 3 * (a + c) <= b + c
        if below and c >= cap:
            c = cap if (b - 3 * a) % 2 == 0 and rng.random() < 0.7 else cap - 1
            if 3 * (a + c) == b + c:
                c += bump
        u.append(max(c, 100))
    return np.array(u, dtype=np.int64)


def exact_relation(u: np.ndarray) -> np.ndarray:
    """sign(mean10 - mean30) per bar from the integer prices (0 before bar 29)."""
    c = np.concatenate([[0], np.cumsum(u)])
    out = np.zeros(len(u), dtype=np.int64)
    for t in range(SLOW - 1, len(u)):
        f, s = c[t + 1] - c[t + 1 - FAST], c[t + 1] - c[t + 1 - SLOW]
        out[t] = np.sign(3 * f - s)
    return out


def fresh_means(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        out[t] = np.sum(x[t + 1 - n : t + 1]) / n
    return out


def frame(close: np.ndarray) -> pd.DataFrame:
    idx = pd.date_range("2015-01-01", periods=len(close), freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1000.0,
        },
        index=idx,
    )


# ----------------------------------------------------------------------------------------
# ties
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decimal_ties_are_exact_and_match_pandas_and_fresh_sums(seed: int) -> None:
    u = tie_walk(seed, 4000)
    x = u / 100.0  # the double nearest each 2-decimal price, as a CSV reader gives
    f, s = bt_engine.sma(x, FAST), bt_engine.sma(x, SLOW)
    pf = pd.Series(x).rolling(FAST).mean().to_numpy()
    ps = pd.Series(x).rolling(SLOW).mean().to_numpy()
    ff, fs = fresh_means(x, FAST), fresh_means(x, SLOW)
    np.testing.assert_allclose(f, pf, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(s, ps, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(f, ff, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(s, fs, rtol=1e-13, equal_nan=True)
    rel = exact_relation(u)[SLOW - 1 :]
    got = np.sign(f - s)[SLOW - 1 :]
    # The order of the two averages is the exact order of the means, ties included.
    np.testing.assert_array_equal(got, rel)
    assert (rel == 0).sum() > 300
    # Wherever pandas or a fresh sum per window sees a tie, so does the engine.
    for a, b in ((pf, ps), (ff, fs)):
        tie = a[SLOW - 1 :] == b[SLOW - 1 :]
        assert tie.sum() > 100
        np.testing.assert_array_equal(f[SLOW - 1 :][tie], s[SLOW - 1 :][tie])


def test_sma_and_the_builtin_cross_agree_on_decimal_data() -> None:
    """The built-in trades exactly where the strict rule on bt_core.indicators.sma does."""
    x = tie_walk(4, 3000) / 100.0
    f, s = ind.sma(x, FAST), ind.sma(x, SLOW)
    up = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
    res = Backtest(frame(x), "sma_cross").run(fast=FAST, slow=SLOW, size=1)
    buy_bars = np.flatnonzero(up) + 2  # decided on bar t+1, filled at the next open
    fills = res.fills
    buys = fills[fills["side"].astype(str).str.lower() == "buy"]
    expected = pd.DatetimeIndex(frame(x).index[buy_bars[buy_bars < len(x)]])
    assert set(buys["datetime"]) <= set(expected)
    assert len(buys) > 10


class PyCross(Strategy):
    fast = FAST
    slow = SLOW

    def on_start(self) -> None:
        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I(ind.sma, self.data.close, self.slow)
        self.warmup = self.slow

    def next(self, bar: Any) -> None:
        if self.f.crossed_above(self.s):
            if self.position == 0:
                self.buy(1.0)
        elif self.f.crossed_below(self.s):
            self.close()


def peer_crosses(x: np.ndarray) -> np.ndarray:
    """Bars of strict up-crosses by backtesting.py's rule on pandas averages."""
    pf = pd.Series(x).rolling(FAST).mean().to_numpy()
    ps = pd.Series(x).rolling(SLOW).mean().to_numpy()
    return np.flatnonzero((pf[:-1] < ps[:-1]) & (pf[1:] > ps[1:])) + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_averages_that_only_touch_make_no_trade(seed: int) -> None:
    u = touching_walk(seed, 3000)
    rel = exact_relation(u)
    touches = int(((rel[:-1] < 0) & (rel[1:] == 0))[SLOW - 1 :].sum())
    assert touches > 30
    assert not ((rel[:-1] < 0) & (rel[1:] > 0))[SLOW - 1 :].any()
    x = u / 100.0
    # pandas' averages do "cross" here, but only next to exact touches: rounding, not crosses.
    at = peer_crosses(x)
    assert ((rel[at - 1] == 0) | (rel[at] == 0)).all()
    df = frame(x)
    assert Backtest(df, "sma_cross").run(fast=FAST, slow=SLOW, size=1).fills.empty
    assert Backtest(df, PyCross).run().fills.empty


def test_control_a_cent_above_the_touch_is_a_cross() -> None:
    """The same walk with each touch a cent higher does cross, and both drivers trade."""
    u = touching_walk(0, 3000, bump=1)
    x = u / 100.0
    rel = exact_relation(u)
    assert ((rel[:-1] < 0) & (rel[1:] > 0)).sum() > 10
    assert (rel[peer_crosses(x)] > 0).all()
    builtin = Backtest(frame(x), "sma_cross").run(fast=FAST, slow=SLOW, size=1).fills
    python = Backtest(frame(x), PyCross).run().fills
    assert len(builtin) > 10
    pd.testing.assert_frame_equal(
        builtin.drop(columns="order_id"), python.drop(columns="order_id"), check_like=True
    )


# ----------------------------------------------------------------------------------------
# hostile inputs
# ----------------------------------------------------------------------------------------


def call_all(x: np.ndarray, window: Any) -> list[Any]:
    return [
        bt_engine.sma(x, window),
        bt_engine.ema(x, window),
        bt_engine.rsi(x, window),
        bt_engine.atr(x, x, x, window),
        *bt_engine.bollinger(x, window, 2.0),
        ind.sma(x, window),
        ind.ema(list(x), window),
        ind.rsi(pd.Series(x), window),
        ind.atr(x, x, x, window),
        *ind.bollinger(x, window),
    ]


@pytest.mark.parametrize("window", [1001, 10**12, 2**62, 2**63, 2**64 - 1, np.int64(10**12)])
def test_windows_longer_than_the_data_are_all_nan_at_once(window: Any) -> None:
    x = 100.0 + np.sin(np.arange(1000) * 0.1)
    t0 = time.perf_counter()
    outs = call_all(x, window)
    assert time.perf_counter() - t0 < 1.0
    for out in outs:
        assert out.shape == x.shape and np.isnan(out).all()


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (2**64, "window must be at most"),
        (10**30, "window must be at most"),
        (-3, "window must be >= 1, got -3"),
        (-(10**30), "window must be >= 1"),
        (0, "window must be >= 1, got 0"),
    ],
)
@pytest.mark.parametrize("name", ["sma", "ema", "rsi", "atr", "bollinger"])
def test_windows_that_are_no_machine_integer_are_a_clear_error(
    name: str, window: int, message: str
) -> None:
    x = 100.0 + np.sin(np.arange(50) * 0.1)
    args: dict[str, tuple[Any, ...]] = {
        "sma": (x,),
        "ema": (x,),
        "rsi": (x,),
        "atr": (x, x, x),
        "bollinger": (x,),
    }
    for f in (getattr(bt_engine, name), getattr(ind, name)):
        try:
            f(*args[name], window)
        except BaseException as e:  # a PanicException derives from BaseException only
            assert type(e).__name__ != "PanicException"
            assert isinstance(e, ValueError), repr(e)
            assert message in str(e) and name in str(e), str(e)
        else:
            pytest.fail(f"{name}({window}) did not raise")


def test_a_window_that_is_not_an_integer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="sma: window must be an integer, got float"):
        bt_engine.sma(np.ones(5), 2.5)


def test_builtin_cross_with_windows_beyond_the_data() -> None:
    df = frame(100.0 + np.sin(np.arange(300) * 0.1))
    t0 = time.perf_counter()
    try:
        res = Backtest(df, "sma_cross").run(fast=10**12, slow=10**12 + 1, size=1)
    except ParameterError:
        pass
    else:
        assert res.fills.empty
    res = Backtest(df, "sma_cross").run(fast=2**62, slow=2**63, size=1)
    assert res.fills.empty
    assert time.perf_counter() - t0 < 2.0


def spiked(spike: float, *, decimal: bool) -> np.ndarray:
    rng = np.random.default_rng(9)
    x = 100.0 + 5.0 * np.sin(np.arange(2000) * 0.05) + rng.random(2000)
    if decimal:
        x = np.round(x, 2)
    x[300] = spike
    return x


@pytest.mark.parametrize("decimal", [False, True])
@pytest.mark.parametrize("spike", [1e300, -1e300, 1e308])
def test_a_huge_value_leaves_no_trace(spike: float, decimal: bool) -> None:
    x = spiked(spike, decimal=decimal)
    for n in (10, 30, 500):
        got = bt_engine.sma(x, n)
        after = slice(300 + n, None)
        np.testing.assert_allclose(got[after], fresh_means(x, n)[after], rtol=1e-12)
        # While it is in the window the mean is finite and dominated by it.
        np.testing.assert_allclose(got[max(300, n - 1) : 300 + n], spike / n, rtol=1e-12)
    mid, up, lo = bt_engine.bollinger(x, 20, 2.0)
    s = pd.Series(x)
    for t in range(330, len(x)):
        w = x[t - 19 : t + 1]
        assert mid[t] == pytest.approx(w.mean(), rel=1e-12)
        assert (up[t] - mid[t]) / 2 == pytest.approx(w.std(), rel=1e-9, abs=1e-12)
    # pandas agrees once the spike is out of its windows too (our reference above is per window).
    np.testing.assert_allclose(mid[330:], s.rolling(20).mean().to_numpy()[330:], rtol=1e-9)
    # Inside: the population std of one outlier among 20, not an overflow to inf.
    assert np.isfinite(up[300:320]).all()
    assert (up[319] - mid[319]) / 2 == pytest.approx(abs(spike) / 20 * np.sqrt(19), rel=1e-12)


def test_builtin_cross_after_a_spike_trades_like_the_python_strategy() -> None:
    x = spiked(1e300, decimal=True)
    df = frame(x)
    builtin = Backtest(df, "sma_cross").run(fast=FAST, slow=SLOW, size=1).fills
    python = Backtest(df, PyCross).run().fills
    assert len(builtin) > 10
    pd.testing.assert_frame_equal(
        builtin.drop(columns="order_id"), python.drop(columns="order_id"), check_like=True
    )
    # Every trade decision after the spike is one the fresh averages make.
    f, s = fresh_means(x, FAST), fresh_means(x, SLOW)
    up = np.flatnonzero((f[:-1] < s[:-1]) & (f[1:] > s[1:])) + 2
    buys = builtin[builtin["side"].astype(str).str.lower() == "buy"]
    later = buys[buys["datetime"] > df.index[340]]
    assert set(later["datetime"]) <= set(df.index[up[up < len(x)]])


def test_builtin_window_beyond_a_machine_word_is_a_parameter_error() -> None:
    from bt_core import Backtest, ParameterError

    idx = pd.date_range("2021-01-01", periods=50, freq="D", tz="UTC")
    df = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}, index=idx)
    with pytest.raises(ParameterError, match="parameter fast must be below 2\\*\\*64") as info:
        Backtest(df, "sma_cross").run(fast=10**30, slow=10**30 + 1)
    assert info.value.parameter == "fast"
