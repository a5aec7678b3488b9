"""Round trips from fills (FIFO, partial closes, reversals, shorts, commissions) and trade stats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import bt_analysis as ba
from bt_analysis.trades import TRADE_COLUMNS

T0 = pd.Timestamp("2024-01-02", tz="UTC")


def fills(rows: list[tuple]) -> pd.DataFrame:
    """rows: (symbol, day offset, side, size, price, commission)."""
    return pd.DataFrame(
        {
            "order_id": np.arange(len(rows)),
            "symbol": [r[0] for r in rows],
            # the engine's dtype: UTC nanoseconds
            "datetime": pd.DatetimeIndex([T0 + pd.Timedelta(days=r[1]) for r in rows]).as_unit(
                "ns"
            ),
            "side": [r[2] for r in rows],
            "size": [float(r[3]) for r in rows],
            "price": [float(r[4]) for r in rows],
            "commission": [float(r[5]) for r in rows],
        }
    )


def test_partial_closes_allocate_commission_pro_rata() -> None:
    rt = ba.round_trips(
        fills(
            [
                ("A", 0, "buy", 10, 100, 2.0),
                ("A", 1, "sell", 4, 110, 1.0),
                ("A", 3, "sell", 6, 120, 1.5),
            ]
        )
    )
    assert list(rt.columns) == TRADE_COLUMNS
    assert rt["side"].tolist() == ["long", "long"]
    assert rt["size"].tolist() == [4.0, 6.0]
    assert rt["gross_pnl"].tolist() == pytest.approx([40.0, 120.0])
    # entry commission 2.0 split 4/10 and 6/10; each exit fill's commission is its own
    assert rt["commission"].tolist() == pytest.approx([0.8 + 1.0, 1.2 + 1.5])
    assert rt["pnl"].tolist() == pytest.approx([38.2, 117.3])
    assert rt["return_pct"].tolist() == pytest.approx([38.2 / 400, 117.3 / 600])
    assert rt["duration"].tolist() == [pd.Timedelta(days=1), pd.Timedelta(days=3)]
    assert str(rt["entry_time"].dtype) == "datetime64[ns, UTC]"  # the fills' dtype is kept
    assert str(rt["exit_time"].dtype) == "datetime64[ns, UTC]"


def test_fifo_closes_the_oldest_lot_first() -> None:
    rt = ba.round_trips(
        fills([("A", 0, "buy", 5, 10, 0), ("A", 1, "buy", 5, 12, 0), ("A", 2, "sell", 7, 15, 0)])
    )
    assert rt["size"].tolist() == [5.0, 2.0]
    assert rt["entry_price"].tolist() == [10.0, 12.0]
    assert rt["entry_time"].tolist() == [T0, T0 + pd.Timedelta(days=1)]
    assert rt["pnl"].tolist() == pytest.approx([25.0, 6.0])  # 3 units at 12 stay open


def test_reversal_closes_the_long_and_opens_a_short_with_the_rest() -> None:
    rt = ba.round_trips(
        fills(
            [("A", 0, "buy", 5, 10, 0.5), ("A", 1, "sell", 8, 9, 0.8), ("A", 4, "buy", 3, 8, 0.3)]
        )
    )
    assert rt["side"].tolist() == ["long", "short"]
    assert rt["size"].tolist() == [5.0, 3.0]
    long, short = rt.iloc[0], rt.iloc[1]
    assert long["gross_pnl"] == pytest.approx(-5.0)
    assert long["commission"] == pytest.approx(0.5 + 0.8 * 5 / 8)
    assert long["pnl"] == pytest.approx(-5.0 - 1.0)
    assert short["entry_price"] == 9.0 and short["exit_price"] == 8.0
    assert short["gross_pnl"] == pytest.approx(3.0)
    assert short["commission"] == pytest.approx(0.8 * 3 / 8 + 0.3)
    assert short["pnl"] == pytest.approx(3.0 - 0.6)
    assert short["return_pct"] == pytest.approx(2.4 / 27)
    assert short["duration"] == pd.Timedelta(days=3)


def test_short_first_and_symbols_are_independent() -> None:
    rt = ba.round_trips(
        fills(
            [
                ("B", 0, "sell", 2, 50, 0),
                ("A", 0, "buy", 1, 10, 0),
                ("B", 1, "buy", 2, 55, 0),
                ("A", 2, "sell", 1, 11, 0),
            ]
        )
    )
    assert rt[["symbol", "side"]].values.tolist() == [["B", "short"], ["A", "long"]]
    assert rt["pnl"].tolist() == pytest.approx([-10.0, 1.0])


def test_same_time_exits_keep_the_order_of_their_fills() -> None:
    # The engine lists round trips in the order they closed; a same-bar exit of B then A
    # (B's order executed first) must not come back sorted by symbol.
    rt = ba.round_trips(
        fills(
            [
                ("B", 0, "buy", 2, 50, 0),
                ("A", 0, "buy", 3, 10, 0),
                ("A", 1, "buy", 1, 11, 0),
                ("B", 2, "sell", 2, 55, 0),
                ("A", 2, "sell", 4, 12, 0),
                ("A", 3, "buy", 1, 10, 0),
                ("A", 4, "sell", 1, 9, 0),
            ]
        )
    )
    assert rt["symbol"].tolist() == ["B", "A", "A", "A"]
    assert rt["entry_price"].tolist() == [50.0, 10.0, 11.0, 10.0]
    assert rt.index.tolist() == [0, 1, 2, 3]


def test_rows_out_of_time_order_are_processed_in_time_order() -> None:
    f = fills([("A", 0, "buy", 1, 10, 0), ("A", 1, "sell", 1, 12, 0)]).iloc[::-1]
    rt = ba.round_trips(f)
    assert rt["side"].tolist() == ["long"] and rt["pnl"].tolist() == [2.0]


def test_floating_point_residue_does_not_leave_a_phantom_lot() -> None:
    rt = ba.round_trips(
        fills(
            [
                ("A", 0, "buy", 0.3, 10, 0),
                ("A", 1, "sell", 0.1, 11, 0),
                ("A", 2, "sell", 0.2, 12, 0),
                ("A", 3, "buy", 1, 10, 0),
                ("A", 4, "sell", 1, 10, 0),
            ]
        )
    )
    assert rt["side"].tolist() == ["long", "long", "long"]
    assert rt["size"].tolist() == pytest.approx([0.1, 0.2, 1.0])


def test_no_closed_trade_gives_an_empty_table_with_the_columns() -> None:
    rt = ba.round_trips(fills([("A", 0, "buy", 1, 10, 0)]))
    assert rt.empty and list(rt.columns) == TRADE_COLUMNS
    closed = ba.round_trips(fills([("A", 0, "buy", 1, 10, 0), ("A", 1, "sell", 1, 11, 0)]))
    assert rt.dtypes.to_dict() == closed.dtypes.to_dict()  # same dtypes, text columns too
    assert str(rt["duration"].dtype) == "timedelta64[ns]"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("side", "hold", r"'buy' or 'sell'.*'hold'.*row 1"),
        ("size", -1.0, r"'size' must be finite and > 0.*row 1"),
        ("price", np.nan, r"'price' must be finite.*row 1"),
        ("commission", -0.5, r"'commission' must be finite and >= 0"),
    ],
)
def test_bad_fills_are_rejected_with_the_row(column: str, value: object, message: str) -> None:
    f = fills([("A", 0, "buy", 1, 10, 0), ("A", 1, "sell", 1, 12, 0)])
    f[column] = f[column].astype(object)
    f.loc[1, column] = value
    with pytest.raises(ValueError, match=message):
        ba.round_trips(f)


def test_missing_columns_and_missing_times_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"missing column\(s\) \['price'\]"):
        ba.round_trips(fills([("A", 0, "buy", 1, 10, 0)]).drop(columns="price"))
    f = fills([("A", 0, "buy", 1, 10, 0)])
    f["datetime"] = pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")
    with pytest.raises(ValueError, match="NaT"):
        ba.round_trips(f)


fill_steps = hst.lists(
    hst.tuples(
        hst.sampled_from(["X", "Y"]),
        hst.sampled_from(["buy", "sell"]),
        hst.integers(1, 9),
        hst.integers(50, 150),
        hst.integers(0, 30),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=fill_steps)
def test_flat_book_accounting_identities(steps) -> None:
    """Whatever FIFO does, once every position is flat: net pnl of the round trips = sell
    proceeds - buy costs - commissions; every unit is opened and closed once; commission is
    conserved; and within a symbol, lots are closed oldest first."""
    rows = [
        (s, i, side, size, price, fee / 10) for i, (s, side, size, price, fee) in enumerate(steps)
    ]
    position: dict[str, float] = {}
    for s, _, side, size, *_ in rows:
        position[s] = position.get(s, 0.0) + (size if side == "buy" else -size)
    for s, pos in sorted(position.items()):
        if pos:
            rows.append((s, len(rows), "sell" if pos > 0 else "buy", abs(pos), 100, 0.25))
    f = fills(rows)
    rt = ba.round_trips(f)
    signed_cash = np.where(f["side"] == "sell", 1.0, -1.0) * f["size"] * f["price"]
    assert rt["pnl"].sum() == pytest.approx(signed_cash.sum() - f["commission"].sum(), abs=1e-9)
    assert rt["gross_pnl"].sum() == pytest.approx(signed_cash.sum(), abs=1e-9)
    assert rt["commission"].sum() == pytest.approx(f["commission"].sum(), abs=1e-9)
    assert rt["size"].sum() == pytest.approx(f["size"].sum() / 2)
    np.testing.assert_allclose(rt["pnl"], rt["gross_pnl"] - rt["commission"])
    np.testing.assert_allclose(rt["return_pct"], rt["pnl"] / (rt["entry_price"] * rt["size"]))
    assert (rt["duration"] >= pd.Timedelta(0)).all()
    for _, group in rt.groupby("symbol"):
        assert group["entry_time"].is_monotonic_increasing


def test_trade_metrics_by_hand() -> None:
    trades = pd.DataFrame(
        {
            "symbol": ["A", "A", "B", "B"],
            "pnl": [10.0, -5.0, 0.0, 20.0],
            "commission": [1.0, 1.0, 0.5, 0.5],
            "return_pct": [0.1, -0.05, 0.0, 0.2],
            "duration": pd.to_timedelta(["1D", "2D", "12h", "4D"]),
        }
    )
    m = ba.trade_metrics(trades)
    assert m["n_trades"] == 4 and m["n_wins"] == 2 and m["n_losses"] == 1
    assert m["win_rate"] == 0.5  # the break-even trade counts in the denominator
    assert m["profit_factor"] == 6.0
    assert m["expectancy"] == 6.25
    assert m["avg_win"] == 15.0 and m["avg_loss"] == -5.0 and m["payoff_ratio"] == 3.0
    assert m["best_trade"] == 20.0 and m["worst_trade"] == -5.0
    assert m["total_commission"] == 3.0
    assert m["avg_return_pct"] == pytest.approx(0.0625)
    assert m["avg_holding_time"] == pytest.approx((1 + 2 + 0.5 + 4) / 4)
    by = ba.trade_stats_by_symbol(trades)
    assert by.index.tolist() == ["A", "B"]
    assert by.loc["A", "profit_factor"] == 2.0
    assert np.isnan(by.loc["B", "profit_factor"])  # B has no losing trade
    assert by.loc["B", "n_trades"] == 2


def test_profit_factor_without_losers_is_none_and_json_safe(equity_from_returns) -> None:
    trades = pd.DataFrame({"pnl": [1.0, 2.0], "duration": pd.to_timedelta(["1D", "1D"])})
    m = ba.trade_metrics(trades)
    assert m["profit_factor"] is None and m["avg_loss"] is None
    equity = equity_from_returns(np.array([0.01, 0.02, 0.005]))
    stats = ba.performance_metrics(equity, trades)
    json.dumps(stats, allow_nan=False)
    assert stats["profit_factor"] is None and stats["n_trades"] == 2
    empty = ba.trade_metrics(trades.iloc[0:0])
    assert empty["n_trades"] == 0 and empty["win_rate"] is None and empty["expectancy"] is None


def test_trade_metrics_needs_pnl() -> None:
    with pytest.raises(ValueError, match="no 'pnl' column"):
        ba.trade_metrics(pd.DataFrame({"profit": [1.0]}))
    with pytest.raises(ValueError, match="'pnl' must be finite"):
        ba.trade_metrics(pd.DataFrame({"pnl": [1.0, np.nan]}))
