"""Factors: upload a factor and prices (CSV or Parquet, long or wide); the server analyses
them with bt-analysis: IC and rank IC over time, quantile returns, turnover, IC decay."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bt_app import charts, ui
from bt_app.client import ApiError

st.header("Factor analysis")
if not ui.need_token():
    st.stop()
api = ui.client()

st.caption(
    "Long tables have columns date, asset (or symbol) and factor / close; wide tables a date "
    "column and one column per asset."
)
c1, c2 = st.columns(2)
factor_file = c1.file_uploader("Factor", type=["csv", "parquet"], key="fac.factor")
prices_file = c2.file_uploader("Prices", type=["csv", "parquet"], key="fac.prices")
c1, c2, c3 = st.columns(3)
periods_text = c1.text_input("Horizons (bars)", value="1,5,10", key="fac.periods")
quantiles = int(c2.number_input("Quantiles", min_value=2, max_value=20, value=5, step=1))
horizon = int(c3.number_input("IC decay up to (bars)", min_value=1, max_value=60, value=20))

if st.button(
    "Analyse",
    type="primary",
    disabled=factor_file is None or prices_file is None,
    key="fac.go",
):
    assert factor_file is not None and prices_file is not None
    try:
        periods = [int(p) for p in periods_text.replace(" ", "").split(",") if p]
    except ValueError:
        st.error(f"horizons: whole numbers separated by commas, not {periods_text!r}")
        st.stop()
    try:
        st.session_state["fac.result"] = api.analyze_factor(
            (factor_file.name, factor_file.getvalue()),
            (prices_file.name, prices_file.getvalue()),
            periods=periods,
            quantiles=quantiles,
            max_horizon=horizon,
        )
    except ApiError as e:
        st.session_state.pop("fac.result", None)
        ui.show_error(e, "analysis refused")

out = st.session_state.get("fac.result")
if not out:
    st.stop()

summary = out["summary"]
cols = out["periods"]
column = st.selectbox("Horizon", cols, key="fac.column")
rank = summary["rank_ic"].get(column, {})
m = st.columns(5)
m[0].metric("Mean rank IC", charts.fmt_stat("ic", rank.get("ic_mean")))
m[1].metric("ICIR", charts.fmt_stat("icir", rank.get("icir")))
m[2].metric("t-stat", charts.fmt_stat("t", rank.get("t_stat")))
m[3].metric("Spread (top - bottom)", charts.fmt_stat("spread", summary["spread"].get(column)))
m[4].metric("Rank autocorrelation", charts.fmt_stat("ac", summary.get("rank_autocorrelation")))
st.caption(
    f"{summary['n_dates']} dates, {summary['n_assets']} assets; dropped: "
    + ", ".join(f"{k} {v}" for k, v in summary["dropped"].items())
)


def frame(records: list[dict], index: str) -> pd.DataFrame:
    df = pd.DataFrame(records)
    if index == "date":
        df["date"] = pd.to_datetime(df["date"])
    return df.set_index(index).astype(float)


ic = frame(out["ic"], "date")
rank_ic = frame(out["rank_ic"], "date")
st.plotly_chart(charts.ic_figure(ic, rank_ic, column), key="fac.ic")
mean = frame(out["quantile_returns"], "factor_quantile")
se = frame(out["quantile_std_err"], "factor_quantile")
st.plotly_chart(charts.quantile_figure(mean, se), key="fac.quantiles")
left, right = st.columns(2)
with left:
    turnover = frame(out["turnover"], "date")
    st.plotly_chart(
        charts.lines_figure(turnover, title="Turnover by quantile", percent=True),
        key="fac.turnover",
    )
with right:
    st.plotly_chart(charts.decay_figure(frame(out["decay"], "horizon")), key="fac.decay")
with st.expander("IC statistics per horizon"):
    st.dataframe(pd.DataFrame(summary["rank_ic"]).T)
