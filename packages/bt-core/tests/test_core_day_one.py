"""What a new user meets first: warm-up, accessors in any case, real-world dates, buy and hold
beside the run, rejections that are not silent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import (
    Backtest,
    DataError,
    RejectedOrdersWarning,
    Strategy,
    StrategyError,
    load_data,
)
from bt_core.indicators import sma


def test_next_starts_when_every_indicator_has_a_value(ohlc: pd.DataFrame) -> None:
    first: list[int] = []

    class Uses(Strategy):
        def on_start(self) -> None:
            self.fast = self.I(sma, self.data.close, 5)
            self.slow = self.I(sma, self.data.close, 12)

        def next(self, bar: Any) -> None:
            first.append(self.i)
            assert not np.isnan(self.slow[-1])  # no NaN reaches next()
            _ = self.fast[-2]  # a bar of history exists for the faster one too

    Backtest(ohlc, Uses).run()
    assert first[0] == 11 and first[-1] == len(ohlc) - 1


def test_warmup_overrides_and_out_of_history_says_how_to_fix(ohlc: pd.DataFrame) -> None:
    class Early(Strategy):
        warmup = 0

        def on_start(self) -> None:
            self.ma = self.I(sma, self.data.close, 5)

        def next(self, bar: Any) -> None:
            self.ma[-2]

    with pytest.raises(StrategyError, match="set self.warmup") as info:
        Backtest(ohlc, Early).run()
    assert isinstance(info.value.__cause__, IndexError)
    assert info.value.bar == 0


def test_no_indicators_means_every_bar(tiny: pd.DataFrame) -> None:
    seen: list[int] = []

    class Plain(Strategy):
        def next(self, bar: Any) -> None:
            seen.append(self.i)

    Backtest(tiny, Plain).run()
    assert seen == list(range(len(tiny)))


def test_data_accessors_answer_in_any_case(ohlc: pd.DataFrame) -> None:
    seen: list[tuple[float, float, float]] = []

    class Cased(Strategy):
        def next(self, bar: Any) -> None:
            d = self.data
            seen.append((d.Close[-1], d.CLOSE[-1], d["asset"].High[-1]))

    Backtest(ohlc, Cased).run()
    np.testing.assert_array_equal([s[0] for s in seen], ohlc["close"].to_numpy())
    assert all(a == b for a, b, _ in seen)
    np.testing.assert_array_equal([s[2] for s in seen], ohlc["high"].to_numpy())


def test_unknown_accessor_lists_the_fields(ohlc: pd.DataFrame) -> None:
    class Typo(Strategy):
        def next(self, bar: Any) -> None:
            _ = self.data.clsoe

    with pytest.raises(StrategyError, match="fields: open, high, low, close, volume"):
        Backtest(ohlc, Typo).run()


def test_single_symbol_accessors_on_multi_symbol_data_name_the_symbols(make_ohlc: Any) -> None:
    class Single(Strategy):
        def on_start(self) -> None:
            self.ma = self.I(sma, self.data.close, 5)

    frames = {"A": make_ohlc(30, seed=1), "B": make_ohlc(30, seed=2)}
    with pytest.raises(StrategyError, match=r"2 symbols \(A, B\).*self.data\[symbol\]"):
        Backtest(frames, Single).run()


def test_daylight_saving_offsets_become_utc() -> None:
    times = [
        "2021-03-12 09:30:00-05:00",  # EST
        "2021-03-15 09:30:00-04:00",  # EDT after the change
        "2021-03-16 09:30:00-04:00",
    ]
    df = pd.DataFrame(
        {"datetime": times, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    )
    md = load_data(df)
    assert [t.isoformat() for t in md.index] == [
        "2021-03-12T14:30:00+00:00",
        "2021-03-15T13:30:00+00:00",
        "2021-03-16T13:30:00+00:00",
    ]


@pytest.mark.parametrize("bad", ["1500-01-01", "2300-06-30"])
def test_dates_outside_the_nanosecond_range_name_the_row(bad: str) -> None:
    df = pd.DataFrame(
        {
            "datetime": ["2020-01-01", "2020-01-02", bad],
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
        }
    )
    with pytest.raises(DataError, match=r"outside the supported range .* at row 2") as info:
        load_data(df)
    assert info.value.row == 2 and info.value.column == "datetime"


def test_buy_and_hold_beside_the_run(ohlc: pd.DataFrame, make_ohlc: Any) -> None:
    res = Backtest(ohlc, "sma_cross").run(fast=3, slow=9)
    close = ohlc["close"].to_numpy()
    assert res.stats["buy_hold_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-12)
    a, b = make_ohlc(40, seed=1), make_ohlc(30, seed=2, start="2020-01-05")
    multi = Backtest({"A": a, "B": b}, "sma_cross").run(fast=3, slow=9)
    want = np.mean(
        [a["close"].iloc[-1] / a["close"].iloc[0] - 1, b["close"].iloc[-1] / b["close"].iloc[0] - 1]
    )
    assert multi.stats["buy_hold_return"] == pytest.approx(want, rel=1e-12)


def test_holding_time_in_bars_beside_days(ohlc: pd.DataFrame) -> None:
    res = Backtest(ohlc, "sma_cross").run(fast=3, slow=9)
    assert res.stats["avg_holding_bars"] == pytest.approx(res.trades["bars_held"].mean())
    assert res.stats["avg_holding_time"] == pytest.approx(
        (res.trades["duration"] / pd.Timedelta(days=1)).mean()
    )


def test_rejections_are_summarised(tiny: pd.DataFrame) -> None:
    class Greedy(Strategy):
        def next(self, bar: Any) -> None:
            self.buy(1_000_000)

    with pytest.warns(RejectedOrdersWarning, match="5 of 6 orders of Greedy were rejected"):
        res = Backtest(tiny, Greedy).run()
    lines = res.rejection_summary()
    assert lines[0] == f"rejected orders: {len(tiny) - 1} of {len(tiny)}"
    assert lines[1].startswith("  insufficient_cash: 5 (first: insufficient cash: buying")
    assert lines[-1].startswith("warning: most orders were rejected")
    assert res.stats["n_rejected"] == 5 and res.stats["rejected_share"] == pytest.approx(5 / 6)
    quiet = Backtest(tiny, "sma_cross").run(fast=2, slow=3)
    assert quiet.rejection_summary() == []


def test_an_indicator_returning_a_dataframe_gives_one_line_per_column(ohlc: pd.DataFrame) -> None:
    def bands(close: np.ndarray) -> pd.DataFrame:
        c = pd.Series(close)
        return pd.DataFrame({"mid": c.rolling(5).mean(), "up": c.rolling(5).max()})

    seen: list[tuple[float, float]] = []

    class Bands(Strategy):
        def on_start(self) -> None:
            self.mid, self.up = self.I(bands, self.data.close)

        def next(self, bar: Any) -> None:
            seen.append((self.mid[-1], self.up[-1]))

    Backtest(ohlc, Bands).run()
    want = bands(ohlc["close"].to_numpy())
    assert seen == list(zip(want["mid"].iloc[4:], want["up"].iloc[4:], strict=True))
