"""Shorting, borrow costs, margin accounts, leverage limits and margin calls through the
Strategy API, the vectorized modes and the run configuration; a cross-check of short round
trips with backtesting.py; the ledger identities under random long/short orders."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bt_core import Backtest, Strategy
from bt_core.errors import BtCoreError, ParameterError


def bars(closes: list[float], opens: list[float] | None = None) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(closes), freq="D")
    o = opens or closes
    return pd.DataFrame(
        {
            "datetime": idx,
            "open": o,
            "high": np.maximum(o, closes),
            "low": np.minimum(o, closes),
            "close": closes,
            "volume": 1e6,
        }
    )


class Script(Strategy):
    plan: dict[int, Any] = {}

    def next(self, bar: Any) -> Any:
        step = self.plan.get(self.i)
        return step(self) if step else None


def run(data: pd.DataFrame, plan: dict[int, Any], **config: Any) -> Any:
    return Backtest(data, type("S", (Script,), {"plan": plan}), **config).run()


def test_a_short_round_trip_books_its_gain_and_its_borrow_cost() -> None:
    data = bars([10.0, 10.0, 10.0, 8.0, 8.0])
    r = run(
        data,
        {0: lambda s: s.sell(10), 2: lambda s: s.buy(10)},
        cash=1_000,
        allow_short=True,
        borrow_rate=0.365,
    )
    t = r.trades
    assert t["side"].tolist() == ["short"]
    # Sold at bar 1's open (10), bought back at bar 3's open (8).
    assert t["gross_pnl"].tolist() == [pytest.approx(20.0)]
    # 0.1 % a day on 100 of short value, charged at bars 2 and 3.
    assert r.stats["total_borrow"] == pytest.approx(0.2)
    assert r.ledger["borrow"].iloc[0] == pytest.approx(0.2)
    assert r.final_equity == pytest.approx(1_000 + 20 - 0.2)


def test_without_allow_short_a_sell_beyond_the_position_is_rejected() -> None:
    r = run(bars([10.0] * 3), {0: lambda s: s.sell(1)})
    assert r.orders["reason_code"].tolist() == ["insufficient_position"]


def test_a_margin_call_liquidates_and_is_reported() -> None:
    data = bars([10.0, 10.0, 6.5, 6.8, 7.0], opens=[10.0, 10.0, 9.0, 6.4, 7.0])
    r = run(
        data,
        {0: lambda s: s.buy(200), 1: lambda s: s.buy(10, limit=5.0)},
        cash=1_000,
        account="margin",
    )
    calls = r.margin_calls
    assert len(calls) == 1
    assert calls.loc[0, "equity"] == pytest.approx(300.0)
    assert calls.loc[0, "required"] == pytest.approx(325.0)
    liq = r.orders[r.orders["liquidation"]]
    assert liq["order_id"].tolist() == calls.loc[0, "order_ids"]
    assert liq["avg_price"].tolist() == [6.4]
    assert r.orders.loc[1, "reason_code"] == "margin_call"
    assert r.stats["n_margin_calls"] == 1
    assert r.final_equity == pytest.approx(280.0)


def test_leverage_and_margin_settings_are_checked() -> None:
    data = bars([10.0] * 3)
    r = run(data, {0: lambda s: s.buy(150)}, cash=1_000, account="margin", max_leverage=1.2)
    assert r.orders["reason_code"].tolist() == ["max_leverage"]
    with pytest.raises(BtCoreError, match="cash account"):
        run(data, {}, initial_margin=0.5)
    with pytest.raises(ParameterError, match="allow_short must be True or False"):
        run(data, {}, allow_short="yes")
    with pytest.raises(ParameterError, match="account must be"):
        run(data, {}, account="cfd")


def test_percent_sizing_on_margin_uses_buying_power() -> None:
    r = run(bars([10.0] * 3), {0: lambda s: s.buy(pct=1.8)}, cash=1_000, account="margin")
    assert r.fills["size"].tolist() == [pytest.approx(180.0)]
    r = run(bars([10.0] * 3), {0: lambda s: s.buy(pct=3.0)}, cash=1_000, account="margin")
    assert r.fills["size"].tolist() == [pytest.approx(200.0)]  # 50 % initial margin


def test_rebalance_goes_short_where_allowed() -> None:
    idx = pd.date_range("2024-01-01", periods=4, freq="D")
    data = {
        "A": pd.DataFrame(
            {"open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 1e6}, index=idx
        ),
        "B": pd.DataFrame(
            {"open": 20.0, "high": 20.0, "low": 20.0, "close": 20.0, "volume": 1e6}, index=idx
        ),
    }
    plan = {0: lambda s: s.rebalance({"A": 0.5, "B": -0.5}), 2: lambda s: s.rebalance({})}
    r = Backtest(data, type("S", (Script,), {"plan": plan}), cash=1_000, allow_short=True).run()
    sizes = r.fills.groupby(["symbol", "side"])["size"].sum()
    assert sizes[("A", "buy")] == pytest.approx(50.0)
    assert sizes[("B", "sell")] == pytest.approx(25.0)
    assert sizes[("B", "buy")] == pytest.approx(25.0)  # flattened by rebalance({})
    plan = {0: lambda s: s.rebalance({"A": 0.5, "B": -0.5})}
    with pytest.raises(BtCoreError, match="may not be shorted"):
        Backtest(data, type("S", (Script,), {"plan": plan}), cash=1_000).run()
    plan = {0: lambda s: s.rebalance({"A": 0.8, "B": -0.5})}
    with pytest.raises(BtCoreError, match="gross sum"):
        Backtest(data, type("S", (Script,), {"plan": plan}), cash=1_000, allow_short=True).run()


def test_signals_and_weights_go_short() -> None:
    data = bars([10.0, 10.0, 12.0, 12.0, 9.0, 9.0])
    n = len(data)
    no = np.zeros(n, bool)
    se = no.copy()
    se[0] = True
    sx = no.copy()
    sx[3] = True
    bt = Backtest(data, allow_short=True, cash=1_000)
    r = bt.run_signals(no, no, size=10, short_entries=se, short_exits=sx)
    t = r.trades
    assert t["side"].tolist() == ["short"]
    assert (t["entry_price"].item(), t["exit_price"].item()) == (10.0, 9.0)
    with pytest.raises(BtCoreError, match="may not be shorted"):
        Backtest(data, cash=1_000).run_signals(no, no, size=10, short_entries=se)
    w = np.full(n, np.nan)
    w[0], w[3] = -0.5, 0.0
    r = bt.run_weights(w)
    assert r.fills["side"].tolist() == ["sell", "buy"]
    assert r.fills["size"].tolist() == [pytest.approx(50.0), pytest.approx(50.0)]
    with pytest.raises(BtCoreError, match="may not be shorted"):
        Backtest(data, cash=1_000).run_weights(w)


def test_short_round_trips_match_backtesting_py() -> None:
    """Alternating short and long market round trips on a random walk: the same entry and
    exit prices and times as backtesting.py (whose shorts fill at the next open like ours)."""
    bt = pytest.importorskip("backtesting")
    rng = np.random.default_rng(7)
    n = 200
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.005, n))
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    df = pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close),
            "Low": np.minimum(open_, close),
            "Close": close,
            "Volume": 1e6,
        },
        index=idx,
    )

    def decide(i: int) -> str | None:
        if i % 10 == 1:
            return "short" if (i // 10) % 2 else "long"
        if i % 10 == 6:
            return "close"
        return None

    class Theirs(bt.Strategy):  # type: ignore[misc, name-defined]
        def init(self) -> None:
            pass

        def next(self) -> None:
            what = decide(len(self.data) - 1)
            if what == "short":
                self.sell(size=10)
            elif what == "long":
                self.buy(size=10)
            elif what == "close" and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bt.Backtest(df, Theirs, cash=1e9, commission=0.0).run()._trades

    class Ours(Strategy):
        def next(self, bar: Any) -> None:
            what = decide(self.i)
            if what == "short":
                self.sell(10)
            elif what == "long":
                self.buy(10)
            elif what == "close" and self.position:
                self.close()

    ours_df = df.rename(columns=str.lower).rename_axis("datetime").reset_index()
    ours = Backtest(ours_df, Ours, cash=1e9, allow_short=True).run().trades
    assert len(ours) == len(theirs) > 10
    assert (ours["side"] == "short").sum() == (theirs["Size"] < 0).sum() > 5
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours["exit_price"], theirs["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours["gross_pnl"], theirs["PnL"], rtol=1e-9)


class Random(Strategy):
    """Random long and short market orders (a fixed plan), checking the ledger each bar."""

    plan: tuple[tuple[int, float], ...] = ()

    def on_start(self) -> None:
        self.checked = 0
        type(self).seen = self  # type: ignore[attr-defined]

    def next(self, bar: Any) -> None:
        cash0 = self.config_cash
        led = self._engine.ledger()
        marked = np.nansum(led["position"] * led["last_price"])
        assert self.equity == pytest.approx(self.cash + marked, rel=1e-9, abs=1e-6)
        pnl = float(np.sum(led["realized"]) + np.sum(led["unrealized"]))
        assert pnl == pytest.approx(self.equity - cash0, rel=1e-7, abs=1e-6)
        self.checked += 1
        for i, size in self.plan:
            if i == self.i:
                (self.buy if size > 0 else self.sell)(abs(size))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rets=st.lists(st.floats(-0.1, 0.1), min_size=5, max_size=40),
    plan=st.lists(
        st.tuples(st.integers(0, 39), st.floats(-80, 80).filter(lambda x: abs(x) > 0.5)),
        max_size=20,
    ),
    margin=st.booleans(),
    borrow=st.floats(0, 0.5),
)
def test_ledger_identities_with_shorts_margin_and_borrow(
    rets: list[float], plan: list[tuple[int, float]], margin: bool, borrow: float
) -> None:
    close = list(100 * np.cumprod(1 + np.array(rets)))
    data = bars(close, opens=[close[0], *close[:-1]])
    strat = type("R", (Random,), {"plan": tuple(plan), "config_cash": 10_000.0})
    r = Backtest(
        data,
        strat,
        cash=10_000,
        allow_short=True,
        borrow_rate=borrow,
        account="margin" if margin else "cash",
        commission=0.001,
    ).run()
    spent = float(
        np.sum(np.where(r.fills["side"] == "buy", 1, -1) * r.fills["size"] * r.fills["price"])
        + r.fills["commission"].sum()
    )
    final_cash = r.final_equity - float(np.nansum(r.ledger["position"] * r.ledger["last_price"]))
    assert final_cash == pytest.approx(10_000 - spent - r.stats["total_borrow"], rel=1e-9, abs=1e-6)
    assert strat.seen.checked == len(data)  # type: ignore[attr-defined]
