"""bt-data: market data for pyrust-bt.

A DuckDB bar store with fast, validated importers; a :class:`MarketDataService` that reads the
store first and backfills only the missing intervals from a provider (QMT/xtdata or files); and
trading calendars for exact gap detection. Depends on duckdb, numpy, pandas and pyarrow only.

Canonical bars (what :meth:`BarStore.read` returns): columns
``symbol, datetime, open, high, low, close, volume, amount`` with ``datetime`` as tz-aware
``datetime64[ns, UTC]``, sorted by symbol then datetime.
"""

from .calendars import (
    A_SHARE_SESSIONS,
    DateListCalendar,
    ExchangeCalendar,
    IntradaySessions,
    ProviderCalendar,
    TradingCalendar,
    WeekdayCalendar,
    expected_timestamps,
    market_of,
)
from .errors import (
    BtDataError,
    CalendarError,
    DataValidationError,
    NotAStoreError,
    ProviderError,
    ProviderUnavailableError,
    SchemaVersionError,
    StoreLockedError,
    StoreReadOnlyError,
    UnknownAdjustError,
    UnknownPeriodError,
)
from .periods import ADJUSTS, INTRADAY_PERIODS, PERIODS, check_adjust, check_period
from .providers import (
    DataProvider,
    FileProvider,
    ProgressCallback,
    SupportsPrefetch,
    XtDataProvider,
)
from .query import BarQuery
from .service import BackfillReport, Gap, MarketDataService
from .store import DB_ENV_VAR, DEFAULT_DB_PATH, READ_COLUMNS, BarStore, resolve_db_path

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BarStore",
    "BarQuery",
    "MarketDataService",
    "Gap",
    "BackfillReport",
    "DataProvider",
    "SupportsPrefetch",
    "ProgressCallback",
    "XtDataProvider",
    "FileProvider",
    "TradingCalendar",
    "WeekdayCalendar",
    "DateListCalendar",
    "ProviderCalendar",
    "ExchangeCalendar",
    "IntradaySessions",
    "A_SHARE_SESSIONS",
    "expected_timestamps",
    "market_of",
    "PERIODS",
    "INTRADAY_PERIODS",
    "ADJUSTS",
    "check_period",
    "check_adjust",
    "READ_COLUMNS",
    "DEFAULT_DB_PATH",
    "DB_ENV_VAR",
    "resolve_db_path",
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
