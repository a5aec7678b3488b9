"""Optimise: submit a parameter search (ranges, method, objective), watch the trials arrive,
see the score over the space (heatmap or parallel coordinates), and run the best set."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from bt_app import charts, ui
from bt_app.client import ApiError

OBJECTIVES = ["sharpe", "sortino", "calmar", "total_return", "cagr", "max_drawdown", "win_rate"]
_SUMMARY_SHOWN = {"best_params", "best_score", "objectives", "strategy"}

st.header("Optimise")
if not ui.need_token():
    st.stop()
api = ui.client()
strategies = ui.call(api.strategies, "strategies")
schemas = ui.call(api.schemas, "the server's schema")
if not strategies or schemas is None:
    st.stop()
by_id = {s["id"]: s for s in strategies}
sid = st.selectbox("Strategy", list(by_id), key="opt.strategy")
props = by_id[sid]["parameters"].get("properties", {})

st.subheader("Search space")
st.caption(
    'A range as start:stop:step ("5:50:5"), log-spaced ("1e-3:1e-1:log") or a list '
    '("5, 10, 20"); leave blank to keep the default.'
)
space: dict[str, Any] = {}
cols = st.columns(3)
for i, (name, prop) in enumerate(props.items()):
    text = cols[i % 3].text_input(
        f"{name} (default {prop.get('default')})", key=f"opt.space.{sid}.{name}"
    )
    text = text.strip()
    if not text:
        continue
    if ":" in text:
        space[name] = text
    else:
        values: list[Any] = []
        for part in text.split(","):
            part = part.strip()
            try:
                values.append(int(part))
            except ValueError:
                try:
                    values.append(float(part))
                except ValueError:
                    values.append(part)
        space[name] = values

c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Method", ["grid", "random", "bayes"], key="opt.method")
objective = c2.selectbox("Objective", OBJECTIVES, key="opt.objective")
direction = c3.radio("Direction", ["maximise", "minimise"], horizontal=True, key="opt.dir")
trials = c4.number_input(
    "Trials (random, bayes)", min_value=1, value=20, step=1, disabled=method == "grid"
)

data = ui.data_picker(api, schemas, "opt.data")
with st.expander("Costs and market settings"):
    config = ui.schema_widgets(
        schemas["RunConfig"], key="opt.config", root={"components": {"schemas": schemas}}
    )

if st.button("Submit optimisation", type="primary", disabled=data is None, key="opt.submit"):
    body: dict[str, Any] = {
        "strategy": sid,
        "space": space,
        "method": method,
        "config": config,
        "data": data,
        ("maximize" if direction == "maximise" else "minimize"): objective,
    }
    if method != "grid":
        body["trials"] = int(trials)
    try:
        st.session_state["opt.last"] = api.submit_optimization(body)
        st.session_state["opt.follow"] = True
    except ApiError as e:
        st.session_state.pop("opt.last", None)
        ui.show_error(e, "the optimisation was not accepted")

past = ui.call(lambda: api.optimizations(limit=20), "optimisations") or []
ids = [o["id"] for o in past]
last = st.session_state.get("opt.last")
if last and last not in ids:
    ids.insert(0, last)
if not ids:
    st.stop()
labels = {o["id"]: f"{ui.short(o['id'])} · {o['strategy']} · {o['status']}" for o in past}
opt_id = st.selectbox(
    "Optimisation",
    ids,
    index=ids.index(last) if last in ids else 0,
    format_func=lambda i: labels.get(i, i),
    key="opt.pick",
)

bar = st.progress(0.0, text="queued")
live = st.empty()


def show(job: dict[str, Any]) -> None:
    n = len(job.get("trials") or [])
    bar.progress(ui.progress_of(job), text=f"{job['status']} · {n} trial(s)")
    if job.get("trials"):
        live.dataframe(pd.DataFrame(job["trials"]).head(20), hide_index=True)


try:
    if st.session_state.pop("opt.follow", False) and opt_id == last:
        opt = api.wait(opt_id, kind="optimizations", on_progress=show, timeout=600)
    else:
        opt = api.optimization(opt_id)
        show(opt)
except ApiError as e:
    ui.show_error(e, "the optimisation")
    st.stop()

if opt["status"] != "succeeded":
    err = opt.get("error") or {}
    if err:
        st.error(f"the optimisation {opt['status']} ({err.get('code')}): {err.get('message')}")
    elif opt["status"] in ("queued", "running") and st.button("Refresh", key="opt.refresh"):
        st.rerun()
    st.stop()

live.empty()
summary = opt.get("summary") or {}
st.success(
    f"best {', '.join(summary.get('objectives') or [objective])}: "
    f"{charts.fmt_stat('score', summary.get('best_score'))} with "
    + ", ".join(f"{k}={v}" for k, v in (summary.get("best_params") or {}).items())
)
extra = {k: v for k, v in summary.items() if k not in _SUMMARY_SHOWN}
st.dataframe(charts.stats_table(extra), hide_index=True)

table = ui.call(lambda: api.trials(opt_id), "trials")
varied = [p for p in opt["request"].get("space", {}) if table is not None and p in table]
if table is not None and len(table) and "score" in table:
    numeric = [p for p in varied if pd.api.types.is_numeric_dtype(table[p])]
    if len(numeric) == 2:
        st.plotly_chart(charts.trials_heatmap(table, numeric[0], numeric[1]), key="opt.heatmap")
    elif len(numeric) > 2:
        st.plotly_chart(charts.parallel_figure(table, numeric), key="opt.parallel")
    elif len(numeric) == 1:
        line = table.sort_values(numeric[0]).set_index(numeric[0])[["score"]]
        st.plotly_chart(charts.lines_figure(line, title="score"), key="opt.line")
    st.subheader(f"Trials ({len(table)})")
    st.dataframe(table, hide_index=True)

c1, c2 = st.columns(2)
if c1.button("Run best", type="primary", key="opt.run_best"):
    req = opt["request"]
    best = {**(req.get("params") or {}), **(summary.get("best_params") or {})}
    try:
        rid = api.submit_run(
            {
                "strategy": opt["strategy"],
                "params": best,
                "config": req["config"],
                "data": req["data"],
                "tags": [f"best-of-{ui.short(opt_id)}"],
            }
        )
        st.session_state["detail.run"] = rid
        st.success(f"submitted run {ui.short(rid)} with the best parameters")
        ui.open_run_link(rid)
    except ApiError as e:
        ui.show_error(e, "run best")


def report() -> bytes:
    try:
        return api.optimization_report(opt_id).encode()
    except ApiError as e:
        return f"<p>report failed: {e}</p>".encode()


c2.download_button(
    "Report (HTML: the score over the space, ranked trials, overfitting statistics)",
    report,
    file_name=f"{ui.short(opt_id)}-optimisation.html",
    mime="text/html",
    on_click="ignore",
    key="opt.report",
)
