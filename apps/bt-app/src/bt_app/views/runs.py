"""Runs: the table of your runs with status, strategy and key statistics; filters,
auto-refresh; cancel, delete, open, compare."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from bt_app import charts, ui
from bt_app.client import TERMINAL, ApiError

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]

st.header("Runs")
if not ui.need_token():
    st.stop()
api = ui.client()

c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
status = c1.selectbox("Status", ["(any)", *STATUSES], key="runs.status")
strategies = ui.call(api.strategies, "strategies") or []
strategy = c2.selectbox("Strategy", ["(any)", *[s["id"] for s in strategies]], key="runs.strategy")
tag = c3.text_input("Tag", key="runs.tag")
auto = c4.toggle("Auto-refresh (2 s)", value=False, key="runs.auto")


def table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in runs:
        stats = r.get("stats") or {}
        row = {
            "id": ui.short(r["id"]),
            "status": r["status"],
            "progress": float(r["progress"] or 0.0),
            "strategy": r["strategy"],
            "params": ", ".join(f"{k}={v}" for k, v in r["params"].items() if v is not None),
            "created": str(r["created_at"])[:19].replace("T", " "),
        }
        for k in charts.KEY_STATS:
            row[charts.label(k)] = charts.fmt_stat(k, stats.get(k)) if stats else ""
        if r.get("error"):
            row["error"] = r["error"].get("message", "")
        rows.append(row)
    return pd.DataFrame(rows)


@st.fragment(run_every=2.0 if auto else None)
def listing() -> None:
    try:
        runs = api.runs(
            status=None if status == "(any)" else status,
            strategy=None if strategy == "(any)" else strategy,
            tag=tag.strip() or None,
        )
    except ApiError as e:
        ui.show_error(e, "runs")
        return
    st.caption(f"{len(runs)} run(s), newest first")
    if not runs:
        st.info("No runs match. Submit one on the New run page.")
        return
    st.dataframe(
        table(runs),
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)
        },
    )
    st.session_state["runs.known"] = {r["id"]: r for r in runs}


# Actions act on the runs listed last time, then the listing (above them) is read afresh.
table_area = st.container()
known: dict[str, dict[str, Any]] = st.session_state.get("runs.known", {})
if known:
    chosen = st.multiselect(
        "Selected runs",
        list(known),
        format_func=lambda i: ui.run_label(known[i]),
        key="runs.selected",
    )
    b1, b2, b3 = st.columns(3)
    if b1.button("Cancel selected", disabled=not chosen, key="runs.cancel"):
        for rid in chosen:
            if known[rid]["status"] in TERMINAL:
                st.warning(f"{ui.short(rid)} is already {known[rid]['status']}")
                continue
            with ui.guarded(f"cancel {ui.short(rid)}"):
                done = api.cancel_run(rid)
                st.success(f"{ui.short(rid)} is {done['status']}")
    if b2.button("Delete selected", disabled=not chosen, key="runs.delete"):
        for rid in chosen:
            with ui.guarded(f"delete {ui.short(rid)}"):
                api.delete_run(rid)
                st.success(f"deleted {ui.short(rid)}")
    if b3.button("Compare selected", disabled=len(chosen) < 2, key="runs.compare"):
        st.session_state["compare.ids"] = list(chosen)
        try:
            st.switch_page("views/compare.py")
        except StreamlitAPIException:  # the page alone, outside the app
            st.info("open the Compare page")
    for rid in chosen[:5]:
        ui.open_run_link(rid, f"Open {ui.run_label(known[rid])}")

with table_area:
    listing()
