"""The SMA 10/30 cross benchmark's data and its runners: ours (three ways, plus the raw engine)
and the peer libraries, each taking the same pandas DataFrame and returning an :class:`Outcome`.

Strategy, identical everywhere: long-only, 1 unit; buy when the fast SMA crosses above the
slow one while flat (fast < slow on the previous bar and fast > slow on this bar, strictly);
sell the whole position when it crosses below. Orders decided on bar t fill at bar t+1's open.
Commission is a rate on traded notional, charged on every fill (entry and exit). Equity is
cash + position x close. A position still open after the last bar stays open (not closed at
the end) and is marked at the last close.

Each runner starts from the shared DataFrame and includes its library's own data set-up,
indicator computation and result building; imports happen once, outside the runners.
Peer libraries are imported lazily so that a missing one only removes its rows.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FAST = 10
SLOW = 30
SIZE = 1.0
COMMISSION = 0.0005
# Large enough that a 1-unit order is never refused for cash and that backtesting.py does not
# warn about prices above the starting cash (the generated prices stay far below it).
CASH = 10_000_000.0


@dataclass(frozen=True)
class Outcome:
    """What one run produced, in the units every library shares.

    trades: closed round trips. open_size: units still held after the last bar.
    final_equity: cash + open_size x last close, in the same currency as ``CASH``.
    """

    trades: int
    open_size: float
    final_equity: float


@dataclass(frozen=True)
class Runner:
    """One way of running the benchmark strategy.

    name: short id (CLI, JSON). label: table label. kind: "ours" (the three public modes),
    "raw" (the bare ``bt_engine.Engine`` calls under them) or "peer". modules: top-level
    modules the runner needs (it is skipped when one is missing). default_max_bars: sizes
    above this are skipped unless ``--max-bars`` says otherwise (for slow peers).
    """

    name: str
    label: str
    kind: str
    modules: tuple[str, ...]
    run: Callable[[pd.DataFrame], Outcome]
    default_max_bars: int | None = None
    note: str = ""

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)


# ----- data -------------------------------------------------------------------------------


def make_data(n_bars: int, seed: int = 42) -> pd.DataFrame:
    """Deterministic 1-minute OHLCV bars of one symbol following a geometric Brownian motion.

    Log returns are N(0, 0.001^2) per bar from 100.0; each open is the previous close times a
    small gap; high/low extend the open-close range by a half-normal amount, so that
    low <= min(open, close) <= max(open, close) <= high always holds. Columns Open, High,
    Low, Close, Volume (float64) on a tz-naive DatetimeIndex (read as UTC by our loader).
    """
    if n_bars < SLOW + 2:
        raise ValueError(
            f"n_bars must be >= {SLOW + 2} for an SMA {FAST}/{SLOW} cross, got {n_bars}"
        )
    rng = np.random.default_rng(seed)
    sigma = 0.001
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, n_bars)))
    open_ = np.empty(n_bars)
    open_[0] = 100.0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, sigma / 10, n_bars - 1))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma / 2, n_bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma / 2, n_bars)))
    volume = rng.integers(100, 10_000, n_bars).astype(np.float64)
    index = pd.date_range("2020-01-01", periods=n_bars, freq="min", name="datetime")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}, index=index
    )


def cross_signals(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry/exit bool arrays of a strict cross (NaN compares False, so warm-up never fires)."""
    entries = np.zeros(len(fast), dtype=bool)
    exits = np.zeros(len(fast), dtype=bool)
    with np.errstate(invalid="ignore"):
        entries[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
        exits[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
    return entries, exits


# ----- ours ---------------------------------------------------------------------------------


def our_strategy() -> type:
    """The event-driven strategy as a user writes it (like examples/strategies/sma_cross.py)."""
    from bt_core import Strategy
    from bt_core.indicators import sma

    class SmaCross(Strategy):
        fast = FAST
        slow = SLOW
        order_size = SIZE

        def on_start(self) -> None:
            close = self.data.close
            self.fast_ma = self.I(sma, close, self.fast)
            self.slow_ma = self.I(sma, close, self.slow)
            # Both averages exist from bar slow-1 and a cross needs two bars.
            self.warmup = self.slow

        def next(self, bar: Any) -> None:
            if self.fast_ma.crossed_above(self.slow_ma):
                if self.position == 0:
                    self.buy()
            elif self.fast_ma.crossed_below(self.slow_ma):
                self.close()

    return SmaCross


def _result_outcome(res: Any) -> Outcome:
    return Outcome(
        trades=len(res.trades),
        open_size=float(res.ledger["position"].sum()),
        final_equity=float(res.equity.iloc[-1]),
    )


def ours_python(df: pd.DataFrame) -> Outcome:
    """``Backtest(df, SmaCross, ...).run()``: a Python ``next`` per bar, fills in Rust."""
    from bt_core import Backtest

    res = Backtest(df, our_strategy(), cash=CASH, commission=COMMISSION).run()
    return _result_outcome(res)


def ours_vectorized(df: pd.DataFrame) -> Outcome:
    """SMAs (Rust) and cross signals (numpy), then ``Backtest(df).run_signals``."""
    from bt_core import Backtest
    from bt_core.indicators import sma

    bt = Backtest(df, cash=CASH, commission=COMMISSION)
    close = df["Close"].to_numpy()
    entries, exits = cross_signals(sma(close, FAST), sma(close, SLOW))
    return _result_outcome(bt.run_signals(entries, exits, size=SIZE))


def ours_builtin(df: pd.DataFrame) -> Outcome:
    """``Backtest(df, "sma_cross").run(fast, slow, size)``: SMAs and loop all in Rust."""
    from bt_core import Backtest

    res = Backtest(df, "sma_cross", cash=CASH, commission=COMMISSION).run(
        fast=FAST, slow=SLOW, size=SIZE
    )
    return _result_outcome(res)


EngineInputs = dict[str, np.ndarray]


def engine_inputs(df: pd.DataFrame) -> EngineInputs:
    """int64 UTC-nanosecond timestamps and the float64 open, high, low, close, volume
    columns that ``bt_engine.Data`` takes for one symbol."""
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise ValueError(f"data index must be a DatetimeIndex, got {type(idx).__name__}")
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    cols = {"ts": np.ascontiguousarray(idx.as_unit("ns").asi8, dtype=np.int64)}
    for name in ("Open", "High", "Low", "Close", "Volume"):
        cols[name.lower()] = np.ascontiguousarray(df[name].to_numpy(dtype=np.float64))
    return cols


def engine_from(inputs: EngineInputs) -> Any:
    """A ``bt_engine.Engine`` on prepared inputs with the benchmark's cash and commission
    (the data validated into a ``bt_engine.Data`` handle first, as every run needs)."""
    from bt_engine import Data, Engine

    return Engine(Data(["X"], [inputs]), {"cash": CASH, "commission": COMMISSION})


def new_engine(df: pd.DataFrame) -> Any:
    """A ``bt_engine.Engine`` on ``df`` with the benchmark's cash and commission."""
    return engine_from(engine_inputs(df))


def engine_outcome(eng: Any) -> Outcome:
    """Read the answer straight from the engine (numpy arrays, no DataFrames)."""
    return Outcome(
        trades=len(eng.trades()["size"]),
        open_size=float(eng.positions().sum()),
        final_equity=float(eng.equity_curve()[-1]),
    )


def raw_builtin(df: pd.DataFrame) -> Outcome:
    """``Engine(...).run_sma_cross``: no bt-core data validation and no result DataFrames."""
    eng = new_engine(df)
    eng.run_sma_cross(FAST, SLOW, SIZE)
    return engine_outcome(eng)


def raw_signals(df: pd.DataFrame) -> Outcome:
    """Rust SMAs + numpy signals + ``Engine(...).run_signals``, without bt-core."""
    import bt_engine

    close = np.ascontiguousarray(df["Close"].to_numpy(dtype=np.float64))
    entries, exits = cross_signals(bt_engine.sma(close, FAST), bt_engine.sma(close, SLOW))
    eng = new_engine(df)
    eng.run_signals(entries.reshape(-1, 1), exits.reshape(-1, 1), SIZE)
    return engine_outcome(eng)


def raw_callback(df: pd.DataFrame) -> Outcome:
    """``Engine.run_strategy`` with a minimal Python ``next`` (no bt-core ``Strategy``).

    The same decision as :func:`ours_python`, reading the SMAs through engine ``Line`` views
    and submitting with ``Engine.submit``; it shows what bt-core's Strategy layer adds on top
    of the bare per-bar crossing into Python.
    """
    import bt_engine

    eng = new_engine(df)
    close = np.ascontiguousarray(df["Close"].to_numpy(dtype=np.float64))
    fast_arr, slow_arr = bt_engine.sma(close, FAST), bt_engine.sma(close, SLOW)
    fast, slow = eng.line(fast_arr), eng.line(slow_arr)
    position, submit, request = eng.position, eng.submit, bt_engine.OrderRequest

    def next_(bar: Any) -> None:
        if fast[-2] < slow[-2] and fast[-1] > slow[-1]:
            if position(0) == 0:
                submit(request(0, "buy", SIZE))
        elif fast[-2] > slow[-2] and fast[-1] < slow[-1]:
            pos = position(0)
            if pos > 0:
                submit(request(0, "sell", pos))

    def normalize(ret: Any) -> list[Any]:
        raise AssertionError(f"next returned {ret!r}; this benchmark's next returns None")

    eng.run_strategy(next_, eng.bar_view(), normalize, start=SLOW)
    return engine_outcome(eng)


# ----- peers ----------------------------------------------------------------------------------


def _pandas_sma(values: Any, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


def backtesting_py(df: pd.DataFrame) -> Outcome:
    """backtesting.py with settings equivalent to ours.

    Its market orders fill at the next bar's open (``trade_on_close=False``); ``commission``
    is charged on entry and on exit as size x price x rate (since 0.4.0); ``finalize_trades``
    stays False so that a position open at the end is marked, not closed, as in ours; cash is
    large enough that no order is refused. It calls ``next`` from bar 1 + the longest
    indicator warm-up (bar 30 here), the same first decision bar as ours.
    """
    import backtesting

    class SmaCross(backtesting.Strategy):
        fast = FAST
        slow = SLOW

        def init(self) -> None:
            self.f = self.I(_pandas_sma, self.data.Close, self.fast)
            self.s = self.I(_pandas_sma, self.data.Close, self.slow)

        def next(self) -> None:
            f, s = self.f, self.s
            if f[-2] < s[-2] and f[-1] > s[-1]:
                if not self.position:
                    self.buy(size=int(SIZE))
            elif f[-2] > s[-2] and f[-1] < s[-1]:
                self.position.close()

    with warnings.catch_warnings():
        # "Some trades remain open at the end of backtest": intended, see the docstring.
        warnings.simplefilter("ignore")
        bt = backtesting.Backtest(
            df,
            SmaCross,
            cash=CASH,
            commission=COMMISSION,
            trade_on_close=False,
            exclusive_orders=False,
            finalize_trades=False,
        )
        stats = bt.run()
    return Outcome(
        trades=int(stats["# Trades"]),
        open_size=float(stats._strategy.position.size),
        final_equity=float(stats["Equity Final [$]"]),
    )


def backtrader_(df: pd.DataFrame) -> Outcome:
    """backtrader: Cerebro defaults (preload, runonce), its own SMA indicator.

    Market orders created in ``next`` execute at the next bar's open (no cheat-on-open).
    ``setcommission(commission=r)`` with no margin is stock-like, percentage, ``percabs``
    True: r x size x price per fill.
    """
    import backtrader as btr

    closed: list[int] = [0]

    class SmaCross(btr.Strategy):  # type: ignore[misc]
        params = (("fast", FAST), ("slow", SLOW))

        def __init__(self) -> None:
            self.f = btr.ind.SMA(self.data.close, period=self.p.fast)
            self.s = btr.ind.SMA(self.data.close, period=self.p.slow)

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                closed[0] += 1

        def next(self) -> None:
            f, s = self.f, self.s
            if f[-1] < s[-1] and f[0] > s[0]:
                if not self.position:
                    self.buy(size=SIZE)
            elif f[-1] > s[-1] and f[0] < s[0] and self.position:
                self.close()

    cerebro = btr.Cerebro(stdstats=False)
    cerebro.adddata(btr.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    (strat,) = cerebro.run()
    return Outcome(
        trades=closed[0],
        open_size=float(strat.position.size),
        final_equity=float(cerebro.broker.getvalue()),
    )


def _vectorbt(df: pd.DataFrame, engine: str) -> Outcome:
    """vectorbt ``Portfolio.from_signals`` with next-open execution.

    vectorbt executes a signal on its own bar at ``price``; to fill a decision of bar t at
    bar t+1's open, the signals are shifted forward one bar and ``price`` is the open. A
    signal on the last bar is therefore dropped, as our engine never fills it either.
    ``fees`` is a fraction of each order's value (size x price), charged on every order;
    positions are valued at ``close``. Size is an amount of units; long-only; no accumulation.
    """
    import vectorbt as vbt

    close = df["Close"]
    fast = close.vbt.rolling_mean(FAST).to_numpy()
    slow = close.vbt.rolling_mean(SLOW).to_numpy()
    entries, exits = cross_signals(fast, slow)
    entries_next = np.zeros_like(entries)
    exits_next = np.zeros_like(exits)
    entries_next[1:], exits_next[1:] = entries[:-1], exits[:-1]
    pf = vbt.Portfolio.from_signals(
        close,
        entries_next,
        exits_next,
        price=df["Open"],
        size=SIZE,
        size_type="amount",
        fees=COMMISSION,
        init_cash=CASH,
        direction="longonly",
        accumulate=False,
        freq="1min",
        engine=engine,
    )
    return Outcome(
        trades=int(pf.trades.closed.count()),
        open_size=float(pf.assets().iloc[-1]),
        final_equity=float(pf.final_value()),
    )


def vectorbt_numba(df: pd.DataFrame) -> Outcome:
    return _vectorbt(df, "numba")


def vectorbt_rust(df: pd.DataFrame) -> Outcome:
    return _vectorbt(df, "rust")


def _has_vectorbt_rust() -> bool:
    return importlib.util.find_spec("vectorbt_rust") is not None


RUNNERS: tuple[Runner, ...] = (
    Runner("py", "ours: Python event-driven", "ours", ("bt_core",), ours_python),
    Runner("vec", "ours: vectorized signals", "ours", ("bt_core",), ours_vectorized),
    Runner("builtin", "ours: built-in Rust sma_cross", "ours", ("bt_core",), ours_builtin),
    Runner(
        "raw_callback", "engine: run_strategy (bare callback)", "raw", ("bt_engine",), raw_callback
    ),
    Runner("raw_signals", "engine: run_signals", "raw", ("bt_engine",), raw_signals),
    Runner("raw_builtin", "engine: run_sma_cross", "raw", ("bt_engine",), raw_builtin),
    Runner("backtesting", "backtesting.py", "peer", ("backtesting",), backtesting_py),
    Runner(
        "backtrader",
        "backtrader",
        "peer",
        ("backtrader",),
        backtrader_,
        default_max_bars=100_000,
        note="1M bars only with --max-bars (about a minute a run)",
    ),
    Runner("vectorbt", "vectorbt (numba)", "peer", ("vectorbt",), vectorbt_numba),
    Runner(
        "vectorbt_rust",
        "vectorbt (vectorbt-rust)",
        "peer",
        ("vectorbt", "vectorbt_rust"),
        vectorbt_rust,
    ),
)

RUNNERS_BY_NAME = {r.name: r for r in RUNNERS}


def agree(a: Outcome, b: Outcome, rel: float = 1e-9) -> bool:
    """Same trade count and open size, final equity equal to ``rel`` relative."""
    return (
        a.trades == b.trades
        and a.open_size == b.open_size
        and math.isclose(a.final_equity, b.final_equity, rel_tol=rel, abs_tol=0.0)
    )
