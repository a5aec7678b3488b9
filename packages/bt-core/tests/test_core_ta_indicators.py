"""A well-kept indicator library through Strategy.I: the `ta` package (bt-core[ta]) by way of
bt_core.ta.ta_indicator. The values a strategy reads equal the library called directly on the
same bars, and they are revealed bar by bar (no look-ahead)."""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from bt_core import Backtest, Strategy
from bt_core.ta import ta_indicator

needs_ta = pytest.mark.skipif(
    importlib.util.find_spec("ta") is None,
    reason="the ta indicator library (extra bt-core[ta]) is not installed",
)

NAMES = ("macd", "signal", "hist", "rsi", "adx", "plus_di", "minus_di", "k", "d")


class TaRecorder(Strategy):
    """Reads every indicator's [-1] and [-2] on every bar."""

    seen: ClassVar[list[tuple[int, list[float], list[float]]]] = []

    def on_start(self) -> None:
        import ta

        d = self.data
        self.macd, self.signal, self.hist = self.I(
            ta_indicator(ta.trend.MACD, "macd", "macd_signal", "macd_diff"),
            d.close,
            window_slow=26,
            window_fast=12,
            window_sign=9,
        )
        self.rsi = self.I(ta_indicator(ta.momentum.rsi), d.close, window=14)
        self.adx, self.plus_di, self.minus_di = self.I(
            ta_indicator(ta.trend.ADXIndicator, "adx", "adx_pos", "adx_neg", window=14),
            d.high,
            d.low,
            d.close,
        )
        self.k = self.I(ta_indicator(ta.momentum.stoch, smooth_window=3), d.high, d.low, d.close)
        self.d = self.I(ta_indicator(ta.momentum.stoch_signal), d.high, d.low, d.close)
        self.warmup = 0  # every bar, warm-up included
        type(self).seen = []

    def next(self, bar: Any) -> None:
        lines = [getattr(self, n) for n in NAMES]
        now = [line[-1] for line in lines]
        before = [line[-2] for line in lines] if bar.i > 0 else []
        type(self).seen.append((bar.i, now, before))


def direct(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The library called the way its own docs show, on the DataFrame's columns."""
    import ta

    h, low, c = df["high"], df["low"], df["close"]
    macd = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    adx = ta.trend.ADXIndicator(h, low, c, window=14)
    out = {
        "macd": macd.macd(),
        "signal": macd.macd_signal(),
        "hist": macd.macd_diff(),
        "rsi": ta.momentum.rsi(c, window=14),
        "adx": adx.adx(),
        "plus_di": adx.adx_pos(),
        "minus_di": adx.adx_neg(),
        "k": ta.momentum.stoch(h, low, c, window=14, smooth_window=3),
        "d": ta.momentum.stoch_signal(h, low, c, window=14, smooth_window=3),
    }
    return {k: v.to_numpy(dtype=np.float64) for k, v in out.items()}


@needs_ta
def test_values_through_I_equal_the_library_bar_by_bar(make_ohlc: Any) -> None:
    df = make_ohlc(400, seed=11)
    Backtest(df, TaRecorder).run()
    seen = TaRecorder.seen
    assert [i for i, _, _ in seen] == list(range(len(df)))
    ref = direct(df)
    for j, name in enumerate(NAMES):
        now = np.array([v[j] for _, v, _ in seen])
        # At bar t the strategy reads the library's value at t: bit for bit, NaN where it is.
        np.testing.assert_array_equal(now, ref[name], err_msg=name)
        before = np.array([b[j] for _, _, b in seen[1:]])
        np.testing.assert_array_equal(before, ref[name][:-1], err_msg=name)
        assert np.isfinite(ref[name][60:]).all(), name  # the comparison is not all NaN
    # Spot values, so a library that returned constants would not pass.
    assert 0 < ref["rsi"][200] < 100 and 0 <= ref["k"][200] <= 100
    assert ref["adx"][200] > 0 and np.isnan(ref["macd"][:24]).all()


@needs_ta
def test_the_library_itself_does_not_look_ahead(make_ohlc: Any) -> None:
    # I reveals values bar by bar, but a value computed with future bars would still leak
    # them; so check that each indicator at t is the same on the bars up to t only.
    df = make_ohlc(300, seed=12)
    full = direct(df)
    for t in (40, 77, 150, 299):
        cut = direct(df.iloc[: t + 1])
        for name in NAMES:
            np.testing.assert_allclose(cut[name][t], full[name][t], rtol=1e-12, err_msg=name)


@needs_ta
def test_the_example_strategy_trades_on_ta_signals(make_ohlc: Any) -> None:
    import ta

    df = make_ohlc(1500, seed=13, vol=0.015)

    class MacdCross(Strategy):
        def on_start(self) -> None:
            self.macd, self.signal = self.I(
                ta_indicator(ta.trend.MACD, "macd", "macd_signal"), self.data.close
            )
            self.warmup = 34

        def next(self, bar: Any) -> None:
            if self.macd.crossed_above(self.signal) and self.position == 0:
                self.buy(10)
            elif self.macd.crossed_below(self.signal) and self.position > 0:
                self.close()

    result = Backtest(df, MacdCross).run()
    m = ta.trend.MACD(df["close"])
    line, sig = m.macd().to_numpy(), m.macd_signal().to_numpy()
    up = (line[:-1] < sig[:-1]) & (line[1:] > sig[1:])
    # Each entry fills at the open of the bar after a cross up seen by the library.
    entries = result.trades["entry_time"]
    decided = df.index.get_indexer(entries) - 1
    assert len(entries) > 10
    assert up[decided - 1].all()


def test_adapter_converts_arrays_and_outputs() -> None:
    seen: dict[str, Any] = {}

    def frame(high: pd.Series, low: pd.Series, window: int = 3, scale: float = 1.0):
        seen.update(high=high, window=window, scale=scale)
        return pd.DataFrame({"mid": (high + low) / 2 * scale, "range": (high - low) * scale})

    h = np.array([3.0, 4.0, 5.0, 6.0])
    low = np.array([1.0, 2.0, 2.5, 3.0])
    f = ta_indicator(frame, window=5, scale=2.0)
    mid, rng = f(h, low, scale=10.0)  # keywords given to I win over the wrapped ones
    assert isinstance(seen["high"], pd.Series) and seen["high"].tolist() == h.tolist()
    assert seen["window"] == 5 and seen["scale"] == 10.0  # numbers are passed as they are
    np.testing.assert_array_equal(mid, (h + low) / 2 * 10)
    np.testing.assert_array_equal(rng, (h - low) * 10)
    assert mid.dtype == np.float64 and f.__name__.startswith("ta_indicator(")

    one = ta_indicator(lambda x: x.rolling(2).mean())(h)
    assert isinstance(one, np.ndarray)
    np.testing.assert_array_equal(one, [np.nan, 3.5, 4.5, 5.5])

    class Obj:
        def __init__(self, x: pd.Series) -> None:
            self.x = x

        def double(self) -> pd.Series:
            return self.x * 2

        def neg(self) -> pd.Series:
            return -self.x

    np.testing.assert_array_equal(ta_indicator(Obj, "double")(h), h * 2)
    a, b = ta_indicator(Obj, "neg", "double")(h)
    np.testing.assert_array_equal(a, -h)
    np.testing.assert_array_equal(b, h * 2)
    pair = ta_indicator(lambda x: (x + 1, x - 1))(h)
    assert isinstance(pair, tuple) and len(pair) == 2

    with pytest.raises(TypeError, match="returned float; expected a pandas Series"):
        ta_indicator(lambda x: float(x.sum()))(h)


def test_adapted_dataframe_becomes_a_tuple_of_lines(make_ohlc: Any) -> None:
    df = make_ohlc(50, seed=14)
    got: dict[str, Any] = {}

    def bands(close: pd.Series, window: int = 5) -> pd.DataFrame:
        m = close.rolling(window).mean()
        s = close.rolling(window).std(ddof=0)
        return pd.DataFrame({"lower": m - 2 * s, "mid": m, "upper": m + 2 * s})

    class Bands(Strategy):
        def on_start(self) -> None:
            self.lo, self.mid, self.hi = self.I(ta_indicator(bands), self.data.close, window=5)
            self.warmup = 0

        def on_stop(self) -> None:
            got.update(lo=self.lo.full(), mid=self.mid.full(), hi=self.hi.full())

    Backtest(df, Bands).run()
    ref = bands(df["close"], 5)
    for key, col in (("lo", "lower"), ("mid", "mid"), ("hi", "upper")):
        np.testing.assert_array_equal(got[key], ref[col].to_numpy())
