"""The instrument table: per-symbol facts a market preset needs (board, risk-warning flag,
listing date, lot, minimum size, tick, name), stored beside the bars.

Rows are validated whole before anything is written: a bad row is reported with its 1-based
row number and column, and the store is left as it was. A write replaces the stored row of
each symbol it brings (idempotent upsert); a missing fact is NULL, which readers take as
"derive it" (e.g. the board from the code).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataValidationError

__all__ = ["BOARDS", "INSTRUMENT_COLUMNS", "CREATE_INSTRUMENTS", "normalize_instruments"]

#: Boards a row may name (None: not given).
BOARDS = ("main", "chinext", "star", "bse")
#: Columns of the table, in order.
INSTRUMENT_COLUMNS = ("symbol", "board", "st", "listing_date", "lot", "min_size", "tick", "name")

_BOARD_SQL = ", ".join(f"'{b}'" for b in BOARDS)
CREATE_INSTRUMENTS = f"""CREATE TABLE instruments (
    symbol VARCHAR NOT NULL PRIMARY KEY,
    board VARCHAR CHECK (board IN ({_BOARD_SQL})),
    st BOOLEAN,
    listing_date DATE,
    lot DOUBLE CHECK (lot > 0),
    min_size DOUBLE CHECK (min_size >= 0),
    tick DOUBLE CHECK (tick > 0),
    name VARCHAR,
    updated_at TIMESTAMP NOT NULL
)"""


def _missing(v: Any) -> bool:
    if v is None or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _records(table: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(table, pd.DataFrame):
        return [{str(k): v for k, v in r.items()} for r in table.to_dict("records")]
    if isinstance(table, Mapping):
        out = []
        for sym, facts in table.items():
            if not isinstance(facts, Mapping):
                raise DataValidationError(
                    f"facts of {sym!r} must be a mapping, got {type(facts).__name__}",
                    source=source,
                )
            out.append({"symbol": sym, **facts})
        return out
    if isinstance(table, list) and all(isinstance(r, Mapping) for r in table):
        return [dict(r) for r in table]
    raise DataValidationError(
        "instruments must be a DataFrame, a mapping of symbol -> facts or a list of rows, "
        f"got {type(table).__name__}",
        source=source,
    )


def normalize_instruments(table: Any, source: str = "instruments") -> pd.DataFrame:
    """Validated rows as a DataFrame of :data:`INSTRUMENT_COLUMNS`.

    Raises:
        DataValidationError: naming the first bad row (1-based) and column.
    """
    rows = _records(table, source)
    out: dict[str, list[Any]] = {c: [] for c in INSTRUMENT_COLUMNS}
    seen: dict[str, int] = {}
    for i, rec in enumerate(rows, start=1):

        def bad(column: str, what: str, row: int = i) -> DataValidationError:
            return DataValidationError(what, source=source, row=row, column=column)

        unknown = sorted(set(rec) - set(INSTRUMENT_COLUMNS))
        if unknown:
            raise bad(unknown[0], f"unknown column; known: {', '.join(INSTRUMENT_COLUMNS)}")
        sym = rec.get("symbol")
        if not isinstance(sym, str) or not sym.strip():
            raise bad("symbol", f"symbol must be non-empty text, got {sym!r}")
        sym = sym.strip()
        if sym in seen:
            raise bad("symbol", f"symbol {sym!r} repeats row {seen[sym]}")
        seen[sym] = i
        board = rec.get("board")
        if _missing(board):
            board = None
        elif board not in BOARDS:
            raise bad("board", f"board must be one of {', '.join(BOARDS)}, got {board!r}")
        st = rec.get("st")
        if _missing(st):
            st = None
        elif (
            isinstance(st, (bool, np.bool_))
            or isinstance(st, (int, np.integer))
            and int(st) in (0, 1)
        ):
            st = bool(st)
        else:
            raise bad("st", f"st must be true or false, got {st!r}")
        listing = rec.get("listing_date")
        if _missing(listing):
            listing = None
        else:
            try:
                ts = pd.Timestamp(listing)  # type: ignore[arg-type]
            except (ValueError, TypeError):
                ts = None
            if ts is None or pd.isna(ts):
                raise bad("listing_date", f"listing_date must be a date, got {listing!r}")
            listing = ts.date()
        nums: dict[str, float | None] = {}
        for col, zero_ok in (("lot", False), ("min_size", True), ("tick", False)):
            v = rec.get(col)
            if _missing(v):
                nums[col] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                raise bad(col, f"{col} must be a number, got {v!r}")
            f = float(v)
            if not math.isfinite(f) or f < 0 or (f == 0 and not zero_ok):
                floor = ">= 0" if zero_ok else "> 0"
                raise bad(col, f"{col} must be a finite number {floor}, got {v!r}")
            nums[col] = f
        name = rec.get("name")
        if _missing(name):
            name = None
        elif not isinstance(name, str):
            raise bad("name", f"name must be text, got {name!r}")
        for col, v in (
            ("symbol", sym),
            ("board", board),
            ("st", st),
            ("listing_date", listing),
            ("lot", nums["lot"]),
            ("min_size", nums["min_size"]),
            ("tick", nums["tick"]),
            ("name", name),
        ):
            out[col].append(v)
    frame = pd.DataFrame(out, columns=list(INSTRUMENT_COLUMNS))
    frame["st"] = frame["st"].astype("boolean")
    frame["listing_date"] = pd.to_datetime(frame["listing_date"])
    for col in ("lot", "min_size", "tick"):
        frame[col] = frame[col].astype("float64")
    return frame


def listing_date_from_xt(value: Any) -> dt.date | None:
    """xtdata's ``OpenDate`` (``YYYYMMDD`` text or number; 0 or 19700101: unknown)."""
    if _missing(value):
        return None
    text = str(int(value)) if isinstance(value, (int, float, np.number)) else str(value).strip()
    if not text or text in ("0", "19700101", "99999999"):
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None
