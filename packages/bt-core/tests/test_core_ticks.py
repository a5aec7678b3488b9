"""Trade ticks as one-price bars, the same-time policy, and minute bars built from ticks."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from bt_core import Backtest, DataError, ParameterError, Strategy, load_ticks
from bt_core.ticks import ticks_to_bars
from bt_core.timeframes import timeframe_bars


def ticks(times: list[str], prices: list[float], sizes: list[float], **extra: Any) -> pd.DataFrame:
    return pd.DataFrame({"time": times, "price": prices, "size": sizes, **extra})


def test_each_tick_is_a_one_price_bar() -> None:
    md = load_ticks(ticks(["2024-01-02 09:30:00.5", "2024-01-02 09:30:01"], [10.0, 10.5], [3, 0]))
    f = md.fields
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(f[name][:, 0], [10.0, 10.5])
    np.testing.assert_array_equal(f["volume"][:, 0], [3.0, 0.0])
    assert md.index[0] == pd.Timestamp("2024-01-02 09:30:00.5", tz="UTC")
    assert md.symbols == ("asset",)


def test_same_time_ticks_are_an_error_naming_the_rows_unless_merged() -> None:
    df = ticks(
        [
            "2024-01-02 09:30:00",
            "2024-01-02 09:30:01",
            "2024-01-02 09:30:01",
            "2024-01-02 09:30:01",
        ],
        [10.0, 10.2, 9.9, 10.1],
        [1, 2, 3, 4],
    )
    with pytest.raises(DataError, match=r"rows 1 and 2 \(symbol 'asset'\) share the time") as e:
        load_ticks(df)
    assert e.value.row == 2 and "same_time='merge'" in str(e.value)
    bars = ticks_to_bars(df, same_time="merge")
    assert len(bars) == 2
    merged = bars.iloc[1]
    assert (merged["open"], merged["high"], merged["low"], merged["close"]) == (
        10.2,
        10.2,
        9.9,
        10.1,
    )
    assert merged["volume"] == 9
    with pytest.raises(ParameterError, match="same_time"):
        ticks_to_bars(df, same_time="drop")  # type: ignore[arg-type]


def test_same_time_on_different_symbols_is_fine_and_symbols_are_kept() -> None:
    df = ticks(
        ["2024-01-02 09:30:00", "2024-01-02 09:30:00", "2024-01-02 09:30:02"],
        [10.0, 20.0, 10.5],
        [1, 1, 1],
        symbol=["A", "B", "A"],
    )
    md = load_ticks(df)
    assert md.symbols == ("A", "B")
    assert np.isnan(md.fields["close"][1, 1])  # B has no tick at 09:30:02


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price": [10.0, -1.0, 10.0]}, r"price must be a finite number > 0 at row 1"),
        ({"price": [10.0, np.nan, 10.0]}, r"price must be a finite number > 0 at row 1"),
        ({"size": [1.0, 1.0, -2.0]}, r"size must be a finite number >= 0 at row 2"),
        (
            {"time": ["2024-01-02 09:30:02", "2024-01-02 09:30:01", "2024-01-02 09:30:03"]},
            r"out of time order at row 1",
        ),
        ({"time": ["2024-01-02", "soon", "2024-01-03"]}, r"not a date at row 1"),
    ],
)
def test_bad_ticks_name_the_row(change: dict[str, Any], message: str) -> None:
    base = {
        "time": ["2024-01-02 09:30:00", "2024-01-02 09:30:01", "2024-01-02 09:30:02"],
        "price": [10.0, 10.1, 10.2],
        "size": [1.0, 1.0, 1.0],
    }
    with pytest.raises(DataError, match=message):
        load_ticks(pd.DataFrame({**base, **change}))


def test_missing_columns_are_named() -> None:
    with pytest.raises(DataError, match="missing column 'price'"):
        load_ticks(pd.DataFrame({"time": ["2024-01-02"], "last": [1.0], "size": [1]}))
    with pytest.raises(DataError, match="missing column 'size'"):
        load_ticks(pd.DataFrame({"time": ["2024-01-02"], "price": [1.0]}))
    with pytest.raises(DataError, match="no time"):
        load_ticks(pd.DataFrame({"price": [1.0], "size": [1]}))


def random_ticks(n: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2024-01-02 09:30", tz="UTC") + pd.to_timedelta(
        np.cumsum(rng.integers(1, 20_000, n)), unit="ms"
    )
    return pd.DataFrame(
        {"time": t, "price": 10 + np.cumsum(rng.normal(0, 0.01, n)), "size": rng.integers(1, 9, n)}
    )


def test_minute_bars_from_ticks_match_pandas_ohlc() -> None:
    df = random_ticks()
    got = timeframe_bars(load_ticks(df), "1min")
    s = df.set_index("time")
    res = s["price"].resample("1min")
    want = res.ohlc().assign(volume=s["size"].resample("1min").sum(), n=res.count())
    want = want[want["n"] > 0]
    # The last minute has no tick at or after its end, so it is not a bar yet.
    want = want.iloc[:-1]
    assert len(got) == len(want)
    np.testing.assert_array_equal(got["datetime"].to_numpy(), want.index.to_numpy())
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(got[f].to_numpy(), want[f].to_numpy(), rtol=1e-12)
    # Each minute shows on the first tick at or after its end.
    ts = pd.DatetimeIndex(df["time"])
    for start, at in zip(got["datetime"], got["visible_at"], strict=True):
        end = start + pd.Timedelta("1min")
        assert at == ts[ts >= end][0]


class MinuteReader(Strategy):
    warmup = 0
    seen: ClassVar[list[tuple[int, int]]] = []

    def on_start(self) -> None:
        self.m = self.timeframe("1min")

    def next(self, bar: Any) -> None:
        type(self).seen.append((bar.i, len(self.m.close)))


def test_a_strategy_runs_on_ticks_and_reads_minute_bars() -> None:
    df = random_ticks(200)
    MinuteReader.seen.clear()
    result = Backtest(load_ticks(df), MinuteReader).run()
    assert len(result.equity) == 200
    counts = [k for _, k in MinuteReader.seen]
    assert counts == sorted(counts) and counts[-1] == len(timeframe_bars(load_ticks(df), "1min"))
