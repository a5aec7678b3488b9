"""Exceptions raised by bt-data.

Every error says what was wrong and where (file, row, column, symbol or parameter). Errors about
bad input subclass :class:`ValueError` so callers can catch them as ordinary value errors.
"""

from __future__ import annotations

__all__ = [
    "BtDataError",
    "DataValidationError",
    "UnknownPeriodError",
    "UnknownAdjustError",
    "SchemaVersionError",
    "NotAStoreError",
    "StoreReadOnlyError",
    "StoreLockedError",
    "ProviderError",
    "ProviderUnavailableError",
    "CalendarError",
]


class BtDataError(Exception):
    """Base class of every error raised by bt-data."""


class DataValidationError(BtDataError, ValueError):
    """Input bars are malformed; nothing was written.

    Attributes:
        source: the file path or a description of the in-memory input (``"DataFrame"``).
        row: 1-based data row (not counting a CSV header) of the first offending record, if known.
        column: the offending column, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.column = column
        where = []
        if source is not None:
            where.append(f"source {source!r}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        text = f"{message} ({', '.join(where)})" if where else message
        super().__init__(text)


class UnknownPeriodError(BtDataError, ValueError):
    """A bar period outside the closed, case-sensitive set of :data:`bt_data.PERIODS`."""


class UnknownAdjustError(BtDataError, ValueError):
    """An adjustment (dividend) type outside :data:`bt_data.ADJUSTS`."""


class SchemaVersionError(BtDataError):
    """The store file was written by a newer bt-data schema than this version understands."""


class NotAStoreError(BtDataError, ValueError):
    """The store path names a file that is not a bt-data store: not a DuckDB database (a CSV,
    an empty file), or another program's DuckDB database. The file was left untouched.

    Attributes:
        path: the offending file.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreReadOnlyError(BtDataError, PermissionError):
    """A write (or the creation of a store) where this process may only read: a read-only file,
    directory or file system. Reading such a store works.

    Attributes:
        path: the store file.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreLockedError(BtDataError, TimeoutError):
    """Another process held the store's writer lock for longer than the configured timeout."""


class ProviderError(BtDataError):
    """A data provider failed or returned data that breaks its contract."""


class ProviderUnavailableError(ProviderError, ImportError):
    """A provider's backend (for example ``xtquant.xtdata``) cannot be imported or reached."""


class CalendarError(BtDataError, ValueError):
    """A trading calendar cannot answer for the requested range or period."""
