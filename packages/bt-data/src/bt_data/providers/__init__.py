"""Data providers: where :class:`~bt_data.MarketDataService` gets bars the store lacks."""

from .base import PROVIDER_COLUMNS, DataProvider, ProgressCallback, SupportsPrefetch, empty_bars
from .files import FileProvider
from .xtdata import XT_FIELDS, XtDataProvider

__all__ = [
    "DataProvider",
    "SupportsPrefetch",
    "ProgressCallback",
    "PROVIDER_COLUMNS",
    "empty_bars",
    "FileProvider",
    "XtDataProvider",
    "XT_FIELDS",
]
