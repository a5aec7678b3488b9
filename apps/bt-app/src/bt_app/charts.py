"""Formatting and plotly figures for every page (one place, so pages look alike).

Inputs are plain pandas objects as the client returns them; nothing here talks to the server
or to Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: Statistics that are ratios of money or time: shown as percentages.
PERCENT_STATS = frozenset(
    {
        "total_return",
        "cagr",
        "annual_volatility",
        "max_drawdown",
        "var_95",
        "cvar_95",
        "exposure",
        "time_in_market",
        "win_rate",
        "avg_return_pct",
        "buy_hold_return",
        "benchmark_total_return",
        "rejected_share",
        "risk_free",
        "alpha",
        "spread",
    }
)
MONEY_STATS = frozenset(
    {
        "initial_equity",
        "final_equity",
        "gross_profit",
        "gross_loss",
        "net_pnl",
        "total_commission",
        "expectancy",
        "avg_win",
        "avg_loss",
        "best_trade",
        "worst_trade",
    }
)
#: The statistics a table of runs shows, in this order.
KEY_STATS = ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate", "n_trades")


_LABELS = {"cagr": "CAGR", "n_trades": "Trades", "var_95": "VaR 95%", "cvar_95": "CVaR 95%"}


def label(name: str) -> str:
    """``max_drawdown`` -> ``Max drawdown``."""
    if name in _LABELS:
        return _LABELS[name]
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def fmt_stat(name: str, value: Any) -> str:
    """One statistic as text: percentages for ratios, thousands separators for money."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) and name not in PERCENT_STATS:
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "–" if math.isnan(v) else ("∞" if v > 0 else "-∞")
        if name in PERCENT_STATS:
            return f"{v:.2%}"
        if name in MONEY_STATS:
            return f"{v:,.2f}"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.3f}" if abs(v) >= 0.001 or v == 0 else f"{v:.3g}"
    return str(value)


def stats_table(stats: Mapping[str, Any]) -> pd.DataFrame:
    """A two-column (statistic, value) frame of formatted statistics."""
    rows = [(label(k), fmt_stat(k, v)) for k, v in stats.items()]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def stats_side_by_side(named: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Statistics of several runs as columns (formatted), one row per statistic."""
    keys: list[str] = []
    for stats in named.values():
        keys.extend(k for k in stats if k not in keys)
    data = {run: [fmt_stat(k, stats.get(k)) for k in keys] for run, stats in named.items()}
    return pd.DataFrame(data, index=[label(k) for k in keys])


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"config": {"cash": 1}}`` -> ``{"config.cash": 1}``."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def config_differences(named: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The settings (strategy, params, config, data) that differ between runs."""
    flat = {run: flatten(spec) for run, spec in named.items()}
    keys: list[str] = []
    for f in flat.values():
        keys.extend(k for k in f if k not in keys)
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1]
    return pd.DataFrame(
        {run: [_plain(f.get(k)) for k in differing] for run, f in flat.items()}, index=differing
    )


def _plain(v: Any) -> str:
    return "–" if v is None else str(v)


def drawdown(equity: pd.Series) -> pd.Series:
    """Underwater curve: equity / running peak - 1 (0 at new highs, negative below)."""
    return equity / equity.cummax() - 1.0


def rebase(equity: pd.Series, to: float = 1.0) -> pd.Series:
    first = equity.dropna()
    return equity / first.iloc[0] * to if len(first) else equity


def equity_figure(
    equity: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    title: str = "Equity",
) -> go.Figure:
    """Equity (and a benchmark rebased to the same start) over the underwater drawdown."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.04,
        subplot_titles=(title, "Drawdown"),
    )
    fig.add_trace(go.Scatter(x=equity.index, y=equity, name="strategy", mode="lines"), 1, 1)
    if benchmark is not None and len(benchmark):
        bench = rebase(benchmark.reindex(equity.index, method="ffill"), float(equity.iloc[0]))
        fig.add_trace(
            go.Scatter(
                x=bench.index, y=bench, name="buy & hold", mode="lines", line={"dash": "dot"}
            ),
            1,
            1,
        )
    dd = drawdown(equity)
    fig.add_trace(go.Scatter(x=dd.index, y=dd, name="drawdown", fill="tozeroy", mode="lines"), 2, 1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(height=520, margin={"t": 40, "b": 20}, legend={"orientation": "h"})
    return fig


def price_figure(bars: pd.DataFrame, trades: pd.DataFrame | None, symbol: str) -> go.Figure:
    """Close (candles when OHLC is there) with entry ▲ and exit ▼ markers of ``symbol``."""
    x = pd.DatetimeIndex(bars["datetime"])
    fig = go.Figure()
    if {"open", "high", "low"} <= set(bars.columns) and len(bars) <= 3000:
        fig.add_trace(
            go.Candlestick(
                x=x,
                open=bars["open"],
                high=bars["high"],
                low=bars["low"],
                close=bars["close"],
                name=symbol,
            )
        )
    else:
        fig.add_trace(go.Scatter(x=x, y=bars["close"], name=symbol, mode="lines"))
    if trades is not None and len(trades):
        mine = trades[trades["symbol"].astype(str) == symbol] if "symbol" in trades else trades
        for side, (time_col, price_col, marker, color) in {
            "entry": ("entry_time", "entry_price", "triangle-up", "#2ca02c"),
            "exit": ("exit_time", "exit_price", "triangle-down", "#d62728"),
        }.items():
            if time_col in mine and price_col in mine:
                fig.add_trace(
                    go.Scatter(
                        x=pd.to_datetime(mine[time_col]),
                        y=mine[price_col],
                        mode="markers",
                        name=side,
                        marker={"symbol": marker, "size": 10, "color": color},
                    )
                )
    fig.update_layout(
        height=420, margin={"t": 30, "b": 20}, xaxis_rangeslider_visible=False, title=symbol
    )
    return fig


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Year x month table of compounded returns (decimal) from an equity curve."""
    eq = equity.dropna()
    if eq.empty:
        return pd.DataFrame()
    idx = pd.DatetimeIndex(eq.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    month_end = pd.Series(eq.to_numpy(), index=idx).resample("ME").last().dropna()
    start = float(eq.iloc[0])
    rets = month_end.pct_change()
    rets.iloc[0] = month_end.iloc[0] / start - 1.0
    when = pd.DatetimeIndex(rets.index)
    table = pd.DataFrame({"year": when.year, "month": when.month, "ret": rets.to_numpy()})
    out = table.pivot(index="year", columns="month", values="ret")
    return out.reindex(columns=range(1, 13))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_heatmap(table: pd.DataFrame) -> go.Figure:
    z = table.to_numpy(dtype=float)
    text = [[("" if np.isnan(v) else f"{v:.1%}") for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(_MONTHS),
            y=[str(y) for y in table.index],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            colorbar={"tickformat": ".0%"},
        )
    )
    fig.update_layout(height=80 + 40 * max(1, len(table)), margin={"t": 30, "b": 20})
    return fig


def overlay_figure(curves: Mapping[str, pd.Series], *, title: str = "Equity, rebased") -> go.Figure:
    """Several equity curves rebased to 1 at their first point."""
    fig = go.Figure()
    for name, eq in curves.items():
        r = rebase(eq)
        fig.add_trace(go.Scatter(x=r.index, y=r, name=name, mode="lines"))
    fig.update_layout(height=440, title=title, margin={"t": 40, "b": 20})
    return fig


def trials_heatmap(trials: pd.DataFrame, x: str, y: str, score: str = "score") -> go.Figure:
    """Mean score over two parameters (other parameters averaged out)."""
    grid = trials.pivot_table(index=y, columns=x, values=score, aggfunc="mean")
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(dtype=float),
            x=[str(v) for v in grid.columns],
            y=[str(v) for v in grid.index],
            colorscale="Viridis",
            colorbar={"title": score},
        )
    )
    fig.update_layout(
        height=420, xaxis_title=x, yaxis_title=y, margin={"t": 30, "b": 40}, title=score
    )
    return fig


def parallel_figure(trials: pd.DataFrame, params: Sequence[str], score: str = "score") -> go.Figure:
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(trials[p])]
    dims = [{"label": p, "values": trials[p].astype(float)} for p in numeric]
    dims.append({"label": score, "values": trials[score].astype(float)})
    fig = go.Figure(
        go.Parcoords(
            line={"color": trials[score].astype(float), "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(height=420, margin={"t": 40, "b": 20})
    return fig


def ic_figure(ic: pd.DataFrame, rank_ic: pd.DataFrame, column: str, window: int = 20) -> go.Figure:
    """IC and rank IC per date for one horizon, with a rolling mean of the rank IC."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=ic.index, y=ic[column], name="IC", opacity=0.5))
    fig.add_trace(go.Scatter(x=rank_ic.index, y=rank_ic[column], name="rank IC", mode="lines"))
    rolling = rank_ic[column].rolling(window, min_periods=max(2, window // 4)).mean()
    fig.add_trace(
        go.Scatter(x=rolling.index, y=rolling, name=f"rank IC, {window}-date mean", mode="lines")
    )
    fig.update_layout(height=380, title=f"IC over time ({column})", margin={"t": 40, "b": 20})
    return fig


def quantile_figure(mean: pd.DataFrame, std_err: pd.DataFrame | None = None) -> go.Figure:
    """Mean forward return per bucket (bars per horizon, error bars from the std error)."""
    fig = go.Figure()
    for c in mean.columns:
        err = None
        if std_err is not None and c in std_err:
            err = {"type": "data", "array": std_err[c].to_numpy(dtype=float)}
        fig.add_trace(go.Bar(x=[str(q) for q in mean.index], y=mean[c], name=c, error_y=err))
    fig.update_layout(
        height=360,
        barmode="group",
        xaxis_title="quantile",
        yaxis_tickformat=".2%",
        title="Mean forward return by quantile",
        margin={"t": 40, "b": 40},
    )
    return fig


def lines_figure(frame: pd.DataFrame, *, title: str, percent: bool = False) -> go.Figure:
    fig = go.Figure()
    for c in frame.columns:
        fig.add_trace(go.Scatter(x=frame.index, y=frame[c], name=str(c), mode="lines"))
    fig.update_layout(height=340, title=title, margin={"t": 40, "b": 20})
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def decay_figure(decay: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Bar(x=decay.index, y=decay["ic_mean"], name="mean rank IC"))
    fig.update_layout(
        height=320,
        title="IC decay (mean rank IC by horizon)",
        xaxis_title="horizon (bars)",
        margin={"t": 40, "b": 40},
    )
    return fig


__all__ = [
    "KEY_STATS",
    "PERCENT_STATS",
    "config_differences",
    "decay_figure",
    "drawdown",
    "equity_figure",
    "fmt_stat",
    "ic_figure",
    "label",
    "lines_figure",
    "monthly_heatmap",
    "monthly_returns",
    "overlay_figure",
    "parallel_figure",
    "price_figure",
    "quantile_figure",
    "rebase",
    "stats_side_by_side",
    "stats_table",
    "trials_heatmap",
]
