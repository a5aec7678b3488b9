"""XtDataProvider: QMT / MiniQMT market data through ``xtquant.xtdata``.

``xtquant`` ships Windows binaries only and talks to a running MiniQMT client, so it is imported
lazily, on first use, and can be injected (``XtDataProvider(xtdata=module)``) for tests or for
callers who import it themselves. The contract followed (see the project notes):

* ``download_history_data2(stock_list, period, start_time, end_time, callback, incrementally)``
  blocks; ``callback`` gets ``{finished, total, stockcode, message}``.
* ``get_market_data_ex(field_list, stock_list, period, start_time, end_time, count,
  dividend_type, fill_data)`` and ``get_local_data(...)`` return ``{stock: DataFrame}`` indexed by
  time label with one column per field; ``time`` is UTC epoch milliseconds.
* ``get_trading_dates(market, start_time, end_time, count)`` returns epoch-ms dates.
* times are ``'YYYYMMDD'`` or ``'YYYYMMDDhhmmss'`` (exchange-local), ranges closed.
* ``get_instrument_detail(stock_code)`` returns a dict (None for an unknown code) with, among
  others, ``InstrumentName``, ``OpenDate`` (``YYYYMMDD``) and ``PriceTick``.

Conversions: intraday ``time`` → the UTC instant; daily and longer ``time`` (xtdata's 00:00
Beijing) → the Beijing trading date at 00:00 UTC (see :mod:`bt_data.timeutil`). ``fill_data`` is
always False: xtdata would otherwise invent bars for suspended days by carrying prices forward.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ProviderError, ProviderUnavailableError
from ..instruments import INSTRUMENT_COLUMNS, listing_date_from_xt
from ..periods import check_adjust, check_period, is_intraday
from .base import PROVIDER_COLUMNS, ProgressCallback, empty_bars

__all__ = ["XtDataProvider", "XT_FIELDS"]

#: Fields requested from xtdata and the canonical column each becomes.
XT_FIELDS: dict[str, str] = {
    "time": "datetime",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "amount": "amount",
    "openInterest": "open_interest",
    "preClose": "pre_close",
    "suspendFlag": "suspend_flag",
}
_REQUIRED = ("time", "open", "high", "low", "close", "volume")
_HOW_TO = (
    "xtquant.xtdata is needed for XtDataProvider. It runs on Windows only and needs a running "
    "MiniQMT client: install the 'xtquant' package (or copy XtQuant into site-packages) on the "
    "Windows machine running MiniQMT, start MiniQMT, and retry. Elsewhere use FileProvider or "
    "import files with `bt-data import`."
)


class XtDataProvider:
    """Bars and trading dates from QMT's ``xtdata``.

    Args:
        xtdata: an ``xtquant.xtdata``-compatible module; ``None`` imports the real one on first use.
        tz: the exchange time zone of xtdata's local times (``"Asia/Shanghai"``).
        source: ``"market"`` reads with ``get_market_data_ex``; ``"local"`` with
            ``get_local_data`` (local files only, no client connection).
        download: call ``download_history_data2`` in :meth:`prefetch` before reading.
        incrementally: passed to ``download_history_data2``.
    """

    name = "xtdata"

    def __init__(
        self,
        xtdata: ModuleType | Any | None = None,
        *,
        tz: str = "Asia/Shanghai",
        source: str = "market",
        download: bool = True,
        incrementally: bool | None = None,
    ) -> None:
        if source not in ("market", "local"):
            raise ValueError(f"parameter 'source': expected 'market' or 'local', got {source!r}")
        self._xt = xtdata
        self.tz = tz
        self.source = source
        self.download = download
        self.incrementally = incrementally

    @property
    def xt(self) -> Any:
        """The xtdata module, imported on first use.

        Raises:
            ProviderUnavailableError: if ``xtquant.xtdata`` cannot be imported, saying what to do.
        """
        if self._xt is None:
            try:
                self._xt = importlib.import_module("xtquant.xtdata")
            except Exception as exc:  # the Linux wheel fails with OSError/ImportError on load
                raise ProviderUnavailableError(f"{_HOW_TO} (import failed: {exc!r})") from exc
        return self._xt

    # ----------------------------------------------------------------- time conversions
    def _format_bound(self, ts: pd.Timestamp, period: str) -> str:
        """Our naive-UTC bound as xtdata's exchange-local 'YYYYMMDD[hhmmss]' text."""
        if not is_intraday(period):
            return ts.strftime("%Y%m%d")
        local = pd.Timestamp(ts).tz_localize("UTC").tz_convert(self.tz)
        return local.strftime("%Y%m%d%H%M%S")

    def _labels(self, epoch_ms: np.ndarray, period: str) -> pd.DatetimeIndex:
        utc = pd.to_datetime(epoch_ms.astype("int64"), unit="ms", utc=True)
        if is_intraday(period):
            return pd.DatetimeIndex(pd.DatetimeIndex(utc).astype("datetime64[ns, UTC]"))
        local_dates = pd.DatetimeIndex(utc).tz_convert(self.tz).tz_localize(None).normalize()
        return pd.DatetimeIndex(local_dates.tz_localize("UTC").astype("datetime64[ns, UTC]"))

    # ----------------------------------------------------------------- provider API
    def prefetch(
        self,
        symbols: Sequence[str],
        period: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Download ``symbols`` into xtdata's local cache with ``download_history_data2``.

        Its callback (``{finished, total, stockcode, message}``) drives ``on_progress``.
        Does nothing when ``download`` is False.
        """
        check_period(period)
        if not self.download or not symbols:
            return
        xt = self.xt

        def callback(data: dict[str, Any]) -> None:
            if on_progress is not None:
                done = int(data.get("finished", 0))
                total = int(data.get("total", len(symbols)))
                msg = f"{data.get('stockcode', '')} {data.get('message', '')}".strip()
                on_progress(done, total, msg)

        try:
            xt.download_history_data2(
                list(symbols),
                period,
                start_time=self._format_bound(start, period),
                end_time=self._format_bound(end, period),
                callback=callback,
                incrementally=self.incrementally,
            )
        except Exception as exc:
            raise ProviderError(
                f"xtdata.download_history_data2 failed for {len(symbols)} symbol(s) "
                f"{period} {start}..{end}: {exc}"
            ) from exc

    def fetch_bars(
        self, symbol: str, period: str, start: pd.Timestamp, end: pd.Timestamp, adjust: str
    ) -> pd.DataFrame:
        """Read ``symbol``'s bars in ``[start, end]`` with ``dividend_type=adjust``.

        Rows whose open/high/low/close are all NaN are xtdata's way of saying "no bar" and are
        dropped; a row with only some prices NaN is kept so that the store rejects it loudly.
        """
        check_period(period)
        check_adjust(adjust)
        xt = self.xt
        reader = xt.get_market_data_ex if self.source == "market" else xt.get_local_data
        where = f"{symbol} {period} adjust={adjust} {start}..{end}"
        try:
            answer = reader(
                field_list=list(XT_FIELDS),
                stock_list=[symbol],
                period=period,
                start_time=self._format_bound(start, period),
                end_time=self._format_bound(end, period),
                count=-1,
                dividend_type=adjust,
                fill_data=False,
            )
        except Exception as exc:
            raise ProviderError(f"xtdata read failed for {where}: {exc}") from exc
        if answer is None:
            return empty_bars()
        if not isinstance(answer, dict):
            raise ProviderError(f"xtdata returned {type(answer).__name__}, not a dict, for {where}")
        raw = answer.get(symbol)
        if raw is None or len(raw) == 0:
            return empty_bars()
        if not isinstance(raw, pd.DataFrame):
            raise ProviderError(f"xtdata returned {type(raw).__name__} for {where}")
        missing = [f for f in _REQUIRED if f not in raw.columns]
        if missing:
            raise ProviderError(f"xtdata answer for {where} lacks field(s) {', '.join(missing)}")
        times = pd.to_numeric(raw["time"], errors="coerce").to_numpy(dtype="float64")
        if np.isnan(times).any():
            bad = raw.index[np.isnan(times)][0]
            raise ProviderError(f"xtdata answer for {where} has a non-numeric time at {bad!r}")
        out = pd.DataFrame({"symbol": np.full(len(raw), symbol, dtype=object)})
        out["datetime"] = self._labels(times, period)
        for field, col in XT_FIELDS.items():
            if field == "time":
                continue
            if field in raw.columns:
                out[col] = pd.to_numeric(raw[field], errors="coerce").to_numpy(dtype="float64")
            else:
                out[col] = np.nan
        no_bar = out[["open", "high", "low", "close"]].isna().all(axis=1).to_numpy()
        out = out.loc[~no_bar]
        lo = pd.Timestamp(start).tz_localize("UTC")
        hi = pd.Timestamp(end).tz_localize("UTC")
        out = out.loc[(out["datetime"] >= lo) & (out["datetime"] <= hi)]
        return out.loc[:, list(PROVIDER_COLUMNS)].reset_index(drop=True)

    def fetch_instruments(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Instrument facts from ``get_instrument_detail``: name, listing date (``OpenDate``),
        tick (``PriceTick``) and the risk-warning flag (an ``ST`` in the name, as the exchanges
        mark it). The board is left to the code; unknown symbols are left out."""
        rows = []
        for sym in symbols:
            try:
                d = self.xt.get_instrument_detail(sym)
            except ProviderUnavailableError:
                raise
            except Exception as exc:
                raise ProviderError(
                    f"xtdata.get_instrument_detail failed for {sym}: {exc}"
                ) from exc
            if not d:
                continue
            if not isinstance(d, dict):
                raise ProviderError(
                    f"xtdata.get_instrument_detail returned {type(d).__name__} for {sym}"
                )
            name = d.get("InstrumentName")
            name = str(name) if name else None
            try:
                tick = float(d.get("PriceTick"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                tick = float("nan")
            rows.append(
                {
                    "symbol": sym,
                    "board": None,
                    "st": None if name is None else "ST" in name.upper(),
                    "listing_date": listing_date_from_xt(d.get("OpenDate")),
                    "lot": None,
                    "min_size": None,
                    "tick": float(tick) if np.isfinite(tick) and tick > 0 else None,
                    "name": name,
                }
            )
        return pd.DataFrame(rows, columns=list(INSTRUMENT_COLUMNS))

    def trading_dates(self, market: str, start: dt.date, end: dt.date) -> list[dt.date] | None:
        """``get_trading_dates(market, ...)`` as dates; None if xtdata has none for the range
        (an empty answer usually means the calendar was never downloaded, not "no sessions")."""
        try:
            got = self.xt.get_trading_dates(
                market,
                start_time=start.strftime("%Y%m%d"),
                end_time=end.strftime("%Y%m%d"),
                count=-1,
            )
        except ProviderUnavailableError:
            raise
        except Exception as exc:
            raise ProviderError(f"xtdata.get_trading_dates failed for {market}: {exc}") from exc
        if got is None or len(got) == 0:
            return None
        ms = np.asarray(got, dtype="int64")
        local = pd.to_datetime(ms, unit="ms", utc=True).tz_convert(self.tz)
        return [d for d in local.date if start <= d <= end]
