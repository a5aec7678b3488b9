"""A run's result files: ``data_dir/runs/<id>/{equity,fills,orders,trades}.parquet`` and
``result.json``; and the ways the API serves them (JSON, CSV or Parquet, by ``Accept``).

The worker writes every file into a temporary folder, flushes each to disk and renames the
folder into place in one step, before the run's record says ``succeeded``: a crash at any
point leaves no half-written result under a run's name.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ("equity", "fills", "orders", "trades", "trials")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
PARQUET_TYPE = "application/vnd.apache.parquet"
_PARQUET_ALIASES = (PARQUET_TYPE, "application/x-parquet", "application/parquet")
MEDIA_TYPES = (JSON_TYPE, CSV_TYPE, PARQUET_TYPE)


def runs_dir(data_dir: Path) -> Path:
    return data_dir / "runs"


def run_dir(data_dir: Path, job_id: str) -> Path:
    return runs_dir(data_dir) / job_id


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # directories cannot be synced everywhere
        pass
    finally:
        os.close(fd)


def write_results(result: Any, target: Path, extra: dict[str, Any]) -> None:
    """Write a :class:`bt_core.Result`'s tables and ``extra`` (stats etc.) to ``target``."""
    frames = {
        "equity": pd.DataFrame(
            {"datetime": result.equity.index, "equity": result.equity.to_numpy()}
        ),
        "fills": result.fills,
        "orders": result.orders,
        "trades": result.trades,
    }
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        for name, df in frames.items():
            path = tmp / f"{name}.parquet"
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
            _fsync(path)
        meta = tmp / "result.json"
        meta.write_text(json.dumps(extra, allow_nan=False))
        _fsync(meta)
        _fsync(tmp)
        if target.exists():  # left by an attempt that never reached its record
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def collect_files(source: Path) -> dict[str, bytes]:
    """Every file under ``source`` (relative path -> content): a job's results on their way
    from a machine without the server's data directory."""
    return {
        p.relative_to(source).as_posix(): p.read_bytes()
        for p in sorted(source.rglob("*"))
        if p.is_file()
    }


def install_files(files: dict[str, bytes], target: Path) -> None:
    """Write ``files`` (from :func:`collect_files`) as the folder ``target``, all or nothing,
    like :func:`write_results`."""
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        for name, content in files.items():
            path = (tmp / name).resolve()
            if tmp.resolve() not in path.parents:
                raise ValueError(f"a result file {name!r} lies outside its folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            _fsync(path)
        _fsync(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))


def _arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that Parquet can type: numbers (None -> NaN) or text (None -> null)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype != object:
            continue
        present = out[c].dropna()
        if len(present) and present.map(_is_number).all():
            out[c] = pd.to_numeric(out[c], errors="coerce")
        elif len(present) == 0:
            out[c] = pd.Series(np.nan, index=out.index, dtype="float64")
        else:
            out[c] = out[c].map(lambda v: None if v is None or v != v else str(v))
    return out


def write_optimization(res: Any, target: Path, summary: dict[str, Any]) -> None:
    """Write an optimisation's trial table and its HTML report (heatmap etc.) to ``target``,
    all or nothing, like :func:`write_results`."""
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        table = _arrow_safe(res.table)
        path = tmp / "trials.parquet"
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
        _fsync(path)
        res.report(tmp / "report.html", title=f"{summary['strategy']} optimisation")
        _fsync(tmp / "report.html")
        meta = tmp / "result.json"
        meta.write_text(json.dumps(summary, allow_nan=False))
        _fsync(meta)
        _fsync(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale(data_dir: Path, known_ids: set[str], finished_ids: set[str]) -> int:
    """At start-up: temporary folders, and result folders of runs that are gone or did not
    finish (a crash between the rename and the record), are removed."""
    folder = runs_dir(data_dir)
    if not folder.is_dir():
        return 0
    removed = 0
    for d in folder.iterdir():
        if d.name.startswith(".tmp-") or d.name not in known_ids or d.name not in finished_ids:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


def read_table(directory: Path, name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise ValueError(f"unknown result table {name!r}")
    return pd.read_parquet(directory / f"{name}.parquet")


def downsample(df: pd.DataFrame, points: int | None) -> pd.DataFrame:
    """At most ``points`` evenly spaced rows, always keeping the first and the last."""
    n = len(df)
    if points is None or n <= points:
        return df
    if points == 1:
        return df.iloc[[n - 1]]
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))
    return df.iloc[idx]


def choose_media_type(accept: str | None) -> str | None:
    """The first of JSON, CSV, Parquet that ``accept`` allows (by q-value); JSON when there
    is no header; None when it allows none of them."""
    if not accept or not accept.strip():
        return JSON_TYPE
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        bits = [b.strip() for b in part.split(";")]
        media = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "application/*", JSON_TYPE, "application/*+json"):
            return JSON_TYPE
        if media in ("text/*", CSV_TYPE):
            return CSV_TYPE
        if media in _PARQUET_ALIASES:
            return PARQUET_TYPE
    return None


def _for_json(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_timedelta64_dtype(out[c]):
            out[c] = out[c].dt.total_seconds()
    return out


def json_records(df: pd.DataFrame) -> str:
    """Rows as a JSON array: ISO-8601 UTC times, durations in seconds, null for NaN/NaT, and
    floats written exactly (the shortest text that reads back as the same double)."""
    if df.empty:
        return "[]"
    out = _for_json(df)
    for c in out.columns:
        col = out[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
            values = col.dt.tz_convert("UTC") if isinstance(col.dtype, pd.DatetimeTZDtype) else col
            naive = (
                values.dt.tz_localize(None) if isinstance(col.dtype, pd.DatetimeTZDtype) else values
            )
            text = np.datetime_as_string(naive.to_numpy(dtype="datetime64[us]"), unit="us")
            out[c] = pd.Series(np.char.add(text.astype(str), "Z"), index=out.index).where(
                col.notna(), None
            )
    records = out.astype(object).where(out.notna(), None).to_dict(orient="records")
    return json.dumps(records, allow_nan=False)


def to_csv(df: pd.DataFrame) -> bytes:
    return _for_json(df).to_csv(index=False).encode()


def to_parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


__all__ = [
    "CSV_TYPE",
    "JSON_TYPE",
    "MEDIA_TYPES",
    "PARQUET_TYPE",
    "TABLES",
    "choose_media_type",
    "collect_files",
    "downsample",
    "install_files",
    "json_records",
    "read_table",
    "remove_stale",
    "run_dir",
    "to_csv",
    "to_parquet",
    "write_results",
]
