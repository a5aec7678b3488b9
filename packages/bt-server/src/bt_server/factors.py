"""Endpoints for the app's analysis views, mounted by :func:`bt_server.app.create_app`:

* ``POST /factors/analyze``: a factor and prices uploaded together (CSV or Parquet, long or
  wide), analysed by bt-analysis (IC and rank IC per date, mean return by quantile, turnover,
  rank autocorrelation, IC decay). Nothing is stored.
* ``GET /runs/{run_id}/bars``: the bars of one symbol that a run was tested on, so a client
  can draw prices with the run's trades and a buy-and-hold benchmark.

Both are authenticated like every other endpoint; bad input is a 4xx with a code naming
the file and the column or value at fault.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

import bt_analysis
import bt_core
from bt_analysis.factor import (
    FactorInputError,
    factor_ic,
    factor_rank_autocorrelation,
    factor_summary,
    ic_decay,
    mean_return_by_quantile,
    prepare_factor_data,
    quantile_turnover,
)
from bt_server import datasets as ds
from bt_server import results
from bt_server.app import User, _error_responses
from bt_server.errors import ApiError, invalid, not_found
from bt_server.models import Symbol

#: The most date x asset cells one analysis may hold (each is several float arrays).
MAX_CELLS = 2_000_000
_DATE_COLUMNS = ("date", "datetime", "time", "timestamp")
_ASSET_COLUMNS = ("asset", "symbol", "ticker", "code")

FactorFile = Annotated[
    UploadFile, File(description="Factor values: long (date, asset, factor) or wide.")
]
PricesFile = Annotated[
    UploadFile,
    File(description="Prices: long (date/datetime, asset/symbol, close) or wide (date x asset)."),
]
PeriodsForm = Annotated[
    str,
    Form(
        pattern=r"^\s*[0-9]{1,3}(\s*,\s*[0-9]{1,3}){0,9}\s*$",
        description="Forward-return horizons in bars, comma-separated (at most 10).",
    ),
]
QuantilesForm = Annotated[int, Form(ge=2, le=20, description="Equal-count buckets per date.")]
HorizonForm = Annotated[int, Form(ge=1, le=60, description="IC decay up to this horizon.")]


class FactorAnalysis(BaseModel):
    summary: dict[str, Any] = Field(
        description="bt_analysis.factor.factor_summary: IC and rank IC statistics per horizon, "
        "mean return by quantile, spread, monotonicity, mean turnover, dropped observations."
    )
    periods: list[str] = Field(description="The forward-return columns, e.g. fwd_1, fwd_5.")
    ic: list[dict[str, Any]] = Field(description="Pearson IC per date: date, fwd_<h>...")
    rank_ic: list[dict[str, Any]] = Field(description="Spearman (rank) IC per date.")
    quantile_returns: list[dict[str, Any]] = Field(
        description="Mean forward return (decimal) per bucket: factor_quantile, fwd_<h>..."
    )
    quantile_std_err: list[dict[str, Any]]
    turnover: list[dict[str, Any]] = Field(
        description="Share of names new to each bucket per date: date, q1..qN."
    )
    rank_autocorrelation: list[dict[str, Any]] = Field(description="date, value.")
    decay: list[dict[str, Any]] = Field(
        description="Rank IC statistics per horizon (1..max_horizon): horizon, ic_mean, ..."
    )


router = APIRouter()


class NoObservations(ValueError):
    """Nothing is left after aligning the factor with the prices."""


def _read(upload: UploadFile, what: str, limit: int) -> pd.DataFrame:
    content = upload.file.read(limit + 1)
    if len(content) > limit:
        raise ApiError(
            413,
            "request_too_large",
            f"{what}: the file is larger than the limit of {limit} bytes",
            fields={"limit_bytes": limit},
        )
    if not content:
        raise invalid(["body", what], "empty_file", f"{what}: the file is empty")
    fmt = ds.sniff_format(content, upload.filename, upload.content_type)
    if fmt is None:
        raise invalid(
            ["body", what],
            "unsupported_media_type",
            f"{what}: upload CSV (.csv) or Parquet (.parquet)",
            status=415,
        )
    try:
        df = ds.read_frame(content, fmt, what)
    except bt_core.DataError as e:
        raise invalid(["body", what], "unreadable_file", str(e)) from None
    if df.empty or len(df.columns) < 2:
        raise invalid(
            ["body", what],
            "no_data",
            f"{what}: needs a date column and at least one value column, with rows",
        )
    return df


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): c for c in df.columns}
    return next((str(lower[n]) for n in names if n in lower), None)


def _dates(values: Any, what: str, column: str) -> pd.DatetimeIndex:
    try:
        out = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (ValueError, TypeError, OverflowError) as e:
        raise invalid(
            ["body", what],
            "invalid_dates",
            f"{what}: column {column!r} is not dates ({str(e)[:200]})",
        ) from None
    if out.isna().any():
        row = int(np.flatnonzero(out.isna())[0])
        raise invalid(
            ["body", what], "invalid_dates", f"{what}: column {column!r} row {row} has no date"
        )
    return out.tz_localize(None)


def _numeric(s: pd.Series, what: str, column: str) -> pd.Series:
    out = pd.to_numeric(s, errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise invalid(
            ["body", what],
            "not_numeric",
            f"{what}: column {column!r} row {row} is not a number ({str(s.iloc[row])[:40]!r})",
        )
    return out.astype(float)


def _wide(df: pd.DataFrame, what: str, values: tuple[str, ...]) -> pd.DataFrame:
    """A ``date x asset`` float frame from a long (date, asset, value) or a wide upload."""
    date_col = _pick(df, _DATE_COLUMNS) or str(df.columns[0])
    asset_col = _pick(df, _ASSET_COLUMNS)
    dates = _dates(df[date_col], what, date_col)
    if asset_col is not None:
        rest = [str(c) for c in df.columns if str(c) not in (date_col, asset_col)]
        value_col = _pick(df[rest], values) if rest else None
        if value_col is None:
            if len(rest) != 1:
                raise invalid(
                    ["body", what],
                    "missing_column",
                    f"{what}: a long table needs a value column named "
                    f"{' or '.join(repr(v) for v in values)} (has {', '.join(rest) or 'none'})",
                )
            value_col = rest[0]
        keys = pd.MultiIndex.from_arrays(
            [dates, df[asset_col].astype(str).to_numpy()], names=["date", "asset"]
        )
        if keys.has_duplicates:
            row = int(np.flatnonzero(keys.duplicated())[0])
            raise invalid(
                ["body", what],
                "duplicate_row",
                f"{what}: date {dates[row].date()} and asset {keys[row][1]!r} appear more "
                f"than once (row {row})",
            )
        series = pd.Series(_numeric(df[value_col], what, value_col).to_numpy(), index=keys)
        wide = series.unstack("asset")
    else:
        if dates.has_duplicates:
            row = int(np.flatnonzero(dates.duplicated())[0])
            raise invalid(
                ["body", what],
                "duplicate_row",
                f"{what}: date {dates[row].date()} appears more than once (row {row})",
            )
        wide = pd.DataFrame(
            {str(c): _numeric(df[c], what, str(c)).to_numpy() for c in df.columns if c != date_col},
            index=dates,
        )
    wide.index.name = "date"
    if wide.size > MAX_CELLS:
        raise ApiError(
            413,
            "too_many_cells",
            f"{what}: {wide.shape[0]} dates x {wide.shape[1]} assets is more than the "
            f"{MAX_CELLS} cells one analysis may hold",
            fields={"limit_cells": MAX_CELLS},
        )
    return wide.sort_index()


def _records(df: pd.DataFrame | pd.Series, index_name: str) -> list[dict[str, Any]]:
    frame = df.to_frame("value") if isinstance(df, pd.Series) else df.copy()
    frame.columns = [str(c) if not isinstance(c, (int, np.integer)) else f"q{c}" for c in frame]
    frame.index.name = index_name
    return list(bt_analysis.json_safe(frame.reset_index().to_dict(orient="records")))


def analyze(
    factor: pd.DataFrame, prices: pd.DataFrame, periods: list[int], quantiles: int, horizon: int
) -> dict[str, Any]:
    """The whole analysis of one factor (raises FactorInputError on inconsistent input)."""
    fd = prepare_factor_data(factor, prices, periods, quantiles)
    if not fd.mask.any():
        dropped = ", ".join(f"{k}: {v}" for k, v in fd.dropped.items() if v)
        raise NoObservations(
            "no (date, asset) observation is left to analyse "
            f"({dropped}); a date needs at least {quantiles} assets with a factor value and "
            f"every forward return ({', '.join(map(str, periods))} bars)"
        )
    mean, se = mean_return_by_quantile(fd)
    mean.index.name = se.index.name = "factor_quantile"
    return {
        "summary": factor_summary(fd),
        "periods": fd.columns,
        "ic": _records(factor_ic(fd, "pearson"), "date"),
        "rank_ic": _records(factor_ic(fd, "spearman"), "date"),
        "quantile_returns": list(bt_analysis.json_safe(mean.reset_index().to_dict("records"))),
        "quantile_std_err": list(bt_analysis.json_safe(se.reset_index().to_dict("records"))),
        "turnover": _records(quantile_turnover(fd), "date"),
        "rank_autocorrelation": _records(factor_rank_autocorrelation(fd), "date"),
        "decay": _records(ic_decay(factor, prices, range(1, horizon + 1)), "horizon"),
    }


@router.post(
    "/factors/analyze",
    response_model=FactorAnalysis,
    responses=_error_responses(401, 413, 415, 422, 429),
    tags=["factors"],
)
def analyze_factor(
    user: User,
    request: Request,
    factor: FactorFile,
    prices: PricesFile,
    periods: PeriodsForm = "1,5,10",
    quantiles: QuantilesForm = 5,
    max_horizon: HorizonForm = 20,
) -> FactorAnalysis:
    """Analyse a factor against prices with bt-analysis: IC / rank IC over time, mean
    return by quantile, turnover, rank autocorrelation and IC decay. Nothing is stored."""
    limit = request.app.state.services.settings.max_upload_bytes
    horizons = sorted({int(p) for p in periods.split(",")})
    if horizons[0] < 1:
        raise invalid(["body", "periods"], "invalid_periods", "periods must be at least 1 bar")
    fac = _wide(_read(factor, "factor", limit), "factor", ("factor", "value"))
    px = _wide(_read(prices, "prices", limit), "prices", ("close", "price", "adj_close"))
    missing = [a for a in fac.columns if a not in px.columns]
    if missing:
        raise invalid(
            ["body", "prices"],
            "unknown_asset",
            f"prices: no prices for asset {missing[0]!r} of the factor "
            f"({len(missing)} asset(s) missing)",
        )
    try:
        out = analyze(fac, px, horizons, quantiles, max_horizon)
    except FactorInputError as e:
        raise invalid(["body", "factor"], "factor_input", str(e)) from None
    except NoObservations as e:
        raise invalid(["body", "factor"], "no_observations", str(e)) from None
    return FactorAnalysis(**out)


RunIdPath = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="A run id.")]
SymbolQuery = Annotated[
    Symbol | None, Query(description="Which symbol (default: the run's only or first one).")
]


@router.get(
    "/runs/{run_id}/bars",
    response_class=Response,
    responses={
        200: {
            "description": "datetime, open, high, low, close, volume as JSON (items), CSV or "
            "Parquet by Accept.",
            "content": {
                results.CSV_TYPE: {"schema": {"type": "string"}},
                results.PARQUET_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **_error_responses(401, 404, 406, 409, 422, 429),
    },
    tags=["results"],
)
def run_bars(
    user: User, request: Request, run_id: RunIdPath, symbol: SymbolQuery = None
) -> Response:
    """The bars of one symbol that a run was tested on (any status)."""
    svc = request.app.state.services
    media = results.choose_media_type(request.headers.get("accept"))
    if media is None:
        raise ApiError(
            406, "not_acceptable", f"this resource is served as {', '.join(results.MEDIA_TYPES)}"
        )
    job = svc.db.get_job(run_id, kind="run", owner=user.user)
    if job is None:
        raise not_found("run")
    df = _bars(svc.settings, job["spec"]["data"], symbol)
    if media == results.CSV_TYPE:
        return Response(results.to_csv(df), media_type="text/csv")
    if media == results.PARQUET_TYPE:
        return Response(results.to_parquet(df), media_type=media)
    body = f'{{"items":{results.json_records(df)},"total":{len(df)},"offset":0,"limit":null}}'
    return Response(body, media_type=results.JSON_TYPE)


def _bars(settings: Any, data: dict[str, Any], symbol: str | None) -> pd.DataFrame:
    from bt_server.worker import WorkerContext

    # Only the data loading of a worker is used: no strategy folders to import.
    ctx = WorkerContext(dict(settings.worker_config(), strategy_modules=[], strategy_dirs=[]))
    try:
        md = ctx.market_data(data)
    except bt_core.DataError as e:
        raise ApiError(409, "data_unavailable", f"the run's data cannot be read: {e}") from None
    except ValueError as e:  # bt-data's query and store errors
        raise ApiError(409, "data_unavailable", f"the run's data cannot be read: {e}") from None
    chosen = symbol or md.symbols[0]
    if chosen not in md.symbols:
        raise invalid(
            ["query", "symbol"],
            "unknown_symbol",
            f"the run's data has no symbol {chosen!r}; it has {', '.join(md.symbols)}",
        )
    frame = md.frame(chosen)
    cols = [c for c in ("open", "high", "low", "close", "volume") if c in frame.columns]
    out = frame[cols].reset_index(names="datetime")
    out.insert(1, "symbol", chosen)
    return out


__all__ = ["MAX_CELLS", "FactorAnalysis", "analyze", "router"]
