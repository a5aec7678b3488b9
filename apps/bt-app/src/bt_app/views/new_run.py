"""New run: pick a strategy, set its parameters (widgets from its schema), choose data (an
uploaded dataset or the store), costs and settings; submit and follow the progress."""

from __future__ import annotations

from typing import Any

import streamlit as st

from bt_app import charts, ui
from bt_app.client import ApiError

st.header("New run")
if not ui.need_token():
    st.stop()
api = ui.client()

strategies = ui.call(api.strategies, "strategies")
schemas = ui.call(api.schemas, "the server's schema")
if not strategies or schemas is None:
    st.stop()

by_id = {s["id"]: s for s in strategies}
sid = st.selectbox(
    "Strategy",
    list(by_id),
    format_func=lambda i: f"{i} ({by_id[i]['kind']})",
    key="new.strategy",
)
strategy = by_id[sid]
if strategy.get("description"):
    st.caption(strategy["description"])

st.subheader("Parameters")
params = ui.schema_widgets(strategy["parameters"], key=f"new.params.{sid}")


st.subheader("Data")
data = ui.data_picker(api, schemas, "new.data")

st.subheader("Costs and market settings")
config = ui.schema_widgets(
    schemas["RunConfig"], key="new.config", root={"components": {"schemas": schemas}}
)
c1, c2 = st.columns(2)
tags_text = c1.text_input("Tags (comma-separated)", key="new.tags")
timeout = c2.number_input("Timeout (s, 0 = the server's)", min_value=0.0, value=0.0, step=10.0)

body: dict[str, Any] = {"strategy": sid, "params": params, "config": config}
tags = [t.strip() for t in tags_text.split(",") if t.strip()]
if tags:
    body["tags"] = tags
if timeout > 0:
    body["timeout"] = timeout

if st.button("Submit run", type="primary", disabled=data is None, key="new.submit"):
    body["data"] = data
    try:
        st.session_state["new.last_run"] = api.submit_run(body)
        st.session_state["new.follow"] = True
    except ApiError as e:
        st.session_state.pop("new.last_run", None)
        ui.show_error(e, "the run was not accepted")

run_id = st.session_state.get("new.last_run")
if run_id:
    st.subheader(f"Run {ui.short(run_id)}")
    bar = st.progress(0.0, text="queued")

    def show(job: dict[str, Any]) -> None:
        bar.progress(ui.progress_of(job), text=f"{job['status']}")

    try:
        if st.session_state.pop("new.follow", False):
            job = api.wait(run_id, on_progress=show, timeout=600)
        else:
            job = api.run(run_id)
            show(job)
    except ApiError as e:
        ui.show_error(e, "following the run")
        st.stop()
    if job["status"] == "succeeded":
        stats = job["stats"] or {}
        st.success(
            "finished: "
            + " · ".join(
                f"{charts.label(k)} {charts.fmt_stat(k, stats.get(k))}" for k in charts.KEY_STATS
            )
        )
        ui.open_run_link(run_id)
    elif job["status"] == "failed":
        err = job.get("error") or {}
        st.error(f"the run failed ({err.get('code', 'error')}): {err.get('message', '')}")
    elif job["status"] in ("cancelled", "interrupted"):
        st.warning(f"the run was {job['status']}")
    else:
        st.info(f"still {job['status']}; the Runs page follows it")
