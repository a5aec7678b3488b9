"""The engine/API restructure: the reusable data handle, the one run configuration, typed
errors with codes, order handles, read-only inputs and no look-ahead through numpy, and
order bookkeeping that scales."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bt_engine
from bt_core import (
    ActionError,
    Backtest,
    BtCoreError,
    DataError,
    OrderHandle,
    ParameterError,
    RunConfig,
    Strategy,
    StrategyError,
    load_data,
)
from bt_core.indicators import sma

# ----- the data handle ---------------------------------------------------------------------


def test_market_data_is_validated_once_and_reused(ohlc: pd.DataFrame) -> None:
    md = load_data(ohlc)
    assert isinstance(md.handle, bt_engine.Data)
    assert load_data(md) is md  # nothing is parsed or validated again
    a = Backtest(md, "sma_cross").run(fast=3, slow=9)
    b = Backtest(md, "sma_cross", commission=0.001).run(fast=3, slow=9)
    c = Backtest(ohlc, "sma_cross").run(fast=3, slow=9)
    np.testing.assert_array_equal(a.equity.to_numpy(), c.equity.to_numpy())
    assert b.final_equity < a.final_equity  # same data, another configuration


def test_market_data_arrays_cannot_be_written(ohlc: pd.DataFrame) -> None:
    md = load_data(ohlc)
    close = md.fields["close"]
    with pytest.raises(ValueError):
        close[0, 0] = 1.0
    with pytest.raises(ValueError):
        close.flags.writeable = True
    # Changing the user's frame afterwards changes nothing the engine reads.
    before = Backtest(md, "sma_cross").run(fast=3, slow=9).final_equity
    ohlc.loc[:, "close"] *= 2
    assert Backtest(md, "sma_cross").run(fast=3, slow=9).final_equity == before


def test_shared_data_reads_never_writable_memory_in_place(make_ohlc: Any) -> None:
    from bt_core.data import MarketData

    md = load_data({"A": make_ohlc(300, seed=1), "B": make_ohlc(280, seed=2)})
    fields = {**md.fields, "flag": md.fields["close"] > 100}
    fields["flag"] = np.ascontiguousarray(fields["flag"], dtype=np.float64)
    h = bt_engine.Data.shared(list(md.symbols), md.ts, fields)
    # No copy: the new handle's prices are the old handle's memory.
    assert np.shares_memory(h.field("close"), md.fields["close"])
    assert not np.shares_memory(h.field("flag"), fields["flag"])  # extra columns are copied
    shared = MarketData.from_handle(h)
    for strategy in ("sma_cross",):
        a = Backtest(md, strategy).run(fast=3, slow=9)
        b = Backtest(shared, strategy).run(fast=3, slow=9)
        np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
        assert a.stats == b.stats
    with pytest.raises(bt_engine.DataError, match="appears twice"):
        bt_engine.Data.shared(["A", "A"], md.ts, md.fields)
    # The handle keeps the memory it reads alive.
    close = np.array(md.fields["close"])
    del md, fields
    np.testing.assert_array_equal(h.field("close"), close)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ts: np.array(ts), "ts is writable memory"),
        (lambda ts: _frozen_copy(ts), "ts is writable memory"),
        (lambda ts: np.frombuffer(bytearray(ts.tobytes()), np.int64), "ts is writable memory"),
        (lambda ts: ts.astype(np.float64), "1-D int64"),
        (lambda ts: np.frombuffer(b"x" + ts.tobytes(), np.int64, ts.size, 1), "aligned"),
        (lambda ts: ts[:-1], r"shape \(\d+, 1\), expected"),
    ],
)
def test_shared_data_refuses_memory_that_can_be_written(ohlc: pd.DataFrame, make, match) -> None:
    md = load_data(ohlc)
    with pytest.raises(bt_engine.ConfigError, match=match):
        bt_engine.Data.shared(list(md.symbols), make(md.ts), md.fields)
    # Read-only bytes cannot be written by anyone: accepted, and validated like any input.
    ts = np.frombuffer(md.ts.tobytes(), np.int64)
    assert bt_engine.Data.shared(list(md.symbols), ts, md.fields).n_bars == len(ohlc)
    bad = np.frombuffer(md.ts[::-1].tobytes(), np.int64)
    with pytest.raises(bt_engine.DataError, match="unsorted timestamps"):
        bt_engine.Data.shared(list(md.symbols), bad, md.fields)


def _frozen_copy(ts: np.ndarray) -> np.ndarray:
    # A read-only flag is not enough: the array owns its memory and can be made writeable.
    out = np.array(ts)
    out.flags.writeable = False
    return out


def test_extra_numeric_columns_reach_the_engine(ohlc: pd.DataFrame) -> None:
    df = ohlc.assign(pre_close=ohlc["close"].shift(1), amount=ohlc["close"] * ohlc["volume"])
    df["name"] = "text columns are not data"
    md = load_data(df)
    assert set(md.extra_fields) == {"pre_close", "amount"}
    np.testing.assert_array_equal(md.fields["amount"][:, 0], df["amount"].to_numpy())
    seen: list[float] = []

    class ReadsExtra(Strategy):
        def on_start(self) -> None:
            self.pre = self.data["asset"].field("pre_close")

        def next(self, bar: Any) -> None:
            seen.append(self.pre[-1])

    Backtest(md, ReadsExtra).run()
    np.testing.assert_array_equal(np.array(seen), df["pre_close"].to_numpy())


def test_extra_columns_align_across_symbols(make_ohlc: Any) -> None:
    a = make_ohlc(10, seed=1).assign(pre_close=1.0)
    b = make_ohlc(6, seed=2, start="2020-01-03")
    md = load_data({"A": a, "B": b})
    pre = md.fields["pre_close"]
    assert pre.shape == (10, 2)
    assert (pre[:, 0] == 1.0).all() and np.isnan(pre[:, 1]).all()


def test_boolean_price_column_is_refused(ohlc: pd.DataFrame) -> None:
    df = ohlc.assign(close=ohlc["close"] > 100)
    with pytest.raises(DataError, match=r"'close' holds booleans"):
        load_data(df)


# ----- no look-ahead and no tampering through numpy ---------------------------------------


class Prober(Strategy):
    """Tries every numpy route to the future or to the engine's inputs."""

    found: list[str]

    def on_start(self) -> None:
        self.found = []
        self.ma = self.I(sma, self.data.close, 3)

    def next(self, bar: Any) -> None:
        n = self.i + 1
        for name, arr in (
            ("values", self.data.close.values),
            ("window", self.data.close.window(1)),
            ("indicator", self.ma.values),
        ):
            base = arr.base
            while base is not None:
                if isinstance(base, np.ndarray) and base.size > n:
                    self.found.append(f"{name}: .base holds {base.size} values at bar {self.i}")
                base = getattr(base, "base", None)
            try:
                arr.flags.writeable = True
                self.found.append(f"{name}: made writable")
            except ValueError:
                pass
            if len(arr) > n:
                self.found.append(f"{name}: {len(arr)} values at bar {self.i}")
        try:
            self.data.close.full()
            self.found.append("full() during the run")
        except ValueError:
            pass


def test_no_route_to_the_future_or_to_the_inputs(ohlc: pd.DataFrame) -> None:
    res = Backtest(ohlc, Prober).run()
    assert len(res.equity) == len(ohlc)
    # The strategy object is gone; run again and read what it found.
    strat_found: list[str] = []

    class Keep(Prober):
        def on_stop(self) -> None:
            strat_found.extend(self.found)

    Backtest(ohlc, Keep).run()
    assert strat_found == []


def test_multi_symbol_bar_rows_do_not_reveal_the_future(make_ohlc: Any) -> None:
    frames = {"A": make_ohlc(20, seed=1), "B": make_ohlc(20, seed=2)}
    problems: list[str] = []

    class Rows(Strategy):
        def next(self, bar: Any) -> None:
            row = bar.close
            assert row.shape == (2,)
            if isinstance(row.base, np.ndarray):
                problems.append(f"row base is an array of {row.base.size}")
            try:
                row.flags.writeable = True
                problems.append("row made writable")
            except ValueError:
                pass

    Backtest(frames, Rows).run()
    assert problems == []


def test_indicator_functions_get_read_only_inputs(ohlc: pd.DataFrame) -> None:
    def vandal(x: np.ndarray) -> np.ndarray:
        x[:] = 1.0  # an indicator that writes into its input
        return x

    class Vandal(Strategy):
        def on_start(self) -> None:
            self.v = self.I(vandal, self.data.close)

    with pytest.raises(StrategyError, match="read-only") as info:
        Backtest(ohlc, Vandal).run()
    assert isinstance(info.value.__cause__, ValueError)


def test_an_indicator_array_changed_later_changes_nothing(ohlc: pd.DataFrame) -> None:
    values = np.arange(len(ohlc), dtype=np.float64)
    seen: list[float] = []

    class Later(Strategy):
        def on_start(self) -> None:
            self.line = self.I(values)
            values[:] = -1.0

        def next(self, bar: Any) -> None:
            seen.append(self.line[-1])

    Backtest(ohlc, Later).run()
    assert seen == list(np.arange(len(ohlc), dtype=np.float64))


# ----- run configuration ---------------------------------------------------------------------


def test_run_config_equals_keywords_and_crosses_once(ohlc: pd.DataFrame) -> None:
    cfg = RunConfig(cash=50_000, commission=0.001, slippage_bps=2)
    a = Backtest(ohlc, "sma_cross", config=cfg).run(fast=3, slow=9)
    b = Backtest(ohlc, "sma_cross", cash=50_000, commission=0.001, slippage_bps=2).run(
        fast=3, slow=9
    )
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert a.config == cfg.to_dict()
    # Keywords override the configuration's fields; None keeps them.
    c = Backtest(ohlc, "sma_cross", config=cfg, cash=60_000)
    assert c.config.cash == 60_000 and c.config.commission == 0.001
    assert cfg.to_engine() == {
        "cash": 50_000.0,
        "commission": 0.001,
        "commission_min": 0.0,
        "commission_fixed": 0.0,
        "slippage_bps": 2.0,
        "fill_on": "next_open",
        "day_offset_hours": 0.0,
        "fees": [],
        "slippage": None,
        "bar_path": "pessimistic",
        "limit_fill": "touch",
        "volume_limit": None,
        "instruments": {},
        "account": "cash",
        "initial_margin": None,
        "maintenance_margin": None,
        "max_leverage": None,
        "allow_short": False,
        "borrow_rate": 0.0,
        "price_limits": {},
    }


def test_run_config_from_toml(tmp_path: Path, ohlc: pd.DataFrame) -> None:
    p = tmp_path / "run.toml"
    p.write_text("[run]\ncash = 20000\ncommission = 0.0005\nfill_on = 'close'\n")
    cfg = RunConfig.from_toml(p)
    assert (cfg.cash, cfg.commission, cfg.fill_on) == (20_000, 0.0005, "close")
    (tmp_path / "flat.toml").write_text("cash = 30000\n")
    assert RunConfig.from_toml(tmp_path / "flat.toml", cash=None).cash == 30_000
    assert RunConfig.from_toml(tmp_path / "flat.toml", cash=1.0).cash == 1.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cahs = 5\n", r"unknown run setting\(s\) \['cahs'\]"),
        ("cash = 'x'\n", "parameter cash must be a number"),
        ("cash = -1\n", "parameter cash must be a finite number > 0"),
        ("commission = 1.5\n", "parameter commission .*must be < 1"),
        ("fill_on = 'open'\n", "fill_on must be 'next_open' or 'close'"),
        ("cash = \n", "not valid TOML"),
        ("[run]\ncash = 1\n[other]\nx = 1\n", r"\[run\] table"),
    ],
)
def test_bad_config_files_name_the_setting(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "run.toml"
    p.write_text(text)
    with pytest.raises(ParameterError, match=match) as info:
        RunConfig.from_toml(p)
    assert str(p) in str(info.value)


def test_engine_rejects_unknown_settings(ohlc: pd.DataFrame) -> None:
    md = load_data(ohlc)
    with pytest.raises(bt_engine.ConfigError, match="unknown run setting .cahs.") as info:
        bt_engine.Engine(md.handle, {"cahs": 1.0})
    assert info.value.parameter == "config"
    with pytest.raises(bt_engine.ConfigError) as info:
        bt_engine.Engine(md.handle, {"cash": -1.0})
    assert info.value.parameter == "cash" and info.value.kind == "config"


# ----- typed errors with fields --------------------------------------------------------------


def test_data_errors_carry_symbol_row_column_and_check(make_ohlc: Any, to_long: Any) -> None:
    frames = {"AAA": make_ohlc(10, seed=1), "BBB": make_ohlc(10, seed=2)}
    frames["BBB"].iloc[4, frames["BBB"].columns.get_loc("close")] = -1.0
    long = to_long(frames)
    with pytest.raises(DataError) as info:
        load_data(long)
    e = info.value
    assert isinstance(e, BtCoreError) and e.kind == "data"
    assert (e.symbol, e.row, e.column, e.check) == ("BBB", 14, "close", "bad_price")
    assert e.fields["row"] == 14 and "row 14" in str(e)
    assert e.bar is None  # a field the error does not carry


def test_strategy_errors_carry_phase_bar_and_time(ohlc: pd.DataFrame) -> None:
    class Boom(Strategy):
        def next(self, bar: Any) -> None:
            if self.i == 7:
                raise KeyError("boom")

    with pytest.raises(StrategyError) as info:
        Backtest(ohlc, Boom).run()
    e = info.value
    assert isinstance(e, BtCoreError) and isinstance(e, bt_engine.StrategyError)
    assert (e.phase, e.bar) == ("next", 7)
    assert e.time == ohlc.index[7].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert isinstance(e.__cause__, KeyError)


def test_order_errors_inside_next_become_action_errors(ohlc: pd.DataFrame) -> None:
    class Negative(Strategy):
        def next(self, bar: Any) -> None:
            self.buy(-1)

    with pytest.raises(StrategyError) as info:
        Backtest(ohlc, Negative).run()
    cause = info.value.__cause__
    assert isinstance(cause, ActionError) and cause.kind == "order"
    assert cause.size == "-1" or "order size must be a finite number > 0" in str(cause)


def test_parameter_errors_name_the_parameter(ohlc: pd.DataFrame) -> None:
    with pytest.raises(ParameterError) as info:
        Backtest(ohlc, "sma_cross", commission=-0.1)
    assert info.value.parameter == "commission"


# ----- orders: codes, handles, scale ---------------------------------------------------------


def test_rejections_carry_stable_codes(tiny: pd.DataFrame) -> None:
    codes: list[tuple[str, str | None]] = []

    class Rejected(Strategy):
        def next(self, bar: Any) -> None:
            if self.i == 0:
                self.buy(1_000_000)  # cannot be paid for
                self.sell(5)  # nothing to sell

        def on_order(self, order: Any) -> None:
            codes.append((order.status, order.reason_code))

    res = Backtest(tiny, Rejected, cash=1_000).run()
    assert list(res.orders["reason_code"]) == ["insufficient_cash", "insufficient_position"]
    assert list(res.orders["status"]) == ["rejected", "rejected"]
    assert ("rejected", "insufficient_cash") in codes
    assert ("rejected", "insufficient_position") in codes
    assert ("accepted", None) in codes


def test_buy_returns_an_order_handle(tiny: pd.DataFrame) -> None:
    seen: dict[str, Any] = {}

    class Handles(Strategy):
        def next(self, bar: Any) -> None:
            if self.i == 0:
                h = self.buy(1, limit=1.0)  # far below the market: keeps working
                seen["handle"] = h
                seen["is_int"] = isinstance(h, int)
                seen["status0"] = h.status
                seen["cancelled"] = h.cancel()
                seen["status1"] = h.status
                seen["again"] = self.cancel(h)  # usable where an id is expected

    res = Backtest(tiny, Handles).run()
    h = seen["handle"]
    assert isinstance(h, OrderHandle) and seen["is_int"] and int(h) == 0
    assert (seen["status0"], seen["cancelled"], seen["status1"]) == ("accepted", True, "cancelled")
    assert seen["again"] is False
    assert res.orders["status"].iloc[0] == "cancelled"


def test_cancelling_many_orders_in_one_bar_is_linear(make_ohlc: Any) -> None:
    # Quadratic cancels (a scan of the working list per cancel) took minutes at this size.
    n = 100_000

    class Flood(Strategy):
        def next(self, bar: Any) -> None:
            if self.i == 1:
                ids = [self.buy(1, limit=1.0) for _ in range(n)]
                for h in ids:
                    self.cancel(h)

    res = Backtest(make_ohlc(4, seed=3), Flood).run()
    assert len(res.orders) == n and (res.orders["status"] == "cancelled").all()


def test_results_pickle_without_the_engine(ohlc: pd.DataFrame) -> None:
    res = Backtest(ohlc, "sma_cross").run(fast=3, slow=9)
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(back.trades, res.trades)
    pd.testing.assert_frame_equal(back.orders, res.orders)
    assert back.stats == res.stats


def test_stats_read_the_fill_costs_without_the_fill_table(ohlc: pd.DataFrame) -> None:
    # stats takes commission, tax and slippage from the engine's fill_costs (three columns
    # instead of the whole table); the totals are those of the fill table bit for bit, before
    # and after a pickle (where the costs come from the table carried along).
    res = Backtest(ohlc, "sma_cross", commission=0.0007, slippage_bps=3.0).run(fast=3, slow=9)
    out = res.output
    assert out is not None
    costs = out.fill_costs
    assert "fills" not in out.__dict__
    st = res.stats
    assert "fills" not in out.__dict__
    for k in ("commission", "tax", "slippage"):
        np.testing.assert_array_equal(costs[k], out.fills[k])
        assert st[f"total_{k}"] == float(np.sum(res.fills[k]))
    assert st["total_commission"] > 0 and st["total_slippage"] > 0
    back = pickle.loads(pickle.dumps(res))
    assert back.output is not None
    for k in ("commission", "tax", "slippage"):
        np.testing.assert_array_equal(back.output.fill_costs[k], costs[k])


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 136, 1_000, 4_097, 65_537, 300_001])
def test_streamed_exposure_figures_are_numpys(make_ohlc: Any, n: int) -> None:
    # Without its exposure curve a run streams the curve's sum through numpy's pairwise tree
    # (leaves of up to 128 values, split at multiples of 8): bit for bit np.add.reduce of the
    # curve a single run keeps, at every length around the tree's edges, and the same stats.
    bt = Backtest(make_ohlc(n, seed=n, freq="min"), "sma_cross", commission=0.0005)
    kept = bt.run(fast=2, slow=5)
    streamed = bt._run({"fast": 2, "slow": 5}, exposure_curve=False)
    curve = kept.exposure.to_numpy()
    assert kept.output is not None and streamed.output is not None
    n_bars, total, nonzero, bad = streamed.output.exposure_summary
    assert (n_bars, nonzero, bad) == (n, np.count_nonzero(curve), None)
    assert np.float64(total).tobytes() == np.add.reduce(curve).tobytes()
    assert streamed.stats == kept.stats
    if n >= 1_000:  # long enough to trade: the figures are not all zeros
        assert 0 < nonzero < n


def test_an_engine_without_the_exposure_curve_says_so(ohlc: pd.DataFrame) -> None:
    md = load_data(ohlc)
    eng = bt_engine.Engine(md.handle, None, exposure_curve=False)
    eng.run_sma_cross(3, 9, 1.0, "units")
    with pytest.raises(bt_engine.ConfigError, match="keeps no exposure curve") as e:
        eng.exposure_curve()
    assert e.value.fields["parameter"] == "exposure_curve"
    assert eng.exposure_summary()[0] == len(ohlc)


def test_exposure_figures_name_a_bad_bar() -> None:
    import bt_analysis

    index = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    assert bt_analysis.exposure_figures(4, 1.0, 2) == {"exposure": 0.25, "time_in_market": 0.5}
    with pytest.raises(ValueError, match=r"exposure has a non-finite value \(nan\) at 2024-01-02"):
        bt_analysis.exposure_figures(3, math.nan, 3, (1, math.nan), index)
    with pytest.raises(ValueError, match=r"exposure must be >= 0, got -1.0 at 2024-01-03"):
        bt_analysis.exposure_figures(3, 1.0, 3, (2, -1.0), index)


def test_runs_on_threads_share_one_data_handle(make_ohlc: Any) -> None:
    # Native runs release the GIL and the data handle is shared read-only: a thread pool over
    # parameter sets gives exactly the sequential results.
    from concurrent.futures import ThreadPoolExecutor

    md = load_data(make_ohlc(3_000, seed=5))
    params = [(f, s) for f in (3, 5, 8) for s in (20, 40)]

    def run(p: tuple[int, int]) -> np.ndarray:
        return (
            Backtest(md, "sma_cross", commission=0.0005).run(fast=p[0], slow=p[1]).equity.to_numpy()
        )

    sequential = [run(p) for p in params]
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(run, params))
    for a, b in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_engine_setting_is_a_run_config_field() -> None:
    # One list of engine settings (the engine's own); RunConfig has a field for each.
    assert set(bt_engine.CONFIG_KEYS) <= set(RunConfig.model_fields)
    assert set(RunConfig().to_engine()) == set(bt_engine.CONFIG_KEYS)


def test_callbacks_that_never_stop_submitting_stop_the_run(tiny: pd.DataFrame) -> None:
    # Every accepted order answered with a new one: without a limit the bar never ends.
    class Echo(Strategy):
        order_size = 1.0

        def next(self, bar: Any) -> None:
            if self.i == 1:
                self.buy(limit=1.0)

        def on_order(self, order: Any) -> None:
            if order.status == "accepted":
                self.buy(limit=1.0)

    with pytest.raises(StrategyError, match="more than 500 order/fill events within bar 1") as e:
        Backtest(tiny, Echo, config=RunConfig(max_events_per_bar=500)).run()
    assert (e.value.bar, e.value.check) == (1, "max_events_per_bar")
    with pytest.raises(ParameterError, match="max_events_per_bar"):
        RunConfig.build(None, max_events_per_bar=0)
