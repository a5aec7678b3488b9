"""Order kinds, brackets, OCO/OTO, time in force, intrabar path rules, volume caps, fee
lines and slippage models through the Strategy API and the run configuration; targets and
rebalancing; a cross-check of stops and SL/TP with backtesting.py."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import Backtest, Strategy
from bt_core.config import FeeLine, RunConfig
from bt_core.errors import ActionError, BtCoreError, ParameterError
from bt_core.orders import Order


def bars(rows: list[tuple[float, float, float, float]], volume: float = 1e6) -> pd.DataFrame:
    """One symbol, one bar per day from 2024-01-01."""
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="D")
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame(
        {"datetime": idx, "open": o, "high": h, "low": lo, "close": c, "volume": volume}
    )


def flat(p: float) -> tuple[float, float, float, float]:
    return (p, p, p, p)


class Script(Strategy):
    """Calls ``plan[i](self)`` on bar i; records every on_order event."""

    plan: dict[int, Any] = {}

    def on_start(self) -> None:
        self.events: list[tuple[int, int, str | None, str]] = []
        Script.last = self  # type: ignore[attr-defined]

    def next(self, bar: Any) -> Any:
        step = self.plan.get(self.i)
        return step(self) if step else None

    def on_order(self, order: Any) -> None:
        self.events.append((self.i, order.id, order.event, order.status))


def run(data: pd.DataFrame, plan: dict[int, Any], **config: Any) -> Any:
    strat = type("S", (Script,), {"plan": plan})
    return Backtest(data, strat, **config).run()


BOTH = bars([flat(10.0), (10.0, 11.5, 8.5, 10.0), flat(10.0)])


@pytest.mark.parametrize(
    ("path", "exit_price", "exit_id"),
    [("pessimistic", 9.0, 1), ("ohlc", 11.0, 2), ("adaptive", 11.0, 2)],
)
def test_bracket_on_a_bar_reaching_both_exits(path: str, exit_price: float, exit_id: int) -> None:
    r = run(BOTH, {0: lambda s: s.buy(10, sl=9.0, tp=11.0)}, bar_path=path)
    assert r.fills["order_id"].tolist() == [0, exit_id]
    assert r.fills["price"].tolist() == [10.0, exit_price]
    other = 3 - exit_id
    o = r.orders.set_index("order_id")
    assert o.loc[other, "status"] == "cancelled"
    assert o.loc[other, "reason_code"] == "bracket_done"
    assert o.loc[1, "parent_id"] == 0 and o.loc[2, "parent_id"] == 0
    assert r.ledger["position"].iloc[0] == 0


def test_order_kinds_fill_where_the_path_reaches_them() -> None:
    data = bars([flat(10.0), (10.0, 11.0, 9.0, 10.5), (12.0, 12.5, 11.5, 12.0)])
    r = run(data, {0: lambda s: s.buy(1, stop=10.5)})
    assert r.fills["price"].tolist() == [10.5]
    r = run(data, {0: lambda s: s.buy(1, stop=10.5, limit=10.2)})  # stop-limit
    assert r.fills["price"].tolist() == [10.2]
    r = run(data, {1: lambda s: s.buy(1, stop=11.0)})  # gapped through on bar 2
    assert r.fills["price"].tolist() == [12.0]
    r = run(data, {1: lambda s: s.buy(1, limit=13.0)})  # a limit gapped through: the open
    assert r.fills["price"].tolist() == [12.0]
    assert r.orders["type"].tolist() == ["limit"]


def test_trailing_stop_and_its_events() -> None:
    data = bars(
        [
            flat(10.0),
            (10.0, 10.6, 9.9, 10.5),
            (11.0, 12.0, 10.8, 11.5),
            (11.2, 11.3, 10.0, 10.5),
        ]
    )
    r = run(data, {0: lambda s: s.buy(10), 1: lambda s: s.sell(10, trail=1.0)})
    assert r.fills["price"].tolist() == [10.0, 11.0]
    ev = Script.last.events  # type: ignore[attr-defined]
    assert (3, 1, "triggered", "accepted") in ev
    assert (3, 1, "filled", "filled") in ev
    assert r.orders.loc[1, "stop_price"] == 11.0


def test_every_state_change_reaches_on_order() -> None:
    run(BOTH, {0: lambda s: s.buy(10, sl_pct=0.1, tp_pct=0.1)})
    ev = [(i, oid, e) for i, oid, e, _ in Script.last.events]  # type: ignore[attr-defined]
    assert ev == [
        (0, 0, "submitted"),
        (0, 0, "accepted"),
        (0, 1, "submitted"),
        (0, 2, "submitted"),
        (1, 0, "filled"),
        (1, 1, "accepted"),
        (1, 2, "accepted"),
        (1, 1, "triggered"),
        (1, 1, "filled"),
        (1, 2, "cancelled"),
    ]


def test_modify_oco_and_cancel_from_the_strategy() -> None:
    data = bars([flat(10.0), flat(10.0), (10.0, 11.5, 9.8, 11.0), flat(11.0)])

    def link(s: Strategy) -> None:
        a = s.sell(5, limit=12.0)
        b = s.sell(5, stop=9.0)
        s.modify(a, limit=11.0)
        s.oco(a, b)

    r = run(data, {0: lambda s: s.buy(5), 1: link})
    o = r.orders.set_index("order_id")
    assert r.fills["price"].tolist() == [10.0, 11.0]
    assert o.loc[2, "status"] == "cancelled" and o.loc[2, "reason_code"] == "oco_filled"
    assert o.loc[1, "oco_group"] == o.loc[2, "oco_group"] >= 0
    assert any(e[2] == "modified" for e in Script.last.events)  # type: ignore[attr-defined]


def test_modify_errors_are_clear() -> None:
    def bad(s: Strategy) -> None:
        h = s.buy(1, limit=5.0)
        s.modify(h, stop=4.0)

    with pytest.raises(BtCoreError, match="limit order and has no fixed stop price"):
        run(bars([flat(10.0)] * 3), {0: bad})


def test_time_in_force() -> None:
    data = bars([flat(10.0)] * 5, volume=1000.0)
    cap = {"volume_limit": 0.1}
    r = run(data, {0: lambda s: s.buy(150, tif="ioc")}, **cap)
    assert r.fills["size"].tolist() == [100.0]
    assert r.orders.loc[0, "reason_code"] == "ioc_unfilled"
    r = run(data, {0: lambda s: s.buy(150, tif="fok")}, **cap)
    assert r.fills.empty and r.orders.loc[0, "reason_code"] == "fok_unfilled"
    r = run(data, {0: lambda s: s.buy(250)}, **cap)  # partial fills over three bars
    assert r.fills["size"].tolist() == [100.0, 100.0, 50.0]
    expire = data["datetime"].iloc[2]
    r = run(data, {0: lambda s: s.buy(1, limit=5.0, tif="gtd", expire=expire)})
    assert r.orders.loc[0, "status"] == "expired"
    assert r.orders.loc[0, "closed"] == pd.Timestamp(data["datetime"].iloc[3], tz="UTC")


def test_dict_and_order_forms_take_the_same_fields() -> None:
    r = run(BOTH, {0: lambda s: {"action": "BUY", "size": 10, "sl": 9.0, "tp": 11.0}})
    assert r.fills["price"].tolist() == [10.0, 9.0]
    r = run(BOTH, {0: lambda s: Order("buy", 10, sl=9.0, tp=11.0)}, bar_path="ohlc")
    assert r.fills["price"].tolist() == [10.0, 11.0]
    r = run(BOTH, {0: lambda s: {"action": "BUY", "size": 1, "type": "stop", "stop": 11.0}})
    assert r.fills["price"].tolist() == [11.0]
    with pytest.raises(BtCoreError, match="a stop action needs a 'stop'"):
        run(BOTH, {0: lambda s: {"action": "BUY", "size": 1, "type": "stop"}})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"trail": 1.0, "trail_pct": 0.1}, "trail"),
        ({"sl": 11.0, "tp": 10.0}, "stop-loss must lie below its take-profit"),
        ({"sl_pct": 1.5}, "sl_pct must be a fraction"),
        ({"tif": "gtd"}, "needs expire"),
        ({"tif": "week"}, "tif must be one of"),
        ({"expire": "not a date"}, "expire must be a date"),
        ({"stop": "x"}, "stop price must be a number"),
    ],
)
def test_bad_order_arguments_name_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((BtCoreError, ActionError), match=match):
        run(BOTH, {0: lambda s: s.buy(1, **kwargs)})


def test_fee_lines_from_a_config_file(tmp_path: Path) -> None:
    p = tmp_path / "run.toml"
    p.write_text(
        "[run]\ncommission = 0.0003\ncommission_min = 5\n"
        "[[run.fees]]\nname = 'stamp_duty'\nrate = 0.001\nside = 'sell'\nkind = 'tax'\n"
        "until = '2024-01-03'\n"
        "[[run.fees]]\nname = 'stamp_duty'\nrate = 0.0005\nside = 'sell'\nkind = 'tax'\n"
        "from = '2024-01-03'\n"
    )
    cfg = RunConfig.from_toml(p)
    assert [(f.name, f.rate, f.side, f.kind) for f in cfg.fees] == [
        ("stamp_duty", 0.001, "sell", "tax"),
        ("stamp_duty", 0.0005, "sell", "tax"),
    ]
    data = bars([flat(10.0)] * 5)
    plan = {
        0: lambda s: s.buy(2000),  # fills 2024-01-02
        1: lambda s: s.sell(1000),  # fills 2024-01-03: the new rate
        2: lambda s: s.sell(1000),
    }
    r = Backtest(data, type("S", (Script,), {"plan": plan}), config=cfg).run()
    f = r.fills
    assert f["commission"].tolist() == pytest.approx([6.0, 5.0, 5.0])  # max(0.0003 x value, 5)
    assert f["tax"].tolist() == [0.0, 5.0, 5.0]
    assert r.stats["total_tax"] == 10.0
    assert r.stats["total_commission"] == pytest.approx(16.0)
    assert r.ledger["tax"].iloc[0] == 10.0
    assert r.trades["commission"].sum() == pytest.approx(26.0)


def test_dated_fee_line_the_day_before_and_the_day_of_the_change() -> None:
    """China's stamp duty halved on 2023-08-28: a sell filled on Fri 25 pays 0.1 %, one
    filled on Mon 28 pays 0.05 %."""
    old = FeeLine(rate=0.001, side="sell", kind="tax", until="2023-08-28")
    new = FeeLine(rate=0.0005, side="sell", kind="tax", **{"from": "2023-08-28"})
    idx = pd.to_datetime(["2023-08-23", "2023-08-24", "2023-08-25", "2023-08-28"])
    data = pd.DataFrame(
        {"datetime": idx, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 1e6}
    )
    plan = {0: lambda s: s.buy(2000), 1: lambda s: s.sell(1000), 2: lambda s: s.sell(1000)}
    r = run(data, plan, fees=(old, new))
    days = r.fills["datetime"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2023-08-24", "2023-08-25", "2023-08-28"]
    assert r.fills["tax"].tolist() == [0.0, 10.0, 5.0]


def test_slippage_models_from_the_config() -> None:
    data = bars([flat(10.0), (10.0, 11.0, 9.0, 10.5)])
    r = run(data, {0: lambda s: s.buy(1)}, slippage={"model": "range", "share": 0.1})
    assert r.fills["price"].iloc[0] == pytest.approx(10.2)
    assert r.stats["total_slippage"] == pytest.approx(0.2)
    with pytest.raises(ParameterError, match="either slippage_bps or a slippage model"):
        RunConfig.build(slippage_bps=1.0, slippage={"model": "range", "share": 0.1})
    with pytest.raises(ParameterError, match="unknown key"):
        RunConfig.build(slippage={"model": "range", "bps": 1.0})


def test_order_targets_and_rebalance() -> None:
    idx = pd.date_range("2024-01-01", periods=4, freq="D")
    rows = []
    for sym, p in (("A", 10.0), ("B", 20.0), ("C", 40.0)):
        rows += [(sym, t, p, p, p, p, 1e6) for t in idx]
    columns = ["symbol", "datetime", "open", "high", "low", "close", "volume"]
    data = pd.DataFrame(rows, columns=columns)

    def first(s: Strategy) -> None:
        s.order_target_size(100, symbol="A")
        s.order_target_value(2_000, symbol="B")
        s.order_target_percent(0.1, symbol="C")

    def second(s: Strategy) -> None:
        s.rebalance({"A": 0.5, "B": 0.2}, cash_buffer=0.1)

    r = run(data, {0: first, 1: second}, cash=100_000)
    pos = r.ledger["position"]
    assert pos.loc["C"] == 0  # not named: sold
    assert pos.loc["A"] * 10 == pytest.approx(0.5 * 0.9 * 100_000)
    assert pos.loc["B"] * 20 == pytest.approx(0.2 * 0.9 * 100_000)
    # Sells went first.
    second_batch = r.orders[r.orders["submitted"] == pd.Timestamp(idx[1], tz="UTC")]
    sides = second_batch["side"].tolist()
    assert sides == sorted(sides, key=lambda x: x != "sell")
    with pytest.raises(BtCoreError, match="gross sum of 1.3 > 1"):
        run(data, {0: lambda s: s.rebalance({"A": 0.8, "B": 0.5})})


# ----- a cross-check with backtesting.py ---------------------------------------------------


def _random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1e6}, index=idx
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sl_tp_and_stop_entries_match_backtesting_py(seed: int) -> None:
    """Market entries with SL/TP, and stop entries closed at market later, on a random walk:
    the same round trips (entry/exit time and price) as backtesting.py, whose rules here
    match ours — market orders at the next open, a stop at its price or the gapped open, a
    bar reaching both SL and TP takes the SL (backtesting.py processes SL orders first; our
    default path, pessimistic, visits a long's low first), a market entry's exits may fill in
    its own bar. Where the two differ, and so not exercised here: the exits of a stop or
    limit entry reached within the entry's own bar (backtesting.py defers them to the next
    bar since it does not model the path; we follow the bar's path), and a stop-limit whose
    limit lies beyond its stop (backtesting.py skips it in the trigger bar)."""
    bt = pytest.importorskip("backtesting")
    df = _random_walk(300, seed)
    every, sl_f, tp_f = 7, 0.97, 1.04

    def decide(i: int, flat: bool, no_orders: bool, close: float) -> str | None:
        if flat and no_orders and i % every == 0:
            return "bracket" if (i // every) % 2 else "stop"
        if not flat and no_orders and i % every == 5:
            return "close"  # only stop entries have no working exits
        return None

    class Theirs(bt.Strategy):  # type: ignore[misc, name-defined]
        def init(self) -> None:
            pass

        def next(self) -> None:
            c = self.data.Close[-1]
            what = decide(len(self.data) - 1, not self.position, not self.orders, c)
            if what == "bracket":
                self.buy(size=10, sl=c * sl_f, tp=c * tp_f)
            elif what == "stop":
                self.buy(size=10, stop=c * 1.01)
            elif what == "close":
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bt.Backtest(df, Theirs, cash=1e9, commission=0.0).run()._trades

    class Ours(Strategy):
        def next(self, bar: Any) -> None:
            c = bar.close
            what = decide(self.i, self.position == 0, not self.open_orders, c)
            if self.i == 0:
                return  # backtesting.py's first call is on the second bar
            if what == "bracket":
                self.buy(10, sl=c * sl_f, tp=c * tp_f)
            elif what == "stop":
                self.buy(10, stop=c * 1.01)
            elif what == "close":
                self.close()

    ours_df = df.rename(columns=str.lower).rename_axis("datetime").reset_index()
    ours = Backtest(ours_df, Ours, cash=1e9).run().trades
    assert len(ours) == len(theirs) > 10
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours["exit_price"], theirs["ExitPrice"], rtol=1e-12)
    naive = {c: ours[c].dt.tz_localize(None).to_numpy() for c in ("entry_time", "exit_time")}
    assert (naive["entry_time"] == theirs["EntryTime"].to_numpy()).all()
    assert (naive["exit_time"] == theirs["ExitTime"].to_numpy()).all()


def test_lots_and_ticks_from_the_config() -> None:
    """A lot of 100 and a tick of 0.01 for every symbol: percent and value sizes round down
    to whole lots, a size off the lot or a price off the tick is rejected with its code,
    bracket levels given as percentages land on the tick."""
    data = bars([flat(10.0), flat(10.0), (10.0, 10.2, 9.0, 9.5), flat(9.5)])
    lots = {"instruments": {"*": {"size_increment": 100, "tick_size": 0.01}}}
    r = run(data, {0: lambda s: s.buy(value=2_550, sl_pct=0.0333)}, **lots)
    assert r.fills["size"].tolist() == [200.0, 200.0]  # 255 units -> 2 lots
    assert r.orders.loc[1, "stop_price"] == pytest.approx(9.67)  # 10 x (1 - 0.0333) on tick
    r = run(data, {0: lambda s: s.buy(150)}, **lots)
    assert r.orders.loc[0, "reason_code"] == "size_increment"
    r = run(data, {0: lambda s: s.buy(100, limit=9.995)}, **lots)
    assert r.orders.loc[0, "reason_code"] == "tick_size"
    with pytest.raises(BtCoreError, match="not a symbol of the data"):
        run(data, {}, instruments={"XYZ": {"size_increment": 100}})
    with pytest.raises(BtCoreError, match=r"instruments\.\*\.lot: Extra inputs"):
        run(data, {}, instruments={"*": {"lot": 100}})
