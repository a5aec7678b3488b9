"""BarStore: every period and adjustment of every symbol in one DuckDB table.

Schema (version 1):

``bars``
    ``symbol, period, adjust, ts, open, high, low, close, volume, amount, open_interest,
    pre_close, suspend_flag``; ``ts`` is a naive ``TIMESTAMP`` meaning UTC (see
    :mod:`bt_data.timeutil` for intraday vs. date-labelled bars). ``(symbol, period, adjust, ts)``
    is the key: the store guarantees at most one row per key (see *Upsert* below).
``absent_bars``
    keys the provider was asked for and said it has no data (holidays missing from the calendar,
    suspensions, dates before listing), so gap detection does not ask again.
``instruments`` (version 2)
    one row per symbol: board, risk-warning flag, listing date, lot, minimum size, tick, name
    (see :mod:`bt_data.instruments`); a write replaces the rows of the symbols it brings.
``schema_version``
    one row per applied migration.

Upsert: a write deletes the stored rows whose keys it brings and inserts its rows, inside one
transaction, under an exclusive inter-process lock. A corrected bar therefore replaces the old one,
and a failed or killed write leaves the store exactly as it was (DuckDB discards uncommitted
transactions). The key is enforced this way rather than by a DuckDB ``PRIMARY KEY`` index because
maintaining that index costs more than our whole validated import (``benchmarks/
bench_data_import.py`` times both designs); writes also check every batch for duplicate keys
before touching the table, and :meth:`BarStore.check_integrity` verifies the invariant.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from . import _ingest
from ._ingest import BAR_COLUMNS, STAGE, IngestOptions, Staged, fetch_one, quote_literal
from ._lock import FileLock, lock_path_for
from .errors import (
    DataValidationError,
    NotAStoreError,
    SchemaVersionError,
    StoreLockedError,
    StoreReadOnlyError,
)
from .instruments import CREATE_INSTRUMENTS, INSTRUMENT_COLUMNS, normalize_instruments
from .periods import ADJUSTS, PERIODS, check_adjust, check_period
from .query import BarQuery, as_query, normalize_symbols
from .timeutil import DateLike

__all__ = ["BarStore", "DEFAULT_DB_PATH", "DB_ENV_VAR", "resolve_db_path", "READ_COLUMNS"]

#: Default database file, relative to the current working directory.
DEFAULT_DB_PATH = os.path.join("data", "backtest.duckdb")
#: Environment variable that overrides :data:`DEFAULT_DB_PATH`.
DB_ENV_VAR = "BT_DATA_DB"
#: Columns of :meth:`BarStore.read` (``extra=False``), in order.
READ_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume", "amount")
EXTRA_COLUMNS = ("open_interest", "pre_close", "suspend_flag")

SCHEMA_VERSION = 2
_PERIOD_SQL = ", ".join(quote_literal(p) for p in PERIODS)
_ADJUST_SQL = ", ".join(quote_literal(a) for a in ADJUSTS)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        f"""CREATE TABLE bars (
            symbol VARCHAR NOT NULL,
            period VARCHAR NOT NULL CHECK (period IN ({_PERIOD_SQL})),
            adjust VARCHAR NOT NULL CHECK (adjust IN ({_ADJUST_SQL})),
            ts TIMESTAMP NOT NULL,
            open DOUBLE NOT NULL,
            high DOUBLE NOT NULL,
            low DOUBLE NOT NULL,
            close DOUBLE NOT NULL,
            volume DOUBLE NOT NULL,
            amount DOUBLE,
            open_interest DOUBLE,
            pre_close DOUBLE,
            suspend_flag TINYINT
        )""",
        f"""CREATE TABLE absent_bars (
            symbol VARCHAR NOT NULL,
            period VARCHAR NOT NULL CHECK (period IN ({_PERIOD_SQL})),
            adjust VARCHAR NOT NULL CHECK (adjust IN ({_ADJUST_SQL})),
            ts TIMESTAMP NOT NULL,
            reason VARCHAR NOT NULL,
            recorded_at TIMESTAMP NOT NULL
        )""",
    ),
    2: (CREATE_INSTRUMENTS,),
}
_OPEN_RETRY_SECONDS = 0.05
#: Every DuckDB database file has these bytes after its 8-byte header checksum.
_DUCKDB_MAGIC = b"DUCK"
_DUCKDB_MAGIC_OFFSET = 8
_READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def resolve_db_path(path: str | os.PathLike[str] | None) -> str:
    """The database path: ``path`` if given, else ``$BT_DATA_DB``, else ``data/backtest.duckdb``."""
    if path is not None:
        return os.fspath(path)
    return os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH


def _symbols_list(symbols: str | Sequence[str] | None) -> list[str] | None:
    syms = normalize_symbols(symbols)
    return None if syms is None else list(syms)


class BarStore:
    """A DuckDB file of OHLCV bars for many symbols, periods and adjustment types.

    Args:
        path: database file; ``None`` uses ``$BT_DATA_DB`` or ``data/backtest.duckdb`` (relative to
            the working directory; parent folders are created). ``":memory:"`` gives a private
            in-memory store (no locking, gone when the object is).
        lock_timeout: seconds to wait for another process's write before raising
            :class:`~bt_data.StoreLockedError`.

    Every method opens the file for the duration of one operation only, so several processes can
    share a store: writers are serialized by a lock file ``<path>.lock``; readers share it.
    A store this process may not write is still readable; its writes raise
    :class:`~bt_data.StoreReadOnlyError`.

    Raises:
        NotAStoreError: ``path`` exists but is not a bt-data store (not a DuckDB file, or a DuckDB
            database with other content); the file is left untouched. An empty DuckDB database
            is initialised.
        SchemaVersionError: the store was written by a newer bt-data.
        StoreReadOnlyError: ``path`` does not exist and cannot be created.
        StoreLockedError: another process kept the store locked for ``lock_timeout`` seconds.
    """

    #: Test seam: called inside a write transaction after the rows are in, before COMMIT.
    _fault_hook: Callable[[], None] | None = None

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, lock_timeout: float = 60.0
    ) -> None:
        self.path = resolve_db_path(path)
        self.lock_timeout = float(lock_timeout)
        self._mutex = threading.RLock()
        self._memory: duckdb.DuckDBPyConnection | None = None
        self._lock: FileLock | None = None
        if self.path == ":memory:":
            self._memory = duckdb.connect(":memory:")
            self._memory.execute("SET TimeZone = 'UTC'")
            with self._connect(write=True) as con:
                self._migrate(con)
            return
        self._lock = FileLock(lock_path_for(self.path), self.lock_timeout)
        if os.path.exists(self.path):
            _refuse_non_duckdb(self.path)
            # An up-to-date store is only read here, so a read-only one opens; a schema that
            # needs creating or upgrading is written below, under the writer lock.
            with self._connect(write=False) as con:
                if self._schema_state(con) == SCHEMA_VERSION:
                    return
        else:
            self._make_parent()
        with self._connect(write=True) as con:
            self._migrate(con)

    def __repr__(self) -> str:
        return f"BarStore({self.path!r})"

    # ------------------------------------------------------------------ connections and schema
    @contextmanager
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._mutex:
            if self._memory is not None:
                yield self._memory
                return
            assert self._lock is not None
            if write:
                self._check_writable()
                hold = self._lock.hold(exclusive=True)
            else:
                # Never create the lock file where we may not write (see bt_data._lock).
                hold = self._lock.hold(exclusive=False, create=_can_write(self._directory()))
            with hold:
                con = self._open(write)
                try:
                    con.execute("SET TimeZone = 'UTC'")
                    yield con
                finally:
                    con.close()

    def _directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def _check_writable(self) -> None:
        """Raise :class:`StoreReadOnlyError` before a write that could not succeed.

        DuckDB writes the file and ``<db>.wal`` beside it, and the writer lock needs
        ``<db>.lock`` writable; ``os.access`` also reports a read-only file system, even to root.
        """
        lock = lock_path_for(self.path)
        directory = self._directory()
        if not os.path.exists(self.path):
            if not _can_write(directory):
                raise StoreReadOnlyError(
                    f"cannot create store {self.path!r}: its directory {directory!r} is not "
                    "writable",
                    path=self.path,
                )
            return
        if _on_read_only_fs(directory):
            reason = "it is on a read-only file system"
        elif not _can_write(self.path):
            reason = "the file is not writable"
        elif not _can_write(directory):
            reason = f"its directory {directory!r} is not writable"
        elif os.path.exists(lock) and not _can_write(lock):
            reason = f"its lock file {lock!r} is not writable"
        else:
            return
        raise StoreReadOnlyError(
            f"store {self.path!r} is read-only ({reason}): it can be read but not written",
            path=self.path,
        )

    def _make_parent(self) -> None:
        parent = Path(self.path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in _READ_ONLY_ERRNOS:
                raise
            raise StoreReadOnlyError(
                f"cannot create store {self.path!r}: cannot create its directory "
                f"{os.fspath(parent)!r} ({exc.strerror})",
                path=self.path,
            ) from exc

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        # Our lock serializes bt-data processes; a foreign process (the duckdb CLI, an old
        # version) may still hold DuckDB's own lock, so retry that until the timeout too.
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return duckdb.connect(self.path, read_only=not write)
            except duckdb.IOException as exc:
                text = str(exc)
                if "lock" not in text.lower() or time.monotonic() >= deadline:
                    if "lock" in text.lower():
                        raise StoreLockedError(
                            f"DuckDB file {self.path!r} is locked by another program: {exc}"
                        ) from exc
                    # Our checks ran just before; these cover a race or a case they cannot see.
                    if write and ("Read-only file system" in text or "Permission denied" in text):
                        raise StoreReadOnlyError(
                            f"store {self.path!r} is read-only: {text}", path=self.path
                        ) from exc
                    if "not a valid DuckDB database" in text:
                        raise NotAStoreError(
                            f"{self.path!r} is not a DuckDB database, so not a bt-data store",
                            path=self.path,
                        ) from exc
                    raise
                time.sleep(_OPEN_RETRY_SECONDS)

    def _schema_state(self, con: duckdb.DuckDBPyConnection) -> int | None:
        """The store's schema version, or ``None`` for an empty DuckDB database (no tables, no
        views), which may become a store.

        Raises:
            NotAStoreError: for a DuckDB database with other content and no bt-data
                ``schema_version`` table.
            SchemaVersionError: for a store written by a newer bt-data.
        """
        row = fetch_one(
            con.execute(
                "SELECT list(column_name) FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = 'main' AND table_name = 'schema_version'"
            )
        )
        columns = row[0] if row else None
        if not columns:
            content = con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
                "WHERE database_name = current_database() AND NOT internal UNION ALL "
                "SELECT schema_name || '.' || view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal ORDER BY 1 LIMIT 4"
            ).fetchall()
            if not content:
                return None
            names = ", ".join(str(r[0]) for r in content[:3]) + (
                ", ..." if len(content) > 3 else ""
            )
            raise NotAStoreError(
                f"{self.path!r} is a DuckDB database but not a bt-data store: it has no "
                f"schema_version table (it holds {names}); it was left untouched",
                path=self.path,
            )
        if not {"version", "applied_at"} <= set(columns):
            raise NotAStoreError(
                f"{self.path!r} is a DuckDB database but not a bt-data store: its schema_version "
                f"table has columns {list(columns)}, not bt-data's (version, applied_at)",
                path=self.path,
            )
        row = fetch_one(con.execute("SELECT max(version) FROM schema_version"))
        current = int(row[0]) if row and row[0] is not None else 0
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store {self.path!r} has schema version {current}, newer than this bt-data's "
                f"({SCHEMA_VERSION}); upgrade bt-data"
            )
        return current

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        # Checked again here, under the writer lock: another process may have created or
        # upgraded the store since it was read.
        current = self._schema_state(con)
        if current == SCHEMA_VERSION:
            return
        with transaction(con):
            if current is None:
                con.execute(
                    "CREATE TABLE schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
                )
                current = 0
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[version]:
                    con.execute(stmt)
                con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])

    @contextmanager
    def _transaction(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """:func:`transaction` with this store's test seam called just before COMMIT."""
        with transaction(con, before_commit=self._fault_hook):
            yield

    def schema_version(self) -> int:
        """The schema version of the store file."""
        with self._connect(write=False) as con:
            row = fetch_one(con.execute("SELECT max(version) FROM schema_version"))
        return int(row[0]) if row and row[0] is not None else 0

    # ------------------------------------------------------------------ writes
    def import_csv(
        self,
        path: str | os.PathLike[str],
        *,
        period: str,
        adjust: str = "none",
        symbol: str | None = None,
        columns: dict[str, str] | None = None,
        date_format: str | None = None,
        tz: str = "UTC",
    ) -> int:
        """Import a CSV file (with a header row) through DuckDB's CSV reader.

        Args:
            path: the CSV file.
            period, adjust: what the bars are (:data:`bt_data.PERIODS`, :data:`bt_data.ADJUSTS`).
            symbol: constant symbol of a single-symbol file; ``None`` needs a ``symbol`` column.
            columns: source header → canonical name (``{"date": "datetime"}``).
            date_format: ``None`` (ISO text), a strptime format, ``"epoch_ms"`` or ``"epoch_s"``.
            tz: zone of naive times in the file (e.g. ``"Asia/Shanghai"``).

        Required columns: ``datetime, open, high, low, close, volume`` (+ ``symbol``); optional:
        ``amount, open_interest, pre_close, suspend_flag``. Prices in the source's currency,
        volume in the source's unit (xtdata: lots).

        Returns:
            Rows written (inserted or replaced).

        Raises:
            DataValidationError: missing columns, duplicate timestamps, NaN/negative prices,
                high < low, unparsable dates; naming file, row and column. Nothing is written.
        """
        opts = IngestOptions(period, adjust, symbol, columns, date_format, tz).checked()
        file = os.fspath(path)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"CSV file not found: {file!r}")
        with self._connect(write=True) as con:
            names, delim = _ingest.csv_header(file)
            mapping = _ingest.resolve_columns(names, opts, file)
            numeric = [mapping[c] for c in (*_ingest.PRICE_COLUMNS, "volume")]
            source = _ingest.csv_source_sql(
                file, numeric, mapping["datetime"] if opts.date_format else None, delim
            )
            return self._ingest_and_write(con, source, opts, file, header_lines=1)

    def import_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        period: str,
        adjust: str = "none",
        symbol: str | None = None,
        columns: dict[str, str] | None = None,
        date_format: str | None = None,
        tz: str = "UTC",
    ) -> int:
        """Import a Parquet file (or glob) through DuckDB's Parquet reader.

        Same options, rules and errors as :meth:`import_csv`; row numbers count from the first row.
        Timestamp columns with a time zone are instants; naive ones are read in ``tz``.
        """
        opts = IngestOptions(period, adjust, symbol, columns, date_format, tz).checked()
        file = os.fspath(path)
        if not any(ch in file for ch in "*?[") and not os.path.isfile(file):
            raise FileNotFoundError(f"Parquet file not found: {file!r}")
        with self._connect(write=True) as con:
            return self._ingest_and_write(con, f"read_parquet({quote_literal(file)})", opts, file)

    def write(
        self,
        bars: pd.DataFrame | pa.Table,
        *,
        period: str,
        adjust: str = "none",
        symbol: str | None = None,
        columns: dict[str, str] | None = None,
        tz: str = "UTC",
        source: str = "DataFrame",
    ) -> int:
        """Upsert bars from a DataFrame or Arrow table in one transaction.

        ``bars`` has the canonical columns (``symbol`` unless given, ``datetime``, ``open``,
        ``high``, ``low``, ``close``, ``volume``, optional ``amount`` …). ``datetime`` may be
        tz-aware (converted) or naive (read in ``tz``). ``source`` names the input in errors.

        Returns:
            Rows written. Raises :class:`DataValidationError` like :meth:`import_csv`.
        """
        opts = IngestOptions(period, adjust, symbol, columns, None, tz).checked()
        table = _to_arrow(bars, source)
        with self._connect(write=True) as con, _registered(con, "_bt_src", table):
            return self._ingest_and_write(con, "_bt_src", opts, source)

    def write_with_absent(
        self,
        bars: pd.DataFrame | None,
        absent: pd.DataFrame | None,
        *,
        period: str,
        adjust: str,
        source: str,
        reason: str = "no_data",
    ) -> int:
        """Upsert ``bars`` and record ``absent`` keys (columns ``symbol``, ``datetime``) in ONE
        transaction. Used by :class:`~bt_data.MarketDataService` so a backfill's bars and its
        "provider has nothing here" notes land together or not at all. Returns bars written."""
        opts = IngestOptions(period, adjust).checked()
        with self._connect(write=True) as con, _staging(con):
            written = 0
            staged: Staged | None = None
            if bars is not None and len(bars) > 0:
                # Parse and validate outside the transaction: a failed statement would abort
                # it, and nothing is written before validation passes anyway.
                with _registered(con, "_bt_src", _to_arrow(bars, source)):
                    staged = _ingest.stage_source(con, "_bt_src", opts, source)
            with self._transaction(con):
                if staged is not None:
                    written = self._upsert_stage(con, staged, period, adjust)
                if absent is not None and len(absent):
                    self._record_absent(con, absent, period, adjust, reason)
            return written

    def _ingest_and_write(
        self,
        con: duckdb.DuckDBPyConnection,
        source_sql: str,
        opts: IngestOptions,
        label: str,
        header_lines: int = 0,
    ) -> int:
        with _staging(con):
            # Parse and validate first, outside the transaction (see write_with_absent).
            staged = _ingest.stage_source(con, source_sql, opts, label, header_lines=header_lines)
            with self._transaction(con):
                return self._upsert_stage(con, staged, opts.period, opts.adjust)

    @staticmethod
    def _upsert_stage(
        con: duckdb.DuckDBPyConnection, staged: Staged, period: str, adjust: str
    ) -> int:
        """Replace stored rows that share a key with the staged rows, then insert the staged rows.

        Each symbol's staged [min, max] range is computed once; a table with no row in any of
        those ranges (a fresh store, appended history) needs no delete at all, and otherwise the
        range condition lets DuckDB skip row groups by their min/max statistics.
        """
        if staged.rows == 0:
            return 0
        stored = fetch_one(
            con.execute(
                "SELECT 1 FROM bars WHERE period = ? AND adjust = ? UNION ALL "
                "SELECT 1 FROM absent_bars WHERE period = ? AND adjust = ? LIMIT 1",
                [period, adjust, period, adjust],
            )
        )
        if stored is not None:
            BarStore._delete_staged_keys(con, period, adjust)
        select = _ingest.bars_select(staged, period, adjust, BAR_COLUMNS)
        con.execute(f"INSERT INTO bars ({', '.join(BAR_COLUMNS)}) {select}")
        return staged.rows

    @staticmethod
    def _delete_staged_keys(con: duckdb.DuckDBPyConnection, period: str, adjust: str) -> None:
        # Runs inside the write transaction: if a statement fails, the transaction is aborted,
        # any further statement (a cleanup in a finally) would fail and hide the cause, and the
        # ROLLBACK removes the temp table anyway. So clean up on success only.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _bt_ranges AS SELECT symbol, "
            f"min(ts) AS lo, max(ts) AS hi FROM {STAGE} GROUP BY symbol"
        )
        match = (
            "t.symbol = r.symbol AND t.period = ? AND t.adjust = ? AND t.ts BETWEEN r.lo AND r.hi"
        )
        for table in ("bars", "absent_bars"):
            overlap = fetch_one(
                con.execute(
                    f"SELECT 1 FROM {table} AS t JOIN _bt_ranges AS r ON {match} LIMIT 1",
                    [period, adjust],
                )
            )
            if overlap is not None:
                con.execute(
                    f"DELETE FROM {table} AS t USING _bt_ranges AS r WHERE {match} "
                    f"AND (t.symbol, t.ts) IN (SELECT symbol, ts FROM {STAGE})",
                    [period, adjust],
                )
        con.execute("DROP TABLE _bt_ranges")

    @staticmethod
    def _record_absent(
        con: duckdb.DuckDBPyConnection, absent: pd.DataFrame, period: str, adjust: str, reason: str
    ) -> None:
        frame = pd.DataFrame(
            {
                "symbol": absent["symbol"].astype(str).to_numpy(),
                "ts": _naive_utc(absent["datetime"]),
            }
        )
        # Inside the write transaction: unregister on success only (see _delete_staged_keys);
        # a rollback drops the registration with everything else.
        con.register("_bt_absent", pa.Table.from_pandas(frame, preserve_index=False))
        con.execute(
            "DELETE FROM absent_bars AS t USING _bt_absent AS a WHERE t.symbol = a.symbol "
            "AND t.period = ? AND t.adjust = ? AND t.ts = a.ts",
            [period, adjust],
        )
        # A key that has a bar is not absent; keep the two tables disjoint.
        con.execute(
            "INSERT INTO absent_bars SELECT DISTINCT a.symbol, ?, ?, a.ts, ?, "
            "now()::TIMESTAMP FROM _bt_absent AS a WHERE NOT EXISTS (SELECT 1 FROM bars b "
            "WHERE b.symbol = a.symbol AND b.period = ? AND b.adjust = ? AND b.ts = a.ts)",
            [period, adjust, reason, period, adjust],
        )
        con.unregister("_bt_absent")

    def forget_absent(
        self,
        symbols: str | Sequence[str] | None = None,
        *,
        period: str | None = None,
        adjust: str | None = None,
    ) -> int:
        """Drop remembered "provider has no data" keys so the next backfill asks again.

        Returns the number of keys forgotten."""
        where, params = self._filters(_symbols_list(symbols), None, None, period, adjust)
        with self._connect(write=True) as con, self._transaction(con):
            row = fetch_one(con.execute(f"SELECT count(*) FROM absent_bars {where}", params))
            con.execute(f"DELETE FROM absent_bars {where}", params)
        return int(row[0]) if row else 0

    def delete(
        self,
        symbols: str | Sequence[str],
        *,
        period: str,
        adjust: str = "none",
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> int:
        """Delete stored bars of ``symbols`` in ``[start, end]``; returns the number deleted."""
        query = BarQuery(symbols, start, end, period, adjust)
        if query.symbols is None:
            raise ValueError("parameter 'symbols': name the symbols whose bars to delete")
        where, params = self._query_filters(query)
        with self._connect(write=True) as con, self._transaction(con):
            row = fetch_one(con.execute(f"SELECT count(*) FROM bars {where}", params))
            con.execute(f"DELETE FROM bars {where}", params)
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _filters(
        symbols: list[str] | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        period: str | None,
        adjust: str | None,
    ) -> tuple[str, list[object]]:
        conds: list[str] = []
        params: list[object] = []
        if period is not None:
            conds.append("period = ?")
            params.append(check_period(period))
        if adjust is not None:
            conds.append("adjust = ?")
            params.append(check_adjust(adjust))
        if symbols is not None:
            conds.append("list_contains(?, symbol)")
            params.append(symbols)
        if start is not None:
            conds.append("ts >= ?")
            params.append(start.to_pydatetime())
        if end is not None:
            conds.append("ts <= ?")
            params.append(end.to_pydatetime())
        return ("WHERE " + " AND ".join(conds)) if conds else "", params

    @classmethod
    def _query_filters(cls, query: BarQuery) -> tuple[str, list[object]]:
        symbols = None if query.symbols is None else list(query.symbols)
        return cls._filters(symbols, query.naive_start, query.naive_end, query.period, query.adjust)

    def read_arrow(
        self,
        symbols: BarQuery | str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
        *,
        extra: bool = False,
    ) -> pa.Table:
        """Like :meth:`read` but returns an Arrow table (``datetime`` as ``timestamp[ns, UTC]``)."""
        where, params = self._query_filters(as_query(symbols, start, end, period, adjust))
        cols = ["symbol", "ts AS datetime", *READ_COLUMNS[2:]]
        if extra:
            cols += list(EXTRA_COLUMNS)
        sql = f"SELECT {', '.join(cols)} FROM bars {where} ORDER BY symbol, ts"
        with self._connect(write=False) as con:
            table = _query_arrow(con, sql, params)
        idx = table.schema.get_field_index("datetime")
        return table.set_column(
            idx, "datetime", table.column(idx).cast(pa.timestamp("ns", tz="UTC"))
        )

    def read(
        self,
        symbols: BarQuery | str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
        *,
        extra: bool = False,
    ) -> pd.DataFrame:
        """Stored bars in the canonical long format.

        ``store.read(BarQuery(...))``, or the shorthand ``store.read(symbols, start, end,
        period, adjust)`` which builds that :class:`~bt_data.BarQuery` (not both at once).

        Args:
            symbols: a :class:`~bt_data.BarQuery`, or one symbol, a list, or ``None`` for all.
            start, end: inclusive bounds; naive values mean UTC; a date-only ``end`` covers its
                whole day. ``None`` leaves that side open.
            period, adjust: which bars (default ``"1d"`` and ``"none"``).
            extra: also return ``open_interest``, ``pre_close``, ``suspend_flag``.

        Returns:
            A DataFrame with columns ``symbol, datetime, open, high, low, close, volume, amount``
            (``datetime`` is ``datetime64[ns, UTC]``; ``amount`` is NaN where the source had
            none), sorted by symbol then datetime, with a fresh RangeIndex. Missing bars are
            simply absent: nothing is filled.
        """
        table = self.read_arrow(as_query(symbols, start, end, period, adjust), extra=extra)
        df = table.to_pandas()
        df["datetime"] = df["datetime"].astype("datetime64[ns, UTC]")
        for col in ("open", "high", "low", "close", "volume", "amount"):
            df[col] = df[col].astype("float64")
        return df

    # ------------------------------------------------------------------ instruments
    def write_instruments(self, table: object, *, source: str = "instruments") -> int:
        """Upsert instrument facts (a DataFrame with a ``symbol`` column, a mapping of symbol
        -> facts, or a list of rows; columns of :data:`~bt_data.instruments.
        INSTRUMENT_COLUMNS`): each symbol's stored row is replaced, in one transaction.

        Returns:
            Rows written. Raises :class:`DataValidationError` naming the bad row and column;
            nothing is written then.
        """
        rows = normalize_instruments(table, source)
        if rows.empty:
            return 0
        cols = ", ".join(INSTRUMENT_COLUMNS)
        with self._connect(write=True) as con, self._transaction(con):
            con.register("_bt_instruments", rows)
            try:
                con.execute(
                    "DELETE FROM instruments WHERE symbol IN (SELECT symbol FROM _bt_instruments)"
                )
                con.execute(
                    f"INSERT INTO instruments ({cols}, updated_at) SELECT symbol, board, st, "
                    "CAST(listing_date AS DATE), lot, min_size, tick, name, now()::TIMESTAMP "
                    "FROM _bt_instruments"
                )
            finally:
                con.unregister("_bt_instruments")
        return len(rows)

    def read_instruments(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Stored instrument facts (all, or of ``symbols``), sorted by symbol; NULL facts are
        NaN/None/NaT. ``listing_date`` is a ``datetime64`` date."""
        names = _symbols_list(symbols)
        where, params = ("", [])
        if names is not None:
            where = f"WHERE symbol IN ({', '.join('?' for _ in names)})"
            params = list(names)
        with self._connect(write=False) as con:
            out = con.execute(
                f"SELECT {', '.join(INSTRUMENT_COLUMNS)} FROM instruments {where} ORDER BY symbol",
                params,
            ).df()
        out["st"] = out["st"].astype("boolean")
        out["listing_date"] = pd.to_datetime(out["listing_date"])
        return out

    def symbols(self, period: str | None = None, adjust: str | None = None) -> list[str]:
        """Sorted distinct symbols with stored bars (optionally of one period/adjustment)."""
        where, params = self._filters(None, None, None, period, adjust)
        with self._connect(write=False) as con:
            rows = con.execute(
                f"SELECT DISTINCT symbol FROM bars {where} ORDER BY symbol", params
            ).fetchall()
        return [str(r[0]) for r in rows]

    def coverage(
        self,
        symbols: BarQuery | str | Sequence[str] | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> pd.DataFrame:
        """First/last bar and bar count per symbol, period and adjustment.

        Given a :class:`~bt_data.BarQuery`, the coverage of exactly those bars (its symbols,
        period, adjustment and range). Otherwise ``symbols``, ``period`` and ``adjust`` are
        filters where ``None`` means all: ``store.coverage()`` lists the whole store, every
        period and adjustment, which one BarQuery (one period, one adjustment) cannot say.

        Returns:
            Columns ``symbol, period, adjust, first, last, count`` (``first``/``last`` as
            ``datetime64[ns, UTC]``), sorted by symbol, period, adjust. ``count`` says nothing
            about holes; use :meth:`bt_data.MarketDataService.find_gaps` for that.
        """
        if isinstance(symbols, BarQuery):
            where, params = self._query_filters(as_query(symbols, None, None, period, adjust))
        else:
            where, params = self._filters(_symbols_list(symbols), None, None, period, adjust)
        with self._connect(write=False) as con:
            df = con.execute(
                "SELECT symbol, period, adjust, min(ts) AS first, max(ts) AS last, "
                f"count(*) AS count FROM bars {where} GROUP BY ALL ORDER BY ALL",
                params,
            ).df()
        for col in ("first", "last"):
            df[col] = pd.to_datetime(df[col]).dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
        df["count"] = df["count"].astype("int64")
        return df

    def stored_keys(
        self,
        symbols: Sequence[str],
        start: pd.Timestamp,
        end: pd.Timestamp,
        period: str,
        adjust: str,
        *,
        table: str = "bars",
    ) -> dict[str, np.ndarray]:
        """Per symbol, the sorted naive-UTC ``datetime64[ns]`` keys in ``[start, end]`` of
        ``table``: ``"bars"`` (stored bars) or ``"absent_bars"`` (remembered as absent)."""
        if table not in ("bars", "absent_bars"):
            raise ValueError(f"parameter 'table': expected 'bars' or 'absent_bars', got {table!r}")
        where, params = self._filters(list(symbols), start, end, period, adjust)
        sql = f"SELECT symbol, ts FROM {table} {where} ORDER BY symbol, ts"
        with self._connect(write=False) as con:
            arrow = _query_arrow(con, sql, params)
        syms = arrow.column("symbol").to_numpy(zero_copy_only=False)
        ts = arrow.column("ts").cast(pa.timestamp("ns")).to_numpy()
        out: dict[str, np.ndarray] = {s: np.empty(0, dtype="datetime64[ns]") for s in symbols}
        if len(syms):
            cuts = np.flatnonzero(syms[1:] != syms[:-1]) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(syms)], strict=True):
                out[str(syms[lo])] = ts[lo:hi]
        return out

    def absent(
        self,
        symbols: str | Sequence[str] | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> pd.DataFrame:
        """Keys remembered as "provider has no data": ``symbol, period, adjust, datetime,
        reason, recorded_at`` (``datetime`` UTC), sorted."""
        where, params = self._filters(_symbols_list(symbols), None, None, period, adjust)
        with self._connect(write=False) as con:
            df = con.execute(
                "SELECT symbol, period, adjust, ts AS datetime, reason, recorded_at "
                f"FROM absent_bars {where} ORDER BY symbol, period, adjust, ts",
                params,
            ).df()
        df["datetime"] = (
            pd.to_datetime(df["datetime"]).dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
        )
        return df

    def count(self, period: str | None = None, adjust: str | None = None) -> int:
        """Number of stored bars (optionally of one period/adjustment)."""
        where, params = self._filters(None, None, None, period, adjust)
        with self._connect(write=False) as con:
            row = fetch_one(con.execute(f"SELECT count(*) FROM bars {where}", params))
        return int(row[0]) if row else 0

    def check_integrity(self) -> None:
        """Raise :class:`DataValidationError` if any key is stored twice or is both stored and
        marked absent. A healthy store never does; tests and ``bt-data info --check`` call this."""
        with self._connect(write=False) as con:
            dup = fetch_one(
                con.execute(
                    "SELECT symbol, period, adjust, ts, count(*) FROM bars GROUP BY ALL "
                    "HAVING count(*) > 1 LIMIT 1"
                )
            )
            both = fetch_one(
                con.execute(
                    "SELECT a.symbol, a.period, a.adjust, a.ts FROM absent_bars a JOIN bars b "
                    "USING (symbol, period, adjust, ts) LIMIT 1"
                )
            )
        if dup is not None:
            raise DataValidationError(f"key {dup[:4]} is stored {dup[4]} times", source=self.path)
        if both is not None:
            raise DataValidationError(
                f"key {both} is both stored and marked absent", source=self.path
            )

    def export(
        self,
        out: str | os.PathLike[str],
        symbols: BarQuery | str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        period: str | None = None,
        adjust: str | None = None,
    ) -> int:
        """Write the bars of a :class:`~bt_data.BarQuery` (or of the :meth:`read` shorthand) in
        the canonical long format to ``out`` (``.csv`` or ``.parquet``).

        CSV ``datetime`` is written as ISO text with a ``+00`` UTC offset so it reimports exactly.
        Returns the number of rows written."""
        file = os.fspath(out)
        ext = os.path.splitext(file)[1].lower()
        if ext not in (".csv", ".parquet"):
            raise ValueError(f"parameter 'out': {file!r} must end in .csv or .parquet")
        where, params = self._query_filters(as_query(symbols, start, end, period, adjust))
        cols = "symbol, CAST(ts AS TIMESTAMPTZ) AS datetime, " + ", ".join(READ_COLUMNS[2:])
        fmt = "FORMAT CSV, HEADER" if ext == ".csv" else "FORMAT PARQUET"
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        with self._connect(write=False) as con:
            row = fetch_one(con.execute(f"SELECT count(*) FROM bars {where}", params))
            con.execute(
                f"COPY (SELECT {cols} FROM bars {where} ORDER BY symbol, ts) "
                f"TO {quote_literal(file)} ({fmt})",
                params,
            )
        return int(row[0]) if row else 0


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, before_commit: Callable[[], None] | None = None
) -> Iterator[None]:
    """Run the ``with`` block as one DuckDB transaction: COMMIT if it finishes, ROLLBACK if it
    raises (anything, including ``KeyboardInterrupt``), so a write lands whole or not at all.

    ``before_commit`` runs inside the transaction after the block, just before COMMIT.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        if before_commit is not None:
            before_commit()
        con.execute("COMMIT")
    except BaseException as exc:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error as rollback_exc:
            # A COMMIT that fails (a full disk) has already been rolled back by DuckDB, so our
            # ROLLBACK finds no transaction; that complaint must not replace the real cause.
            _add_note(exc, f"(ROLLBACK afterwards also failed: {rollback_exc})")
        raise


@contextmanager
def _afterwards(cleanup: Callable[[], object], what: str) -> Iterator[None]:
    """Run ``cleanup`` when the block ends. If the block failed, the connection may refuse more
    statements; a failing cleanup is then noted on the block's exception, never raised instead."""
    try:
        yield
    except BaseException as exc:
        try:
            cleanup()
        except duckdb.Error as cleanup_exc:
            _add_note(exc, f"({what} afterwards also failed: {cleanup_exc})")
        raise
    cleanup()


def _staging(con: duckdb.DuckDBPyConnection) -> AbstractContextManager[None]:
    """Drop the staging table when the block ends: it lives outside the write transaction."""
    return _afterwards(
        lambda: con.execute(f"DROP TABLE IF EXISTS {STAGE}"), "dropping the staging table"
    )


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``name`` for the duration of the block."""
    con.register(name, table)
    with _afterwards(lambda: con.unregister(name), f"unregistering {name}"):
        yield


def _add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (shown under its traceback) without changing its message."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)
    else:  # Python 3.10 has no add_note; keep the PEP 678 attribute for code that looks.
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def _can_write(path: str) -> bool:
    """Whether this process may write ``path`` (False on a read-only file system, even as root)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def _on_read_only_fs(path: str) -> bool:
    """Whether ``path`` is on a file system mounted read-only (POSIX; False where unknown)."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return False
    try:
        return bool(statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _refuse_non_duckdb(path: str) -> None:
    """Raise :class:`NotAStoreError` unless ``path`` begins like a DuckDB database file.

    Reads the first 12 bytes and writes nothing, so a CSV (or an empty file) given as the store by
    mistake is never opened by DuckDB, which could otherwise treat it as something to attach.
    """
    if os.path.isdir(path):
        raise NotAStoreError(f"store path {path!r} is a directory, not a database file", path=path)
    with open(path, "rb") as fh:
        head = fh.read(len(_DUCKDB_MAGIC) + _DUCKDB_MAGIC_OFFSET)
    if head[_DUCKDB_MAGIC_OFFSET:] != _DUCKDB_MAGIC:
        kind = "an empty file" if not head else "not a DuckDB database"
        raise NotAStoreError(
            f"{path!r} is {kind}, so not a bt-data store; it was left untouched "
            "(give a path that does not exist to create a new store)",
            path=path,
        )


def _query_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> pa.Table:
    """Run ``sql`` and return an Arrow table (duckdb 2 renamed ``fetch_arrow_table``)."""
    rel = con.sql(sql, params=params)
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    table: pa.Table = fetch()
    return table


def _naive_utc(values: pd.Series) -> np.ndarray:
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return np.asarray(idx.astype("datetime64[us]"))


def _to_arrow(bars: pd.DataFrame | pa.Table, source: str) -> pa.Table:
    if isinstance(bars, pa.Table):
        return bars
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame or pyarrow Table, got {type(bars)}")
    frame = bars
    # Accept bars indexed by datetime or (symbol, datetime) as well as plain columns.
    if any(name in ("datetime", "symbol") for name in frame.index.names):
        frame = frame.reset_index()
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataValidationError(f"cannot convert to Arrow: {exc}", source=source) from exc
