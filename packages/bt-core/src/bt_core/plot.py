"""Looking at a run: one interactive plotly figure, and a small HTML table of its statistics.

:func:`plot_result` draws, on one shared time axis:

1. the price of one symbol as candles, with a marker at every fill (buy: up triangle, sell:
   down triangle, at the fill's time and price; hover shows size, price, commission and, for
   a fill that closes round trips, their P&L) and a dashed line from each closed round trip's
   entry to its exit (green when it made money, red when it lost);
2. the equity curve against buy-and-hold of the same data rebased to the starting cash (with
   several symbols: equal weight at the start, never rebalanced, no costs);
3. the underwater curve (drawdown from the running peak, in percent, always <= 0);
4. the symbol's volume (green where the bar closed at or above its open).

Up to ``max_candles`` bars (3,000 by default) every bar is its own candle. A longer run is
drawn as ``max_candles`` candles of equal runs of consecutive bars (first open, highest high,
lowest low, last close, summed volume), each at the time of its first bar, while the equity
and buy-and-hold curves keep each run's last value and the underwater curve its deepest, at
the run's last bar. So a million minute bars still give a page of a few MB that a browser
draws at once; the markers and trade lines are always at the exact fill times and prices, and
the statistics use every bar.

plotly is an optional dependency (``pip install 'bt-core[plot]'``), imported only when a
figure is built; :func:`result_html` needs nothing beyond bt-core.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import bt_analysis
from bt_core._optional import require
from bt_core.data import MarketData, load_data
from bt_core.errors import ParameterError

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from bt_core.result import Result

__all__ = ["MAX_CANDLES", "plot_result", "result_html"]

#: Runs up to this many bars are drawn one candle per bar (see the module docstring).
MAX_CANDLES = 3000

_UP, _DOWN = "#26a69a", "#ef5350"
_EQUITY, _HOLD, _DD = "#1f77b4", "#7f7f7f", "#d62728"


def _plotly() -> tuple[Any, Any]:
    go = require("plotly.graph_objects", extra="report", feature="Result.plot")
    subplots = require("plotly.subplots", extra="report", feature="Result.plot")
    return go, subplots.make_subplots


# ----- inputs ----------------------------------------------------------------------------------
def _market_data(result: Result, bars: Any) -> MarketData:
    if bars is None:
        bars = getattr(result.output, "market_data", None)
    if bars is None:
        raise ParameterError(
            "plot_result needs the run's bars and this Result does not carry them: pass "
            "bars=... (the data given to Backtest, or its bt_core.load_data handle)",
            parameter="bars",
        )
    md = load_data(bars)
    if not md.index.equals(result.equity.index):
        raise ParameterError(
            f"bars do not match the run: {md.n_bars} bars from {md.index[0]} to "
            f"{md.index[-1]}, the equity curve has {len(result.equity)} from "
            f"{result.equity.index[0]} to {result.equity.index[-1]}",
            parameter="bars",
        )
    return md


def _pick_symbol(md: MarketData, symbol: str | None) -> str:
    if symbol is None:
        return md.symbols[0]
    if symbol not in md.symbols:
        raise ParameterError(
            f"unknown symbol {symbol!r}; the run's symbols are: {', '.join(md.symbols)}",
            parameter="symbol",
            symbol=symbol,
        )
    return symbol


def _starting_cash(result: Result) -> float:
    cash = result.config.get("cash") if isinstance(result.config, Mapping) else None
    return float(cash) if cash is not None else float(result.equity.iloc[0])


def buy_and_hold(md: MarketData, cash: float) -> pd.Series:
    """Value of ``cash`` split equally over the symbols at the start and held: each symbol's
    share buys at its first close and is marked at its last close since (a symbol that starts
    later holds its share as cash until its first bar). No costs, no rebalancing."""
    close = md.fields["close"]
    held = pd.DataFrame(close).ffill().to_numpy()
    valid = ~np.isnan(close)
    first_row = valid.argmax(axis=0)
    first = close[first_row, np.arange(close.shape[1])]
    growth = np.where(np.isnan(held), 1.0, held / first)
    value = growth.sum(axis=1) * (cash / close.shape[1])
    return pd.Series(value, index=md.index, name="buy & hold")


# ----- thinning ------------------------------------------------------------------------------
def _buckets(n: int, max_candles: int) -> np.ndarray | None:
    """Bucket number per bar when the run is longer than ``max_candles``, else None."""
    if n <= max_candles:
        return None
    return np.arange(n, dtype=np.int64) * max_candles // n


def _bucket_edges(bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:] - 1, len(bucket) - 1)
    return starts, ends


def _ohlcv(md: MarketData, s: int, bucket: np.ndarray | None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {f: md.fields[f][:, s] for f in ("open", "high", "low", "close", "volume")},
        index=md.index,
    )
    if bucket is None:
        return frame
    grouped = frame.set_axis(bucket).groupby(level=0)
    # first/last/max/min skip the NaN of bars where the symbol did not trade.
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(min_count=1),
        }
    )
    starts, _ = _bucket_edges(bucket)
    return out.set_axis(md.index[starts])


def _line(series: pd.Series, bucket: np.ndarray | None, how: str) -> pd.Series:
    if bucket is None:
        return series
    grouped = pd.Series(series.to_numpy(), index=bucket).groupby(level=0)
    values = grouped.min() if how == "min" else grouped.last()
    _, ends = _bucket_edges(bucket)
    return pd.Series(values.to_numpy(), index=series.index[ends], name=series.name)


# ----- markers ---------------------------------------------------------------------------------
def _money(v: float) -> str:
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def _fill_texts(fills: pd.DataFrame, trades: pd.DataFrame) -> list[str]:
    """Hover text per fill; a fill that closes round trips also shows their summed P&L.

    A round trip's exit is the fill of its symbol at its exit time and price; when two fills
    share all three, the first one carries the P&L (the trades table keeps no order ids).
    """
    closed: dict[tuple[pd.Timestamp, float], tuple[float, int]] = {}
    for t, p, pnl in zip(trades["exit_time"], trades["exit_price"], trades["pnl"], strict=True):
        total, count = closed.get((t, p), (0.0, 0))
        closed[(t, p)] = (total + float(pnl), count + 1)
    texts = []
    for t, side, size, price, comm in zip(
        fills["datetime"],
        fills["side"],
        fills["size"],
        fills["price"],
        fills["commission"],
        strict=True,
    ):
        text = (
            f"<b>{html.escape(str(side))}</b> {size:g} @ {price:.6g}"
            f"<br>{t:%Y-%m-%d %H:%M}<br>commission {_money(float(comm))}"
        )
        hit = closed.pop((t, price), None)
        if hit is not None:
            pnl, count = hit
            trips = f" ({count} round trips)" if count > 1 else ""
            text += f"<br>P&L {_money(pnl)}{trips}"
        texts.append(text)
    return texts


def _trade_segments(trades: pd.DataFrame) -> tuple[list[Any], list[Any]]:
    xs: list[Any] = []
    ys: list[Any] = []
    for row in trades.itertuples(index=False):
        xs += [row.entry_time, row.exit_time, None]
        ys += [row.entry_price, row.exit_price, None]
    return xs, ys


# ----- the figure ----------------------------------------------------------------------------
def plot_result(
    result: Result,
    symbol: str | None = None,
    *,
    path: str | Path | None = None,
    show: bool = False,
    title: str | None = None,
    bars: Any = None,
    max_candles: int = MAX_CANDLES,
) -> go.Figure:
    """The run as one interactive plotly figure (see the module docstring for its panels).

    Args:
        result: the :class:`~bt_core.Result` of a run.
        symbol: whose price, fills and volume to draw; default the first of the run's symbols
            (the only one in a single-symbol run). An unknown name raises
            :class:`~bt_core.ParameterError` listing the symbols.
        path: write the figure there as one self-contained HTML file (plotly.js inlined,
            nothing fetched when it is opened, so it works offline).
        show: display the figure (inline in a notebook, else plotly's default renderer).
        title: figure title; default the strategy and the symbol.
        bars: the run's market data (anything :func:`~bt_core.load_data` accepts); default
            the data the Result carries.
        max_candles: runs longer than this are drawn as this many candles of equal runs of
            bars.

    Returns the ``plotly.graph_objects.Figure``. Needs plotly: ``pip install 'bt-core[plot]'``.
    """
    go, make_subplots = _plotly()
    if isinstance(max_candles, bool) or not isinstance(max_candles, int) or max_candles < 2:
        raise ParameterError(
            f"max_candles must be an integer >= 2, got {max_candles!r}", parameter="max_candles"
        )
    md = _market_data(result, bars)
    symbol = _pick_symbol(md, symbol)
    s = md.symbols.index(symbol)
    cash = _starting_cash(result)
    bucket = _buckets(md.n_bars, max_candles)

    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.025,
        row_heights=[0.5, 0.2, 0.15, 0.15],
    )

    bars_shown = _ohlcv(md, s, bucket)
    fig.add_trace(
        go.Candlestick(
            x=bars_shown.index,
            open=bars_shown["open"],
            high=bars_shown["high"],
            low=bars_shown["low"],
            close=bars_shown["close"],
            name=symbol,
            increasing={"line": {"color": _UP}},
            decreasing={"line": {"color": _DOWN}},
            showlegend=False,
        ),
        row=1,
        col=1,
    )

    trades = result.trades
    trades = trades[trades["symbol"] == symbol]
    for won, name, color in ((True, "winning trades", _UP), (False, "losing trades", _DOWN)):
        xs, ys = _trade_segments(trades[(trades["pnl"] > 0) == won])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=name,
                line={"color": color, "dash": "dash", "width": 1},
                hoverinfo="skip",
                connectgaps=False,
            ),
            row=1,
            col=1,
        )

    fills = result.fills
    fills = fills[fills["symbol"] == symbol]
    texts = np.array(_fill_texts(fills, trades), dtype=object)
    for side, marker, color in (("buy", "triangle-up", _UP), ("sell", "triangle-down", _DOWN)):
        mask = (fills["side"] == side).to_numpy()
        fig.add_trace(
            go.Scatter(
                x=fills["datetime"][mask],
                y=fills["price"][mask],
                mode="markers",
                name=side,
                marker={
                    "symbol": marker,
                    "size": 11,
                    "color": color,
                    "line": {"color": "#222", "width": 1},
                },
                text=texts[mask],
                hovertemplate="%{text}<extra></extra>",
            ),
            row=1,
            col=1,
        )

    equity = result.equity
    hold = buy_and_hold(md, cash)
    hold_name = "buy & hold" if len(md.symbols) == 1 else f"buy & hold ({len(md.symbols)} equal)"
    eq_shown, hold_shown = _line(equity, bucket, "last"), _line(hold, bucket, "last")
    fig.add_trace(
        go.Scatter(
            x=eq_shown.index,
            y=eq_shown.to_numpy(),
            mode="lines",
            name="equity",
            line={"color": _EQUITY, "width": 1.5},
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=hold_shown.index,
            y=hold_shown.to_numpy(),
            mode="lines",
            name=hold_name,
            line={"color": _HOLD, "width": 1, "dash": "dot"},
        ),
        row=2,
        col=1,
    )

    dd = _line(bt_analysis.underwater(equity) * 100.0, bucket, "min")
    fig.add_trace(
        go.Scatter(
            x=dd.index,
            y=dd.to_numpy(),
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": _DD, "width": 1},
            hovertemplate="%{y:.2f} %<extra>drawdown</extra>",
            showlegend=False,
        ),
        row=3,
        col=1,
    )

    up = (bars_shown["close"] >= bars_shown["open"]).to_numpy()
    fig.add_trace(
        go.Bar(
            x=bars_shown.index,
            y=bars_shown["volume"].to_numpy(),
            name="volume",
            marker={"color": np.where(up, _UP, _DOWN), "line": {"width": 0}},
            showlegend=False,
        ),
        row=4,
        col=1,
    )

    fig.update_xaxes(
        range=_x_range(md.index),
        rangeslider_visible=False,
        showspikes=True,
        spikemode="across",
    )
    for row, label in enumerate(("price", "equity", "drawdown %", "volume"), start=1):
        fig.update_yaxes(title_text=label, row=row, col=1)
    fig.update_layout(
        title={"text": html.escape(title) if title else _default_title(result, symbol, md)},
        height=900,
        template="plotly_white",
        hovermode="x",
        bargap=0,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
        margin={"l": 70, "r": 30, "t": 90, "b": 40},
    )

    if path is not None:
        _write_html(fig, Path(path))
    if show:
        fig.show()
    return fig


def _x_range(index: pd.DatetimeIndex) -> list[pd.Timestamp]:
    # plotly pads a date axis with candles and bars by weeks; half a bar on each side is enough.
    half = (index[-1] - index[0]) / max(2 * (len(index) - 1), 1)
    return [index[0] - half, index[-1] + half]


def _default_title(result: Result, symbol: str, md: MarketData) -> str:
    eq = result.equity
    total = eq.iloc[-1] / _starting_cash(result) - 1.0
    depth = float(bt_analysis.underwater(eq).min())
    others = f" (1 of {len(md.symbols)} symbols)" if len(md.symbols) > 1 else ""
    return (
        f"{html.escape(result.strategy)}: {html.escape(symbol)}{html.escape(others)}"
        f"<br><sup>{eq.index[0]:%Y-%m-%d} to {eq.index[-1]:%Y-%m-%d}, {len(eq):,} bars · "
        f"return {total * 100:.2f} % · max drawdown {depth * 100:.2f} % · "
        f"{len(result.trades):,} round trips</sup>"
    )


def _write_html(fig: go.Figure, path: Path) -> None:
    text = fig.to_html(
        full_html=True,
        include_plotlyjs=True,  # inlined: the file opens offline, no CDN
        config={"displaylogo": False, "responsive": True, "scrollZoom": True},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees a half-written page


# ----- the statistics table ------------------------------------------------------------------
#: (stats key, label, how to show it) for :func:`result_html`.
_KEY_STATS: tuple[tuple[str, str, str], ...] = (
    ("initial_equity", "initial equity", "money"),
    ("final_equity", "final equity", "money"),
    ("total_return", "total return", "pct"),
    ("buy_hold_return", "buy & hold return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("annual_volatility", "annual volatility", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_duration_days", "longest drawdown (days)", "ratio"),
    ("exposure", "exposure", "pct"),
    ("n_trades", "round trips", "int"),
    ("win_rate", "win rate", "pct"),
    ("profit_factor", "profit factor", "ratio"),
    ("total_commission", "commission paid", "money"),
)


def _show(value: Any, how: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if how == "pct":
        return f"{value * 100:,.2f} %"
    if how == "money":
        return f"{value:,.2f}"
    if how == "int":
        return f"{int(value):,}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _stats_of(result: Result) -> dict[str, Any]:
    try:
        return dict(result.stats)
    except ValueError:
        # A Result without engine output has no trade tables: show what equity alone gives.
        return dict(bt_analysis.performance_metrics(result.equity))


def result_html(result: Result) -> str:
    """A small HTML table of the run's key statistics (for ``Result._repr_html_``: a notebook
    shows it when a Result is the value of a cell). Needs no plotly."""
    stats = _stats_of(result)
    eq = result.equity
    span = (
        f"{eq.index[0]:%Y-%m-%d} to {eq.index[-1]:%Y-%m-%d}, {len(eq):,} bars"
        if len(eq)
        else "no bars"
    )
    rows = [
        f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
        f"<td style='text-align:right'>{html.escape(_show(stats.get(key), how))}</td></tr>"
        for key, label, how in _KEY_STATS
        if key in stats
    ]
    params = ", ".join(f"{k}={v!r}" for k, v in result.params.items())
    caption = html.escape(f"{result.strategy}({params})" if params else result.strategy)
    return (
        "<table class='bt-result' style='border-collapse:collapse'>"
        f"<caption style='text-align:left'><b>{caption}</b><br>{html.escape(span)}</caption>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
