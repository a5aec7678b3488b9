"""bt-core API: data forms, multi-symbol alignment, parameters, result tables, JSON, save,
fill timing and costs as seen from Python, history views and the callback lifecycle."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import (
    Backtest,
    MarketData,
    ParameterError,
    Result,
    Strategy,
    StrategyError,
    load_data,
)
from bt_core.indicators import sma


class BuyAndHold(Strategy):
    """Buys ``order_size`` on the first bar it sees, then holds."""

    order_size = 1.0

    def next(self, bar: Any) -> Any:
        if self.i == 0:
            return "BUY"
        return None


# ----------------------------------------------------------------------------------------
# data forms
# ----------------------------------------------------------------------------------------


def _fields_equal(a: MarketData, b: MarketData) -> None:
    assert a.symbols == b.symbols
    assert a.index.equals(b.index)
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(a.fields[f], b.fields[f])


def test_wide_frame_any_column_case(ohlc: pd.DataFrame) -> None:
    upper = ohlc.rename(columns=str.upper)
    mixed = ohlc.rename(columns={"open": "Open", "high": "hIGH", "close": " Close "})
    base = load_data(ohlc)
    assert base.symbols == ("asset",)
    assert base.fields["close"].shape == (len(ohlc), 1)
    np.testing.assert_array_equal(base.fields["close"][:, 0], ohlc["close"].to_numpy())
    _fields_equal(base, load_data(upper))
    _fields_equal(base, load_data(mixed))


def test_wide_frame_naive_index_is_utc_and_symbol_name(ohlc: pd.DataFrame) -> None:
    naive = ohlc.tz_localize(None)
    md = load_data(naive, symbol="XYZ")
    assert md.symbols == ("XYZ",)
    assert str(md.index.tz) == "UTC"
    assert md.index.equals(ohlc.index)


def test_wide_frame_with_datetime_column(ohlc: pd.DataFrame) -> None:
    flat = ohlc.reset_index().rename(columns={"datetime": "Date"})
    flat["Date"] = flat["Date"].dt.strftime("%Y-%m-%d")
    _fields_equal(load_data(ohlc), load_data(flat))


def test_long_frame_dict_csv_parquet_agree(make_ohlc: Any, to_long: Any, tmp_path: Any) -> None:
    frames = {"AAA": make_ohlc(60, seed=2), "BBB": make_ohlc(60, seed=3, s0=50.0)}
    long = to_long(frames)
    from_dict = load_data(frames)
    from_long = load_data(long)
    _fields_equal(from_dict, from_long)
    assert from_long.symbols == ("AAA", "BBB")
    np.testing.assert_array_equal(
        from_long.fields["close"][:, 1], frames["BBB"]["close"].to_numpy()
    )
    csv = tmp_path / "bars.csv"
    long.to_csv(csv, index=False)
    pq = tmp_path / "bars.parquet"
    long.to_parquet(pq)
    from_csv = load_data(str(csv))
    from_pq = load_data(pq)
    assert from_csv.symbols == from_pq.symbols == ("AAA", "BBB")
    assert from_csv.index.equals(from_dict.index)
    for f in ("open", "high", "low", "close", "volume"):
        # CSV round-trips floats through text (repr is exact for float64).
        np.testing.assert_array_equal(from_csv.fields[f], from_dict.fields[f])
        np.testing.assert_array_equal(from_pq.fields[f], from_dict.fields[f])
    # The same run on every form gives the same equity.
    eq = [
        Backtest(d, "sma_cross", commission=0.001).run(fast=3, slow=8).equity.to_numpy()
        for d in (frames, long, csv, str(pq))
    ]
    for e in eq[1:]:
        np.testing.assert_array_equal(e, eq[0])


def test_long_frame_select_one_symbol(make_ohlc: Any, to_long: Any) -> None:
    frames = {"AAA": make_ohlc(30, seed=2), "BBB": make_ohlc(30, seed=3)}
    md = load_data(to_long(frames), symbol="BBB")
    assert md.symbols == ("BBB",)
    np.testing.assert_array_equal(md.fields["close"][:, 0], frames["BBB"]["close"].to_numpy())


def test_sample_csv_files_load() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    single = load_data(root / "examples" / "data" / "sample.csv")
    multi = load_data(root / "examples" / "data" / "multi_asset.csv")
    assert single.n_bars > 1000 and len(single.symbols) == 1
    assert set(multi.symbols) == {"600000.SH", "000001.SZ", "513500.SH", "510300.SH"}


# ----------------------------------------------------------------------------------------
# multi-symbol alignment
# ----------------------------------------------------------------------------------------


@pytest.fixture
def gappy(make_ohlc: Any) -> dict[str, pd.DataFrame]:
    """AAA has 10 daily bars; BBB lacks bars 3, 4 and 5 (a suspension)."""
    a = make_ohlc(10, seed=5)
    b = make_ohlc(10, seed=6, s0=20.0).drop(index=make_ohlc(10, seed=6).index[3:6])
    return {"AAA": a, "BBB": b}


def test_alignment_has_nan_for_missing_bars(gappy: dict[str, pd.DataFrame]) -> None:
    md = load_data(gappy)
    assert md.n_bars == 10
    close = md.fields["close"]
    assert np.isnan(close[3:6, 1]).all()
    assert not np.isnan(close[:, 0]).any()
    assert not np.isnan(np.delete(close[:, 1], [3, 4, 5])).any()
    # Where a symbol has no bar every field is NaN, none is fabricated.
    for f in ("open", "high", "low", "volume"):
        assert np.isnan(md.fields[f][3:6, 1]).all()


def test_alignment_of_different_start_dates(make_ohlc: Any) -> None:
    a = make_ohlc(8, seed=1, start="2021-01-01")
    b = make_ohlc(8, seed=2, start="2021-01-05")
    md = load_data({"A": a, "B": b})
    assert md.n_bars == 12
    assert np.isnan(md.fields["close"][:4, 1]).all()
    assert np.isnan(md.fields["close"][8:, 0]).all()


def test_symbol_without_bar_is_not_tradable_and_marked_at_last_price(
    gappy: dict[str, pd.DataFrame],
) -> None:
    class BuyBDuringGap(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 2:
                # Decided on bar 2; BBB has no bar on 3, 4, 5: the order must wait for bar 6.
                self.buy(2.0, symbol="BBB")

    res = Backtest(gappy, BuyBDuringGap, cash=1_000.0).run()
    b = gappy["BBB"]
    assert len(res.fills) == 1
    fill = res.fills.iloc[0]
    assert fill["datetime"] == b.index[3]  # BBB's next bar is the aligned bar 6
    assert fill["price"] == b["open"].iloc[3]
    assert res.fills["datetime"].iloc[0] == load_data(gappy).index[6]
    order = res.orders.iloc[0]
    assert order["status"] == "filled"
    # Before the fill equity is cash; after it, cash + 2 x BBB's last close, also through
    # later gaps (BBB has bars after 6 in this fixture, so check the marking at each bar).
    md = load_data(gappy)
    cash_after = 1_000.0 - 2.0 * fill["price"]
    last = pd.Series(md.fields["close"][:, 1]).ffill().to_numpy()
    expected = np.where(np.arange(10) >= 6, cash_after + 2.0 * last, 1_000.0)
    np.testing.assert_allclose(res.equity.to_numpy(), expected, rtol=1e-12)


def test_held_symbol_is_marked_at_last_price_during_gap(gappy: dict[str, pd.DataFrame]) -> None:
    class HoldB(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 0:
                self.buy(3.0, symbol="BBB")

    res = Backtest(gappy, HoldB, cash=1_000.0).run()
    md = load_data(gappy)
    px = res.fills["price"].iloc[0]
    close_b = md.fields["close"][:, 1]
    eq = res.equity.to_numpy()
    # Bars 3-5 have no BBB bar: it is marked at bar 2's close, never at 0 or NaN.
    for t in (3, 4, 5):
        assert eq[t] == pytest.approx(1_000.0 - 3.0 * px + 3.0 * close_b[2], rel=1e-12)
    assert np.isfinite(eq).all()


# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------


class Params(Strategy):
    fast = 5
    slow = 20
    label = "x"

    def on_start(self) -> None:
        self.seen_params = (self.fast, self.slow, self.label)
        type(self).last_seen = self.seen_params  # type: ignore[attr-defined]


def test_params_are_class_attributes_overridable_per_run(ohlc: pd.DataFrame) -> None:
    bt = Backtest(ohlc, Params)
    r1 = bt.run()
    assert Params.last_seen == (5, 20, "x")  # type: ignore[attr-defined]
    assert r1.params["fast"] == 5 and r1.params["slow"] == 20
    r2 = bt.run(fast=7, label="y")
    assert Params.last_seen == (7, 20, "y")  # type: ignore[attr-defined]
    assert r2.params["fast"] == 7 and r2.params["label"] == "y"
    # The override does not leak into the class or the next run.
    assert Params.fast == 5
    bt.run()
    assert Params.last_seen == (5, 20, "x")  # type: ignore[attr-defined]
    assert set(Params.parameters()) >= {"fast", "slow", "label", "order_size", "warmup"}


def test_unknown_parameter_is_an_error(ohlc: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter 'fsat'.*fast"):
        Backtest(ohlc, Params).run(fsat=3)
    with pytest.raises(ParameterError, match=r"unknown parameter.*'bogus'.*fast, slow, size"):
        Backtest(ohlc, "sma_cross").run(bogus=1)


def test_unknown_builtin_and_bad_strategy_type(ohlc: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match=r"unknown built-in strategy 'rsi_magic'"):
        Backtest(ohlc, "rsi_magic")
    with pytest.raises(ParameterError, match="Strategy subclass"):
        Backtest(ohlc, object)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="no strategy"):
        Backtest(ohlc).run()


def test_builtin_param_validation(ohlc: pd.DataFrame) -> None:
    bt = Backtest(ohlc, "sma_cross")
    with pytest.raises(ParameterError, match="fast"):
        bt.run(fast=0)
    with pytest.raises(ParameterError, match="slow"):
        bt.run(slow=2.5)
    with pytest.raises(ParameterError, match="fast < slow"):
        bt.run(fast=30, slow=10)
    with pytest.raises(ParameterError, match="size"):
        bt.run(size=float("nan"))


def test_order_size_parameter_is_used(ohlc: pd.DataFrame) -> None:
    res = Backtest(ohlc, BuyAndHold).run(order_size=7)
    assert res.fills["size"].tolist() == [7.0]


# ----------------------------------------------------------------------------------------
# result tables, JSON, save
# ----------------------------------------------------------------------------------------

FILL_COLS = {
    "order_id": "int64",
    "size": "float64",
    "price": "float64",
    "commission": "float64",
    "tax": "float64",
    "slippage": "float64",
}
TRADE_FLOAT_COLS = [
    "size",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "commission",
    "pnl",
    "return_pct",
]


def _busy_result(ohlc: pd.DataFrame) -> Result:
    """A run with fills, a rejected, a cancelled, an open limit and closed trades."""

    class Busy(Strategy):
        order_size = 1.0  # "BUY"/"SELL" trade one unit (the default sizes by equity)

        def next(self, bar: Any) -> Any:
            i = self.i
            if i % 10 == 1 and self.position == 0:
                return "BUY"
            if i % 10 == 6 and self.position > 0:
                return "SELL"
            if i == 3:
                self.sell(100.0)  # rejected: insufficient position
            if i == 4:
                oid = self.buy(1.0, limit=bar.close * 0.5)
                self.cancel(oid)
            if i == len(self._md.index) - 3:
                self.buy(1.0, limit=bar.close * 0.01)  # never fills
            return None

    return Backtest(ohlc, Busy, commission=0.001, slippage_bps=1).run()


def test_result_tables_columns_and_dtypes(ohlc: pd.DataFrame) -> None:
    res = _busy_result(ohlc)
    assert isinstance(res.equity, pd.Series) and res.equity.index.equals(load_data(ohlc).index)
    assert res.equity.dtype == np.float64 and len(res.equity) == len(ohlc)
    assert list(res.fills.columns) == [
        "order_id",
        "symbol",
        "datetime",
        "side",
        "size",
        "price",
        "commission",
        "tax",
        "slippage",
    ]
    for c, dt in FILL_COLS.items():
        assert res.fills[c].dtype == dt, c
    assert isinstance(res.fills["datetime"].dtype, pd.DatetimeTZDtype)
    assert str(res.fills["datetime"].dt.tz) == "UTC"
    assert set(res.fills["side"]) == {"buy", "sell"}
    assert list(res.orders.columns) == [
        "order_id",
        "symbol",
        "side",
        "type",
        "tif",
        "size",
        "filled",
        "limit_price",
        "stop_price",
        "avg_price",
        "status",
        "reason_code",
        "reason",
        "submitted",
        "closed",
        "parent_id",
        "oco_group",
        "commission",
        "tax",
        "liquidation",
    ]
    assert res.orders["order_id"].dtype == np.int64
    assert res.orders["liquidation"].dtype == bool and not res.orders["liquidation"].any()
    for c in ("size", "filled", "avg_price"):
        assert res.orders[c].dtype == np.float64, c
    for c in ("submitted", "closed"):
        assert isinstance(res.orders[c].dtype, pd.DatetimeTZDtype), c
    statuses = set(res.orders["status"])
    assert {"filled", "rejected", "cancelled", "accepted"} <= statuses
    assert res.orders["closed"][res.orders["status"] == "accepted"].isna().all()
    assert list(res.trades.columns) == [
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
        "bars_held",
    ]
    for c in TRADE_FLOAT_COLS:
        assert res.trades[c].dtype == np.float64, c
    assert res.trades["bars_held"].dtype == np.int64
    assert pd.api.types.is_timedelta64_dtype(res.trades["duration"])
    assert len(res.trades) > 0
    assert (res.trades["side"] == "long").all()
    assert list(res.ledger.columns) == [
        "position",
        "avg_cost",
        "last_price",
        "realized",
        "unrealized",
        "commission",
        "tax",
        "slippage",
        "borrow",
    ]
    assert res.ledger.index.tolist() == ["asset"]
    assert res.exposure.index.equals(res.equity.index)


def test_orders_limit_price_is_float(ohlc: pd.DataFrame) -> None:
    res = _busy_result(ohlc)
    assert res.orders["limit_price"].dtype == np.float64
    assert res.orders["limit_price"][res.orders["type"] == "market"].isna().all()
    market_only = Backtest(ohlc, BuyAndHold).run()
    assert market_only.orders["limit_price"].dtype == np.float64
    assert market_only.orders["limit_price"].isna().all()


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def test_empty_tables_keep_their_dtypes(ohlc: pd.DataFrame) -> None:
    # Found by this suite: empty text columns used to come out as float64.
    res = Backtest(ohlc, Strategy).run()
    assert res.fills.empty and res.orders.empty and res.trades.empty
    for c in ("symbol", "side"):
        assert _is_text(res.fills[c]), c
    for c in ("symbol", "side", "type", "tif", "status"):
        assert _is_text(res.orders[c]), c
    for c in ("size", "price", "commission"):
        assert res.fills[c].dtype == np.float64, c


def _strict_loads(text: str) -> Any:
    def reject(c: str) -> Any:
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=reject)


def test_to_json_is_strict_json(ohlc: pd.DataFrame) -> None:
    res = _busy_result(ohlc)
    data = _strict_loads(res.to_json())
    assert len(data["equity"]["equity"]) == len(ohlc)
    assert data["equity"]["equity"] == res.equity.tolist()
    assert len(data["fills"]) == len(res.fills)
    assert len(data["orders"]) == len(res.orders)
    assert len(data["trades"]) == len(res.trades)
    rejected = [o for o in data["orders"] if o["status"] == "rejected"]
    assert rejected and "insufficient position" in rejected[0]["reason"]
    assert data["strategy"] == "Busy"
    assert isinstance(data["stats"], dict) and data["stats"]


def test_to_json_without_trades_has_no_nan(ohlc: pd.DataFrame) -> None:
    # No trades: ratios like profit factor / win rate are undefined and must not be NaN.
    res = Backtest(ohlc, Strategy).run()
    assert len(res.trades) == 0 and (res.equity == 100_000.0).all()
    data = _strict_loads(res.to_json())
    assert data["trades"] == [] and data["fills"] == []


def test_save_writes_the_files(ohlc: pd.DataFrame, tmp_path: Any) -> None:
    res = _busy_result(ohlc)
    paths = res.save(tmp_path / "out")
    assert set(paths) == {"equity", "fills", "orders", "trades", "stats"}
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    eq = pd.read_csv(paths["equity"])
    assert list(eq.columns) == ["datetime", "equity"]
    np.testing.assert_array_equal(eq["equity"].to_numpy(), res.equity.to_numpy())
    assert len(pd.read_csv(paths["fills"])) == len(res.fills)
    assert len(pd.read_csv(paths["orders"])) == len(res.orders)
    assert len(pd.read_csv(paths["trades"])) == len(res.trades)
    _strict_loads(paths["stats"].read_text())


def test_report_writes_html(ohlc: pd.DataFrame, tmp_path: Any) -> None:
    res = _busy_result(ohlc)
    out = res.report(tmp_path / "r.html")
    text = out.read_text()
    assert "<html" in text.lower()


def test_stats_periods_per_year(make_ohlc: Any) -> None:
    daily = Backtest(make_ohlc(50, seed=1, freq="B"), "sma_cross").run(fast=2, slow=5)
    hourly = Backtest(make_ohlc(50, seed=1, freq="h"), "sma_cross").run(fast=2, slow=5)
    assert daily.periods_per_year is not None and hourly.periods_per_year is not None
    assert hourly.periods_per_year > 20 * daily.periods_per_year
    given = Backtest(make_ohlc(50, seed=1), "sma_cross", periods_per_year=12).run()
    assert given.periods_per_year == 12


# ----------------------------------------------------------------------------------------
# fills and costs (semantics of the engine, seen through the Python API)
# ----------------------------------------------------------------------------------------


def _one_order(data: pd.DataFrame, at: int, submit: Any, **cfg: Any) -> Result:
    class One(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == at:
                submit(self, bar)

    return Backtest(data, One, **cfg).run()


def test_market_order_fills_at_next_open(tiny: pd.DataFrame) -> None:
    res = _one_order(tiny, 1, lambda s, b: s.buy(2.0))
    f = res.fills.iloc[0]
    assert f["datetime"] == tiny.index[2] and f["price"] == tiny["open"].iloc[2]
    eq = res.equity.to_numpy()
    assert eq[1] == 100_000.0
    assert eq[2] == pytest.approx(100_000.0 - 2 * 12.0 + 2 * 12.2, rel=1e-15)


def test_fill_on_close_fills_same_bar_close(tiny: pd.DataFrame) -> None:
    res = _one_order(tiny, 1, lambda s, b: s.buy(2.0), fill_on="close")
    f = res.fills.iloc[0]
    assert f["datetime"] == tiny.index[1] and f["price"] == tiny["close"].iloc[1]
    assert res.equity.iloc[1] == pytest.approx(100_000.0, rel=1e-15)


def test_limit_buy_fills_at_limit_when_range_reaches_it(tiny: pd.DataFrame) -> None:
    # Bar 2 opens at 12.0 with low 11.5: a buy limit at 11.8 fills at 11.8.
    res = _one_order(tiny, 1, lambda s, b: s.buy(1.0, limit=11.8))
    assert res.fills["price"].tolist() == [11.8]
    assert res.fills["datetime"].iloc[0] == tiny.index[2]


def test_limit_buy_gap_through_fills_at_open(tiny: pd.DataFrame) -> None:
    # Limit 12.3 is above bar 2's open 12.0: the order fills at the better open.
    res = _one_order(tiny, 1, lambda s, b: s.buy(1.0, limit=12.3))
    assert res.fills["price"].tolist() == [12.0]


def test_limit_sell_waits_until_high_reaches_it(tiny: pd.DataFrame) -> None:
    def go(s: Strategy, b: Any) -> None:
        s.buy(1.0)
        s.sell(1.0, limit=14.2)  # bars 2, 3 have highs 12.5, 13.5; bar 4's high is 14.5

    res = _one_order(tiny, 1, go)
    sells = res.fills[res.fills["side"] == "sell"]
    assert sells["price"].tolist() == [14.2]
    assert sells["datetime"].iloc[0] == tiny.index[4]


def test_limit_never_reached_stays_open(tiny: pd.DataFrame) -> None:
    res = _one_order(tiny, 1, lambda s, b: s.buy(1.0, limit=5.0))
    assert res.fills.empty
    assert res.orders["status"].tolist() == ["accepted"]


def test_costs_commission_min_fixed_and_slippage(tiny: pd.DataFrame) -> None:
    # Buy 2 at bar 2's open 12.0 with 10 bps slippage -> 12.012; notional 24.024.
    cfg = dict(commission=0.001, commission_min=0.05, commission_fixed=0.01, slippage_bps=10)
    res = _one_order(tiny, 1, lambda s, b: s.buy(2.0), **cfg)
    f = res.fills.iloc[0]
    assert f["price"] == pytest.approx(12.0 * 1.001, rel=1e-15)
    # rate x notional = 0.024 < min 0.05 -> 0.05, plus fixed 0.01.
    assert f["commission"] == pytest.approx(0.06, rel=1e-12)
    assert f["slippage"] == pytest.approx(2 * 0.012, rel=1e-12)
    # Above the minimum the rate applies.
    big = _one_order(tiny, 1, lambda s, b: s.buy(100.0), **cfg)
    assert big.fills["commission"].iloc[0] == pytest.approx(100 * 12.012 * 0.001 + 0.01, rel=1e-12)

    # A sale slips down.
    def rt(s: Strategy, b: Any) -> None:
        s.buy(1.0)
        s.sell(1.0)

    sold = _one_order(tiny, 1, rt, slippage_bps=10)
    assert sold.fills["price"].tolist() == pytest.approx([12.012, 11.988], rel=1e-15)


def test_slippage_capped_at_limit(tiny: pd.DataFrame) -> None:
    # Limit 11.8 is reached inside bar 2; 100 bps slippage would push it to 11.918.
    res = _one_order(tiny, 1, lambda s, b: s.buy(1.0, limit=11.8), slippage_bps=100)
    assert res.fills["price"].tolist() == [11.8]


def test_cash_check_rejects_with_reason(tiny: pd.DataFrame) -> None:
    res = _one_order(tiny, 1, lambda s, b: s.buy(1_000.0), cash=1_000.0)
    assert res.fills.empty
    o = res.orders.iloc[0]
    assert o["status"] == "rejected"
    assert "insufficient cash" in o["reason"]
    assert (res.equity == 1_000.0).all()


def test_commission_counts_in_cash_check(tiny: pd.DataFrame) -> None:
    # 10 units at 12.0 cost exactly 120; with a fixed commission of 1 they cost 121.
    res = _one_order(tiny, 1, lambda s, b: s.buy(10.0), cash=120.5, commission_fixed=1.0)
    assert res.orders["status"].tolist() == ["rejected"]
    ok = _one_order(tiny, 1, lambda s, b: s.buy(10.0), cash=121.0, commission_fixed=1.0)
    assert ok.orders["status"].tolist() == ["filled"]
    assert ok.equity.iloc[2] == pytest.approx(10 * 12.2, rel=1e-12)


def test_sell_more_than_held_is_rejected(tiny: pd.DataFrame) -> None:
    res = _one_order(tiny, 1, lambda s, b: s.sell(1.0))
    o = res.orders.iloc[0]
    assert o["status"] == "rejected" and "insufficient position" in o["reason"]


def test_day_order_expires_at_the_next_trading_day(make_ohlc: Any) -> None:
    # Four 6-hour bars per UTC day: bars 0-3 are day 0, bars 4-7 day 1, ...
    data = make_ohlc(30, seed=4, freq="6h")

    class Day(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 1:  # 06:00 on day 0
                self.buy(1.0, limit=bar.close * 0.5, tif="day")

    res = Backtest(data, Day).run()
    o = res.orders.iloc[0]
    assert o["status"] == "expired" and o["tif"] == "day"
    # Eligible from bar 2 (12:00 day 0); expires on the first bar of day 1 (bar 4).
    assert o["closed"] == data.index[4]


def test_day_offset_hours_moves_the_day_boundary(make_ohlc: Any) -> None:
    data = make_ohlc(30, seed=4, freq="6h")

    class Day(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 1:
                self.buy(1.0, limit=bar.close * 0.5, tif="day")

    # +8 h: bar 4 (00:00 UTC day 1) is 08:00 local on day 1, bar 3 (18:00) is 02:00 day 1
    # local; the order's first eligible bar 2 (12:00 UTC = 20:00 local day 0) -> expires on 3.
    res = Backtest(data, Day, day_offset_hours=8).run()
    assert res.orders["closed"].iloc[0] == data.index[3]


# ----------------------------------------------------------------------------------------
# history views never show the future
# ----------------------------------------------------------------------------------------


def test_history_views_end_at_the_current_bar(ohlc: pd.DataFrame) -> None:
    closes = ohlc["close"].to_numpy()
    checks: list[int] = []

    class Peek(Strategy):
        def on_start(self) -> None:
            self.ma = self.I(sma, self.data.close, 3)
            self.ma_full = sma(closes, 3)
            self.warmup = 0  # every bar, also those before the indicator has a value

        def next(self, bar: Any) -> Any:
            i = self.i
            c = self.data.close
            assert bar.i == i and self.now == ohlc.index[i]
            assert bar.close == closes[i] == c[-1] == c.last == c[i]
            assert len(c) == i + 1
            if i + 1 < len(closes):
                with pytest.raises(IndexError, match="future"):
                    c[i + 1]
                with pytest.raises(IndexError):
                    self.ma[i + 1]
            with pytest.raises(IndexError):
                c[-(i + 2)]
            np.testing.assert_array_equal(c.values, closes[: i + 1])
            if i >= 2:
                w = c.window(3)
                np.testing.assert_array_equal(w, closes[i - 2 : i + 1])
                with pytest.raises(ValueError):
                    w[0] = 1.0
                assert self.ma[-1] == pytest.approx(self.ma_full[i], rel=1e-12)
                np.testing.assert_array_equal(self.ma.window(1), self.ma_full[i : i + 1])
            with pytest.raises(IndexError, match="only"):
                c.window(i + 2)
            with pytest.raises(ValueError):
                c.values[0] = 1.0
            with pytest.raises(ValueError):
                self.ma.values[-1] = 0.0
            checks.append(i)

    Backtest(ohlc, Peek).run()
    assert checks == list(range(len(ohlc)))
    # The caller's data was not modified through any view.
    np.testing.assert_array_equal(ohlc["close"].to_numpy(), closes)


def test_multi_symbol_bar_rows_are_read_only(gappy: dict[str, pd.DataFrame]) -> None:
    md = load_data(gappy)
    seen: list[int] = []

    class Rows(Strategy):
        def next(self, bar: Any) -> Any:
            i = self.i
            np.testing.assert_array_equal(bar.close, md.fields["close"][i])
            with pytest.raises(ValueError):
                bar.close[0] = 1.0
            assert self.data["BBB"].close[-1] == bar.get("close", 1) or (
                math.isnan(bar.get("close", 1)) and math.isnan(self.data["BBB"].close[-1])
            )
            with pytest.raises(AttributeError, match="symbols"):
                _ = self.data.close
            seen.append(i)

    Backtest(gappy, Rows).run()
    assert seen == list(range(10))


def test_warmup_delays_next(ohlc: pd.DataFrame) -> None:
    first: list[int] = []

    class W(Strategy):
        warmup = 15

        def next(self, bar: Any) -> Any:
            first.append(self.i)

    Backtest(ohlc, W).run()
    assert first[0] == 15 and len(first) == len(ohlc) - 15


# ----------------------------------------------------------------------------------------
# callbacks and errors inside them
# ----------------------------------------------------------------------------------------


class Recorder(Strategy):
    """Logs every callback as (callback, bar, detail)."""

    def on_start(self) -> None:
        self.log: list[tuple[str, int, Any]] = []
        self.log.append(("start", -1, None))
        type(self).last = self  # type: ignore[attr-defined]

    def on_order(self, order: Any) -> None:
        self.log.append(("order", self.i, (order.id, order.event, order.status, order.reason)))

    def on_trade(self, fill: Any) -> None:
        self.log.append(("fill", self.i, (fill.order_id, fill.side, fill.size, fill.price)))

    def on_stop(self) -> None:
        self.log.append(("stop", self.i, None))


def test_callbacks_fire_in_order(tiny: pd.DataFrame) -> None:
    class Life(Recorder):
        def next(self, bar: Any) -> Any:
            i = self.i
            if i == 0:
                self.buy(1.0)  # id 0: accepted now, filled at bar 1's open
            elif i == 1:
                self.sell(5.0)  # id 1: rejected on bar 2 (position is 1)
                self.lim = self.buy(1.0, limit=1.0)  # id 2: cancelled on bar 2
            elif i == 2:
                assert self.cancel(self.lim) is True
                assert self.cancel(self.lim) is False
            return None

    Backtest(tiny, Life).run()
    log = Life.last.log  # type: ignore[attr-defined]
    assert log[0] == ("start", -1, None)
    # Every state change is an event; `status` is the order's status right after it.
    assert log[1] == ("order", 0, (0, "submitted", "submitted", None))
    assert log[2] == ("order", 0, (0, "accepted", "accepted", None))
    assert log[3] == ("fill", 1, (0, "buy", 1.0, 11.0))
    assert log[4] == ("order", 1, (0, "filled", "filled", None))
    assert log[5] == ("order", 1, (1, "submitted", "submitted", None))
    assert log[6] == ("order", 1, (1, "accepted", "accepted", None))
    assert log[7] == ("order", 1, (2, "submitted", "submitted", None))
    assert log[8] == ("order", 1, (2, "accepted", "accepted", None))
    assert log[9][:2] == ("order", 2) and log[9][2][:3] == (1, "rejected", "rejected")
    assert "insufficient position" in log[9][2][3]
    assert log[10] == ("order", 2, (2, "cancelled", "cancelled", None))
    assert log[11] == ("stop", 5, None)
    assert len(log) == 12


def test_expired_callback(make_ohlc: Any) -> None:
    data = make_ohlc(10, seed=4, freq="D")

    class Exp(Recorder):
        def next(self, bar: Any) -> Any:
            if self.i == 0:
                self.buy(1.0, limit=bar.close * 0.5, tif="day")

    Backtest(data, Exp).run()
    log = Exp.last.log  # type: ignore[attr-defined]
    assert ("order", 0, (0, "accepted", "accepted", None)) in log
    assert ("order", 2, (0, "expired", "expired", None)) in log


def test_open_orders_and_position_view(tiny: pd.DataFrame) -> None:
    seen: list[tuple[int, float, int, float]] = []

    class View(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 0:
                self.buy(2.0)
                self.buy(1.0, limit=1.0)
            seen.append((self.i, self.position, len(self.open_orders), self.cash))

    Backtest(tiny, View, cash=1_000.0).run()
    assert seen[0] == (0, 0.0, 2, 1_000.0)
    assert seen[1] == (1, 2.0, 1, 1_000.0 - 2 * 11.0)


@pytest.mark.parametrize("where", ["next", "on_order", "on_trade"])
def test_exception_in_callback_stops_run_and_names_bar(tiny: pd.DataFrame, where: str) -> None:
    calls: list[int] = []

    class Boom(Exception):
        pass

    class Fails(Strategy):
        def next(self, bar: Any) -> Any:
            calls.append(self.i)
            if self.i == 2:
                if where == "next":
                    raise Boom("kaput")
                self.buy(1.0)  # accepted on bar 2, filled on bar 3
            return None

        def on_order(self, order: Any) -> None:
            if where == "on_order":
                raise Boom("kaput")

        def on_trade(self, fill: Any) -> None:
            if where == "on_trade":
                raise Boom("kaput")

    with pytest.raises(StrategyError) as info:
        Backtest(tiny, Fails).run()
    bar = 3 if where == "on_trade" else 2
    msg = str(info.value)
    assert f"{where}()" in msg and "Boom" in msg and "kaput" in msg
    assert f"bar {bar}" in msg
    assert tiny.index[bar].strftime("%Y-%m-%d") in msg
    assert isinstance(info.value.__cause__, Boom)
    # The run stopped at the failing bar: next() was not called after it (a fill on bar 3
    # is dispatched before next() of bar 3).
    assert calls == ([0, 1, 2] if where == "on_trade" else list(range(bar + 1)))


def test_exception_in_on_start_propagates(tiny: pd.DataFrame) -> None:
    class BadStart(Strategy):
        def on_start(self) -> None:
            raise KeyError("missing")

    # Wrapped like every other callback's exception (it used to escape as the bare KeyError).
    with pytest.raises(StrategyError, match=r"on_start\(\) raised KeyError: 'missing'") as info:
        Backtest(tiny, BadStart).run()
    assert isinstance(info.value.__cause__, KeyError)


def test_init_alias_and_on_stop(tiny: pd.DataFrame) -> None:
    events: list[str] = []

    class Old(Strategy):
        def init(self) -> None:
            events.append("init")

        def next(self, bar: Any) -> Any:
            events.append("next")

        def on_stop(self) -> None:
            events.append("stop")

    Backtest(tiny, Old).run()
    assert events == ["init"] + ["next"] * 6 + ["stop"]


def test_progress_callback(make_ohlc: Any) -> None:
    data = make_ohlc(500, seed=2)
    ticks: list[tuple[int, int]] = []
    Backtest(data, BuyAndHold).run(progress=lambda d, t: ticks.append((d, t)))
    assert ticks and ticks[-1] == (500, 500)
    assert all(t == 500 for _, t in ticks)
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)


# ----------------------------------------------------------------------------------------
# vectorized drivers
# ----------------------------------------------------------------------------------------


def test_run_signals_series_and_arrays_agree(ohlc: pd.DataFrame) -> None:
    c = ohlc["close"]
    entries = c > c.rolling(5).mean()
    exits = c < c.rolling(5).mean()
    bt = Backtest(ohlc, None, commission=0.001)
    a = bt.run_signals(entries, exits, size=3)
    b = bt.run_signals(entries.to_numpy(), exits.to_numpy(), size=3)
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert len(a.fills) > 2 and set(a.fills["size"]) == {3.0}
    # Each entry fills at the next bar's open.
    buys = a.fills[a.fills["side"] == "buy"]
    pos = ohlc.index.get_indexer(buys["datetime"])
    assert entries.to_numpy()[pos - 1].all()
    np.testing.assert_array_equal(buys["price"].to_numpy(), ohlc["open"].to_numpy()[pos])


def test_run_weights_rebalances(make_ohlc: Any) -> None:
    frames = {"A": make_ohlc(40, seed=1), "B": make_ohlc(40, seed=2)}
    md = load_data(frames)
    w = np.full((40, 2), np.nan)
    w[0] = [0.5, 0.3]
    w[20] = [0.0, 0.9]
    res = Backtest(frames, None).run_weights(w)
    first = res.fills[res.fills["datetime"] == md.index[1]].set_index("symbol")
    eq0 = 100_000.0
    assert first.loc["A", "size"] == pytest.approx(0.5 * eq0 / md.fields["close"][0, 0])
    assert first.loc["B", "size"] == pytest.approx(0.3 * eq0 / md.fields["close"][0, 1])
    assert res.ledger.loc["A", "position"] == 0.0
    assert res.ledger.loc["B", "position"] > 0
    with pytest.raises(ParameterError, match="bar 0"):
        Backtest(frames, None).run_weights(np.full((40, 2), 0.6))


def test_sell_commission_cannot_overdraw_cash(tiny: pd.DataFrame) -> None:
    # Found by the ledger property: a sale whose minimum commission exceeded its proceeds plus
    # the cash on hand used to fill and leave cash negative.
    cash_seen: list[float] = []

    class Dust(Strategy):
        def next(self, bar: Any) -> Any:
            cash_seen.append(self.cash)
            if self.i == 0:
                self.buy(0.5)  # 0.5 x 11.0 + min commission 0.5 = 6.0: all the cash
            elif self.i == 1:
                self.sell(0.01)  # proceeds 0.12, commission 0.5

    res = Backtest(tiny, Dust, cash=6.0, commission_min=0.5).run()
    assert cash_seen[1] == pytest.approx(0.0, abs=1e-12)
    assert min(cash_seen) >= 0.0, cash_seen
    assert res.orders["status"].tolist() == ["filled", "rejected"]
    assert "insufficient cash" in res.orders["reason"].iloc[1]


# ----------------------------------------------------------------------------------------
# more data-form and timing details
# ----------------------------------------------------------------------------------------


def test_long_frame_interleaved_rows(make_ohlc: Any, to_long: Any) -> None:
    # A long table sorted by time (symbols interleaved) is as good as one grouped by symbol.
    frames = {"AAA": make_ohlc(20, seed=2), "BBB": make_ohlc(20, seed=3)}
    long = to_long(frames)
    interleaved = long.sort_values(["datetime", "symbol"]).reset_index(drop=True)
    _fields_equal(load_data(long), load_data(interleaved))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_index_resolution_does_not_matter(ohlc: pd.DataFrame, unit: str) -> None:
    df = ohlc.set_axis(ohlc.index.as_unit(unit), axis=0)
    md = load_data(df)
    np.testing.assert_array_equal(md.ts, ohlc.index.as_unit("ns").asi8)
    assert md.ts[1] - md.ts[0] == 86_400 * 10**9


def test_non_utc_timezone_is_converted(ohlc: pd.DataFrame) -> None:
    local = ohlc.tz_convert("Asia/Shanghai")
    md = load_data(local)
    assert str(md.index.tz) == "UTC"
    np.testing.assert_array_equal(md.ts, load_data(ohlc).ts)


def test_bar_time_and_ts(tiny: pd.DataFrame) -> None:
    seen: list[tuple[int, str]] = []

    class T(Strategy):
        def next(self, bar: Any) -> Any:
            seen.append((bar.ts, bar.time))

    Backtest(tiny, T).run()
    assert seen[0] == (tiny.index[0].value, "2021-03-01T00:00:00Z")
    assert seen[-1][1] == "2021-03-06T00:00:00Z"


def test_fill_on_close_limit_orders(tiny: pd.DataFrame) -> None:
    # Close of bar 1 is 11.2: a buy limit at 11.3 fills there; one at 11.0 does not fill at
    # the close and then works against the next bars' ranges like any limit (bar 2's low is
    # 11.5 > 11.0, ... never), a sell limit above the close waits too.
    def go(s: Strategy, b: Any) -> None:
        s.buy(1.0, limit=11.3)
        s.buy(1.0, limit=11.0)

    res = _one_order(tiny, 1, go, fill_on="close")
    assert res.fills["price"].tolist() == [11.2]
    assert res.fills["datetime"].tolist() == [tiny.index[1]]
    assert res.orders["status"].tolist() == ["filled", "accepted"]


def test_indicator_returning_several_series(ohlc: pd.DataFrame) -> None:
    from bt_core.indicators import bollinger

    seen: list[int] = []

    class Bands(Strategy):
        def on_start(self) -> None:
            self.mid, self.up, self.lo = self.I(bollinger, self.data.close, 10, 2.0)
            self.full = bollinger(ohlc["close"].to_numpy(), 10, 2.0)

        def next(self, bar: Any) -> Any:
            if self.i >= 9:
                assert self.up[-1] == self.full[1][self.i]
                assert self.lo[-1] <= self.mid[-1] <= self.up[-1]
                seen.append(self.i)

    Backtest(ohlc, Bands).run()
    assert len(seen) == len(ohlc) - 9


def test_order_placed_in_on_start_fills_at_first_open(tiny: pd.DataFrame) -> None:
    class Early(Strategy):
        def on_start(self) -> None:
            self.buy(1.0)

    res = Backtest(tiny, Early).run()
    assert res.fills["datetime"].tolist() == [tiny.index[0]]
    assert res.fills["price"].tolist() == [10.0]


def test_rejection_reason_names_the_symbol(make_ohlc: Any) -> None:
    # Reasons used to say "symbol #1"; they must name the symbol as the user knows it.
    frames = {"600000.SH": make_ohlc(5, seed=1), "000001.SZ": make_ohlc(5, seed=2)}

    class Broke(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 0:
                self.buy(1e9, symbol="000001.SZ")

    res = Backtest(frames, Broke).run()
    assert "000001.SZ" in res.orders["reason"].iloc[0]


def test_orders_from_callbacks_fill_no_earlier_than_next_bar(tiny: pd.DataFrame) -> None:
    # A fill at bar 2's open triggers on_trade, which places a sell limit that bar 2's own
    # range would reach (high 12.5): it must wait for bar 3 (decided on bar 2 -> bar 3).
    class Bracket(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 1:
                self.buy(1.0)

        def on_trade(self, fill: Any) -> None:
            if fill.side == "buy":
                self.sell(1.0, limit=12.4)

        def on_order(self, order: Any) -> None:
            # Cancelling an order from its own "accepted" event works too.
            if order.status == "accepted" and order.limit_price == 99.0:
                assert self.cancel(order.id)

    class WithCancel(Bracket):
        def next(self, bar: Any) -> Any:
            super().next(bar)
            if self.i == 3:
                self.sell(1.0, limit=99.0)

    res = Backtest(tiny, WithCancel).run()
    sells = res.fills[res.fills["side"] == "sell"]
    assert sells["datetime"].tolist() == [tiny.index[3]]
    assert sells["price"].tolist() == [13.0]  # bar 3 opens at 13.0 > 12.4: gap-through open
    assert res.orders["status"].tolist() == ["filled", "filled", "cancelled"]


def test_one_bar_run_with_given_periods_per_year(tiny: pd.DataFrame) -> None:
    res = Backtest(tiny.iloc[:1], BuyAndHold, periods_per_year=252).run()
    assert len(res.equity) == 1 and res.fills.empty  # the order waits for a bar that never comes
    data = _strict_loads(res.to_json())
    assert data["equity"]["equity"] == [100_000.0]


def test_one_bar_run_serialises_without_periods_per_year(tiny: pd.DataFrame, tmp_path: Any) -> None:
    res = Backtest(tiny.iloc[:1], BuyAndHold).run()
    assert res.periods_per_year is None
    _strict_loads(res.to_json())
    paths = res.save(tmp_path / "one")
    assert all(p.exists() for p in paths.values())


def test_benchmark_gives_alpha_beta(make_ohlc: Any) -> None:
    df = make_ohlc(300, seed=1, freq="B")
    res = Backtest(df, "sma_cross", benchmark=df["close"]).run(fast=3, slow=10)
    assert res.stats["benchmark_total_return"] == pytest.approx(
        df["close"].iloc[-1] / df["close"].iloc[0] - 1, rel=1e-12
    )
    assert res.stats["beta"] is not None


def test_naive_benchmark_with_naive_data(make_ohlc: Any) -> None:
    df = make_ohlc(300, seed=1, freq="B", tz=None)
    res = Backtest(df, "sma_cross", benchmark=df["close"]).run(fast=3, slow=10)
    assert res.stats["beta"] is not None


def test_signals_exit_wins_and_multi_symbol_frames(gappy: dict[str, pd.DataFrame]) -> None:
    md = load_data(gappy)
    idx = md.index
    entries = pd.DataFrame(False, index=idx, columns=["BBB", "AAA"])  # column order is free
    exits = pd.DataFrame(False, index=idx, columns=["AAA", "BBB"])
    entries.loc[idx[0], "AAA"] = True  # AAA: buy at bar 1's open
    entries.loc[idx[1], "BBB"] = True
    exits.loc[idx[1], "BBB"] = True  # ... but an exit on the same bar wins: no BBB trade
    entries.loc[idx[4], "BBB"] = True  # BBB has no bar on 4: ignored
    entries.loc[idx[6], "BBB"] = True  # BBB buys at bar 7's open
    exits.loc[idx[8], "AAA"] = True  # AAA sells at bar 9's open
    res = Backtest(gappy, None).run_signals(entries, exits, size=2)
    got = list(zip(res.fills["symbol"], res.fills["side"], res.fills["datetime"], strict=True))
    assert got == [
        ("AAA", "buy", idx[1]),
        ("BBB", "buy", idx[7]),
        ("AAA", "sell", idx[9]),
    ]
    assert res.ledger.loc["BBB", "position"] == 2.0


def test_weights_nan_rows_and_missing_bars(gappy: dict[str, pd.DataFrame]) -> None:
    md = load_data(gappy)
    w = np.full((10, 2), np.nan)
    w[0] = [0.4, 0.4]
    w[4] = [0.4, 0.0]  # BBB has no bar on 4: it cannot be priced or traded, left alone
    w[7] = [0.6, np.nan]  # NaN inside a rebalancing row means weight 0: sell all BBB
    res = Backtest(gappy, None).run_weights(w)
    by_bar = res.fills.assign(bar=md.index.get_indexer(res.fills["datetime"]))
    assert sorted(set(by_bar["bar"])) == [1, 5, 8]
    on8 = by_bar[by_bar["bar"] == 8].set_index("symbol")
    assert on8.loc["BBB", "side"] == "sell" and on8.loc["AAA", "side"] == "buy"
    # Sells are submitted (and so filled) before buys on a rebalancing bar, whatever the
    # symbol order: they free the cash the buys need.
    assert on8["order_id"].is_monotonic_increasing and list(on8.index) == ["BBB", "AAA"]
    assert (res.orders["status"] == "filled").all()
    assert res.ledger.loc["BBB", "position"] == 0.0


def test_save_writes_nothing_when_rendering_fails(ohlc: pd.DataFrame, tmp_path: Any) -> None:
    res = Backtest(ohlc, "sma_cross").run(fast=3, slow=8)
    good = res.save(tmp_path / "good")
    before = {p.name: p.read_text() for p in (tmp_path / "good").iterdir()}
    res2 = Backtest(ohlc, "sma_cross", commission=0.01).run(fast=2, slow=5)  # other tables
    assert not res2.equity.equals(res.equity)
    res2.__dict__["stats"] = {"bad": object()}  # cannot be rendered as JSON
    with pytest.raises(TypeError):
        res2.save(tmp_path / "good")
    after = {p.name: p.read_text() for p in (tmp_path / "good").iterdir()}
    assert after == before and set(good) == {"equity", "fills", "orders", "trades", "stats"}
