"""The engine's round trips (``result.trades``) equal bt-analysis' FIFO matching of the engine's
own fills (``bt_analysis.round_trips(result.fills)``), row for row and in the same order.

The two are independent implementations of one rule (FIFO lots per symbol, a fill's commission
split pro rata by size over the lots it opens and closes), one in Rust and one in Python; these
tests are what keeps them from drifting apart. Runs: the built-in SMA cross, a scripted Python
strategy that scales in and out with partial sells over one and several symbols, and a
hypothesis property over random long-only buy/sell sequences, all with commissions and slippage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import bt_analysis as ba
from bt_core import Backtest, Result, Strategy

#: Columns both tables must have and agree on (result.trades also has bars_held).
SHARED_COLUMNS = [
    "symbol",
    "side",
    "size",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "commission",
    "pnl",
    "return_pct",
    "duration",
]
# Symbols, sides, times and prices are copied from the fills by both sides: equal exactly.
EXACT_COLUMNS = [
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "duration",
]
# The rest is arithmetic done in a different order, so exact equality is not expected:
# the engine charges a closed slice ``piece * (entry_commission_per_unit + exit_per_unit)``,
# bt-analysis ``remaining_entry_commission * piece / lot_size + exit_per_unit * piece``, which
# round differently in the last bits; and where a lot is within 1e-9 of the amount still to
# close (0.3 - 0.1 leaves 0.19999999999999998 to close of a 0.2 lot), the engine closes the
# whole lot and bt-analysis the remaining amount, both then dropping the rounding residue, so
# such a slice's size differs by that residue. Hence a tolerance of
# 1e-9 relative to the slice's size (for size) or notional entry_price * size (for money, so a
# P&L that nets to ~0 is not compared relative to itself); return_pct = pnl / notional is then
# compared to 1e-9 absolute.
REL = 1e-9


def assert_same_round_trips(res: Result, min_trades: int = 1) -> pd.DataFrame:
    engine = res.trades
    ours = ba.round_trips(res.fills)
    assert set(SHARED_COLUMNS) <= set(engine.columns) & set(ours.columns)
    assert len(ours) >= min_trades, "the run closed too few round trips to test anything"
    assert len(ours) == len(engine), (
        f"bt-analysis found {len(ours)} round trips, the engine {len(engine)}:\n"
        f"{ours[SHARED_COLUMNS]}\n{engine[SHARED_COLUMNS]}"
    )
    engine = engine.reset_index(drop=True)
    for col in EXACT_COLUMNS:
        pd.testing.assert_series_equal(ours[col], engine[col], obj=f"round trips column {col!r}")
    size = engine["size"].to_numpy()
    notional = (engine["entry_price"] * engine["size"]).to_numpy()
    for col, scale in (
        ("size", size),
        ("gross_pnl", notional),
        ("commission", notional),
        ("pnl", notional),
        ("return_pct", np.ones_like(size)),
    ):
        a, b = ours[col].to_numpy(), engine[col].to_numpy()
        bad = np.flatnonzero(~(np.abs(a - b) <= REL * np.maximum(scale, np.abs(b))))
        assert bad.size == 0, (
            f"column {col!r} differs at row {bad[0]}: bt-analysis {a[bad[0]]!r}, engine "
            f"{b[bad[0]]!r}\n{ours.iloc[bad[0]]}\n{engine.iloc[bad[0]]}"
        )
    return ours


COSTS = [
    pytest.param({}, id="no-costs"),
    pytest.param({"commission": 0.001, "slippage_bps": 5.0}, id="rate+slippage"),
    pytest.param(
        {
            "commission": 0.0003,
            "commission_min": 1.0,
            "commission_fixed": 0.25,
            "slippage_bps": 12.0,
        },
        id="min+fixed+slippage",
    ),
]


# ----------------------------------------------------------------------------------------
# the built-in SMA cross
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("costs", COSTS)
@pytest.mark.parametrize(
    ("fast", "slow", "size"), [(3, 10, 1.0), (5, 20, 2.5), (8, 30, 0.37)], ids=str
)
def test_sma_cross_one_symbol(
    make_ohlc: Any, costs: dict[str, Any], fast: int, slow: int, size: float
) -> None:
    res = Backtest(make_ohlc(400, seed=11), "sma_cross", **costs).run(
        fast=fast, slow=slow, size=size
    )
    assert_same_round_trips(res, min_trades=5)


@pytest.mark.parametrize("costs", COSTS)
@pytest.mark.parametrize("fill_on", ["next_open", "close"])
def test_sma_cross_several_symbols(make_ohlc: Any, costs: dict[str, Any], fill_on: str) -> None:
    # Same calendar, different paths: the crosses of several symbols often exit on one bar.
    frames = {
        "ZZZ": make_ohlc(300, seed=21, vol=0.03),
        "AAA": make_ohlc(300, seed=22, s0=40.0),
        "MMM": make_ohlc(300, seed=23, s0=7.5, vol=0.04),
    }
    res = Backtest(frames, "sma_cross", fill_on=fill_on, **costs).run(fast=4, slow=12, size=3.0)
    ours = assert_same_round_trips(res, min_trades=30)
    assert ours["symbol"].nunique() == 3


# ----------------------------------------------------------------------------------------
# a Python strategy that scales in and out
# ----------------------------------------------------------------------------------------


class Scripted(Strategy):
    """Executes ``_plan``: bar -> [(symbol, "buy" | "sell" | "close", size)], in that order.

    The plan is a private class attribute (not a run parameter); each test makes a subclass.
    """

    _plan: ClassVar[dict[int, list[tuple[str, str, float]]]] = {}

    def next(self, bar: Any) -> Any:
        for symbol, action, size in self._plan.get(self.i, ()):
            if action == "buy":
                self.buy(size, symbol=symbol)
            elif action == "sell":
                self.sell(size, symbol=symbol)
            else:
                self.close(symbol)


def scripted(plan: dict[int, list[tuple[str, str, float]]]) -> type[Strategy]:
    return type("Scripted", (Scripted,), {"_plan": plan})


def assert_no_rejections(res: Result) -> None:
    rejected = res.orders[res.orders["status"] == "rejected"]
    assert rejected.empty, f"the plan must be executable, but orders were rejected:\n{rejected}"


# Lots of different sizes, partial sells that split a lot, span several lots or end exactly
# on a lot boundary, sizes whose sum is not exact in binary (0.1 + 0.2), a close() of what is
# left, re-entry after being flat, and same-bar exits of several symbols submitted in an order
# other than the symbols' names.
SCALE_PLAN: dict[int, list[tuple[str, str, float]]] = {
    1: [("SHY", "buy", 5.0), ("ACE", "buy", 0.1)],
    2: [("SHY", "buy", 3.0), ("ACE", "buy", 0.2)],
    3: [("SHY", "buy", 2.5), ("ACE", "buy", 4.0)],
    5: [("SHY", "sell", 2.0)],  # splits the first lot
    6: [("SHY", "sell", 6.0), ("ACE", "sell", 0.3)],  # rest of lot 1 + lot 2; 0.1 + 0.2
    8: [("SHY", "buy", 1.25), ("ACE", "sell", 1.5)],
    9: [("SHY", "sell", 0.5), ("SHY", "sell", 1.0)],  # two sells of one symbol on one bar
    11: [("SHY", "close", 0.0), ("ACE", "close", 0.0)],
    13: [("ACE", "buy", 7.0), ("SHY", "buy", 0.75)],
    14: [("ACE", "buy", 0.7), ("SHY", "buy", 6.0)],
    16: [("SHY", "sell", 3.0), ("ACE", "sell", 7.35)],  # SHY fills first, though ACE < SHY
    17: [("ACE", "sell", 0.35), ("SHY", "sell", 3.75)],
    19: [("SHY", "buy", 2.0), ("ACE", "buy", 2.0)],
    21: [("ACE", "sell", 1.0), ("SHY", "sell", 1.0)],
    # and a position left open at the end: its lots are not round trips
}


@pytest.mark.parametrize("costs", COSTS)
@pytest.mark.parametrize("fill_on", ["next_open", "close"])
def test_scaling_in_and_out_over_two_symbols(
    make_ohlc: Any, costs: dict[str, Any], fill_on: str
) -> None:
    frames = {"SHY": make_ohlc(25, seed=31), "ACE": make_ohlc(25, seed=32, s0=12.0)}
    res = Backtest(frames, scripted(SCALE_PLAN), fill_on=fill_on, **costs).run()
    assert_no_rejections(res)
    ours = assert_same_round_trips(res, min_trades=15)
    # Every exit fill split over the lots it closed.
    assert len(ours) > (res.fills["side"] == "sell").sum()


@pytest.mark.parametrize("costs", COSTS)
def test_scaling_in_and_out_of_one_symbol(make_ohlc: Any, costs: dict[str, Any]) -> None:
    plan = {
        bar: [(sym, action, size) for sym, action, size in actions if sym == "SHY"]
        for bar, actions in SCALE_PLAN.items()
    }
    res = Backtest({"SHY": make_ohlc(25, seed=33)}, scripted(plan), **costs).run()
    assert_no_rejections(res)
    assert_same_round_trips(res, min_trades=8)


# ----------------------------------------------------------------------------------------
# random long-only sequences
# ----------------------------------------------------------------------------------------


class RandomScaler(Strategy):
    """Executes ``_steps``: bar -> [(symbol index, kind, x)]. ``buy`` buys x units; ``sell``
    sells the fraction x of what is still sellable this bar; ``close`` sells all of it. What is
    sellable is the position at the start of the bar minus the sells already sent on it, so no
    sell exceeds the position (the engine is long-only and would reject it)."""

    _steps: ClassVar[dict[int, list[tuple[int, str, float]]]] = {}

    def next(self, bar: Any) -> Any:
        steps = self._steps.get(self.i)
        if not steps:
            return None
        syms = self.symbols
        sellable = {s: self.position_of(s) for s in syms}
        for k, kind, x in steps:
            s = syms[k]
            if kind == "buy":
                self.buy(x, symbol=s)
                continue
            size = sellable[s] if kind == "close" else sellable[s] * x
            if size > 1e-6:
                self.sell(size, symbol=s)
                sellable[s] -= size
        return None


SIZES = st.one_of(
    st.sampled_from([0.1, 0.2, 0.3, 1.0, 2.0, 5.0]),
    st.floats(0.001, 50.0, allow_nan=False, allow_infinity=False),
)
FRACTIONS = st.one_of(
    st.sampled_from([0.1, 0.25, 1 / 3, 0.5, 1.0]),
    st.floats(0.01, 1.0, allow_nan=False, allow_infinity=False),
)


@dataclass
class Scenario:
    n_bars: int
    n_sym: int
    steps: dict[int, list[tuple[int, str, float]]]
    seed: int
    cfg: dict[str, Any]


@st.composite
def scenarios(draw: Any) -> Scenario:
    n_bars = draw(st.integers(8, 60))
    n_sym = draw(st.integers(1, 3))
    steps: dict[int, list[tuple[int, str, float]]] = {}
    # Dense plans (half a step to a step per bar, buys twice as likely as either exit), so
    # most examples close several round trips, many of them slices of split lots.
    for _ in range(draw(st.integers(n_bars // 2, n_bars))):
        kind = draw(st.sampled_from(["buy", "buy", "sell", "close"]))
        x = draw({"buy": SIZES, "sell": FRACTIONS, "close": st.just(1.0)}[kind])
        bar = draw(st.integers(0, n_bars - 1))
        steps.setdefault(bar, []).append((draw(st.integers(0, n_sym - 1)), kind, x))
    cfg = {
        "cash": 1e7,  # buys never fail for cash: every planned order fills
        "commission": draw(st.sampled_from([0.0, 0.0005, 0.003])),
        "commission_min": draw(st.sampled_from([0.0, 0.5])),
        "commission_fixed": draw(st.sampled_from([0.0, 0.1])),
        "slippage_bps": draw(st.sampled_from([0.0, 3.0, 40.0])),
        "fill_on": draw(st.sampled_from(["next_open", "close"])),
    }
    return Scenario(n_bars, n_sym, steps, draw(st.integers(0, 2**31 - 1)), cfg)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(sc=scenarios())
def test_random_buy_sell_sequences(make_ohlc: Any, sc: Scenario) -> None:
    names, starts = ("BBB", "AAA", "CCC")[: sc.n_sym], (30.0, 95.0, 4.0)
    frames = {
        name: make_ohlc(sc.n_bars, seed=sc.seed + j, s0=s0)
        for j, (name, s0) in enumerate(zip(names, starts, strict=False))
    }
    strategy = type("RandomScaler", (RandomScaler,), {"_steps": sc.steps})
    res = Backtest(frames, strategy, **sc.cfg).run()
    assert_no_rejections(res)
    assert_same_round_trips(res, min_trades=0)
