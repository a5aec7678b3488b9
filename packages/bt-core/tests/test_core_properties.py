"""Hypothesis properties of whole runs on random valid bars with a random trader:
(a) no look-ahead, (b) ledger identities on every bar, (c) determinism.

The random trader draws a fixed number of random numbers per bar from a seeded generator, so
its decisions depend only on the seed and on what it has seen so far; it mixes market and
limit orders (GTC and DAY), sells more than it holds now and then (rejections), buys more than
it can pay for (rejections), cancels, closes, and uses both the methods and return values.
Costs (rate, minimum, fixed, slippage), fill timing, bar spacing (DAY expiry), cash and a
second symbol with missing bars (sometimes listed late) are drawn too. Examples are
derandomized (the same on every run) and not shrunk, to keep the suite fast and stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bt_core import Backtest, Result, Strategy, load_data

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


class RandomTrader(Strategy):
    seed = 0
    n_bars = 0
    flatten = False  # close everything on the second-to-last bar (cancelling open orders)

    _sink: ClassVar[list[list[tuple[Any, ...]]]] = []

    def on_start(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.log: list[tuple[Any, ...]] = []

    def on_order(self, order: Any) -> None:
        self.log.append(("order", self.i, order.id, order.status, order.filled))

    def on_trade(self, fill: Any) -> None:
        self.log.append(
            (
                "fill",
                self.i,
                fill.order_id,
                fill.symbol,
                fill.side,
                fill.size,
                fill.price,
                fill.commission,
            )
        )

    def on_stop(self) -> None:
        type(self)._sink.append(self.log)

    def next(self, bar: Any) -> Any:
        u = self.rng.random(7)  # always 7 draws: decisions never depend on the future
        syms = self.symbols
        k = int(u[0] * len(syms))
        s = syms[k]
        self.log.append(("bar", self.i, self.cash, self.equity))
        if self.flatten and self.i >= self.n_bars - 2:
            if self.i == self.n_bars - 2:
                for o in self.open_orders:
                    self.cancel(o.id)
                for sym in syms:
                    self.close(sym)
            return None
        price = bar.get("close", k)
        pos = self.position_of(s)
        size = round(0.1 + u[2] * 4.0, 3)
        a = u[1]
        as_return = u[5] < 0.3
        if a < 0.25:
            if as_return:
                return {"action": "buy", "size": size, "symbol": s}
            self.buy(size, symbol=s)
        elif a < 0.45:
            # Sometimes more than held: the broker must reject it with a reason.
            q = max(round(pos * (0.3 + u[2]), 3), 0.001) if pos > 0 else size
            if as_return:
                from bt_core import Order

                return Order("sell", size=q, symbol=s)
            self.sell(q, symbol=s)
        elif a < 0.6 and price == price:
            tif = "day" if u[4] < 0.5 else "gtc"
            self.buy(size, symbol=s, limit=price * (1.0 - 0.03 * u[3]), tif=tif)
        elif a < 0.7 and price == price and pos > 0:
            tif = "day" if u[4] < 0.5 else "gtc"
            self.sell(min(size, pos), symbol=s, limit=price * (1.0 + 0.03 * u[3]), tif=tif)
        elif a < 0.8:
            oo = self.open_orders
            if oo:
                self.cancel(oo[int(u[6] * len(oo))].id)
        elif a < 0.85:
            self.close(s)
        return None


@dataclass
class Scenario:
    frames: dict[str, pd.DataFrame]
    cfg: dict[str, Any]
    params: dict[str, Any]
    n: int


def _build(make_ohlc: Any, draw: Any) -> Scenario:
    n = draw(st.integers(15, 120))
    n_sym = draw(st.sampled_from([1, 2, 2]))
    freq = draw(st.sampled_from(["D", "6h", "B"]))
    seed = draw(st.integers(0, 2**31 - 1))
    frames = {"AAA": make_ohlc(n, seed=seed, freq=freq, s0=draw(st.sampled_from([1.5, 40.0])))}
    if n_sym == 2:
        b = make_ohlc(n, seed=seed + 1, freq=freq, s0=draw(st.sampled_from([3.0, 120.0])))
        # Scattered missing bars (never the last three bars).
        rng = np.random.default_rng(seed)
        keep = rng.random(n) > draw(st.sampled_from([0.0, 0.2]))
        keep[-3:] = True
        # Sometimes BBB is listed later: no bar, no price and no trading before that.
        late = draw(st.sampled_from([0, 0, 5]))
        keep[:late] = False
        keep[late] = True
        frames["BBB"] = b[keep]
    cash = draw(st.sampled_from([50.0, 1_000.0, 100_000.0]))
    cfg = {
        "cash": cash,
        "commission": draw(st.sampled_from([0.0, 0.0005, 0.01])),
        # Minimum/fixed commissions larger than a small sale's proceeds: such a sale must be
        # rejected, never drive cash negative.
        "commission_min": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "commission_fixed": draw(st.sampled_from([0.0, 0.05])),
        "slippage_bps": draw(st.sampled_from([0.0, 2.0, 25.0])),
        "fill_on": draw(st.sampled_from(["next_open", "next_open", "close"])),
    }
    params = {
        "seed": draw(st.integers(0, 2**31 - 1)),
        "n_bars": n,
        "flatten": draw(st.booleans()),
    }
    return Scenario(frames, cfg, params, n)


def run(sc: Scenario, frames: dict[str, pd.DataFrame] | None = None) -> tuple[Result, list[Any]]:
    RandomTrader._sink.clear()
    res = Backtest(sc.frames if frames is None else frames, RandomTrader, **sc.cfg).run(**sc.params)
    (log,) = RandomTrader._sink
    return res, log


# ----------------------------------------------------------------------------------------
# (b) ledger identities
# ----------------------------------------------------------------------------------------


def check_ledger(res: Result, frames: dict[str, pd.DataFrame], cash0: float) -> None:
    md = load_data(frames)
    n, syms = md.n_bars, md.symbols
    f = res.fills
    bar = md.index.get_indexer(pd.DatetimeIndex(f["datetime"]))
    assert (bar >= 0).all()
    sign = np.where(f["side"].to_numpy() == "buy", 1.0, -1.0)
    size, price, comm = (f[c].to_numpy(dtype=float) for c in ("size", "price", "commission"))
    scale = cash0 + float(np.sum(size * price))  # magnitude of the sums involved
    tol = 1e-9 * scale

    cash_delta = np.zeros(n)
    np.add.at(cash_delta, bar, -(sign * size * price + comm))
    cash = cash0 + np.cumsum(cash_delta)
    pos = np.zeros((n, len(syms)))
    col = np.array([syms.index(s) for s in f["symbol"]], dtype=int)
    np.add.at(pos, (bar, col), sign * size)
    pos = np.cumsum(pos, axis=0)
    last = pd.DataFrame(md.fields["close"]).ffill().to_numpy()
    held = np.where(pos != 0.0, pos * np.nan_to_num(last), 0.0)
    # A position can only exist once its symbol has had a bar (and so a price).
    assert not np.isnan(last[pos != 0.0]).any()
    equity = cash + held.sum(axis=1)

    # Every bar: equity = cash + sum(position x last price).
    np.testing.assert_allclose(res.equity.to_numpy(), equity, rtol=1e-9, atol=tol)
    # Exposure: gross position value over equity, every bar.
    np.testing.assert_allclose(
        res.exposure.to_numpy(), np.abs(held).sum(axis=1) / equity, rtol=1e-9, atol=1e-12
    )
    # Long-only with a cash check: cash and positions never go negative.
    assert cash.min() >= -tol, cash.min()
    assert pos.min() >= -1e-9 * max(1.0, float(np.abs(pos).max()))

    lg = res.ledger
    np.testing.assert_allclose(lg["position"].to_numpy(), pos[-1], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(lg["last_price"].to_numpy(), last[-1])
    np.testing.assert_allclose(lg["commission"].sum(), comm.sum(), rtol=1e-9, atol=1e-12)
    # Final equity - starting cash = realised (net of commissions) + unrealised.
    pnl = res.equity.iloc[-1] - cash0
    assert pnl == pytest.approx(lg["realized"].sum() + lg["unrealized"].sum(), abs=tol)
    # Costs show up once: realised = gross trading P&L - commissions.
    gross = float(np.sum(-sign * size * price)) + float(np.sum(pos[-1] * np.nan_to_num(last[-1])))
    assert pnl == pytest.approx(gross - comm.sum(), abs=tol)
    # Round trips: when flat at the end, they account for all the realised P&L.
    if (lg["position"] == 0).all():
        assert res.trades["pnl"].sum() == pytest.approx(lg["realized"].sum(), abs=tol)
        assert res.trades["commission"].sum() == pytest.approx(comm.sum(), abs=tol)
    bought = f[f["side"] == "buy"].groupby("symbol")["size"].sum()
    for s, closed in res.trades.groupby("symbol")["size"].sum().items():
        assert closed <= bought[s] * (1 + 1e-9)
    # Orders: filled ones have one fill each at their avg price; others have none.
    o = res.orders.set_index("order_id")
    filled = o[o["status"] == "filled"]
    assert sorted(filled.index) == sorted(f["order_id"])
    by_id = f.set_index("order_id")
    np.testing.assert_array_equal(
        filled["avg_price"].to_numpy(), by_id.loc[filled.index, "price"].to_numpy()
    )
    assert (o.loc[o["status"] == "rejected", "reason"].str.len() > 0).all()
    assert o["reason"][o["status"] != "rejected"].isna().all()


@SETTINGS
@given(data=st.data())
def test_ledger_identities(make_ohlc: Any, data: Any) -> None:
    sc = _build(make_ohlc, data.draw)
    res, log = run(sc)
    check_ledger(res, sc.frames, sc.cfg["cash"])
    # What on_trade saw is exactly the fills table.
    seen = [e[2:] for e in log if e[0] == "fill"]
    table = list(
        res.fills[["order_id", "symbol", "side", "size", "price", "commission"]].itertuples(
            index=False, name=None
        )
    )
    assert seen == table
    # Every order went through "submitted" and "accepted" first and ended with its table
    # status.
    statuses: dict[int, list[str]] = {}
    for e in log:
        if e[0] == "order":
            statuses.setdefault(e[2], []).append(e[3])
    assert sorted(statuses) == res.orders["order_id"].tolist()
    for oid, st_ in zip(res.orders["order_id"], res.orders["status"], strict=True):
        assert statuses[oid][:2] == ["submitted", "accepted"]
        assert statuses[oid][-1] == st_
        assert len(statuses[oid]) == (2 if st_ == "accepted" else 3)
    # What next() saw as equity on bar t is the recorded equity of bar t (next_open: fills
    # happen at the open, so at decision time equity is already cash + positions at this
    # bar's close; orders placed in next() do not fill before bar t+1).
    if sc.cfg["fill_on"] == "next_open":
        seen_eq = {e[1]: e[3] for e in log if e[0] == "bar"}
        for t, v in seen_eq.items():
            assert v == res.equity.iloc[t]


def test_ledger_identity_on_sample_data() -> None:
    # A long deterministic run on the committed sample data, not only small random ones.
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "data" / "multi_asset.csv"
    frames = {}
    long = pd.read_csv(path)
    for s, part in long.groupby("symbol", sort=False):
        frames[str(s)] = part.drop(columns="symbol").set_index("datetime")
    frames = {k: v.set_axis(pd.DatetimeIndex(v.index, tz="UTC"), axis=0) for k, v in frames.items()}
    sc = Scenario(
        frames,
        {"cash": 10_000.0, "commission": 0.0005, "commission_min": 5.0, "slippage_bps": 3.0},
        {"seed": 7, "n_bars": load_data(frames).n_bars, "flatten": True},
        0,
    )
    res, _ = run(sc)
    assert len(res.fills) > 100
    check_ledger(res, frames, 10_000.0)


# ----------------------------------------------------------------------------------------
# (a) no look-ahead
# ----------------------------------------------------------------------------------------


def _perturb_after(
    make_ohlc: Any, frames: dict[str, pd.DataFrame], cut: pd.Timestamp, seed: int, drop: bool
) -> dict[str, pd.DataFrame]:
    """Replace every bar after ``cut`` by other valid bars (new prices, ranges, volumes), and
    optionally remove some of the second symbol's later bars."""
    out = {}
    for j, (s, df) in enumerate(frames.items()):
        head, tail = df[df.index <= cut], df[df.index > cut]
        if tail.empty:
            out[s] = df
            continue
        new = make_ohlc(len(tail), seed=seed + j, s0=float(df["close"].iloc[-1]) * 1.3, vol=0.05)
        new.index = tail.index
        if drop and j == 1 and len(new) > 2:
            new = new.iloc[::2]
        out[s] = pd.concat([head, new])
    return out


@SETTINGS
@given(data=st.data())
def test_no_look_ahead(make_ohlc: Any, data: Any) -> None:
    sc = _build(make_ohlc, data.draw)
    idx = load_data(sc.frames).index
    t = data.draw(st.integers(0, len(idx) - 2), label="t")
    cut = idx[t]
    other = _perturb_after(
        make_ohlc, sc.frames, cut, data.draw(st.integers(0, 10_000)), data.draw(st.booleans())
    )
    assert load_data(other).index.equals(idx)  # AAA keeps every bar: same clock
    a, log_a = run(sc)
    b, log_b = run(sc, other)
    # Equity at or before t: bit-identical.
    head_a, head_b = a.equity.iloc[: t + 1].to_numpy(), b.equity.iloc[: t + 1].to_numpy()
    assert head_a.tobytes() == head_b.tobytes()
    # Fills at or before t: identical.
    fa = a.fills[a.fills["datetime"] <= cut].reset_index(drop=True)
    fb = b.fills[b.fills["datetime"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(fa, fb, check_exact=True)
    # Orders decided at or before t: identical requests; identical outcomes if closed by t.
    oa = a.orders[a.orders["submitted"] <= cut].reset_index(drop=True)
    ob = b.orders[b.orders["submitted"] <= cut].reset_index(drop=True)
    req = ["order_id", "symbol", "side", "type", "tif", "size", "limit_price", "submitted"]
    pd.testing.assert_frame_equal(oa[req], ob[req], check_exact=True)
    done = (oa["closed"] <= cut).to_numpy()
    pd.testing.assert_frame_equal(oa[done], ob[done], check_exact=True)
    # Orders still working at t are still working (or closed later) in the other run too.
    assert (ob["closed"][~done].isna() | (ob["closed"][~done] > cut)).all()
    # Everything the strategy saw and every callback up to bar t: identical.
    assert [e for e in log_a if e[1] <= t] == [e for e in log_b if e[1] <= t]


def test_no_look_ahead_builtin_and_signals(make_ohlc: Any) -> None:
    base = make_ohlc(300, seed=11)
    t = 150
    other = _perturb_after(make_ohlc, {"x": base}, base.index[t], 5, False)["x"]
    assert not other.iloc[t + 1 :].equals(base.iloc[t + 1 :])
    for mk in (
        lambda d: Backtest(d, "sma_cross", commission=0.001).run(fast=3, slow=9),
        lambda d: Backtest(d, commission=0.001).run_signals(
            (d["close"] > d["close"].rolling(4).mean()).to_numpy(),
            (d["close"] < d["close"].rolling(4).mean()).to_numpy(),
        ),
    ):
        a, b = mk(base), mk(other)
        assert a.equity.iloc[: t + 1].tolist() == b.equity.iloc[: t + 1].tolist()
        cut = base.index[t]
        pd.testing.assert_frame_equal(
            a.fills[a.fills["datetime"] <= cut], b.fills[b.fills["datetime"] <= cut]
        )
        assert len(a.fills) > 4


# ----------------------------------------------------------------------------------------
# (c) determinism
# ----------------------------------------------------------------------------------------


def _same(a: Result, b: Result) -> None:
    assert a.equity.to_numpy().tobytes() == b.equity.to_numpy().tobytes()
    assert a.exposure.to_numpy().tobytes() == b.exposure.to_numpy().tobytes()
    for name in ("fills", "orders", "trades", "ledger"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.to_json() == b.to_json()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_determinism(make_ohlc: Any, data: Any) -> None:
    sc = _build(make_ohlc, data.draw)
    a, log_a = run(sc)
    b, log_b = run(sc)
    _same(a, b)
    assert log_a == log_b
    # The same data given as a long table instead of a dict: the same run.
    long = pd.concat(
        [df.reset_index().assign(symbol=s) for s, df in sc.frames.items()], ignore_index=True
    )
    c, _ = run(sc, long)  # type: ignore[arg-type]
    _same(a, c)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_exposure_figures_without_the_curve(make_ohlc: Any, data: Any) -> None:
    # A sweep's run keeps only the exposure curve's figures, streamed by the engine: they are
    # numpy's over the curve bit for bit, and the run's stats are a single run's.
    sc = _build(make_ohlc, data.draw)
    a, _ = run(sc)
    RandomTrader._sink.clear()
    b = Backtest(sc.frames, RandomTrader, **sc.cfg)._run(dict(sc.params), exposure_curve=False)
    curve = a.exposure.to_numpy()
    assert a.output is not None and b.output is not None
    n, total, nonzero, bad = a.output.exposure_summary
    assert (n, nonzero, bad) == (curve.size, np.count_nonzero(curve), None)
    assert np.float64(total).tobytes() == np.add.reduce(curve).tobytes()
    assert repr(b.output.exposure_summary) == repr(a.output.exposure_summary)
    assert b.equity.to_numpy().tobytes() == a.equity.to_numpy().tobytes()
    assert b.stats == a.stats
    assert a.stats["exposure"] == float(curve.mean())
    with pytest.raises(ValueError, match="kept no exposure curve"):
        _ = b.exposure


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    fast=st.integers(1, 5),
    slow=st.integers(6, 20),
    commission=st.sampled_from([0.0, 0.001]),
)
def test_determinism_vectorized(
    make_ohlc: Any, seed: int, fast: int, slow: int, commission: float
) -> None:
    d = make_ohlc(200, seed=seed)
    bt = Backtest(d, "sma_cross", commission=commission, slippage_bps=1.0)
    _same(bt.run(fast=fast, slow=slow), bt.run(fast=fast, slow=slow))
    e = (d["close"].diff() > 0).to_numpy()
    x = (d["close"].diff() < 0).to_numpy()
    _same(bt.run_signals(e, x, size=2), bt.run_signals(e, x, size=2))
    w = np.where(np.arange(200) % 10 == 0, 0.5 + 0.4 * np.sin(np.arange(200)), np.nan)
    _same(bt.run_weights(w), bt.run_weights(w))


# ----------------------------------------------------------------------------------------
# one matching core: the Python driver and the Rust signal driver agree bit for bit
# ----------------------------------------------------------------------------------------


def _realism(draw: Any) -> dict[str, Any]:
    """Market-realism settings both drivers must honour alike: fee lines (a sell-only tax,
    a per-unit fee), a slippage model, a bar-path rule and a volume cap."""
    return {
        "fees": draw(
            st.sampled_from(
                [
                    (),
                    ({"name": "duty", "rate": 0.001, "side": "sell", "kind": "tax"},),
                    ({"type": "per_unit", "per_unit": 0.01, "min": 1.0},),
                ]
            )
        ),
        "slippage": draw(st.sampled_from([None, {"model": "range", "share": 0.05}])),
        "bar_path": draw(st.sampled_from(["pessimistic", "ohlc", "adaptive"])),
        "volume_limit": draw(st.sampled_from([None, 0.5, 1e-4])),
    }


class SignalFollower(Strategy):
    """The documented run_signals rule, in Python: flat and entry (and no exit) -> buy
    ``order_size``; long and exit -> sell everything; skip a symbol without a bar or with a
    working order."""

    _entries: ClassVar[np.ndarray]
    _exits: ClassVar[np.ndarray]

    def next(self, bar: Any) -> Any:
        i = self.i
        for k, s in enumerate(self.symbols):
            if bar.get("close", k) != bar.get("close", k):
                continue
            if any(o.symbol_index == k for o in self.open_orders):
                continue
            pos = self.position_of(s)
            if pos > 0 and self._exits[i, k]:
                self.sell(pos, symbol=s)
            elif pos == 0 and self._entries[i, k] and not self._exits[i, k]:
                self.buy(symbol=s)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_python_driver_matches_signal_driver(make_ohlc: Any, data: Any) -> None:
    sc = _build(make_ohlc, data.draw)
    md = load_data(sc.frames)
    rng = np.random.default_rng(sc.params["seed"])
    shape = (md.n_bars, len(md.symbols))
    entries = rng.random(shape) < 0.2
    exits = rng.random(shape) < 0.15
    size = float(data.draw(st.sampled_from([0.5, 1.0, 3.0])))
    SignalFollower._entries, SignalFollower._exits = entries, exits
    realism = _realism(data.draw)
    if sc.cfg.get("slippage_bps"):
        realism["slippage"] = None  # one slippage setting at a time
    bt = Backtest(sc.frames, SignalFollower, **sc.cfg, **realism)
    py = bt.run(order_size=size)
    vec = bt.run_signals(entries, exits, size=size)
    has_bar = ~np.isnan(md.fields["close"])
    assert len(vec.orders) > 0 or not (entries & ~exits & has_bar).any()
    for name in ("fills", "orders", "trades", "ledger"):
        pd.testing.assert_frame_equal(
            getattr(py, name), getattr(vec, name), check_exact=True, obj=name
        )
    assert py.equity.to_numpy().tobytes() == vec.equity.to_numpy().tobytes()


class WeightFollower(Strategy):
    """The documented run_weights rule, in Python: on a row that is not all NaN, target
    ``w x equity / close`` units of each symbol that has a bar (NaN weight = 0), skipping
    trades of at most ``min_trade`` units; sells are submitted before buys."""

    _weights: ClassVar[np.ndarray]
    min_trade = 1e-9

    def next(self, bar: Any) -> Any:
        row = self._weights[self.i]
        if np.isnan(row).all():
            return
        equity = self.equity
        buys = []
        for k, s in enumerate(self.symbols):
            price = bar.get("close", k)
            if price != price:
                continue
            w = 0.0 if row[k] != row[k] else float(row[k])
            delta = w * equity / price - self.position_of(s)
            if abs(delta) <= self.min_trade:
                continue
            if delta < 0:
                self.sell(-delta, symbol=s)
            else:
                buys.append((s, delta))
        for s, q in buys:
            self.buy(q, symbol=s)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_python_driver_matches_weights_driver(make_ohlc: Any, data: Any) -> None:
    sc = _build(make_ohlc, data.draw)
    md = load_data(sc.frames)
    rng = np.random.default_rng(sc.params["seed"])
    n, m = md.n_bars, len(md.symbols)
    w = np.full((n, m), np.nan)
    rebalance = rng.random(n) < 0.25
    w[rebalance] = rng.dirichlet(np.ones(m + 1), rebalance.sum())[:, :m]  # rows sum < 1
    w[rng.random((n, m)) < 0.1] = np.nan
    WeightFollower._weights = w
    realism = _realism(data.draw)
    if sc.cfg.get("slippage_bps"):
        realism["slippage"] = None  # one slippage setting at a time
    bt = Backtest(sc.frames, WeightFollower, **sc.cfg, **realism)
    py = bt.run()
    vec = bt.run_weights(w)
    for name in ("fills", "orders", "trades", "ledger"):
        pd.testing.assert_frame_equal(
            getattr(py, name), getattr(vec, name), check_exact=True, obj=name
        )
    assert py.equity.to_numpy().tobytes() == vec.equity.to_numpy().tobytes()
