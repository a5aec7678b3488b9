"""Data: the symbols and coverage of the server's market data store, your datasets, and
uploads (the server validates them; its errors are shown as it words them)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bt_app import ui
from bt_app.client import ApiError

st.header("Data")
if not ui.need_token():
    st.stop()
api = ui.client()

st.subheader("Market data store")
coverage = ui.call(api.coverage, "store coverage")
if coverage is not None:
    if coverage.empty:
        st.info("The server's store has no bars yet.")
    else:
        st.caption(f"{coverage['symbol'].nunique()} symbol(s)")
        st.dataframe(coverage, hide_index=True)

st.subheader("Upload a dataset")
upload = st.file_uploader(
    "CSV or Parquet bars (long or wide)", type=["csv", "parquet"], key="data.file"
)
c1, c2 = st.columns(2)
name = c1.text_input("Name (default: the file name)", key="data.name")
symbol = c2.text_input("Symbol (names single-symbol data)", key="data.symbol")
if st.button("Upload", disabled=upload is None, type="primary", key="data.upload"):
    assert upload is not None
    try:
        row = api.upload_dataset(
            upload.name, upload.getvalue(), name=name or None, symbol=symbol or None
        )
        st.success(
            f"uploaded {row['name']}: {row['n_bars']} bars of "
            f"{', '.join(row['symbols']) or row['symbol']}"
        )
    except ApiError as e:
        ui.show_error(e, "upload refused")

st.subheader("Datasets")
datasets = ui.call(api.datasets, "datasets")
if datasets:
    frame = pd.DataFrame(datasets)[
        ["id", "name", "format", "symbols", "n_bars", "start", "end", "size_bytes", "shared"]
    ]
    frame["symbols"] = frame["symbols"].map(", ".join)
    st.dataframe(frame, hide_index=True)
    mine = {d["id"]: d for d in datasets if not d["shared"]}
    if mine:
        gone = st.selectbox(
            "Delete a dataset",
            ["(none)", *mine],
            format_func=lambda i: i if i == "(none)" else f"{mine[i]['name']} ({i[:8]})",
            key="data.delete_pick",
        )
        if st.button("Delete", disabled=gone == "(none)", key="data.delete"):
            with ui.guarded("delete"):
                api.delete_dataset(gone)
                st.success("deleted")
elif datasets is not None:
    st.info("No datasets.")
