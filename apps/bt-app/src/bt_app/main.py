"""The app's entry script (``streamlit run`` this file, or ``bt app``): the sidebar's server
settings and the navigation between the pages in :mod:`bt_app.views`."""

from __future__ import annotations

import streamlit as st

from bt_app import ui

# No page or page_icon icons: the current page's icon becomes the favicon, fetched from a CDN
# that a self-hosted or offline deployment may not reach.
st.set_page_config(page_title="pyrust-bt", layout="wide")

PAGES = [
    st.Page("views/new_run.py", title="New run", url_path="new", default=True),
    st.Page("views/runs.py", title="Runs", url_path="runs"),
    st.Page("views/run_detail.py", title="Run detail", url_path="run"),
    st.Page("views/compare.py", title="Compare", url_path="compare"),
    st.Page("views/optimise.py", title="Optimise", url_path="optimise"),
    st.Page("views/data.py", title="Data", url_path="data"),
    st.Page("views/factors.py", title="Factors", url_path="factors"),
]

page = st.navigation(PAGES)
ui.sidebar_connection()
page.run()
