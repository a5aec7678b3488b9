"""The strategy tear sheet: one self-contained HTML file (plotly.js inlined, no network).

plotly is an optional dependency (``pip install 'bt-analysis[report]'``); it is imported only
when a report is built, so the metric functions work without it.
"""

from __future__ import annotations

import html
import math
import pathlib
from typing import Any, cast

import numpy as np
import pandas as pd

from bt_analysis._validation import AnalysisInputError, check_equity
from bt_analysis.drawdown import drawdown_segments, underwater
from bt_analysis.metrics import METRIC_KEYS, MetricValue, performance_metrics
from bt_analysis.trades import trade_stats_by_symbol

__all__ = ["monthly_returns", "report", "report_html"]

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# Metrics shown as percentages in the table (they are fractions in the dict).
_PERCENT_KEYS = {
    "total_return",
    "cagr",
    "annual_volatility",
    "max_drawdown",
    "var_95",
    "cvar_95",
    "risk_free",
    "alpha",
    "benchmark_total_return",
    "exposure",
    "time_in_market",
    "win_rate",
    "avg_return_pct",
}


def _require_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - exercised in the wheel-alone test
        raise ImportError(
            "bt_analysis.report needs plotly, which is an optional dependency: "
            "pip install 'bt-analysis[report]'"
        ) from exc
    return go


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month: rows are years, columns months 1..12 (fractions,
    NaN where the curve has no bar). A month's return runs from the last equity of the previous
    month (for the first month, the first equity value) to the month's last equity. Months are
    taken in the index's time zone."""
    series, values = check_equity(equity)
    index = cast(pd.DatetimeIndex, series.index)
    keys = pd.MultiIndex.from_arrays([index.year, index.month], names=["year", "month"])
    last = pd.Series(values, index=keys).groupby(level=[0, 1], sort=True).last()
    base = last.shift(1)
    base.iloc[0] = values[0]
    table = (last / base - 1.0).unstack("month")
    return table.reindex(columns=range(1, 13))


def _fmt(key: str, value: MetricValue) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return _short_time(value)
    if isinstance(value, (bool, int)):
        return f"{value:,}"
    if key in _PERCENT_KEYS:
        return f"{value * 100:,.2f} %"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _short_time(iso: str) -> str:
    # Daily bars stamped at midnight UTC read better as plain dates.
    for suffix in ("T00:00:00+00:00", "T00:00:00"):
        if iso.endswith(suffix):
            return iso[: -len(suffix)]
    return iso


def _table(frame: pd.DataFrame, *, caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="data">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cell(value: object) -> str:
    if value is None or value is pd.NaT:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.4f}"
    if isinstance(value, pd.Timestamp):
        return _short_time(value.isoformat())
    if isinstance(value, pd.Timedelta):
        return str(value)
    return str(value)


def _metrics_table(metrics: dict[str, MetricValue]) -> str:
    rows = [(k, _fmt(k, metrics[k])) for k in METRIC_KEYS if metrics.get(k) is not None]
    half = (len(rows) + 1) // 2
    cols = []
    for part in (rows[:half], rows[half:]):
        trs = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in part
        )
        cols.append(f'<table class="metrics">{trs}</table>')
    return f'<div class="metrics-grid">{"".join(cols)}</div>'


def _thin(series: pd.Series, how: str, max_points: int) -> pd.Series:
    """At most ``max_points`` points for plotting: equal-count buckets of consecutive bars, each
    shown at its last timestamp with the bucket's ``how`` ("last" or "min") value. A long
    minute-bar run keeps a readable, small page; the statistics use every bar."""
    n = len(series)
    if n <= max_points:
        return series
    bucket = np.arange(n) * max_points // n
    grouped = pd.Series(series.to_numpy(), index=bucket).groupby(level=0)
    values = grouped.min() if how == "min" else grouped.last()
    stamps = series.index[np.flatnonzero(np.diff(np.append(bucket, max_points)))]
    return pd.Series(values.to_numpy(), index=stamps)


def _rolling_window(periods_per_year: float, n_returns: int) -> int:
    # Half a year of bars (126 for daily data), never more than the data, at least 2.
    return int(max(2, min(round(periods_per_year / 2), n_returns)))


def report_html(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    benchmark: pd.Series | None = None,
    title: str = "Strategy tear sheet",
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    exposure: pd.Series | None = None,
    max_trades: int = 500,
    max_points: int = 5000,
) -> str:
    """The tear sheet as one HTML string (see :func:`report`)."""
    go = _require_plotly()
    from plotly.offline import get_plotlyjs
    from plotly.subplots import make_subplots

    series, values = check_equity(equity)
    if max_trades < 0:
        raise AnalysisInputError(f"max_trades must be >= 0, got {max_trades}")
    if max_points < 2:
        raise AnalysisInputError(f"max_points must be >= 2, got {max_points}")
    metrics = performance_metrics(
        series,
        trades,
        benchmark=benchmark,
        exposure=exposure,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
    )
    ppy = float(metrics["periods_per_year"])  # type: ignore[arg-type]
    returns = pd.Series(values[1:] / values[:-1] - 1.0, index=series.index[1:])
    figures: list[tuple[str, Any]] = []

    shown = _thin(series, "last", max_points)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=shown.index, y=shown.to_numpy(), name="strategy", mode="lines"))
    if benchmark is not None:
        common = series.index.intersection(benchmark.index)
        bench = benchmark.loc[common].astype(np.float64)
        scaled = _thin(bench / bench.iloc[0] * float(series.loc[common[0]]), "last", max_points)
        fig.add_trace(
            go.Scatter(
                x=scaled.index, y=scaled.to_numpy(), name="benchmark (rebased)", mode="lines"
            )
        )
    fig.update_layout(yaxis_title="equity")
    figures.append(("Equity" + (" vs benchmark" if benchmark is not None else ""), fig))

    uw = _thin(underwater(series) * 100, "min", max_points)
    fig = go.Figure(go.Scatter(x=uw.index, y=uw, fill="tozeroy", mode="lines", name="drawdown"))
    fig.update_layout(yaxis_title="drawdown (%)", showlegend=False)
    figures.append(("Underwater (drawdown from the running peak)", fig))

    monthly = monthly_returns(series) * 100
    z = monthly.to_numpy(dtype=np.float64)
    text = [["" if math.isnan(v) else f"{v:.1f}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=[[None if math.isnan(v) else float(v) for v in row] for row in z],
            x=_MONTHS,
            y=[str(y) for y in monthly.index],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            colorbar={"title": "%"},
        )
    )
    fig.update_layout(yaxis={"type": "category", "autorange": "reversed"})
    figures.append(("Monthly returns (%)", fig))

    if returns.size >= 2:
        window = _rolling_window(ppy, returns.size)
        roll = returns.rolling(window)
        mean, std = roll.mean(), roll.std(ddof=1)
        rolling_sharpe = (mean / std.where(std > 0)) * math.sqrt(ppy)
        rolling_vol = std * math.sqrt(ppy) * 100
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
        rolling_sharpe = _thin(rolling_sharpe, "last", max_points)
        rolling_vol = _thin(rolling_vol, "last", max_points)
        fig.add_trace(
            go.Scatter(x=rolling_sharpe.index, y=rolling_sharpe.to_numpy(), name="Sharpe"),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(x=rolling_vol.index, y=rolling_vol.to_numpy(), name="volatility"),
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text="Sharpe", row=1, col=1)
        fig.update_yaxes(title_text="ann. vol (%)", row=2, col=1)
        figures.append((f"Rolling Sharpe and volatility ({window} bars)", fig))

    if returns.size >= 1:
        # Binned here (not by plotly) so a million minute returns do not go into the page.
        counts, edges = np.histogram(returns.to_numpy() * 100, bins=60)
        fig = go.Figure(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts,
                width=np.diff(edges),
                name="returns",
            )
        )
        for key, label in (("var_95", "VaR 95%"), ("cvar_95", "CVaR 95%")):
            val = metrics.get(key)
            if isinstance(val, float):
                fig.add_vline(x=val * 100, line_dash="dash", annotation_text=label)
        fig.update_layout(xaxis_title="return per bar (%)", yaxis_title="bars", showlegend=False)
        figures.append(("Return distribution", fig))

    config = {"displaylogo": False, "responsive": True}
    blocks = []
    for heading, figure in figures:
        figure.update_layout(height=360, margin={"l": 60, "r": 20, "t": 20, "b": 40})
        blocks.append(
            f"<section><h2>{html.escape(heading)}</h2>"
            + figure.to_html(full_html=False, include_plotlyjs=False, config=config)
            + "</section>"
        )

    segments = drawdown_segments(series)
    if len(segments):
        top = segments.nsmallest(5, "depth").copy()
        top["depth"] = top["depth"] * 100
        top = top.rename(columns={"depth": "depth (%)"})
        blocks.append(
            "<section><h2>Worst drawdowns</h2>"
            + _table(
                top[
                    [
                        "peak",
                        "valley",
                        "recovery",
                        "depth (%)",
                        "length_bars",
                        "length_days",
                    ]
                ]
            )
            + "</section>"
        )
    if trades is not None and len(trades):
        if "symbol" in trades.columns:
            by_symbol = trade_stats_by_symbol(trades).reset_index()
            keep = ["symbol", "n_trades", "win_rate", "net_pnl", "profit_factor", "expectancy"]
            blocks.append(
                "<section><h2>Trades by symbol</h2>" + _table(by_symbol[keep]) + "</section>"
            )
        first_trades = trades.head(max_trades)
        note = (
            f"first {len(first_trades)} of {len(trades)} trades"
            if len(first_trades) < len(trades)
            else ""
        )
        blocks.append(
            "<section><h2>Trades</h2>" + _table(first_trades, caption=note) + "</section>"
        )

    span = (
        f"{_short_time(str(metrics['start']))} → {_short_time(str(metrics['end']))}, "
        f"{metrics['n_bars']:,} bars"
    )
    return _PAGE.format(
        title=html.escape(title),
        subtitle=html.escape(span),
        plotlyjs=get_plotlyjs(),
        metrics=_metrics_table(metrics),
        body="\n".join(blocks),
    )


def report(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    benchmark: pd.Series | None = None,
    path: str | pathlib.Path = "report.html",
    title: str = "Strategy tear sheet",
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    exposure: pd.Series | None = None,
    max_trades: int = 500,
    max_points: int = 5000,
) -> pathlib.Path:
    """Write the strategy tear sheet to ``path`` and return the path.

    One self-contained HTML file (plotly.js is inlined, nothing is fetched when it is opened):
    the metrics table of :func:`bt_analysis.performance_metrics`, equity vs the benchmark
    (rebased to the strategy's equity at the first common timestamp), the underwater drawdown
    curve, a monthly returns heatmap, rolling Sharpe and volatility over half a year of bars,
    the distribution of per-bar returns with VaR/CVaR, the five worst drawdowns, trade
    statistics per symbol and the trades table (first ``max_trades`` rows). Curves longer than
    ``max_points`` bars are thinned for plotting only (the last value of each of
    ``max_points`` equal runs of bars; the underwater curve keeps each run's minimum).

    Needs plotly (``pip install 'bt-analysis[report]'``); raises ImportError saying so if it is
    missing. Arguments are those of :func:`bt_analysis.performance_metrics`.
    """
    text = report_html(
        equity,
        trades,
        benchmark=benchmark,
        title=title,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        exposure=exposure,
        max_trades=max_trades,
        max_points=max_points,
    )
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 16px 24px; color: #222; }}
h1 {{ margin-bottom: 0; }}
.subtitle {{ color: #666; margin-top: 4px; }}
h2 {{ font-size: 1.1em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }}
.metrics-grid {{ display: flex; gap: 32px; flex-wrap: wrap; }}
table.metrics th {{ text-align: left; font-weight: normal; color: #555; padding: 2px 16px 2px 0; }}
table.metrics td {{ text-align: right; font-variant-numeric: tabular-nums; padding: 2px 0; }}
table.data {{ border-collapse: collapse; font-size: 0.85em; width: 100%; }}
table.data th, table.data td {{ border-bottom: 1px solid #eee; padding: 3px 8px;
                                text-align: right; }}
table.data th {{ background: #f6f6f6; }}
table.data caption {{ caption-side: bottom; color: #666; text-align: left; }}
</style>
<script type="text/javascript">{plotlyjs}</script>
</head>
<body>
<h1>{title}</h1>
<p class="subtitle">{subtitle}</p>
<section><h2>Performance metrics</h2>{metrics}</section>
{body}
</body>
</html>
"""
