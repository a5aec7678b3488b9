"""Uploaded datasets: CSV or Parquet bars, validated by :func:`bt_core.load_data` (the same
checks and errors as ``bt run``), kept byte for byte under ``data_dir/datasets/<id>.<format>``.

A file is written to a temporary name, flushed to disk and renamed before its record is
committed, so a crash leaves either nothing or a complete upload; files without a record
(an upload that was never acknowledged) are removed at start-up.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

import bt_core
from bt_server.db import Database

FORMATS = ("csv", "parquet")
SAMPLE_NAME = "sample"
_PARQUET_MAGIC = b"PAR1"


def dataset_dir(data_dir: Path) -> Path:
    return data_dir / "datasets"


def dataset_path(data_dir: Path, dataset_id: str, fmt: str) -> Path:
    if fmt not in FORMATS:  # the format comes from our own record; never from a client
        raise ValueError(f"unknown dataset format {fmt!r}")
    return dataset_dir(data_dir) / f"{dataset_id}.{fmt}"


def sniff_format(content: bytes, filename: str | None, content_type: str | None) -> str | None:
    """``"parquet"`` or ``"csv"`` from the bytes first (a Parquet file starts and ends with
    PAR1), then the file name and the declared type; None if it is neither."""
    if content[:4] == _PARQUET_MAGIC and content[-4:] == _PARQUET_MAGIC:
        return "parquet"
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if name.endswith((".parquet", ".pq")) or "parquet" in ctype:
        return "parquet"  # says Parquet but is not: the reader reports it as a data error
    if name.endswith((".csv", ".txt")) or ctype in ("text/csv", "text/plain", "application/csv"):
        return "csv"
    if not name or ctype in ("", "application/octet-stream"):
        return "csv"  # anonymous text: let the CSV reader judge it
    return None


def read_frame(content: bytes, fmt: str, label: str) -> pd.DataFrame:
    """The upload as a DataFrame, read as ``bt run`` reads a file (parse errors are
    :class:`bt_core.DataError`)."""
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(content))
        return pd.read_parquet(io.BytesIO(content))
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise bt_core.DataError(f"cannot read {label}: {e}") from e
    except Exception as e:  # pyarrow and the C parser have error classes of their own
        raise bt_core.DataError(f"cannot read {label}: {type(e).__name__}: {e}") from e


def validate(content: bytes, fmt: str, label: str, symbol: str | None) -> bt_core.MarketData:
    if not content:
        raise bt_core.DataError(f"{label}: the file is empty")
    return bt_core.load_data(read_frame(content, fmt, label), symbol=symbol)


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()


def write_atomic(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def store_dataset(
    db: Database,
    data_dir: Path,
    *,
    owner: str | None,
    name: str,
    content: bytes,
    fmt: str,
    symbol: str | None,
) -> dict[str, Any]:
    """Validate ``content`` and keep it; returns the new record."""
    md = validate(content, fmt, name, symbol)
    dataset_id = uuid.uuid4().hex
    path = dataset_path(data_dir, dataset_id, fmt)
    write_atomic(path, content)
    record = {
        "id": dataset_id,
        "owner": owner,
        "name": name,
        "format": fmt,
        "size_bytes": len(content),
        "symbols": list(md.symbols),
        "n_bars": int(md.n_bars),
        "start": _iso(md.index[0]),
        "end": _iso(md.index[-1]),
        "symbol": symbol,
    }
    try:
        db.add_dataset(**record)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return db.get_dataset(dataset_id) or record


def remove_orphans(db: Database, data_dir: Path) -> int:
    """Delete dataset files that have no record (uploads that never completed)."""
    folder = dataset_dir(data_dir)
    if not folder.is_dir():
        return 0
    known = db.dataset_ids()
    removed = 0
    for f in folder.iterdir():
        stem = f.name.split(".")[0]
        if f.name.startswith(".tmp-") or (f.is_file() and stem not in known):
            f.unlink(missing_ok=True)
            removed += 1
    return removed


def sample_file() -> Path | None:
    """The bundled sample bars: inside an installed wheel, or the checkout's examples/."""
    here = Path(__file__).resolve()
    packaged = here.parent / "sample.csv"
    if packaged.is_file():
        return packaged
    for parent in here.parents:
        candidate = parent / "examples" / "data" / "sample.csv"
        if candidate.is_file():
            return candidate
    return None


def ensure_sample(db: Database, data_dir: Path) -> dict[str, Any] | None:
    """Offer the sample bars as a shared dataset (once; later starts find it)."""
    existing = db.shared_dataset_named(SAMPLE_NAME)
    if existing is not None:
        return existing
    src = sample_file()
    if src is None:
        return None
    return store_dataset(
        db,
        data_dir,
        owner=None,
        name=SAMPLE_NAME,
        content=src.read_bytes(),
        fmt="csv",
        symbol=None,
    )


def load_market_data(path: Path, fmt: str, label: str, symbol: str | None) -> bt_core.MarketData:
    return validate(path.read_bytes(), fmt, label, symbol)


__all__ = [
    "FORMATS",
    "SAMPLE_NAME",
    "dataset_path",
    "ensure_sample",
    "load_market_data",
    "remove_orphans",
    "sample_file",
    "sniff_format",
    "store_dataset",
    "validate",
]
