"""The provider protocol: where the service gets bars the store does not have."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = [
    "DataProvider",
    "SupportsPrefetch",
    "SupportsInstruments",
    "ProgressCallback",
    "PROVIDER_COLUMNS",
    "empty_bars",
]

#: ``on_progress(done, total, message)``: ``done`` of ``total`` units finished.
ProgressCallback = Callable[[int, int, str], None]

#: Columns of a provider's answer, in order.
PROVIDER_COLUMNS = (
    "symbol",
    "datetime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "open_interest",
    "pre_close",
    "suspend_flag",
)


@runtime_checkable
class DataProvider(Protocol):
    """A source of bars for :class:`~bt_data.MarketDataService`.

    Implementations return only bars that really exist at the source: never forward-filled,
    zero-filled or otherwise invented rows.
    """

    #: Short name used in messages and absence records, e.g. ``"xtdata"`` or ``"files"``.
    name: str

    def fetch_bars(
        self, symbol: str, period: str, start: pd.Timestamp, end: pd.Timestamp, adjust: str
    ) -> pd.DataFrame:
        """Bars of ``symbol`` with labels in ``[start, end]`` (naive UTC bounds, inclusive).

        Returns:
            A DataFrame with :data:`PROVIDER_COLUMNS` (``datetime`` as ``datetime64[ns, UTC]``
            following :mod:`bt_data.timeutil`; unknown optional fields NaN), possibly empty when
            the source has no data there.

        Raises:
            ProviderError: when the source fails (not when it merely has no data).
        """
        ...

    def trading_dates(self, market: str, start: dt.date, end: dt.date) -> list[dt.date] | None:
        """The source's trading dates of ``market`` in ``[start, end]``, or ``None`` if the
        source has no calendar (the service then uses its own)."""
        ...


@runtime_checkable
class SupportsPrefetch(Protocol):
    """Providers that download in bulk before :meth:`DataProvider.fetch_bars` reads locally."""

    def prefetch(
        self,
        symbols: Sequence[str],
        period: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Make bars of ``symbols`` in ``[start, end]`` available for fast reads."""
        ...


@runtime_checkable
class SupportsInstruments(Protocol):
    """Providers that know instrument facts (listing date, tick, name ...)."""

    def fetch_instruments(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Rows of :data:`bt_data.instruments.INSTRUMENT_COLUMNS` for the ``symbols`` the
        source knows (unknown facts None/NaN; unknown symbols left out)."""
        ...


def empty_bars() -> pd.DataFrame:
    """An empty provider answer with the right columns and dtypes."""
    data: dict[str, object] = {
        "symbol": pd.Series([], dtype=object),
        "datetime": pd.Series([], dtype="datetime64[ns, UTC]"),
    }
    for col in PROVIDER_COLUMNS[2:]:
        data[col] = np.empty(0, dtype="float64")
    return pd.DataFrame(data)
