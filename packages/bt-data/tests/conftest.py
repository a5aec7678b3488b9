"""Shared fixtures for bt-data tests, including a fake ``xtquant.xtdata`` module.

The fake follows the xtdata contract in the project notes: epoch-millisecond UTC ``time``,
exchange-local 'YYYYMMDD[hhmmss]' range strings (closed), ``{stock: DataFrame}`` answers indexed
by time label, ``count`` semantics, ``dividend_type`` and ``fill_data``.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

SH = "Asia/Shanghai"
XT_ALL_FIELDS = [
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "settelementPrice",
    "openInterest",
    "preClose",
    "suspendFlag",
]


def make_bars(symbol: str, days: list[str] | pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    """Deterministic, valid daily bars (canonical columns, naive dates) for ``days``."""
    idx = pd.DatetimeIndex(pd.to_datetime(list(days)))
    rng = np.random.default_rng(seed)
    close = 10 + np.cumsum(rng.normal(0, 0.1, len(idx)))
    open_ = close + rng.normal(0, 0.05, len(idx))
    high = np.maximum(open_, close) + 0.1
    low = np.minimum(open_, close) - 0.1
    return pd.DataFrame(
        {
            "symbol": symbol,
            "datetime": idx,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1000, 5000, len(idx)).astype(float),
            "amount": rng.integers(10_000, 50_000, len(idx)).astype(float),
        }
    )


class FakeXtData(types.ModuleType):
    """In-memory stand-in for ``xtquant.xtdata``.

    ``server`` holds what MiniQMT would serve: ``{(symbol, period): DataFrame}`` with xtdata
    field columns (``time`` in epoch ms). Data is readable only after it was downloaded, like the
    real local cache. ``fail`` lists symbols whose calls raise; ``factors`` scales prices per
    dividend type; ``calendar`` holds per-market trading dates.
    """

    def __init__(self) -> None:
        super().__init__("xtquant.xtdata")
        self.server: dict[tuple[str, str], pd.DataFrame] = {}
        self.downloaded: set[tuple[str, str]] = set()
        self.fail: set[str] = set()
        self.factors: dict[str, float] = {
            "none": 1.0,
            "front": 0.5,
            "back": 2.0,
            "front_ratio": 0.25,
            "back_ratio": 4.0,
        }
        self.calendar: dict[str, list[dt.date]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # -- helpers to load the fake server
    def add_daily(
        self, symbol: str, days: list[str], suspended: tuple[str, ...] = (), seed: int = 0
    ) -> None:
        bars = make_bars(symbol, days, seed)
        local_midnight = bars["datetime"].dt.tz_localize(SH)
        frame = pd.DataFrame(
            {
                "time": [int(t.timestamp() * 1000) for t in local_midnight],
                "open": bars["open"],
                "high": bars["high"],
                "low": bars["low"],
                "close": bars["close"],
                "volume": bars["volume"],
                "amount": bars["amount"],
                "settelementPrice": 0.0,
                "openInterest": 0.0,
                "preClose": bars["close"].shift(1).fillna(bars["open"].iloc[0]),
                "suspendFlag": [
                    1 if d.strftime("%Y-%m-%d") in suspended else 0 for d in bars["datetime"]
                ],
            }
        )
        frame.index = pd.Index(bars["datetime"].dt.strftime("%Y%m%d").to_numpy())
        self.server[(symbol, "1d")] = frame

    def add_minutes(self, symbol: str, local_times: list[str], seed: int = 0) -> None:
        stamps = pd.DatetimeIndex(pd.to_datetime(local_times)).tz_localize(SH)
        bars = make_bars(symbol, list(stamps.tz_localize(None)), seed)
        frame = pd.DataFrame(
            {
                "time": [int(t.timestamp() * 1000) for t in stamps],
                "open": bars["open"].to_numpy(),
                "high": bars["high"].to_numpy(),
                "low": bars["low"].to_numpy(),
                "close": bars["close"].to_numpy(),
                "volume": bars["volume"].to_numpy(),
                "amount": bars["amount"].to_numpy(),
                "settelementPrice": 0.0,
                "openInterest": 0.0,
                "preClose": bars["close"].to_numpy(),
                "suspendFlag": 0,
            },
            index=stamps.strftime("%Y%m%d%H%M%S"),
        )
        self.server[(symbol, "1m")] = frame

    # -- the xtdata API
    @staticmethod
    def _local(text: str, end: bool) -> pd.Timestamp | None:
        if not text:
            return None
        if len(text) == 8:
            ts = pd.Timestamp(dt.datetime.strptime(text, "%Y%m%d"))
            if end:
                ts = ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ms")
        elif len(text) == 14:
            ts = pd.Timestamp(dt.datetime.strptime(text, "%Y%m%d%H%M%S"))
        else:
            raise ValueError(f"bad xtdata time {text!r}")
        return ts.tz_localize(SH)

    def download_history_data2(
        self,
        stock_list: list[str],
        period: str,
        start_time: str = "",
        end_time: str = "",
        callback: Callable[[dict[str, Any]], None] | None = None,
        incrementally: bool | None = None,
    ) -> None:
        self.calls.append(
            (
                "download_history_data2",
                {
                    "stock_list": list(stock_list),
                    "period": period,
                    "start_time": start_time,
                    "end_time": end_time,
                },
            )
        )
        for i, code in enumerate(stock_list):
            if code in self.fail:
                raise RuntimeError(f"download failed for {code}")
            self.downloaded.add((code, period))
            if callback is not None:
                callback(
                    {"finished": i + 1, "total": len(stock_list), "stockcode": code, "message": ""}
                )

    def download_history_data(
        self,
        stock_code: str,
        period: str,
        start_time: str = "",
        end_time: str = "",
        incrementally: bool | None = None,
    ) -> None:
        self.download_history_data2([stock_code], period, start_time, end_time)

    def get_market_data_ex(
        self,
        field_list: list[str] | None = None,
        stock_list: list[str] | None = None,
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = -1,
        dividend_type: str = "none",
        fill_data: bool = True,
    ) -> dict[str, pd.DataFrame]:
        self.calls.append(
            (
                "get_market_data_ex",
                {
                    "field_list": field_list,
                    "stock_list": stock_list,
                    "period": period,
                    "start_time": start_time,
                    "end_time": end_time,
                    "count": count,
                    "dividend_type": dividend_type,
                    "fill_data": fill_data,
                },
            )
        )
        fields = list(field_list or XT_ALL_FIELDS)
        out: dict[str, pd.DataFrame] = {}
        for code in stock_list or []:
            if code in self.fail:
                raise RuntimeError(f"no connection for {code}")
            frame = self.server.get((code, period))
            if frame is None or (code, period) not in self.downloaded:
                out[code] = pd.DataFrame(columns=fields)
                continue
            frame = frame.copy()
            if fill_data and period == "1d":
                frame = self._fill(code, frame)
            when = pd.to_datetime(frame["time"], unit="ms", utc=True).dt.tz_convert(SH)
            lo, hi = self._local(start_time, False), self._local(end_time, True)
            keep = np.ones(len(frame), dtype=bool)
            if lo is not None:
                keep &= (when >= lo).to_numpy()
            if hi is not None:
                keep &= (when <= hi).to_numpy()
            frame = frame.loc[keep]
            if count is not None and count > 0:
                frame = frame.iloc[-count:]
            factor = self.factors[dividend_type]
            for col in ("open", "high", "low", "close", "preClose"):
                frame[col] = frame[col] * factor
            out[code] = frame.loc[:, [f for f in fields if f in frame.columns]]
        return out

    def get_local_data(
        self,
        field_list=None,
        stock_list=None,
        period="1d",
        start_time="",  # noqa: ANN001
        end_time="",
        count=-1,
        dividend_type="none",
        fill_data=True,
        data_dir=None,
    ) -> dict[str, pd.DataFrame]:  # noqa: ANN001
        return self.get_market_data_ex(
            field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
        )

    def _fill(self, code: str, frame: pd.DataFrame) -> pd.DataFrame:
        """What real xtdata does with fill_data=True: invent bars for calendar days without one."""
        market = code.rsplit(".", 1)[1]
        dates = self.calendar.get(market, [])
        have = set(frame.index)
        rows = []
        for d in dates:
            label = d.strftime("%Y%m%d")
            if label in have:
                continue
            prev = frame.loc[frame.index < label]
            if prev.empty:
                continue
            last = prev.iloc[-1]
            t = int(pd.Timestamp(d).tz_localize(SH).timestamp() * 1000)
            rows.append(
                pd.DataFrame(
                    {
                        **{c: [last[c]] for c in frame.columns},
                        "time": [t],
                        "open": [last["close"]],
                        "high": [last["close"]],
                        "low": [last["close"]],
                        "volume": [0.0],
                        "amount": [0.0],
                        "suspendFlag": [1],
                    },
                    index=[label],
                )
            )
        return pd.concat([frame, *rows]).sort_index() if rows else frame

    def get_trading_dates(
        self, market: str, start_time: str = "", end_time: str = "", count: int = -1
    ) -> list[int]:
        self.calls.append(
            (
                "get_trading_dates",
                {"market": market, "start_time": start_time, "end_time": end_time, "count": count},
            )
        )
        dates = self.calendar.get(market, [])
        lo = dt.datetime.strptime(start_time, "%Y%m%d").date() if start_time else None
        hi = dt.datetime.strptime(end_time, "%Y%m%d").date() if end_time else None
        sel = [d for d in dates if (lo is None or d >= lo) and (hi is None or d <= hi)]
        if count is not None and count > 0:
            sel = sel[-count:]
        return [int(pd.Timestamp(d).tz_localize(SH).timestamp() * 1000) for d in sel]

    def get_trading_calendar(
        self, market: str, start_time: str = "", end_time: str = ""
    ) -> list[str]:
        ms = self.get_trading_dates(market, start_time, end_time)
        return [pd.Timestamp(m, unit="ms", tz="UTC").tz_convert(SH).strftime("%Y%m%d") for m in ms]


@pytest.fixture
def fake_xt() -> FakeXtData:
    """A fresh fake ``xtquant.xtdata`` module."""
    return FakeXtData()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Path of a not-yet-created store file in a temp dir."""
    return tmp_path / "db" / "bars.duckdb"


@pytest.fixture
def bars_factory() -> Callable[..., pd.DataFrame]:
    """``make_bars(symbol, days, seed)``."""
    return make_bars


def write_csv(path: Path, text: str) -> Path:
    """Write ``text`` (dedented lines) to ``path`` and return it."""
    path.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n")
    return path


@pytest.fixture
def csv_writer(tmp_path: Path) -> Callable[[str, str], Path]:
    """``csv_writer(name, text)`` writes a small CSV into the test's temp dir."""
    return lambda name, text: write_csv(tmp_path / name, text)
