"""``bar.history(field, n)``: the cross-sectional lookback a wide-universe strategy reads —
exactly the data up to the current bar, every symbol, read-only, no copy of the future."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt_core import Backtest, Strategy
from bt_core.data import load_data


def universe(n_symbols: int, n_bars: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="D")
    out = {}
    for s in range(n_symbols):
        c = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, n_bars)))
        df = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1e3}, index=idx)
        out[f"S{s}"] = df.iloc[rng.integers(0, 3) :]  # some symbols start late
    return out


class Recorder(Strategy):
    n = 5

    def on_start(self) -> None:
        self.seen: list[np.ndarray] = []
        type(self).last = self  # type: ignore[attr-defined]

    def next(self, bar: Any) -> None:
        h = bar.history("close", self.n)
        assert not h.flags.writeable
        self.seen.append(np.array(h))


@settings(max_examples=25, deadline=None)
@given(
    n_symbols=st.integers(2, 6),
    n_bars=st.integers(3, 30),
    n=st.integers(1, 8),
    seed=st.integers(0, 99),
)
def test_history_is_the_data_up_to_now(n_symbols: int, n_bars: int, n: int, seed: int) -> None:
    md = load_data(universe(n_symbols, n_bars, seed))
    close = md.fields["close"]
    strat = type("R", (Recorder,), {"n": n})
    Backtest(md, strat).run()
    seen = strat.last.seen  # type: ignore[attr-defined]
    assert len(seen) == md.n_bars
    for i, h in enumerate(seen):
        start = max(0, i + 1 - n)
        np.testing.assert_array_equal(h, close[start : i + 1])


def test_history_names_a_bad_field() -> None:
    class Bad(Strategy):
        def next(self, bar: Any) -> None:
            bar.history("closing", 3)

    with pytest.raises(Exception, match='unknown field "closing"'):
        Backtest(universe(2, 5, 0), Bad).run()


def test_long_data_keeps_each_symbols_rows_in_input_order() -> None:
    frames = universe(3, 6, 1)
    long = pd.concat(
        [f.assign(symbol=k).rename_axis("datetime").reset_index() for k, f in frames.items()]
    )
    shuffled = long.sample(frac=1.0, random_state=3).sort_values("datetime", kind="stable")
    a, b = load_data(frames), load_data(shuffled)
    assert a.symbols == b.symbols
    for f in ("open", "close", "volume"):
        np.testing.assert_array_equal(a.fields[f], b.fields[f])
    bad = shuffled.copy()
    bad.iloc[4, bad.columns.get_loc("high")] = -1.0
    with pytest.raises(Exception, match=r"symbol '\w+'.*row 4|row 4.*symbol"):
        load_data(bad.reset_index(drop=True))
