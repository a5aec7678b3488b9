"""Result.plot (bt_core.plot.plot_result): the figure's panels hold the run's data, the HTML
file is self-contained, several symbols, long runs, missing plotly, the stats table of
Result._repr_html_ (bt_core.plot.result_html), and that headless Chromium draws it offline."""

from __future__ import annotations

import pathlib
import re
import shutil
import struct
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import Backtest, ParameterError, Strategy, load_data
from bt_core.plot import buy_and_hold, plot_result, result_html

CASH = 100_000.0

#: bar -> (side, size or None for "all", symbol or None)
PLAN: dict[int, tuple[str, float | None, str | None]] = {
    20: ("buy", 10.0, None),
    60: ("buy", 5.0, None),  # scale in: the sell at 90 closes two round trips (FIFO lots)
    90: ("sell", None, None),
    130: ("buy", 8.0, None),
    170: ("sell", 3.0, None),  # partial exit
    210: ("sell", None, None),
    250: ("buy", 4.0, None),  # still open at the end: a fill without a round trip
}


class Scripted(Strategy):
    """Trades on fixed bars (PLAN), so the test knows every fill."""

    label = "scripted <&>"  # a parameter whose text must be escaped in HTML

    def next(self, bar: Any) -> None:
        step = PLAN.get(bar.i)
        if step is None:
            return
        side, size, symbol = step
        if side == "buy":
            self.buy(size, symbol=symbol)
        elif size is None:
            self.close(symbol)
        else:
            self.sell(size, symbol=symbol)


class TwoSymbols(Strategy):
    def next(self, bar: Any) -> None:
        if bar.i == 40:
            self.buy(3.0, symbol="AAA")
            self.buy(7.0, symbol="BBB")
        elif bar.i == 120:
            self.close("AAA")
        elif bar.i == 160:
            self.close("BBB")


def utc(x: Any) -> pd.DatetimeIndex:
    """Times of a trace: plotly keeps tz-aware times as naive datetime64 in UTC."""
    idx = pd.DatetimeIndex(x)
    return idx.tz_localize("UTC") if idx.tz is None else idx


def traces(fig: Any) -> dict[str, Any]:
    named = {t.name: t for t in fig.data}
    assert len(named) == len(fig.data), "trace names must be unique"
    return named


@pytest.fixture(scope="module")
def run(make_ohlc: Any) -> tuple[Any, pd.DataFrame]:
    df = make_ohlc(300, seed=3)
    return Backtest(df, Scripted, cash=CASH, commission=0.001).run(), df


def test_the_panels_hold_the_runs_data(run: tuple[Any, pd.DataFrame]) -> None:
    result, df = run
    fig = plot_result(result, bars=df)
    t = traces(fig)
    assert set(t) == {
        "asset",
        "winning trades",
        "losing trades",
        "buy",
        "sell",
        "equity",
        "buy & hold",
        "drawdown",
        "volume",
    }

    candles = t["asset"]
    assert candles.type == "candlestick"
    assert len(candles.x) == len(df) <= 3000  # one candle per bar
    for field in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(np.asarray(getattr(candles, field)), df[field].to_numpy())

    fills = result.fills
    assert len(fills) == 7
    for side in ("buy", "sell"):
        f = fills[fills["side"] == side]
        marker = t[side]
        assert marker.mode == "markers"
        assert utc(marker.x).equals(pd.DatetimeIndex(f["datetime"]))
        np.testing.assert_array_equal(np.asarray(marker.y), f["price"].to_numpy())
        for text, size, price in zip(marker.text, f["size"], f["price"], strict=True):
            assert f"{size:g} @ {price:.6g}" in text

    # The hover of a fill that closes round trips carries their P&L.
    trades = result.trades
    assert len(trades) == 4
    sells = t["sell"].text
    first_exit = trades[trades["exit_time"] == trades["exit_time"].iloc[0]]
    assert len(first_exit) == 2  # the 10 + 5 lots, closed by one fill
    assert f"P&L {first_exit['pnl'].sum():,.2f} (2 round trips)" in sells[0]
    assert f"P&L {trades['pnl'].iloc[2]:,.2f}" in sells[1]
    assert all("P&L" not in text for text in t["buy"].text)

    # Each closed round trip is a segment entry -> exit on the side of its P&L.
    won = trades[trades["pnl"] > 0]
    lost = trades[trades["pnl"] <= 0]
    assert len(t["winning trades"].x) == 3 * len(won)
    assert len(t["losing trades"].x) == 3 * len(lost)
    for tr, seg in ((won, t["winning trades"]), (lost, t["losing trades"])):
        np.testing.assert_array_equal(np.asarray(seg.y[0::3], float), tr["entry_price"])
        np.testing.assert_array_equal(np.asarray(seg.y[1::3], float), tr["exit_price"])

    np.testing.assert_array_equal(np.asarray(t["equity"].y), result.equity.to_numpy())
    close = df["close"].to_numpy()
    np.testing.assert_allclose(np.asarray(t["buy & hold"].y), CASH * close / close[0], rtol=1e-15)
    assert np.asarray(t["buy & hold"].y)[0] == CASH  # rebased to the starting cash

    dd = np.asarray(t["drawdown"].y)
    eq = result.equity.to_numpy()
    np.testing.assert_allclose(dd, (eq / np.maximum.accumulate(eq) - 1) * 100, rtol=1e-12)
    assert (dd <= 0).all() and dd.min() < 0

    assert t["volume"].type == "bar"
    np.testing.assert_array_equal(np.asarray(t["volume"].y), df["volume"].to_numpy())

    # One shared time axis: every panel's x axis follows the bottom one.
    layout = fig.layout
    assert {layout.xaxis.matches, layout.xaxis2.matches, layout.xaxis3.matches} == {"x4"}
    assert layout.xaxis.rangeslider.visible is False
    assert [layout[f"yaxis{i}"].title.text for i in ("", "2", "3", "4")] == [
        "price",
        "equity",
        "drawdown %",
        "volume",
    ]
    assert "Scripted" in layout.title.text and "4 round trips" in layout.title.text


def test_html_file_is_self_contained(run: tuple[Any, pd.DataFrame], tmp_path) -> None:
    result, df = run
    out = tmp_path / "deep" / "plot.html"
    plot_result(result, bars=df, path=out, title="My <run>")
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing loaded from anywhere
    assert "cdn.plot.ly/plotly" not in text  # what include_plotlyjs="cdn" would reference
    assert len(text) > 1_000_000  # plotly.js itself is in the file
    assert "Plotly.newPlot" in text
    assert "My &lt;run&gt;" in text
    assert not list(out.parent.glob(".*.tmp"))


def test_bars_come_from_the_result_when_it_carries_them(
    run: tuple[Any, pd.DataFrame], monkeypatch
) -> None:
    result, df = run
    if getattr(result.output, "market_data", None) is None:
        with pytest.raises(ParameterError, match=r"bars=") as err:
            plot_result(result)
        assert err.value.parameter == "bars"
        monkeypatch.setattr(result.output, "market_data", load_data(df), raising=False)
    fig = plot_result(result)
    np.testing.assert_array_equal(np.asarray(traces(fig)["asset"].close), df["close"].to_numpy())


def test_bars_of_another_run_are_refused(run: tuple[Any, pd.DataFrame], make_ohlc) -> None:
    result, _ = run
    with pytest.raises(ParameterError, match="do not match the run"):
        plot_result(result, bars=make_ohlc(250, seed=3))
    with pytest.raises(ParameterError, match="max_candles"):
        plot_result(result, bars=run[1], max_candles=1)


def test_several_symbols(make_ohlc: Any) -> None:
    a = make_ohlc(200, seed=1, s0=50.0)
    b = make_ohlc(200, seed=2, s0=20.0).iloc[30:]  # starts later: NaN bars at first
    result = Backtest({"AAA": a, "BBB": b}, TwoSymbols, cash=CASH).run()
    md = load_data({"AAA": a, "BBB": b})

    fig = plot_result(result, bars=md)  # default: the first symbol
    t = traces(fig)
    assert "AAA" in t and "BBB" not in t
    np.testing.assert_array_equal(np.asarray(t["buy"].y), result.fills["price"].iloc[[0]])

    fig = plot_result(result, "BBB", bars=md)
    t = traces(fig)
    bbb = result.fills[result.fills["symbol"] == "BBB"]
    assert utc(t["buy"].x).equals(pd.DatetimeIndex(bbb["datetime"][bbb["side"] == "buy"]))
    assert list(t["buy"].text)[0].count("7 @") == 1
    close = np.asarray(t["BBB"].close, dtype=float)
    assert np.isnan(close[:30]).all()  # no candle before BBB's first bar
    np.testing.assert_array_equal(close[30:], b["close"].to_numpy())

    # Buy-and-hold: half the cash in each, bought at each one's first close, never rebalanced;
    # BBB's half waits as cash until its first bar.
    name = "buy & hold (2 equal)"
    hold = np.asarray(t[name].y)
    ca, cb = a["close"].to_numpy(), b["close"].to_numpy()
    by_hand = CASH / 2 * ca / ca[0] + CASH / 2 * np.concatenate([np.ones(30), cb / cb[0]])
    np.testing.assert_allclose(hold, by_hand, rtol=1e-14)
    np.testing.assert_allclose(buy_and_hold(md, CASH).to_numpy(), by_hand, rtol=1e-14)
    if "buy_hold_return" in result.stats:  # the same buy-and-hold as the statistics'
        assert hold[-1] / CASH - 1 == pytest.approx(result.stats["buy_hold_return"], rel=1e-12)

    with pytest.raises(ParameterError, match="unknown symbol 'CCC'.*AAA, BBB") as err:
        plot_result(result, "CCC", bars=md)
    assert err.value.symbol == "CCC"


def test_a_long_run_is_drawn_as_fewer_candles(make_ohlc: Any) -> None:
    df = make_ohlc(10_000, seed=4, freq="min")
    plan = {1000: ("buy", 2.0), 7777: ("sell", 2.0)}

    class TwoTrades(Strategy):
        def next(self, bar: Any) -> None:
            step = plan.get(bar.i)
            if step:
                (self.buy if step[0] == "buy" else self.sell)(step[1])

    result = Backtest(df, TwoTrades, cash=CASH).run()
    t = traces(plot_result(result, bars=df, max_candles=1000))
    candles = t["asset"]
    assert len(candles.x) == 1000
    # Bucket k holds bars [10k, 10k + 10): first open, max high, min low, last close, sum vol.
    assert utc(candles.x)[3] == df.index[30]
    assert candles.open[3] == df["open"].iloc[30]
    assert candles.high[3] == df["high"].iloc[30:40].max()
    assert candles.low[3] == df["low"].iloc[30:40].min()
    assert candles.close[3] == df["close"].iloc[39]
    assert t["volume"].y[3] == df["volume"].iloc[30:40].sum()
    eq = result.equity
    assert utc(t["equity"].x)[3] == eq.index[39] and t["equity"].y[3] == eq.iloc[39]
    dd = (eq / eq.cummax() - 1) * 100
    assert t["drawdown"].y[3] == pytest.approx(dd.iloc[30:40].min(), rel=1e-12)
    assert len(t["drawdown"].y) == 1000 and max(t["drawdown"].y) <= 0
    # The fills stay at their exact bar and price.
    assert list(utc(t["buy"].x)) == [df.index[1001]]
    assert list(utc(t["sell"].x)) == [df.index[7778]]
    assert list(t["buy"].y) == [df["open"].iloc[1001]]


def test_show_displays_the_figure(run: tuple[Any, pd.DataFrame], monkeypatch) -> None:
    import plotly.graph_objects as go

    shown: list[Any] = []
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: shown.append(self))
    fig = plot_result(run[0], bars=run[1], show=True)
    assert shown == [fig]


def test_missing_plotly_names_the_extra(run: tuple[Any, pd.DataFrame], monkeypatch) -> None:
    for name in list(sys.modules):
        if name == "plotly" or name.startswith("plotly."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[report]'")):
        plot_result(run[0], bars=run[1])
    assert "final equity" in result_html(run[0])  # the stats table needs no plotly


def test_result_html_shows_the_key_stats(run: tuple[Any, pd.DataFrame]) -> None:
    result, _ = run
    text = result_html(result)
    stats = result.stats
    assert text.startswith("<table") and text.endswith("</table>")
    assert "Scripted(" in text and "scripted &lt;&amp;&gt;" in text and "<&>" not in text
    assert f"{stats['final_equity']:,.2f}" in text
    assert f"{stats['total_return'] * 100:,.2f} %" in text
    assert f"{stats['max_drawdown'] * 100:,.2f} %" in text
    if "buy_hold_return" in stats:
        assert f"{stats['buy_hold_return'] * 100:,.2f} %" in text
    assert "<th style='text-align:left'>round trips</th><td style='text-align:right'>4<" in text
    assert f"{result.equity.index[0]:%Y-%m-%d} to" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian package chromium is not installed")
def test_headless_chromium_draws_the_plot_offline(
    run: tuple[Any, pd.DataFrame], tmp_path: pathlib.Path
) -> None:
    result, df = run
    page = plot_result(result, bars=df, path=tmp_path / "plot.html")
    browser = _chromium()
    assert browser
    common = [
        browser,
        "--headless",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--hide-scrollbars",
        "--proxy-server=http://127.0.0.1:9",  # no network: everything must be in the file
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,950",
        "--virtual-time-budget=15000",  # let plotly finish drawing
    ]
    done = subprocess.run(
        [*common, "--dump-dom", (tmp_path / "plot.html").resolve().as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom, log = done.stdout, done.stderr
    assert "CONSOLE" not in log, log  # no JavaScript error, nothing logged by plotly
    assert 'class="main-svg"' in dom
    assert dom.count('class="box"') == len(df)  # one drawn candle per bar
    assert dom.count('<path class="point"') == len(result.fills)  # one marker per fill
    assert 'class="trace bars"' in dom  # volume
    for axis in ("ytitle", "y2title", "y3title", "y4title"):
        assert f'class="{axis}"' in dom, axis
    assert len(page.data) == 9

    png = tmp_path / "plot.png"
    subprocess.run(
        [*common, f"--screenshot={png}", (tmp_path / "plot.html").resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=180,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1400, 950)
    assert len(data) > 60_000  # a blank page of this size is a few kB
