"""Sizing: units, cash value and percent of equity, resolved at the fill price; the default
buys with all of equity (what cash pays for, costs included) and sells the position."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import ActionError, Backtest, ParameterError, Strategy, StrategyError


def _script(actions: dict[int, Any], **attrs: Any) -> type[Strategy]:
    class Scripted(Strategy):
        def next(self, bar: Any) -> Any:
            a = actions.get(self.i)
            if callable(a):  # a call such as s.buy(...): it submits, next returns nothing
                a(self)
                return None
            return a

    for k, v in attrs.items():
        setattr(Scripted, k, v)
    return Scripted


def test_default_buy_is_all_in_at_the_fill_price(tiny: pd.DataFrame) -> None:
    res = Backtest(tiny, _script({0: "BUY"}), cash=1_000, commission=0.001).run()
    f = res.fills.iloc[0]
    assert f["price"] == tiny["open"].iloc[1]  # next open: 11.0
    assert f["size"] * f["price"] + f["commission"] == pytest.approx(1_000, rel=1e-9)
    assert res.ledger["position"].iloc[0] == f["size"]
    assert res.equity.iloc[0] == 1_000 and res.equity.iloc[-1] > 1_300  # the move shows


def test_value_and_pct(tiny: pd.DataFrame) -> None:
    res = Backtest(
        tiny, _script({0: lambda s: s.buy(value=220.0), 1: lambda s: s.buy(pct=0.5)}), cash=1_000
    ).run()
    sizes = res.fills["size"].tolist()
    assert sizes[0] == pytest.approx(220.0 / 11.0)  # filled at the next open
    equity_at_fill = 1_000 + sizes[0] * (tiny["close"].iloc[1] - 11.0)  # marked at bar 1's close
    assert sizes[1] == pytest.approx(0.5 * equity_at_fill / 12.0)


def test_default_sell_closes_and_does_nothing_when_flat(tiny: pd.DataFrame) -> None:
    res = Backtest(tiny, _script({0: "SELL", 1: "BUY", 3: "SELL"}), cash=1_000).run()
    assert list(res.orders["side"]) == ["buy", "sell"]
    assert res.ledger["position"].iloc[0] == 0.0
    assert (res.orders["status"] == "filled").all()


def test_order_size_gives_units(tiny: pd.DataFrame) -> None:
    res = Backtest(tiny, _script({0: "BUY", 2: "SELL"}, order_size=3.0)).run()
    assert res.fills["size"].tolist() == [3.0, 3.0]


def test_one_way_of_sizing_at_a_time(tiny: pd.DataFrame) -> None:
    with pytest.raises(StrategyError) as info:
        Backtest(tiny, _script({0: lambda s: s.buy(2, pct=0.5)})).run()
    assert isinstance(info.value.__cause__, ActionError)
    assert "give one of size=, value= or pct=, not size and pct" in str(info.value.__cause__)


@pytest.mark.parametrize("value", [0, -0.5, "half", True])
def test_bad_order_pct(tiny: pd.DataFrame, value: Any) -> None:
    with pytest.raises(ParameterError, match="order_pct"):
        Backtest(tiny, _script({})).run(order_pct=value)


def test_dict_and_order_forms_take_value_and_pct(tiny: pd.DataFrame) -> None:
    from bt_core import Order

    res = Backtest(
        tiny,
        _script({0: {"action": "BUY", "value": 110.0}, 1: Order("buy", pct=0.1)}),
        cash=1_000,
    ).run()
    assert res.fills["size"].iloc[0] == pytest.approx(10.0)
    assert len(res.fills) == 2


def test_builtin_and_signals_size_by_equity_by_default(ohlc: pd.DataFrame) -> None:
    res = Backtest(ohlc, "sma_cross", cash=10_000).run(fast=3, slow=9)
    first = res.fills.iloc[0]
    assert first["size"] * first["price"] == pytest.approx(10_000, rel=1e-9)
    units = Backtest(ohlc, "sma_cross").run(fast=3, slow=9, size=2)
    assert set(units.fills["size"]) == {2.0}
    e = (ohlc["close"].diff() > 0).to_numpy()
    x = (ohlc["close"].diff() < 0).to_numpy()
    sig = Backtest(ohlc, cash=10_000).run_signals(e, x)
    f = sig.fills.iloc[0]
    assert f["size"] * f["price"] == pytest.approx(10_000, rel=1e-9)


def test_multi_symbol_default_is_an_equal_share_and_symbol_order_free(
    make_ohlc: Any, to_long: Any
) -> None:
    frames = {s: make_ohlc(200, seed=i) for i, s in enumerate(["CCC", "AAA", "BBB"])}
    long = to_long(frames)
    a = Backtest(long, "sma_cross").run(fast=3, slow=9)
    shuffled = long.sample(frac=1.0, random_state=1).sort_values("datetime", kind="stable")
    b = Backtest(shuffled, "sma_cross").run(fast=3, slow=9)
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    first = a.fills.iloc[0]
    assert first["size"] * first["price"] == pytest.approx(100_000 / 3, rel=1e-9)
