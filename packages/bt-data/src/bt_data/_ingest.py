"""Turn a tabular source (CSV, Parquet, Arrow, pandas) into validated canonical bars in DuckDB.

Everything runs inside DuckDB as set-based SQL: the source is parsed into a temporary staging
table ``_bt_stage`` once, checked with one aggregate query (plus one for duplicate timestamps),
and only then written. There is no Python loop over rows. The staging table's ``rowid`` follows
source order (DuckDB preserves insertion order), which is how errors name the offending row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from .errors import DataValidationError
from .periods import check_adjust, check_period, is_intraday
from .timeutil import check_tz

STAGE = "_bt_stage"
#: Canonical input columns, in storage order after ``symbol`` and ``datetime``.
PRICE_COLUMNS = ("open", "high", "low", "close")
OPTIONAL_NUMERIC = ("amount", "open_interest", "pre_close")
CANONICAL = (
    "symbol",
    "datetime",
    *PRICE_COLUMNS,
    "volume",
    *OPTIONAL_NUMERIC,
    "suspend_flag",
)
REQUIRED = ("datetime", *PRICE_COLUMNS, "volume")
#: Columns of the ``bars`` table, in order.
BAR_COLUMNS = (
    "symbol",
    "period",
    "adjust",
    "ts",
    *PRICE_COLUMNS,
    "volume",
    *OPTIONAL_NUMERIC,
    "suspend_flag",
)
#: Value columns a source may or may not provide.
OPTIONAL_COLUMNS = (*OPTIONAL_NUMERIC, "suspend_flag")
_SQL_TYPES = {"suspend_flag": "TINYINT"}
_EPOCH_FORMATS = ("epoch_ms", "epoch_s")
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
_INTEGER_TYPES |= {"UINTEGER", "UBIGINT"}


@dataclass(frozen=True)
class IngestOptions:
    """How to read a source into canonical bars.

    Attributes:
        period: bar period (one of :data:`bt_data.PERIODS`).
        adjust: adjustment type (one of :data:`bt_data.ADJUSTS`).
        symbol: constant symbol for single-symbol sources; the source must then have no symbol
            column. ``None`` requires a ``symbol`` column.
        columns: source column name → canonical name, for sources with other headers
            (e.g. ``{"date": "datetime", "vol": "volume"}``). Unmapped columns whose name matches a
            canonical name case-insensitively are used as they are; other columns are ignored.
        date_format: ``None`` to let DuckDB parse ISO-like text (``2019-01-02``,
            ``2019-01-02 09:31:00``, with or without a UTC offset), a ``strptime`` format such as
            ``"%Y%m%d"`` or ``"%Y%m%d%H%M%S"``, or ``"epoch_ms"`` / ``"epoch_s"`` for Unix times.
        tz: IANA zone of *naive* source times (``"Asia/Shanghai"`` for exchange-local files).
            Times with an offset and epoch times are instants and ignore it, except that for daily
            and longer periods the trading date is taken in this zone.
    """

    period: str
    adjust: str = "none"
    symbol: str | None = None
    columns: Mapping[str, str] | None = None
    date_format: str | None = None
    tz: str = "UTC"

    def checked(self) -> IngestOptions:
        """Validate every option, raising ``ValueError`` subclasses that name the parameter."""
        check_period(self.period)
        check_adjust(self.adjust)
        check_tz(self.tz)
        if self.symbol is not None and (not isinstance(self.symbol, str) or not self.symbol):
            raise ValueError(
                f"parameter 'symbol': expected a non-empty string, got {self.symbol!r}"
            )
        if self.columns is not None:
            for src, dst in self.columns.items():
                if dst not in CANONICAL:
                    raise ValueError(
                        f"parameter 'columns': {src!r} maps to unknown column {dst!r}; "
                        f"canonical columns are {', '.join(CANONICAL)}"
                    )
        return self


def fetch_one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """First row of a pending result, consuming the rest.

    duckdb 2 keeps a partly fetched result open and then refuses ``register`` on the connection.
    """
    rows = result.fetchall()
    return tuple(rows[0]) if rows else None


def quote_ident(name: str) -> str:
    """Quote a SQL identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a SQL string literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


def describe(con: duckdb.DuckDBPyConnection, source_sql: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column of ``source_sql``."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def resolve_columns(
    source_columns: Sequence[str], opts: IngestOptions, label: str
) -> dict[str, str]:
    """Map each canonical column to the source column that provides it.

    Raises:
        DataValidationError: for a mapped column the source lacks, two source columns feeding
            one canonical column, missing required columns, or a symbol column next to a
            constant ``symbol``.
    """
    mapping: dict[str, str] = {}
    explicit = dict(opts.columns or {})
    for src, dst in explicit.items():
        if src not in source_columns:
            raise DataValidationError(
                f"column map names {src!r}, which the source does not have; "
                f"it has {', '.join(source_columns)}",
                source=label,
                column=src,
            )
        if dst in mapping:
            raise DataValidationError(
                f"columns {mapping[dst]!r} and {src!r} both map to {dst!r}", source=label
            )
        mapping[dst] = src
    lowered: dict[str, list[str]] = {}
    for col in source_columns:
        if col not in explicit:
            lowered.setdefault(col.strip().lower(), []).append(col)
    for canon in CANONICAL:
        if canon in mapping:
            continue
        found = lowered.get(canon, [])
        if len(found) > 1:
            raise DataValidationError(
                f"columns {found} all match {canon!r}; map one of them explicitly", source=label
            )
        if found:
            mapping[canon] = found[0]
    required = list(REQUIRED)
    if opts.symbol is None:
        required.insert(0, "symbol")
    elif "symbol" in mapping:
        raise DataValidationError(
            f"symbol={opts.symbol!r} was given but the source also has a symbol column "
            f"{mapping['symbol']!r}; pass one or the other",
            source=label,
            column=mapping["symbol"],
        )
    missing = [c for c in required if c not in mapping]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {', '.join(missing)}; "
            f"the source has {', '.join(source_columns) or 'no columns'}",
            source=label,
            column=missing[0],
        )
    return mapping


def _time_expr(col: str, col_type: str, opts: IngestOptions, label: str) -> tuple[str, str]:
    """SQL reading the source date/time column, and what kind of value it gives.

    Kinds: ``"local"`` (naive TIMESTAMP, wall time in ``opts.tz``), ``"utc"`` (naive TIMESTAMP
    meaning UTC) or ``"instant"`` (TIMESTAMPTZ). The statement runs with the session
    ``TimeZone`` set to ``opts.tz``, so text without an offset means local time there.
    """
    ref = quote_ident(col)
    fmt = opts.date_format
    base = col_type.upper()
    if fmt == "epoch_ms":
        return f"epoch_ms(TRY_CAST({ref} AS BIGINT))", "utc"
    if fmt == "epoch_s":
        return f"make_timestamp(CAST(TRY_CAST({ref} AS DOUBLE) * 1000000 AS BIGINT))", "utc"
    if base.startswith("TIMESTAMP WITH TIME ZONE"):
        return ref, "instant"
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({ref} AS TIMESTAMP)", "local"
    if fmt is not None:
        text = ref if base == "VARCHAR" else f"CAST({ref} AS VARCHAR)"
        parsed = f"try_strptime({text}, {quote_literal(fmt)})"
        return (parsed, "instant") if "%z" in fmt else (parsed, "local")
    if base in _INTEGER_TYPES:
        raise DataValidationError(
            f"datetime column {col!r} holds integers ({col_type}); pass date_format "
            "('epoch_ms', 'epoch_s' or a strptime format such as '%Y%m%d')",
            source=label,
            column=col,
        )
    text = ref if base == "VARCHAR" else f"CAST({ref} AS VARCHAR)"
    return f"TRY_CAST({text} AS TIMESTAMPTZ)", "instant"


def _ts_expr(expr: str, kind: str, opts: IngestOptions) -> str:
    """The stored ``ts``: naive UTC for intraday bars, the local trading date for longer ones.

    ``make_timestamp(epoch_us(x))`` turns an instant into naive UTC with integer arithmetic,
    avoiding a time-zone library call per row; naive UTC input needs no work at all.
    """
    utc_tz = opts.tz == "UTC"
    if is_intraday(opts.period):
        if kind == "utc" or (kind == "local" and utc_tz):
            return expr
        inst = f"CAST({expr} AS TIMESTAMPTZ)" if kind == "local" else expr
        return f"make_timestamp(epoch_us({inst}))"
    # Date-labelled bars: the trading date in opts.tz, stored at 00:00 (see timeutil).
    if kind == "local" or (kind == "utc" and utc_tz):
        return f"CAST(CAST({expr} AS DATE) AS TIMESTAMP)"
    inst = f"timezone('UTC', {expr})" if kind == "utc" else expr
    return f"CAST(CAST({inst} AS DATE) AS TIMESTAMP)"


def stage_select(
    source_sql: str,
    types: Mapping[str, str],
    mapping: Mapping[str, str],
    opts: IngestOptions,
    label: str,
) -> str:
    """The SELECT that turns ``source_sql`` into staging rows: ``symbol, ts``, prices, volume and
    the optional columns the source has. Period and adjustment are constant for a batch and
    missing optional columns are NULL, so both are added only when writing (:func:`bars_select`)
    rather than materialized per staged row."""
    dt_col = mapping["datetime"]
    expr, kind = _time_expr(dt_col, types[dt_col], opts, label)
    ts = _ts_expr(expr, kind, opts)
    sym = (
        quote_literal(opts.symbol)
        if opts.symbol is not None
        else f"CAST({quote_ident(mapping['symbol'])} AS VARCHAR)"
    )
    parts = [f"{sym} AS symbol", f"{ts} AS ts"]
    for col in (*PRICE_COLUMNS, "volume"):
        parts.append(f"TRY_CAST({quote_ident(mapping[col])} AS DOUBLE) AS {col}")
    for col in OPTIONAL_NUMERIC:
        if col in mapping:
            # NaN in an optional field means "unknown": store NULL, never a number.
            v = f"TRY_CAST({quote_ident(mapping[col])} AS DOUBLE)"
            parts.append(f"CASE WHEN isnan({v}) THEN NULL ELSE {v} END AS {col}")
    if "suspend_flag" in mapping:
        parts.append(f"TRY_CAST({quote_ident(mapping['suspend_flag'])} AS TINYINT) AS suspend_flag")
    return f"SELECT {', '.join(parts)} FROM {source_sql}"


def bars_select(staged: Staged, period: str, adjust: str, columns: Sequence[str]) -> str:
    """SELECT over the staging table giving ``columns`` (names from :data:`BAR_COLUMNS`), with
    the batch's period/adjustment as constants and NULL for optional columns it lacks."""
    exprs = []
    for col in columns:
        if col == "period":
            exprs.append(f"{quote_literal(period)} AS period")
        elif col == "adjust":
            exprs.append(f"{quote_literal(adjust)} AS adjust")
        elif col in OPTIONAL_COLUMNS and col not in staged.columns:
            exprs.append(f"CAST(NULL AS {_SQL_TYPES.get(col, 'DOUBLE')}) AS {col}")
        else:
            exprs.append(col)
    return f"SELECT {', '.join(exprs)} FROM {STAGE}"


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_source` left in the staging table."""

    rows: int
    columns: tuple[str, ...]


_CSV_LINE = re.compile(r"Line:\s*(\d+)")
_CSV_COLUMN = re.compile(r'column "([^"]+)"')


def stage_source(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    opts: IngestOptions,
    label: str,
    *,
    header_lines: int = 0,
) -> Staged:
    """Parse ``source_sql`` into the temp table ``_bt_stage`` and validate it. Writes nothing else.

    ``header_lines`` is added to row numbers in messages about text files so that
    "line N" matches what an editor shows.

    Returns:
        The number of staged rows and the staged columns.

    Raises:
        DataValidationError: for any bad input, naming source, row and column.
    """
    opts = opts.checked()
    types = dict(describe(con, source_sql))
    mapping = resolve_columns(list(types), opts, label)
    select = stage_select(source_sql, types, mapping, opts, label)
    con.execute(f"SET TimeZone = {quote_literal(opts.tz)}")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS {select}")
    except duckdb.ConversionException as exc:
        # DuckDB's CSV reader reports the line and column of a value that does not convert.
        msg = str(exc)
        line = _CSV_LINE.search(msg)
        column = _CSV_COLUMN.search(msg)
        first = msg.splitlines()[0:3]
        raise DataValidationError(
            "value does not convert: " + " | ".join(s.strip() for s in first if s.strip()),
            source=label,
            row=(int(line.group(1)) - header_lines) if line else None,
            column=column.group(1) if column else None,
        ) from exc
    finally:
        con.execute("SET TimeZone = 'UTC'")
    counted = fetch_one(con.execute(f"SELECT count(*) FROM {STAGE}"))
    staged = Staged(
        int(counted[0]) if counted else 0,
        ("symbol", "ts", *PRICE_COLUMNS, "volume", *(c for c in OPTIONAL_COLUMNS if c in mapping)),
    )
    _validate_stage(con, source_sql, mapping, label, header_lines)
    return staged


def _validate_stage(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    mapping: Mapping[str, str],
    label: str,
    header_lines: int,
) -> None:
    checks: list[tuple[str, str, str]] = [
        ("symbol", "symbol IS NULL OR symbol = ''", "missing symbol"),
        ("datetime", "ts IS NULL", "missing or unparsable date/time"),
    ]
    for col in PRICE_COLUMNS:
        checks.append((col, f"{col} IS NULL OR isnan({col})", "missing, NaN or non-numeric price"))
    for col in PRICE_COLUMNS:
        checks.append((col, f"{col} < 0", "negative price"))
    checks.append(("high", "high < low", "high is below low"))
    checks.append(
        ("volume", "volume IS NULL OR isnan(volume)", "missing, NaN or non-numeric volume")
    )
    checks.append(("volume", "volume < 0", "negative volume"))
    if "amount" in mapping:
        checks.append(("amount", "amount < 0", "negative amount"))
    if "suspend_flag" in mapping:
        checks.append(
            ("suspend_flag", "suspend_flag NOT IN (-1, 0, 1)", "suspend_flag must be -1, 0 or 1")
        )
    # One pass: every row check, plus a proof that no key repeats when the input comes in one
    # block per symbol with strictly increasing times (the usual layout). lag() OVER () streams
    # in scan order; whatever that order is, one block per symbol and increasing times inside
    # each block rule out a repeated (symbol, ts). Otherwise a GROUP BY decides below.
    sql = ", ".join(f"min(_rid) FILTER (WHERE {cond})" for _, cond, _ in checks)
    found = fetch_one(
        con.execute(
            f"SELECT min(_rid), count(*) FILTER (WHERE _ps IS DISTINCT FROM symbol), "
            "count(*) FILTER (WHERE _ps = symbol AND _pt >= ts), count(DISTINCT symbol), "
            f"{sql} FROM (SELECT *, rowid AS _rid, lag(symbol) OVER () AS _ps, "
            f"lag(ts) OVER () AS _pt FROM {STAGE})"
        )
    )
    assert found is not None
    # Offsets from the first rowid, so numbering holds even if staged inside a transaction.
    base = int(found[0]) if found[0] is not None else 0
    blocks, not_increasing, n_symbols = found[1], found[2], found[3]
    for (col, _, what), abs_rowid in zip(checks, found[4:], strict=True):
        if abs_rowid is None:
            continue
        rowid = int(abs_rowid) - base
        src_col = mapping.get(col, col)
        row = int(rowid) + 1
        raw = (
            fetch_one(
                con.execute(
                    f"SELECT CAST({quote_ident(src_col)} AS VARCHAR) FROM {source_sql} "
                    f"LIMIT 1 OFFSET {int(rowid)}"
                )
            )
            if col in mapping
            else None
        )
        shown = f" (value {raw[0]!r})" if raw is not None else ""
        if col == "high":
            vals = fetch_one(
                con.execute(f"SELECT high, low FROM {STAGE} WHERE rowid = {int(abs_rowid)}")
            )
            shown = f" (high {vals[0]!r} < low {vals[1]!r})" if vals else shown
        raise DataValidationError(
            f"{what}{shown}{_line_hint(row, header_lines)}", source=label, row=row, column=src_col
        )
    if blocks == n_symbols and not_increasing == 0:
        return
    # Existence check first; the query that names the rows runs only on failure.
    any_dup = fetch_one(
        con.execute(f"SELECT symbol FROM {STAGE} GROUP BY symbol, ts HAVING count(*) > 1 LIMIT 1")
    )
    if any_dup is None:
        return
    dup = fetch_one(
        con.execute(
            f"SELECT symbol, ts, list(rowid ORDER BY rowid)[1:2] AS r FROM {STAGE} "
            "GROUP BY symbol, ts HAVING count(*) > 1 ORDER BY min(rowid) LIMIT 1"
        )
    )
    assert dup is not None
    rows = [int(r) - base + 1 for r in dup[2]]
    raise DataValidationError(
        f"duplicate timestamp {dup[1]} for symbol {dup[0]!r} in rows {rows[0]} and {rows[1]}"
        f"{_line_hint(rows[1], header_lines)}",
        source=label,
        row=rows[1],
        column=mapping["datetime"],
    )


def _line_hint(row: int, header_lines: int) -> str:
    return f"; line {row + header_lines} of the file" if header_lines else ""


def csv_header(path: str) -> tuple[list[str], str]:
    """Column names and delimiter of a CSV file, from its first line.

    Read in Python so DuckDB sniffs the file once (in the import itself), not twice.
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise DataValidationError("the file is empty or has an empty header line", source=path)
    try:
        delim = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delim = ","  # a single-column header: nothing to detect
    names = next(csv.reader([first.rstrip("\r\n")], delimiter=delim))
    return [n.strip() for n in names], delim


def csv_source_sql(
    path: str, columns_as_double: Sequence[str], datetime_col: str | None, delim: str = ","
) -> str:
    """``read_csv(...)`` expression with price/volume columns forced to DOUBLE, so DuckDB reports
    a bad number with its line. ``datetime_col`` (given when a ``date_format`` applies) is read as
    text; otherwise DuckDB's sniffer types it (DATE / TIMESTAMP / TIMESTAMPTZ parsed natively
    while scanning, or VARCHAR when the sample is not uniform, which we then parse ourselves)."""
    types = {c: "DOUBLE" for c in columns_as_double}
    if datetime_col is not None:
        types[datetime_col] = "VARCHAR"
    type_sql = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items())
    return (
        f"read_csv({quote_literal(path)}, header = true, delim = {quote_literal(delim)}, "
        f"types = {{{type_sql}}})"
    )
