"""The China A-share preset (``market="cn_ashare"``), one hand-computed scenario per rule:
board, lot and tick from the code; T+1 and ``sellable``; STAR's 200-share minimum and the
odd-lot close; price limits (rejection, locked bars, the ST band's change, a new listing's
no-limit days); suspended bars; each fee line the day before and the day of its dated
change; T+1 as a property; the vectorized drivers under the same rules."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bt_core import Backtest, Strategy
from bt_core.config import FeeLine, RunConfig
from bt_core.errors import ParameterError
from bt_core.markets import cn_ashare


def daily(
    rows: list[tuple[float, float, float, float]],
    start: str = "2024-01-02",
    volume: float | list[float] = 1e6,
    dates: list[str] | None = None,
    **extra: list[float],
) -> pd.DataFrame:
    """One symbol, one bar per weekday from ``start`` (or on ``dates``)."""
    idx = pd.DatetimeIndex(dates) if dates else pd.bdate_range(start, periods=len(rows))
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame(
        {"datetime": idx, "open": o, "high": h, "low": lo, "close": c, "volume": volume, **extra}
    )


def flat(p: float) -> tuple[float, float, float, float]:
    return (p, p, p, p)


class Script(Strategy):
    """Calls ``plan[i](self)`` on bar i; records what ``sellable`` says on each bar."""

    plan: dict[int, Any] = {}

    def on_start(self) -> None:
        self.seen: list[float] = []
        Script.last = self  # type: ignore[attr-defined]

    def next(self, bar: Any) -> Any:
        self.seen.append(self.sellable())
        step = self.plan.get(self.i)
        return step(self) if step else None


def run(data: pd.DataFrame, plan: dict[int, Any], symbol: str = "600000.SH", **config: Any) -> Any:
    strat = type("S", (Script,), {"plan": plan})
    config.setdefault("cash", 1_000_000.0)
    return Backtest(data, strat, symbol=symbol, market="cn_ashare", **config).run()


def codes(r: Any) -> list[str | None]:
    return [None if pd.isna(c) else c for c in r.orders["reason_code"]]


# ----- board, lot and tick from the code ------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "board"),
    [
        ("600000.SH", "main"),
        ("SH600000", "main"),
        ("sh.600000", "main"),
        ("600000.XSHG", "main"),
        ("600000", "main"),
        ("000001.SZ", "main"),
        ("002594.SZ", "main"),
        ("300750.SZ", "chinext"),
        ("301001.SZ", "chinext"),
        ("688981.SH", "star"),
        ("430047.BJ", "bse"),
        ("832000.BJ", "bse"),
        ("920001.BJ", "bse"),
    ],
)
def test_board_from_the_code(symbol: str, board: str) -> None:
    assert cn_ashare.board_of(symbol) == board


def test_lot_tick_and_minimum_from_the_board_and_overrides() -> None:
    idx = pd.bdate_range("2024-01-02", periods=3)
    cfg = RunConfig(market="cn_ashare")
    d = cfg.to_engine(symbols=["600000.SH", "688981.SH", "300750.SZ", "920001.BJ"], times=idx)
    ins = d["instruments"]
    assert (ins["600000.SH"]["size_increment"], ins["600000.SH"]["min_size"]) == (100.0, 0.0)
    assert (ins["688981.SH"]["size_increment"], ins["688981.SH"]["min_size"]) == (1.0, 200.0)
    assert ins["300750.SZ"]["size_increment"] == 100.0
    assert (ins["920001.BJ"]["size_increment"], ins["920001.BJ"]["min_size"]) == (1.0, 100.0)
    assert all(v["tick_size"] == 0.01 and v["t_plus"] == 1 for v in ins.values())
    # The user's instrument settings win over the preset's, key by key.
    cfg = RunConfig(market="cn_ashare", instruments={"600000.SH": {"t_plus": 0}})
    d = cfg.to_engine(symbols=["600000.SH"], times=idx)
    assert d["instruments"]["600000.SH"]["t_plus"] == 0
    assert d["instruments"]["600000.SH"]["size_increment"] == 100.0


def test_unknown_codes_name_the_symbol_unless_the_table_gives_the_board() -> None:
    idx = pd.bdate_range("2024-01-02", periods=3)
    with pytest.raises(ParameterError, match="900901.SH"):
        RunConfig(market="cn_ashare").to_engine(symbols=["900901.SH"], times=idx)
    with pytest.raises(ParameterError, match="'AAPL'"):
        RunConfig(market="cn_ashare").to_engine(symbols=["AAPL"], times=idx)
    table = pd.DataFrame({"symbol": ["AAPL"], "board": ["main"], "lot": [1.0], "tick": [None]})
    d = RunConfig(market="cn_ashare", market_options={"instruments": table}).to_engine(
        symbols=["AAPL"], times=idx
    )
    assert d["instruments"]["AAPL"]["size_increment"] == 1.0
    assert d["instruments"]["AAPL"]["tick_size"] == 0.01
    with pytest.raises(ParameterError, match="market_options.instruments"):
        RunConfig.build(
            market="cn_ashare", market_options={"instruments": {"X": {"board": "moon"}}}
        )
    with pytest.raises(ParameterError, match="not symbols of the data"):
        RunConfig(
            market="cn_ashare", market_options={"instruments": {"600001.SH": {"st": True}}}
        ).to_engine(symbols=["600000.SH"], times=idx)


def test_an_instrument_table_as_bt_data_hands_it_over() -> None:
    # The shape of bt_data's read_instruments(): nullable booleans, NaT dates, NaN numbers.
    table = pd.DataFrame(
        {
            "symbol": ["600000.SH", "688981.SH"],
            "board": [None, "star"],
            "st": pd.array([pd.NA, True], dtype="boolean"),
            "listing_date": pd.to_datetime([None, "2024-01-03"]),
            "lot": [np.nan, np.nan],
            "min_size": [np.nan, 300.0],
            "tick": [0.01, np.nan],
            "name": ["Bank", None],
        }
    )
    idx = pd.bdate_range("2024-01-02", periods=8)
    d = RunConfig(market="cn_ashare", market_options={"instruments": table}).to_engine(
        symbols=["600000.SH", "688981.SH"], times=idx
    )
    assert d["instruments"]["688981.SH"]["min_size"] == 300.0
    saved = RunConfig(market="cn_ashare", market_options={"instruments": table})
    json.dumps(saved.to_dict())  # the table is kept as plain values
    assert saved.market_options["instruments"]["688981.SH"]["listing_date"] == "2024-01-03"
    assert d["price_limits"]["688981.SH"][0]["up"] is None
    assert d["price_limits"]["600000.SH"] == [
        {"from": pd.Timestamp("1996-12-16").value, "up": 0.1, "down": 0.1}
    ]


def test_main_board_buys_in_lots_and_rounds_value_orders_down() -> None:
    r = run(
        daily([flat(10.0)] * 3),
        {0: lambda s: (s.buy(150), s.buy(value=2_550.0))},
    )
    assert codes(r)[0] == "size_increment"
    assert r.fills["size"].tolist() == [200.0]


# ----- T+1 ----------------------------------------------------------------------------------
def test_t_plus_one_shares_bought_today_are_not_sellable_today() -> None:
    # Fills at the close of the deciding bar: the buy and the same-day sell meet day 0.
    plan = {
        0: lambda s: (s.buy(1000), s.sell(500)),
        1: lambda s: s.sell(500),
        2: lambda s: s.sell(value=1e9),  # sized down to the sellable 500
    }
    r = run(daily([flat(10.0)] * 4), plan, fill_on="close")
    assert codes(r)[:2] == [None, "t_plus"]
    assert "bought within the last 1 trading day" in r.orders["reason"].iloc[1]
    assert r.fills["size"].tolist() == [1000.0, 500.0, 500.0]
    # sellable() before each bar's orders: 0 before the buy, 1000 the next day, 500, 0.
    assert Script.last.seen == [0.0, 1000.0, 500.0, 0.0]  # type: ignore[attr-defined]


def test_t_plus_one_on_intraday_bars_counts_trading_days_not_bars() -> None:
    times = ["2024-01-02 01:30", "2024-01-02 05:00", "2024-01-02 06:00", "2024-01-03 01:30"]
    data = daily([flat(10.0)] * 4, dates=times)
    r = run(data, {0: lambda s: s.buy(100), 1: lambda s: s.sell(100), 2: lambda s: s.sell(100)})
    # Bought on bar 1 (Jan 2); the sell meeting bar 2 (Jan 2) is locked, the one meeting
    # bar 3 (Jan 3) fills.
    assert codes(r) == [None, "t_plus", None]
    assert r.fills["datetime"].dt.day.tolist() == [2, 3]


def test_a_bracket_stop_waits_for_t_plus_one_instead_of_failing() -> None:
    times = ["2024-01-02 01:30", "2024-01-02 03:00", "2024-01-02 05:00", "2024-01-03 01:30"]
    rows = [flat(10.0), (10.0, 10.0, 9.2, 9.3), flat(9.3), flat(9.2)]
    r = run(daily(rows, dates=times), {0: lambda s: s.buy(100, sl=9.5)})
    # The stop is reached on the day of the entry (bar 1) but the shares are locked: it fills
    # at the next trading day's open.
    assert r.fills["price"].tolist() == [10.0, 9.2]
    assert r.fills["datetime"].iloc[1] == pd.Timestamp("2024-01-03 01:30", tz="UTC")
    assert "t_plus" not in codes(r)


# ----- STAR minimum and odd lots ------------------------------------------------------------
def test_star_buys_at_least_200_then_any_share_and_an_odd_remainder_closes() -> None:
    plan = {
        0: lambda s: (s.buy(150), s.buy(251)),
        1: lambda s: s.sell(100),
        2: lambda s: s.sell(51),
        3: lambda s: s.close(),
    }
    r = run(daily([flat(50.0)] * 5), plan, symbol="688981.SH")
    assert codes(r) == ["min_size", None, "min_size", "min_size", None]
    assert r.fills["size"].tolist() == [251.0, 251.0]


# ----- price limits -------------------------------------------------------------------------
def test_limit_orders_beyond_the_band_are_rejected() -> None:
    # Day 1's band from day 0's close 10.05: [9.05, 11.06] (9.045 and 11.055 round half up).
    plan = {
        0: lambda s: (
            s.buy(100, limit=11.07),
            s.buy(100, limit=11.06),
            s.buy(100, limit=9.04),
        )
    }
    r = run(daily([flat(10.05), (10.05, 10.2, 10.0, 10.1), flat(10.1)]), plan)
    assert codes(r) == ["price_limit", None, "price_limit"]
    assert "[9.05, 11.06]" in r.orders["reason"].iloc[0]
    assert r.fills["price"].tolist() == [10.05]


def test_locked_limit_up_takes_no_buy_and_locked_limit_down_no_sell() -> None:
    up = run(daily([flat(10.0), flat(11.0), (11.0, 11.5, 10.9, 11.2)]), {0: lambda s: s.buy(100)})
    assert up.fills["datetime"].dt.day.tolist() == [4]  # the third weekday, at its open
    assert up.fills["price"].tolist() == [11.0]
    # Bought on day 1, the sell meets day 2 locked at limit-down 9.90 and fills on day 3.
    down = run(
        daily([flat(11.0), flat(11.0), flat(9.9), (9.9, 10.0, 9.5, 9.6)]),
        {0: lambda s: s.buy(100), 1: lambda s: s.sell(100)},
    )
    assert down.fills["price"].tolist() == [11.0, 9.9]
    assert down.fills["datetime"].iloc[1] == pd.Timestamp("2024-01-05", tz="UTC")
    # A bar that touches the limit but also trades below it is not locked.
    touch = run(daily([flat(10.0), (11.0, 11.0, 10.8, 11.0)]), {0: lambda s: s.buy(100)})
    assert touch.fills["price"].tolist() == [11.0]


def test_locked_bar_rule_per_intraday_bar() -> None:
    times = ["2024-01-02 06:00", "2024-01-03 01:30", "2024-01-03 02:00"]
    data = daily([flat(10.0), flat(11.0), (11.0, 11.0, 10.9, 10.95)], dates=times)
    r = run(data, {0: lambda s: s.buy(100)})
    assert r.fills["datetime"].tolist() == [pd.Timestamp("2024-01-03 02:00", tz="UTC")]


def test_slippage_stays_within_the_band() -> None:
    r = run(
        daily([flat(10.0), flat(10.9), flat(10.9)]), {0: lambda s: s.buy(100)}, slippage_bps=200.0
    )
    # 10.9 x 1.02 = 11.118, capped at limit-up 11.00.
    assert r.fills["price"].tolist() == [11.0]


def test_pre_close_column_is_the_reference() -> None:
    # An ex-dividend day: the exchange's reference is 9.50, not the last close 10.00.
    data = daily([flat(10.0), flat(9.6), flat(9.6)], pre_close=[np.nan, 9.5, 9.6])
    r = run(data, {0: lambda s: s.buy(100, limit=10.5)})
    assert codes(r) == ["price_limit"]  # band [8.55, 10.45]


def _st_run(limit: float, **options: Any) -> Any:
    dates = ["2025-07-03", "2025-07-04", "2025-07-07", "2025-07-08"]
    data = daily([flat(10.0), flat(10.0), flat(10.0), flat(10.0)], dates=dates)
    plan = {
        0: lambda s: s.buy(100, limit=limit, tif="day"),
        1: lambda s: s.buy(100, limit=limit, tif="day"),
    }
    opts = {"instruments": {"600000.SH": {"st": True}}, **options}
    return run(data, plan, market_options=opts)


def test_main_board_st_band_five_percent_before_2025_07_07_ten_from_then() -> None:
    r = _st_run(10.51)
    # Met 2025-07-04: band [9.50, 10.50], rejected; met 2025-07-07: [9.00, 11.00], fills.
    assert codes(r) == ["price_limit", None]
    assert r.fills["datetime"].tolist() == [pd.Timestamp("2025-07-07", tz="UTC")]
    r = _st_run(10.50)
    assert codes(r) == [None, None]
    # The table is the user's to replace: an ST band of 5 % through 2025-07-07.
    later = {"main": (("1998-04-22", 0.05, 0.05), ("2025-07-08", 0.10, 0.10))}
    r = _st_run(10.51, st_limits=later)
    assert codes(r) == ["price_limit", "price_limit"]


def test_chinext_band_ten_percent_before_2020_08_24_twenty_from_then() -> None:
    dates = ["2020-08-20", "2020-08-21", "2020-08-24", "2020-08-25"]
    data = daily([flat(10.0)] * 4, dates=dates)
    plan = {
        0: lambda s: s.buy(100, limit=11.5, tif="day"),
        1: lambda s: s.buy(100, limit=11.5, tif="day"),
    }
    r = run(data, plan, symbol="300750.SZ")
    # Met 2020-08-21: band [9.00, 11.00], rejected; met 2020-08-24: [8.00, 12.00], fills.
    assert codes(r) == ["price_limit", None]
    assert r.fills["datetime"].tolist() == [pd.Timestamp("2020-08-24", tz="UTC")]


def test_new_listing_first_five_trading_days_without_limit_on_star() -> None:
    # Listed 2024-01-02 (in the data): days 1-5 without a limit, a 20 % band from day 6.
    prices = [30.0, 45.0, 60.0, 50.0, 55.0, 55.0, 56.0]
    data = daily([flat(p) for p in prices])
    opts = {"instruments": {"688981.SH": {"listing_date": "2024-01-02"}}}
    plan = {3: lambda s: s.buy(200, limit=80.0), 4: lambda s: s.buy(200, limit=80.0)}
    r = run(data, plan, symbol="688981.SH", market_options=opts)
    # Met day 5 (no limit): fills at 55; met day 6: band [44, 66] rejects a limit of 80.
    assert codes(r) == [None, "price_limit"]
    assert r.fills["price"].tolist() == [55.0]


def test_new_listing_days_count_weekdays_before_the_data_and_follow_the_reform() -> None:
    idx = pd.bdate_range("2024-01-08", periods=5)  # data begin on a Monday
    cfg = RunConfig(
        market="cn_ashare",
        market_options={
            "instruments": {
                "688981.SH": {"listing_date": "2024-01-03"},  # Wed: days 3, 4, 5, 8, 9
                "600001.SH": {"listing_date": "2022-06-01"},  # before the reform: day 1 +44/-36
                "600002.SH": {"listing_date": "2023-04-10"},  # registration: 5 days free
            }
        },
    )
    lim = cfg.to_engine(symbols=["688981.SH", "600001.SH", "600002.SH"], times=idx)["price_limits"]
    ns = lambda d: pd.Timestamp(d).value  # noqa: E731
    assert lim["688981.SH"] == [
        {"from": ns("2024-01-03"), "up": None, "down": None},
        {"from": ns("2024-01-10"), "up": 0.2, "down": 0.2},
    ]
    assert lim["600001.SH"] == [
        {"from": ns("2022-06-01"), "up": 0.44, "down": 0.36},
        {"from": ns("2022-06-02"), "up": 0.1, "down": 0.1},
    ]
    assert lim["600002.SH"][1] == {"from": ns("2023-04-17"), "up": 0.1, "down": 0.1}


# ----- suspension ---------------------------------------------------------------------------
def test_zero_volume_bar_is_suspended() -> None:
    data = daily([flat(10.0), flat(10.2), flat(10.4)], volume=[1e6, 0.0, 1e6])
    r = run(data, {0: lambda s: s.buy(100)})
    assert r.fills["price"].tolist() == [10.4]
    # Nothing is fabricated: the mark on the suspended bar is the data's own close.
    assert r.equity.iloc[1] == 1_000_000.0


@pytest.mark.parametrize("column", ["suspended", "suspend_flag"])
def test_suspended_flag_column(column: str) -> None:
    data = daily([flat(10.0), flat(10.2), flat(10.4)], **{column: [0.0, 1.0, 0.0]})
    r = run(data, {0: lambda s: s.buy(100)})
    assert r.fills["price"].tolist() == [10.4]


def test_missing_bar_trades_nothing() -> None:
    a = daily([flat(10.0), flat(10.2), flat(10.4)]).assign(symbol="600000.SH")
    b = daily([flat(5.0), flat(5.2), flat(5.4)]).assign(symbol="000001.SZ").drop(index=1)
    data = pd.concat([a, b])

    class Buy(Strategy):
        def next(self, bar: Any) -> None:
            if self.i == 0:
                self.buy(100, symbol="000001.SZ")

    r = Backtest(data, Buy, market="cn_ashare", cash=1e6).run()
    assert r.fills["price"].tolist() == [5.4]


# ----- fees ---------------------------------------------------------------------------------
def test_each_fee_line_on_the_day_before_and_the_day_of_its_change() -> None:
    dates = ["2022-04-28", "2022-04-29", "2023-08-25", "2023-08-28", "2023-08-29"]
    plan = {
        0: lambda s: s.buy(1000),
        1: lambda s: s.buy(1000),
        2: lambda s: s.sell(1000),
        3: lambda s: s.sell(1000),
        4: lambda s: s.buy(10_000),
    }
    r = run(daily([flat(10.0)] * 5, dates=dates), plan, fill_on="close")
    f = r.fills
    # Value 10,000: commission max(0.25 % x 10,000 = 2.5, 5) = 5; transfer 0.002 % -> 0.2
    # to 2022-04-28, 0.001 % -> 0.1 from 2022-04-29; handling 0.00487 % -> 0.487 to
    # 2023-08-25, 0.00341 % -> 0.341 from 2023-08-28; stamp duty on sells 0.1 % -> 10 to
    # 2023-08-25, 0.05 % -> 5 from 2023-08-28.
    assert f["commission"].round(6).tolist() == [5.687, 5.587, 5.587, 5.441, 29.41]
    assert f["tax"].round(6).tolist() == [0.0, 0.0, 10.0, 5.0, 0.0]


def test_stamp_duty_both_sides_before_2008_09_19_and_older_tables_must_be_given() -> None:
    dates = ["2008-09-18", "2008-09-19"]
    data = daily([flat(10.0)] * 2, dates=dates)
    plan = {0: lambda s: s.buy(1000), 1: lambda s: s.buy(1000)}
    with pytest.raises(ParameterError, match="transfer_fee"):
        run(data, plan, fill_on="close")
    own = (FeeLine(name="transfer_fee", rate=0.0), FeeLine(name="handling_fee", rate=0.0))
    r = run(data, plan, fill_on="close", fees=own)
    assert r.fills["tax"].round(6).tolist() == [10.0, 0.0]
    # handling_fee=False drops the line; a commission rate of one's own replaces 2.5 bps.
    r = run(
        daily([flat(10.0)], dates=["2024-01-02"]),
        {0: lambda s: s.buy(50_000)},
        fill_on="close",
        market_options={"handling_fee": False, "commission": 0.0001},
    )
    # Value 500,000: commission 0.01 % -> 50, transfer 0.001 % -> 5, no handling fee.
    assert r.fills["commission"].round(6).tolist() == [55.0]


# ----- properties ---------------------------------------------------------------------------
class RandomTrader(Strategy):
    actions: tuple[tuple[int, int], ...] = ()

    def next(self, bar: Any) -> None:
        kind, n = self.actions[self.i % len(self.actions)]
        if kind == 0:
            self.buy(100 * n)
        elif kind == 1:
            self.sell(100 * n)
        elif kind == 2:
            self.sell(value=1_000.0 * n)
        else:
            self.close()


def _intraday(n_days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = [
        pd.Timestamp(d) + pd.Timedelta(h)
        for d in pd.bdate_range("2024-01-02", periods=n_days)
        for h in ("1h30min", "3h", "6h")
    ]
    c = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(times))))
    c = np.round(c, 2)
    return pd.DataFrame(
        {"datetime": times, "open": c, "high": c + 0.05, "low": c - 0.05, "close": c, "volume": 1e6}
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), min_size=1, max_size=12),
    seed=st.integers(0, 1000),
    fill_on=st.sampled_from(["next_open", "close"]),
)
def test_t_plus_one_holds_and_runs_are_deterministic(
    actions: list[tuple[int, int]], seed: int, fill_on: str
) -> None:
    data = _intraday(6, seed)
    strat = type("R", (RandomTrader,), {"actions": tuple(actions)})
    bt = Backtest(
        data, strat, symbol="600000.SH", market="cn_ashare", cash=50_000.0, fill_on=fill_on
    )
    r = bt.run()
    f = r.fills
    day = f["datetime"].dt.date
    signed = np.where(f["side"] == "buy", f["size"], -f["size"])
    held_before = {}
    pos = 0.0
    for d, s in zip(day, signed, strict=True):
        held_before.setdefault(d, pos)
        pos += s
    for d in set(day):
        sold = f.loc[(day == d) & (f["side"] == "sell"), "size"].sum()
        assert sold <= held_before[d] + 1e-9, (d, sold, held_before[d])
    again = bt.run()
    pd.testing.assert_frame_equal(r.fills, again.fills)
    pd.testing.assert_series_equal(r.equity, again.equity)


# ----- the vectorized drivers ---------------------------------------------------------------
def test_run_signals_and_run_weights_honour_t_plus_and_lots() -> None:
    times = ["2024-01-02 01:30", "2024-01-02 03:00", "2024-01-02 05:00", "2024-01-03 01:30"]
    data = daily([flat(10.0)] * 4, dates=times)
    bt = Backtest(data, symbol="600000.SH", market="cn_ashare", cash=10_000.0)
    entries = np.array([True, False, False, False])
    exits = np.array([False, True, False, False])
    r = bt.run_signals(entries, exits)
    # Entry (all cash, lots of 100) fills on bar 1; the exit meeting bar 2 the same day is
    # locked by T+1 and rejected.
    assert r.fills["size"].tolist()[0] % 100 == 0
    assert "t_plus" in r.orders["reason_code"].tolist()
    assert len(r.fills) == 1
    w = np.array([0.5, 0.0, 0.0, 0.0])
    r = bt.run_weights(w)
    assert r.fills["size"].tolist()[0] % 100 == 0
    assert r.fills["side"].tolist()[0] == "buy"
    assert (r.orders["reason_code"] == "t_plus").any()


def test_the_example_runs_and_shows_the_rules() -> None:
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "run_cn_ashare.py"
    mod = runpy.run_path(str(path))
    bt = Backtest(
        mod["sample_bars"](), mod["Rotate"], cash=1_000_000, fill_on="close", market="cn_ashare"
    )
    r = bt.run()
    assert (r.orders["reason_code"] == "t_plus").any()
    star = r.fills[r.fills["symbol"] == "688981.SH"]
    # No fill on the STAR symbol's locked limit-up day (its 6th bar).
    assert bt.data.index[5] not in set(star["datetime"])
    assert (r.fills.loc[r.fills["symbol"] == "600000.SH", "size"] % 100 == 0).all()


def test_the_batch_sweep_runs_under_the_preset_like_a_single_run() -> None:
    rng = np.random.default_rng(1)
    idx = pd.bdate_range("2023-01-02", periods=300)
    c = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.02, 300))), 2)
    o = np.r_[c[0], c[:-1]]
    df = pd.DataFrame(
        {
            "datetime": idx,
            "open": o,
            "high": np.maximum(o, c),
            "low": np.minimum(o, c),
            "close": c,
            "volume": 1e6,
        }
    )
    bt = Backtest(df, "sma_cross", symbol="600000.SH", market="cn_ashare", cash=100_000)
    single = bt.run(fast=5, slow=20)
    assert (single.fills["size"] % 100 == 0).all()
    table = bt.optimize({"fast": [5, 8], "slow": [20, 30]}, backend="rust").table
    row = table[(table["fast"] == 5) & (table["slow"] == 20)].iloc[0]
    assert row["final_equity"] == single.equity.iloc[-1]
