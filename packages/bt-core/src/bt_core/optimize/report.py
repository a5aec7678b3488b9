"""The HTML report of a parameter search (plotly): the best sets, a heatmap of the score for
two parameters (a line for one, parallel coordinates for more), the walk-forward table and
stitched out-of-sample equity, and the overfitting statistics. One self-contained file."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bt_core._optional import require
from bt_core.optimize.result import score_columns

if TYPE_CHECKING:
    from bt_core.optimize.result import OptimizeResult
    from bt_core.optimize.walkforward import WalkForwardResult

_SHOWN = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "n_trades", "win_rate")


def _plotly() -> Any:
    return require("plotly.graph_objects", extra="report", feature="the optimizer's report")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in df.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols) + "</tr>"
        for _, r in df[cols].iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _space_figure(go: Any, res: OptimizeResult, score: str) -> Any:
    ok = res.table[res.table["error"].isna()]
    # Parameters held at one value say nothing about the score: only the varied ones plot.
    names = [
        n for n in res.param_names if pd.api.types.is_numeric_dtype(ok[n]) and ok[n].nunique() > 1
    ]
    if len(names) == 2:
        pivot = ok.pivot_table(index=names[1], columns=names[0], values=score, aggfunc="max")
        fig = go.Figure(
            go.Heatmap(
                z=pivot.to_numpy(),
                x=pivot.columns.tolist(),
                y=pivot.index.tolist(),
                colorscale="Viridis",
                colorbar={"title": score},
            )
        )
        fig.update_layout(
            title=f"{score} by {names[0]} and {names[1]}",
            xaxis_title=names[0],
            yaxis_title=names[1],
        )
        return fig
    if len(names) == 1:
        s = ok.sort_values(names[0])
        fig = go.Figure(go.Scatter(x=s[names[0]], y=s[score], mode="lines+markers"))
        fig.update_layout(title=f"{score} by {names[0]}", xaxis_title=names[0], yaxis_title=score)
        return fig
    if not names:
        return None
    dims = [{"label": n, "values": ok[n]} for n in names]
    dims.append({"label": score, "values": ok[score]})
    fig = go.Figure(
        go.Parcoords(
            line={"color": ok[score], "colorscale": "Viridis", "showscale": True}, dimensions=dims
        )
    )
    fig.update_layout(title=f"{score} over the parameters (parallel coordinates)")
    return fig


def write_report(
    res: OptimizeResult,
    path: str | Path,
    *,
    walk_forward: WalkForwardResult | None = None,
    title: str | None = None,
) -> Path:
    go = _plotly()
    score = score_columns(res.objectives)[0]
    parts: list[str] = []
    figs: list[Any] = []
    heading = title or f"Parameter search ({res.method}, {res.n_trials} trials)"
    parts.append(f"<h1>{html.escape(heading)}</h1>")
    objs = ", ".join(f"{'max' if o.maximize else 'min'} {o.name}" for o in res.objectives)
    parts.append(
        f"<p>Objective: {html.escape(objs)}. Backend: {html.escape(res.backend)}. "
        f"Failed trials: {res.n_failed}. Excluded by the constraint: {res.n_infeasible}."
        f"{' Interrupted: the table holds what finished.' if res.interrupted else ''}</p>"
    )
    parts.append("<h2>Best parameter sets</h2>")
    parts.append(_table(res.table.head(20), ["trial", *res.param_names, score, *_SHOWN, "error"]))
    fig = _space_figure(go, res, score)
    if fig is not None:
        figs.append(fig)
        parts.append("{fig0}")
    parts.append("<h2>Overfitting</h2>")
    o = res.overfitting()
    rows = [
        ("Deflated Sharpe ratio (Bailey & López de Prado 2014)", o.get("deflated_sharpe")),
        ("  selected Sharpe ratio per bar", o.get("sharpe_per_bar")),
        ("  expected max Sharpe of the trials under noise", o.get("expected_max_sharpe")),
        (
            "  trials, variance of their Sharpe ratios",
            f"{o.get('n_trials')}, {_fmt(o.get('var_sharpe'))}",
        ),
        (
            "  skew, kurtosis (raw) of the selected returns",
            f"{_fmt(o.get('skew'))}, {_fmt(o.get('kurtosis'))}",
        ),
        (
            "Probability of backtest overfitting (CSCV; Bailey, Borwein, López de Prado & Zhu)",
            o.get("pbo"),
        ),
        ("  probability of an out-of-sample loss of the in-sample best", o.get("prob_oos_loss")),
        ("  blocks, splits", f"{o.get('cscv_blocks')}, {o.get('cscv_splits')}"),
    ]
    parts.append(
        "<table>"
        + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v) if not isinstance(v, str) else v}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )
    for k in ("deflated_sharpe_error", "pbo_error"):
        if k in o:
            parts.append(f"<p>{html.escape(o[k])}</p>")
    if walk_forward is not None:
        parts.append("<h2>Walk-forward</h2>")
        parts.append(
            f"<p>Walk-forward efficiency (mean out-of-sample / in-sample score): "
            f"{_fmt(walk_forward.efficiency)}</p>"
        )
        t = walk_forward.table
        parts.append(_table(t, list(t.columns)))
        eq = walk_forward.oos_equity
        if len(eq):
            f2 = go.Figure(
                go.Scatter(x=eq.index, y=eq.to_numpy(), mode="lines", name="out-of-sample equity")
            )
            f2.update_layout(title="Stitched out-of-sample equity", yaxis_title="equity")
            figs.append(f2)
            parts.append(f"{{fig{len(figs) - 1}}}")
    body = "\n".join(parts)
    for i, f in enumerate(figs):
        snippet = f.to_html(full_html=False, include_plotlyjs=(i == 0))
        body = body.replace(f"{{fig{i}}}", snippet)
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#eee}</style></head><body>" + body + "</body></html>"
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(p)
    return p
