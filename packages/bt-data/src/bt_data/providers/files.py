"""FileProvider: a folder of CSV / Parquet files per symbol, so backfill works without QMT."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from .. import _ingest
from .._ingest import STAGE, IngestOptions, fetch_one, quote_literal
from ..errors import DataValidationError, ProviderError
from ..periods import check_adjust, check_period
from .base import PROVIDER_COLUMNS, empty_bars

__all__ = ["FileProvider"]

#: Where a symbol's file is looked for, in order (relative to the root folder).
DEFAULT_PATTERNS = (
    "{period}/{symbol}.parquet",
    "{period}/{symbol}.csv",
    "{symbol}_{period}.parquet",
    "{symbol}_{period}.csv",
    "{symbol}.parquet",
    "{symbol}.csv",
)


class FileProvider:
    """Serve bars from per-symbol files under ``root``.

    For symbol ``600000.SH`` and period ``1d`` it reads the first file that exists among
    ``root/1d/600000.SH.parquet``, ``root/1d/600000.SH.csv``, ``root/600000.SH_1d.parquet``,
    ``root/600000.SH_1d.csv``, ``root/600000.SH.parquet``, ``root/600000.SH.csv``, or the ones
    built from ``patterns`` (placeholders ``{symbol}``, ``{period}``, ``{adjust}``).

    Files use the canonical columns (``datetime, open, high, low, close, volume`` + optional
    ``amount`` …; a ``symbol`` column is optional and must then match) or ``columns`` maps them;
    ``date_format`` and ``tz`` as in :meth:`bt_data.BarStore.import_csv`. Every file is validated
    like an import: a bad file raises :class:`~bt_data.DataValidationError` naming it.

    Args:
        root: the folder.
        adjust: the adjustment type of the files, unless ``patterns`` contain ``{adjust}``;
            asking for another adjustment raises :class:`~bt_data.ProviderError`.
        missing_ok: if False (default), a symbol without a file raises ``ProviderError`` (so a
            wrong folder is not mistaken for "no data"); if True it answers "no bars".
        trading_dates: optional explicit calendar ``{market: [dates]}`` to offer the service.
    """

    name = "files"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        patterns: tuple[str, ...] = DEFAULT_PATTERNS,
        adjust: str = "none",
        columns: Mapping[str, str] | None = None,
        date_format: str | None = None,
        tz: str = "UTC",
        missing_ok: bool = False,
        trading_dates: Mapping[str, list[dt.date]] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"parameter 'root': {os.fspath(root)!r} is not a folder")
        self.patterns = patterns
        self.adjust = check_adjust(adjust)
        self.columns = dict(columns) if columns else None
        self.date_format = date_format
        self.tz = tz
        self.missing_ok = missing_ok
        self._dates = {k: sorted(v) for k, v in (trading_dates or {}).items()}
        self._cache: dict[tuple[str, float, str, str], pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"FileProvider({os.fspath(self.root)!r})"

    def path_for(self, symbol: str, period: str, adjust: str) -> Path | None:
        """The file holding ``symbol``'s bars, or None if no candidate exists."""
        uses_adjust = any("{adjust}" in p for p in self.patterns)
        if not uses_adjust and adjust != self.adjust:
            raise ProviderError(
                f"{self!r} holds adjust={self.adjust!r} files; asked for adjust={adjust!r}"
            )
        for pattern in self.patterns:
            candidate = self.root / pattern.format(symbol=symbol, period=period, adjust=adjust)
            if candidate.is_file():
                return candidate
        return None

    def fetch_bars(
        self, symbol: str, period: str, start: pd.Timestamp, end: pd.Timestamp, adjust: str
    ) -> pd.DataFrame:
        """Bars of ``symbol`` in ``[start, end]`` from its file (see class docs)."""
        check_period(period)
        check_adjust(adjust)
        path = self.path_for(symbol, period, adjust)
        if path is None:
            if self.missing_ok:
                return empty_bars()
            tried = ", ".join(
                p.format(symbol=symbol, period=period, adjust=adjust) for p in self.patterns
            )
            raise ProviderError(f"{self!r}: no file for {symbol!r} {period!r}; looked for {tried}")
        frame = self._load(path, symbol, period, adjust)
        lo = pd.Timestamp(start).tz_localize("UTC")
        hi = pd.Timestamp(end).tz_localize("UTC")
        mask = (frame["datetime"] >= lo) & (frame["datetime"] <= hi)
        return frame.loc[mask].reset_index(drop=True)

    def _load(self, path: Path, symbol: str, period: str, adjust: str) -> pd.DataFrame:
        key = (os.fspath(path), path.stat().st_mtime, period, adjust)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        label = os.fspath(path)
        is_csv = path.suffix.lower() == ".csv"
        con = duckdb.connect(":memory:")
        try:
            if is_csv:
                names, delim = _ingest.csv_header(label)
            else:
                names = [
                    c for c, _ in _ingest.describe(con, f"read_parquet({quote_literal(label)})")
                ]
            opts = IngestOptions(period, adjust, None, self.columns, self.date_format, self.tz)
            has_symbol = "symbol" in {c.lower() for c in names} or (
                self.columns is not None and "symbol" in self.columns.values()
            )
            if not has_symbol:
                opts = IngestOptions(
                    period, adjust, symbol, self.columns, self.date_format, self.tz
                )
            if is_csv:
                mapping = _ingest.resolve_columns(names, opts, label)
                numeric = [mapping[c] for c in (*_ingest.PRICE_COLUMNS, "volume")]
                source = _ingest.csv_source_sql(
                    label, numeric, mapping["datetime"] if self.date_format else None, delim
                )
            else:
                source = f"read_parquet({quote_literal(label)})"
            staged = _ingest.stage_source(con, source, opts, label, header_lines=1 if is_csv else 0)
            other = fetch_one(
                con.execute(f"SELECT symbol FROM {STAGE} WHERE symbol <> ? LIMIT 1", [symbol])
            )
            if other is not None:
                raise DataValidationError(
                    f"file for {symbol!r} contains symbol {other[0]!r}",
                    source=label,
                    column="symbol",
                )
            select = _ingest.bars_select(
                staged, period, adjust, ("symbol", "ts", *PROVIDER_COLUMNS[2:])
            )
            frame = con.execute(f"{select} ORDER BY ts").df()
        finally:
            con.close()
        frame = frame.rename(columns={"ts": "datetime"})
        frame["datetime"] = (
            pd.to_datetime(frame["datetime"]).dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
        )
        frame["suspend_flag"] = frame["suspend_flag"].astype("float64")
        self._cache = {k: v for k, v in self._cache.items() if k[0] != key[0]}
        self._cache[key] = frame
        return frame

    def trading_dates(self, market: str, start: dt.date, end: dt.date) -> list[dt.date] | None:
        """Dates from the ``trading_dates`` argument, or None (files carry no calendar)."""
        dates = self._dates.get(market)
        if dates is None:
            return None
        return [d for d in dates if start <= d <= end]
