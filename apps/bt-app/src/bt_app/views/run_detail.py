"""Run detail: formatted statistics, equity against buy-and-hold with the underwater drawdown,
a price chart with entries and exits, monthly returns, trades and orders (with rejection
reasons), downloads (CSV, Parquet, the HTML report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from bt_app import charts, ui
from bt_app.client import ApiError, BtClient, Format

st.header("Run detail")
if not ui.need_token():
    st.stop()
api = ui.client()

recent = ui.call(lambda: api.runs(limit=50), "runs") or []
wanted = st.query_params.get("run") or st.session_state.get("detail.run")
ids = [r["id"] for r in recent]
if wanted and wanted not in ids:
    ids.insert(0, wanted)
if not ids:
    st.info("No runs yet. Submit one on the New run page.")
    st.stop()
labels = {r["id"]: ui.run_label(r) for r in recent}
run_id = st.selectbox(
    "Run",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: labels.get(i, i),
    key="detail.pick",
)
st.session_state["detail.run"] = run_id
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id

try:
    run = api.run(run_id)
except ApiError as e:
    ui.show_error(e, f"run {ui.short(run_id)}")
    st.stop()

st.markdown(
    f"**{run['strategy']}** · status **{run['status']}** · "
    + ", ".join(f"{k}={v}" for k, v in run["params"].items() if v is not None)
)
with st.expander("Settings (parameters, data, configuration)"):
    st.json({"params": run["params"], "data": run["data"], "config": run["config"]})

if run["status"] != "succeeded":
    if run["status"] in ("queued", "running"):
        st.progress(float(run["progress"] or 0.0), text=run["status"])
        if st.button("Refresh", key="detail.refresh"):
            st.rerun()
    elif run.get("error"):
        err = run["error"]
        st.error(f"the run {run['status']} ({err.get('code')}): {err.get('message')}")
    else:
        st.warning(f"the run is {run['status']}: it has no results")
    st.stop()

stats: dict[str, Any] = run["stats"] or {}
cols = st.columns(len(charts.KEY_STATS))
for col, key in zip(cols, charts.KEY_STATS, strict=True):
    col.metric(charts.label(key), charts.fmt_stat(key, stats.get(key)))
with st.expander("All statistics"):
    st.dataframe(charts.stats_table(stats), hide_index=True)

try:
    equity = api.equity(run_id)
    trades = api.table(run_id, "trades")
    orders = api.table(run_id, "orders")
except ApiError as e:
    ui.show_error(e, "results")
    st.stop()

symbols: list[str] = []
data = run["data"]
if data.get("source") == "store":
    symbols = list(data.get("symbols") or [])
elif data.get("symbol"):
    symbols = [data["symbol"]]
if "symbol" in trades:
    symbols += [s for s in trades["symbol"].astype(str).unique() if s not in symbols]
symbol = st.selectbox("Symbol", symbols, key="detail.symbol") if len(symbols) > 1 else None

bars = ui.call(lambda: api.bars(run_id, symbol), "prices")
shown = symbol or (str(bars["symbol"].iloc[0]) if bars is not None and len(bars) else "")
benchmark = None
if bars is not None and len(bars):
    benchmark = pd.Series(
        bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["datetime"]), name=shown
    )

st.subheader("Equity and drawdown")
st.plotly_chart(
    charts.equity_figure(equity, benchmark, title=f"Equity vs buy & hold {shown}"),
    key="detail.equity",
)
if bars is not None and len(bars):
    st.subheader("Price, entries and exits")
    st.plotly_chart(charts.price_figure(bars, trades, shown), key="detail.price")
st.subheader("Monthly returns")
monthly = charts.monthly_returns(equity)
if monthly.empty:
    st.caption("no complete month")
else:
    st.plotly_chart(charts.monthly_heatmap(monthly), key="detail.monthly")

st.subheader(f"Trades ({len(trades)})")
st.dataframe(trades, hide_index=True)
rejected = (
    orders[orders["status"].astype(str) == "rejected"] if "status" in orders else orders.iloc[:0]
)
st.subheader(f"Orders ({len(orders)}, {len(rejected)} rejected)")
only = st.toggle("Only rejected orders", value=False, key="detail.only_rejected")
st.dataframe(rejected if only else orders, hide_index=True)
if len(rejected) and "reason_code" in rejected:
    counts = rejected.groupby(["reason_code"], dropna=False).size().rename("orders")
    st.caption("Rejections by reason: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def fetch(client: BtClient, path: str, fmt: Format) -> Callable[[], bytes]:
    def get() -> bytes:
        try:
            return client.download(path, fmt, limit=100_000 if "equity" not in path else None)
        except ApiError as e:  # the browser saves the reason instead of a broken file
            return f"download failed: {e}\n".encode()

    return get


st.subheader("Downloads")
dcols = st.columns(5)
for i, name in enumerate(("equity", "trades", "orders", "fills")):
    path = f"/runs/{run_id}/{name}"
    with dcols[i]:
        for fmt in ("csv", "parquet"):
            st.download_button(
                f"{name}.{fmt}",
                fetch(api, path, fmt),  # type: ignore[arg-type]
                file_name=f"{ui.short(run_id)}-{name}.{fmt}",
                mime="text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                on_click="ignore",
                key=f"detail.dl.{name}.{fmt}",
            )


def report() -> bytes:
    try:
        return api.report(run_id).encode()
    except ApiError as e:
        return f"<p>report failed: {e}</p>".encode()


with dcols[4]:
    st.download_button(
        "report.html",
        report,
        file_name=f"{ui.short(run_id)}-report.html",
        mime="text/html",
        on_click="ignore",
        key="detail.dl.report",
    )
