"""Self-contained HTML factor tear sheet (plotly, optional extra ``report``)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_analysis.factor.backtester import FactorBacktestResult
from bt_analysis.factor.core import FactorData, period_column
from bt_analysis.factor.stats import (
    factor_ic,
    factor_rank_autocorrelation,
    ic_summary,
    mean_return_by_quantile,
    quantile_spread,
    quantile_turnover,
)

__all__ = ["factor_tear_sheet"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:13px;margin:8px 0}
table.t th,table.t td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.t th{background:#f4f4f4} .note{color:#666;font-size:12px}
"""


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - exercised only without plotly
        raise ImportError(
            "factor_tear_sheet needs plotly: pip install 'bt-analysis[report]'"
        ) from exc
    return go


def _table(df: pd.DataFrame, fmt: str = "{:.4f}") -> str:
    def cell(v: Any, col: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return ""
            # p-values span many orders of magnitude: scientific notation
            return f"{v:.2e}" if col == "p_value" else fmt.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or "", *df.columns])
    body = "".join(
        "<tr><th>"
        + html.escape(str(i))
        + "</th>"
        + "".join(f"<td>{cell(v, c)}</td>" for v, c in zip(row, df.columns, strict=True))
        + "</tr>"
        # object dtype keeps integer columns (counts) as integers
        for i, row in zip(df.index, df.astype(object).to_numpy(), strict=True)
    )
    return f'<table class="t"><tr>{head}</tr>{body}</table>'


def factor_tear_sheet(
    fd: FactorData,
    path: str | Path | None = None,
    *,
    title: str = "Factor tear sheet",
    backtest: FactorBacktestResult | None = None,
    rolling: int = 21,
) -> str:
    """Build a one-file HTML factor report; write it to ``path`` if given.

    Sections: summary tables (rank IC and IC statistics per horizon, mean
    demeaned forward return by quantile with standard errors, spread, mean
    turnover); charts: rank IC per date with its ``rolling``-date mean and a
    histogram (shortest horizon), mean return by quantile (bps, every
    horizon), cumulative returns by quantile (from ``backtest`` if given,
    else from the 1-bar forward returns when ``1`` is among the horizons),
    turnover of the top and bottom quantiles and the factor rank
    autocorrelation.

    plotly.js is inlined, so the file needs no network. Returns the HTML.
    Raises ImportError with an install hint when plotly is missing.
    """
    go = _plotly()
    col = period_column(fd.periods[0])
    ric = factor_ic(fd, "spearman")
    pic = factor_ic(fd, "pearson")
    mean, se = mean_return_by_quantile(fd)
    spread, spread_se = quantile_spread(mean, se)
    turnover = quantile_turnover(fd)
    autocorr = factor_rank_autocorrelation(fd)

    figs: list[tuple[str, Any]] = []
    s = ric[col]
    f = go.Figure()
    f.add_bar(x=s.index, y=s.to_numpy(), name=f"rank IC {col}", marker_color="#4c78a8")
    f.add_scatter(
        x=s.index,
        y=s.rolling(rolling, min_periods=1).mean().to_numpy(),
        name=f"{rolling}-date mean",
        line={"color": "#e45756"},
    )
    f.update_layout(title=f"Rank IC per date ({col})", height=340)
    figs.append(("ic_series", f))
    f = go.Figure()
    f.add_histogram(x=s.dropna().to_numpy(), nbinsx=40, marker_color="#4c78a8")
    f.update_layout(title=f"Rank IC distribution ({col})", height=300, bargap=0.05)
    figs.append(("ic_hist", f))
    f = go.Figure()
    for c in mean.columns:
        f.add_bar(
            x=[f"Q{q}" for q in mean.index],
            y=(mean[c] * 1e4).to_numpy(),
            error_y={"type": "data", "array": (se[c] * 1e4).to_numpy()},
            name=c,
        )
    f.update_layout(
        title="Mean demeaned forward return by quantile (bps)", barmode="group", height=340
    )
    figs.append(("quantile_returns", f))
    cum = None
    if backtest is not None:
        cum = backtest.equity
        cum_note = "quantile portfolios from the backtest (net of costs)"
    elif 1 in fd.periods:
        by_date, _ = mean_return_by_quantile(fd, by_date=True, demeaned=False)
        r1 = by_date[period_column(1)].unstack("factor_quantile").fillna(0.0)
        cum = (1.0 + r1).cumprod()
        cum.columns = [f"Q{q}" for q in cum.columns]
        cum_note = "daily-rebalanced equal-weight quantiles from 1-bar forward returns, no costs"
    if cum is not None:
        f = go.Figure()
        for c in cum.columns:
            f.add_scatter(x=cum.index, y=cum[c].to_numpy(), name=str(c), mode="lines")
        f.update_layout(title=f"Cumulative return by quantile ({cum_note})", height=380)
        figs.append(("cumulative", f))
    f = go.Figure()
    for q in (turnover.columns.min(), turnover.columns.max()):
        f.add_scatter(
            x=turnover.index, y=turnover[q].to_numpy(), name=f"Q{q} turnover", mode="lines"
        )
    f.add_scatter(
        x=autocorr.index, y=autocorr.to_numpy(), name="rank autocorrelation", mode="lines"
    )
    f.update_layout(title="Turnover (1 row apart) and factor rank autocorrelation", height=340)
    figs.append(("turnover", f))

    mean_tbl = (mean * 1e4).add_suffix(" mean bps").join((se * 1e4).add_suffix(" se bps"))
    spread_tbl = pd.DataFrame(
        {
            "spread bps": spread * 1e4,
            "se bps": (spread_se if spread_se is not None else spread * np.nan) * 1e4,
        }
    )
    spread_tbl.index.name = "period"
    to_tbl = turnover.mean().to_frame("mean turnover")
    to_tbl.index = [f"Q{q}" for q in to_tbl.index]
    to_tbl.index.name = "quantile"
    dropped = pd.DataFrame({"count": pd.Series(fd.dropped, dtype=float)})
    dropped.index.name = "observations"

    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p class='note'>{len(fd.dates)} dates x {len(fd.assets)} assets, "
        f"{fd.n_quantiles} quantiles, horizons {', '.join(fd.columns)} (bars).</p>",
        "<h2>Rank IC (Spearman)</h2>",
        _table(ic_summary(ric)),
        "<h2>IC (Pearson)</h2>",
        _table(ic_summary(pic)),
        "<h2>Mean forward return by quantile (demeaned per date)</h2>",
        _table(mean_tbl, "{:.2f}"),
        "<h2>Top minus bottom spread</h2>",
        _table(spread_tbl, "{:.2f}"),
        "<h2>Turnover</h2>",
        _table(to_tbl),
    ]
    if backtest is not None:
        parts += ["<h2>Quantile portfolio backtest</h2>", _table(backtest.stats())]
    parts += ["<h2>Data</h2>", _table(dropped, "{:.0f}")]
    first = True
    for name, fig in figs:
        parts.append(
            f"<div id='{name}'>"
            + fig.to_html(full_html=False, include_plotlyjs="inline" if first else False)
            + "</div>"
        )
        first = False
    parts.append("</body></html>")
    out = "\n".join(parts)
    if path is not None:
        Path(path).write_text(out, encoding="utf-8")
    return out
