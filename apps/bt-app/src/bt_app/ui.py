"""Streamlit pieces every page shares: the connection (API URL and token from the environment
or the sidebar), error display, navigation to a run, and widgets generated from JSON schemas."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st
from streamlit.errors import StreamlitAPIException

from bt_app import ENV_TOKEN, ENV_URL
from bt_app.client import ApiError, BtClient

DEFAULT_URL = "http://127.0.0.1:8000"
T = TypeVar("T")


def settings() -> tuple[str, str]:
    """The API URL and token: what the sidebar set, else the environment."""
    url = st.session_state.get("api_url") or os.environ.get(ENV_URL) or DEFAULT_URL
    token = st.session_state.get("api_token") or os.environ.get(ENV_TOKEN) or ""
    return str(url), str(token)


def sidebar_connection() -> None:
    """API URL and token fields in the sidebar (prefilled from the environment)."""
    url, token = settings()
    with st.sidebar.expander("Server", expanded=not token):
        new_url = st.text_input("API URL", value=url, key="_api_url_field")
        new_token = st.text_input("API token", value=token, type="password", key="_api_tok_field")
        if new_url != url or new_token != token:
            st.session_state["api_url"] = new_url.strip()
            st.session_state["api_token"] = new_token.strip()
        try:
            health = client().health()
            st.caption(
                f"bt-server {health['version']} · {health['workers']} worker(s) · "
                f"{health['running']} running, {health['queued']} queued"
            )
        except ApiError as e:
            st.caption(f"not connected: {e}")


def client() -> BtClient:
    url, token = settings()
    key = ("_client", url, token)
    cached = st.session_state.get("_client")
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    if cached is not None:
        cached[1].close()  # the URL or token changed: its connections are not reused
    made = BtClient(url, token or None)
    st.session_state["_client"] = (key, made)
    return made


def show_error(err: ApiError, what: str | None = None) -> None:
    """A server error as a readable message (the server's own words, never a traceback)."""
    lead = f"{what}: " if what else ""
    st.error(f"{lead}{err}", icon=":material/error:")


def call(fn: Callable[[], T], what: str | None = None) -> T | None:
    """``fn()``, or None after showing its :class:`ApiError`."""
    try:
        return fn()
    except ApiError as e:
        show_error(e, what)
        return None


@contextmanager
def guarded(what: str | None = None) -> Iterator[None]:
    """Shows an ApiError raised inside the block and stops that part of the page."""
    try:
        yield
    except ApiError as e:
        show_error(e, what)


def need_token() -> bool:
    """True when a token is set; otherwise says how to set one."""
    if settings()[1]:
        return True
    st.info(
        f"Set the API token in the sidebar (or ${ENV_TOKEN}); `bt app --with-server` starts a "
        "local server and sets it for you."
    )
    return False


def progress_of(job: Mapping[str, Any]) -> float:
    """0..1 for a progress bar: a finished job is done whatever its last progress said."""
    if job["status"] == "succeeded":
        return 1.0
    return min(1.0, max(0.0, float(job.get("progress") or 0.0)))


def short(job_id: str) -> str:
    return job_id[:8]


def run_label(run: Mapping[str, Any]) -> str:
    created = str(run.get("created_at", ""))[:19].replace("T", " ")
    return f"{short(run['id'])} · {run['strategy']} · {run['status']} · {created}"


DETAIL_PAGE = "views/run_detail.py"


def open_run_link(run_id: str, label: str | None = None) -> None:
    """A link to the run's detail page (works in the app; a caption in a bare page test)."""
    try:
        st.page_link(
            DETAIL_PAGE,
            label=label or f"Open run {short(run_id)}",
            query_params={"run": run_id},
        )
    except StreamlitAPIException:  # a page run on its own (no navigation) has no pages
        st.caption(f"Run id: {run_id}")


def data_picker(api: BtClient, schemas: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    """The ``data`` of a run request: a dataset (uploaded here) or a store query."""
    source = st.radio(
        "Data", ["Dataset", "Market data store"], horizontal=True, key=f"{prefix}.source"
    )
    if source == "Dataset":
        with st.expander("Upload a dataset (CSV or Parquet bars)"):
            upload = st.file_uploader("File", type=["csv", "parquet"], key=f"{prefix}.file")
            name = st.text_input("Name (default: the file name)", key=f"{prefix}.name")
            symbol = st.text_input("Symbol (for single-symbol data)", key=f"{prefix}.sym")
            if st.button("Upload", key=f"{prefix}.upload", disabled=upload is None):
                assert upload is not None
                try:
                    row = api.upload_dataset(
                        upload.name, upload.getvalue(), name=name or None, symbol=symbol or None
                    )
                    st.session_state[f"{prefix}.dataset"] = row["id"]
                    st.success(f"uploaded {row['name']}: {row['n_bars']} bars")
                except ApiError as e:
                    show_error(e, "upload refused")
        datasets = call(api.datasets, "datasets") or []
        if not datasets:
            st.warning("No datasets yet: upload one above.")
            return None
        ids = [d["id"] for d in datasets]
        rows = {d["id"]: d for d in datasets}
        chosen = st.session_state.get(f"{prefix}.dataset")
        did = st.selectbox(
            "Dataset",
            ids,
            index=ids.index(chosen) if chosen in ids else 0,
            format_func=lambda i: (
                f"{rows[i]['name']} · {rows[i]['n_bars']} bars · "
                f"{', '.join(rows[i]['symbols']) or rows[i]['symbol'] or 'one symbol'}"
            ),
            key=f"{prefix}.dataset_pick",
        )
        data: dict[str, Any] = {"source": "dataset", "dataset_id": did}
        symbols = rows[did]["symbols"]
        if len(symbols) > 1:
            pick = st.selectbox("Symbol", ["(all)", *symbols], key=f"{prefix}.dataset_symbol")
            if pick != "(all)":
                data["symbol"] = pick
        return data
    store = schemas.get("StoreData", {}).get("properties", {})
    symbols = call(api.symbols, "store symbols") or []
    if not symbols:
        st.warning("The server's market data store has no symbols yet (see the Data page).")
        return None
    picked = st.multiselect("Symbols", symbols, default=symbols[:1], key=f"{prefix}.symbols")
    c1, c2, c3, c4 = st.columns(4)
    periods = store.get("period", {}).get("enum") or ["1d"]
    adjusts = store.get("adjust", {}).get("enum") or ["none"]
    period = c1.selectbox(
        "Period",
        periods,
        index=periods.index("1d") if "1d" in periods else 0,
        key=f"{prefix}.period",
    )
    adjust = c2.selectbox("Adjust", adjusts, key=f"{prefix}.adjust")
    start = c3.date_input("Start (optional)", value=None, key=f"{prefix}.start")
    end = c4.date_input("End (optional)", value=None, key=f"{prefix}.end")
    data = {"source": "store", "symbols": picked, "period": period, "adjust": adjust}
    for k, v in (("start", start), ("end", end)):
        if isinstance(v, dt.date):
            data[k] = v.isoformat()
    return data


# ----------------------------------------------------------------------------- schema widgets
def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}
    return schema


def _kind(prop: Mapping[str, Any]) -> tuple[str, bool]:
    """The widget kind of a property and whether it may be null."""
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        types = [o.get("type") for o in options if isinstance(o, Mapping)]
        nullable = "null" in types
        concrete = [t for t in types if t and t != "null"]
        if len(concrete) == 1 and not any("enum" in o for o in options):
            return str(concrete[0]), nullable
        return "any", nullable
    if "enum" in prop:
        return "enum", False
    return str(prop.get("type", "any")), False


def schema_widgets(
    schema: Mapping[str, Any],
    *,
    key: str,
    root: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    columns: int = 3,
) -> dict[str, Any]:
    """One widget per property of an object schema; returns the values to send.

    Integers and numbers get number inputs, booleans checkboxes, enums select boxes; a
    nullable or mixed-type value gets a text field read as JSON (blank = leave it out), so
    whatever the server's schema allows can be typed, and the server judges it.
    """
    root = root or schema
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    cols = st.columns(columns) if props else []
    for i, (name, raw) in enumerate(props.items()):
        prop = _resolve(raw, root)
        kind, nullable = _kind(prop)
        default = (values or {}).get(name, prop.get("default"))
        title = str(prop.get("title") or name)
        help_text = prop.get("description")
        wkey = f"{key}.{name}"
        with cols[i % columns]:
            if kind == "boolean" and not nullable:
                out[name] = st.checkbox(title, value=bool(default), key=wkey, help=help_text)
            elif kind == "enum":
                opts = list(prop["enum"])
                index = opts.index(default) if default in opts else 0
                out[name] = st.selectbox(title, opts, index=index, key=wkey, help=help_text)
            elif kind == "integer" and not nullable:
                out[name] = int(
                    st.number_input(
                        title, value=int(default or 0), step=1, key=wkey, help=help_text
                    )
                )
            elif kind == "number" and not nullable:
                out[name] = float(
                    st.number_input(
                        title,
                        value=float(default or 0.0),
                        step=_step(default),
                        format="%g",
                        key=wkey,
                        help=help_text,
                    )
                )
            elif kind == "string" and not nullable:
                out[name] = st.text_input(title, value=str(default or ""), key=wkey, help=help_text)
            else:
                text = st.text_input(
                    title,
                    value="" if default is None else json.dumps(default),
                    key=wkey,
                    help=(help_text or "") + " (blank: the default)",
                    placeholder="default",
                )
                if text.strip():
                    out[name] = _parse(text)
    return out


def _step(default: Any) -> float:
    # Whole steps for amounts (cash), fine steps for rates (commission 0.0005).
    return 1.0 if abs(float(default or 0.0)) >= 1 else 0.0001


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


__all__ = [
    "call",
    "client",
    "guarded",
    "need_token",
    "open_run_link",
    "progress_of",
    "run_label",
    "schema_widgets",
    "settings",
    "show_error",
    "sidebar_connection",
]
