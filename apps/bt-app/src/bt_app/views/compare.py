"""Compare: two or more finished runs: equity rebased to 1 on one chart, statistics side by
side, and the settings in which they differ."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bt_app import charts, ui
from bt_app.client import ApiError

st.header("Compare runs")
if not ui.need_token():
    st.stop()
api = ui.client()

runs = ui.call(lambda: api.runs(status="succeeded", limit=100), "runs") or []
if len(runs) < 2:
    st.info("Compare needs at least two finished runs.")
    st.stop()
by_id = {r["id"]: r for r in runs}
preset = [i for i in st.session_state.get("compare.ids", []) if i in by_id]
query = [i for i in st.query_params.get_all("runs") if i in by_id]
chosen = st.multiselect(
    "Runs",
    list(by_id),
    default=query or preset or list(by_id)[:2],
    format_func=lambda i: ui.run_label(by_id[i]),
    key="compare.pick",
)
if len(chosen) < 2:
    st.info("Pick two or more runs.")
    st.stop()

names = {rid: f"{ui.short(rid)} {by_id[rid]['strategy']}" for rid in chosen}
curves: dict[str, pd.Series] = {}
for rid in chosen:
    try:
        curves[names[rid]] = api.equity(rid, points=2000)
    except ApiError as e:
        ui.show_error(e, f"equity of {ui.short(rid)}")
if curves:
    st.plotly_chart(charts.overlay_figure(curves), key="compare.overlay")

st.subheader("Statistics")
st.dataframe(charts.stats_side_by_side({names[r]: by_id[r]["stats"] or {} for r in chosen}))

st.subheader("Differences in configuration")
diff = charts.config_differences(
    {
        names[r]: {
            "strategy": by_id[r]["strategy"],
            "params": by_id[r]["params"],
            "config": by_id[r]["config"],
            "data": by_id[r]["data"],
        }
        for r in chosen
    }
)
if diff.empty:
    st.caption("The runs have the same settings.")
else:
    st.dataframe(diff)
