"""Return values of ``next``: every accepted form, and a clear error for everything else."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest

from bt_core import ActionError, Backtest, Order, Strategy, StrategyError


def run_returning(data: Any, values: dict[int, Any], **cfg: Any) -> Any:
    """Run a strategy whose ``next`` returns ``values[i]`` on bar i (None elsewhere)."""

    class Returns(Strategy):
        order_size = 2.0

        def next(self, bar: Any) -> Any:
            v = values.get(self.i)
            return v(self, bar) if callable(v) else v

    return Backtest(data, Returns, **cfg).run()


def orders_of(res: Any) -> list[tuple[Any, ...]]:
    o = res.orders
    return list(
        zip(o["side"], o["type"], o["size"], o["limit_price"].fillna(-1.0), o["tif"], strict=True)
    )


@pytest.mark.parametrize("word", ["BUY", "buy", "Buy", "bUy"])
def test_buy_string_any_case(tiny: pd.DataFrame, word: str) -> None:
    res = run_returning(tiny, {1: word})
    assert orders_of(res) == [("buy", "market", 2.0, -1.0, "gtc")]
    assert res.fills["price"].tolist() == [tiny["open"].iloc[2]]


@pytest.mark.parametrize("word", ["SELL", "sell", "Sell"])
def test_sell_string_any_case(tiny: pd.DataFrame, word: str) -> None:
    res = run_returning(tiny, {0: "BUY", 2: word})
    assert [s for s, *_ in orders_of(res)] == ["buy", "sell"]
    assert res.orders["status"].tolist() == ["filled", "filled"]
    assert res.ledger["position"].iloc[0] == 0.0


@pytest.mark.parametrize("value", ["HOLD", "hold", "Hold", None, [], [None, "HOLD"]])
def test_hold_and_none_do_nothing(tiny: pd.DataFrame, value: Any) -> None:
    res = run_returning(tiny, dict.fromkeys(range(6), value))
    assert res.orders.empty and res.fills.empty
    assert (res.equity == 100_000.0).all()


def test_dict_market_and_limit(tiny: pd.DataFrame) -> None:
    res = run_returning(
        tiny,
        {
            1: {"action": "buy", "size": 3},
            2: {"action": "SELL", "type": "limit", "price": 20.0, "size": 1, "tif": "day"},
            3: {"action": "Buy", "type": "LIMIT", "price": 13.9, "tif": "GTC"},
        },
    )
    assert orders_of(res) == [
        ("buy", "market", 3.0, -1.0, "gtc"),
        ("sell", "limit", 1.0, 20.0, "day"),
        ("buy", "limit", 2.0, 13.9, "gtc"),
    ]
    assert res.orders["status"].tolist() == ["filled", "expired", "filled"]
    # The limit buy at 13.9: bar 4 opens above it (14.0) and its low 13.5 reaches it.
    assert res.fills["price"].tolist() == [12.0, 13.9]


def test_dict_with_symbol(make_ohlc: Any) -> None:
    frames = {"A": make_ohlc(5, seed=1), "B": make_ohlc(5, seed=2)}
    res = run_returning(frames, {1: {"action": "buy", "symbol": "B", "size": 1}})
    assert res.fills["symbol"].tolist() == ["B"]


def test_order_objects_and_lists(tiny: pd.DataFrame) -> None:
    res = run_returning(
        tiny,
        {
            1: Order("buy", size=4),
            2: [Order("sell", size=1, limit=50.0, tif="day"), "BUY", None, {"action": "sell"}],
            3: (Order("SELL"),),
        },
    )
    assert orders_of(res) == [
        ("buy", "market", 4.0, -1.0, "gtc"),
        ("sell", "limit", 1.0, 50.0, "day"),
        ("buy", "market", 2.0, -1.0, "gtc"),
        ("sell", "market", 2.0, -1.0, "gtc"),
        ("sell", "market", 2.0, -1.0, "gtc"),
    ]
    # Position path: +4 (bar 2), +2 -2 (bar 3), -2 (bar 4) -> 2 left.
    assert res.ledger["position"].iloc[0] == 2.0


def test_methods_and_return_values_mix(tiny: pd.DataFrame) -> None:
    def both(s: Strategy, bar: Any) -> Any:
        s.buy(1.0)
        return "BUY"

    res = run_returning(tiny, {1: both})
    assert res.orders["size"].tolist() == [1.0, 2.0]
    assert res.fills["size"].sum() == 3.0


BAD_RETURNS = [
    ("", "unknown action ''"),
    ("B", "unknown action 'B'"),
    ("HOLDX", "unknown action 'HOLDX'"),
    ("SHORT", "unknown action 'SHORT'"),
    (" buy", "unknown action"),
    (42, "int"),
    (1.5, "float"),
    (True, "bool"),
    (object(), "object"),
    ({"action": "buy", "qty": 1}, "unknown keys \\['qty'\\]"),
    ({"side": "buy"}, "unknown keys"),
    ({"action": "hold"}, "'action': 'BUY' or 'SELL'"),
    ({"size": 1}, "'action'"),
    ({"action": "buy", "type": "limit"}, "limit action needs a 'price'"),
    ({"action": "buy", "type": "stop", "price": 1.0}, "stop action needs a 'stop' and no 'price'"),
    ({"action": "buy", "type": "market", "price": 10.0}, "market action needs no price"),
    ({"action": "buy", "type": "iceberg"}, "'type' must be one of market, limit, stop"),
    ({"action": "buy", "size": "ten"}, "size must be a number"),
    ({"action": "buy", "type": "limit", "price": "x"}, "limit price must be a number"),
    ({"action": "buy", "tif": "week"}, "tif must be one of gtc, day, gtd, ioc, fok"),
    (Order("short"), "Order.side must be 'buy' or 'sell'"),
    ({"action": "buy", "symbol": "XXX"}, "unknown symbol 'XXX'; the data has: asset"),
    (Order("buy", symbol="XXX"), "unknown symbol 'XXX'"),
    (["BUY", "nope"], "unknown action 'nope'"),
]


@pytest.mark.parametrize(("value", "message"), BAD_RETURNS)
def test_bad_return_values_are_clear_errors(tiny: pd.DataFrame, value: Any, message: str) -> None:
    with pytest.raises(StrategyError) as info:
        run_returning(tiny, {3: value})
    text = str(info.value)
    assert "bar 3" in text and "2021-03-04" in text, text
    cause = info.value.__cause__
    assert isinstance(cause, ActionError), repr(cause)
    assert isinstance(cause, ValueError)
    assert re.search(message, str(cause)), (message, str(cause))


def test_limit_without_price_via_method_is_market(tiny: pd.DataFrame) -> None:
    # buy(limit=None) is a market order by definition; buy(limit=<not a number>) is an error.
    class Bad(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 1:
                self.buy(1.0, limit="cheap")  # type: ignore[arg-type]

    with pytest.raises(StrategyError) as info:
        Backtest(tiny, Bad).run()
    assert isinstance(info.value.__cause__, ActionError)
    assert "limit price must be a number" in str(info.value)


@pytest.mark.parametrize("size", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_size_in_returned_dict(tiny: pd.DataFrame, size: float) -> None:
    with pytest.raises(StrategyError) as info:
        run_returning(tiny, {2: {"action": "buy", "size": size}})
    assert "bar 2" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert "order size must be a finite number > 0" in str(info.value.__cause__)
