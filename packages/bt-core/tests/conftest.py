"""Shared data generators for the bt-core tests.

All data is generated deterministically from a seed (geometric Brownian motion closes, opens
near the previous close, highs/lows that always contain open and close), so every bar is valid
input and every test is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest


def _make_ohlc(
    n: int,
    seed: int = 0,
    *,
    start: str = "2020-01-01",
    freq: str = "D",
    s0: float = 100.0,
    vol: float = 0.02,
    drift: float = 0.0,
    gap: float = 0.005,
    tz: str | None = "UTC",
) -> pd.DataFrame:
    """Valid OHLCV bars: a GBM close path, open = previous close x a small gap, and a high/low
    range that contains open and close. Index: ``n`` timestamps every ``freq`` from ``start``.
    Columns: open, high, low, close, volume (float64)."""
    rng = np.random.default_rng(seed)
    rets = drift + vol * rng.standard_normal(n)
    close = s0 * np.exp(np.cumsum(rets))
    prev = np.concatenate([[s0], close[:-1]])
    open_ = prev * np.exp(gap * rng.standard_normal(n))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * (1.0 + np.abs(rng.normal(0.0, vol / 2, n)))
    low = bottom * (1.0 - np.abs(rng.normal(0.0, vol / 2, n)))
    volume = rng.integers(1_000, 100_000, n).astype(np.float64)
    idx = pd.date_range(start, periods=n, freq=freq, tz=tz, name="datetime")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx
    )


def _to_long(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Wide per-symbol frames -> one long table (symbol, datetime, open, ..., volume)."""
    parts = []
    for sym, df in frames.items():
        part = df.reset_index()
        part.insert(0, "symbol", sym)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="session")
def make_ohlc() -> Callable[..., pd.DataFrame]:
    """The bar generator: ``make_ohlc(n, seed, start=, freq=, s0=, vol=, drift=, gap=, tz=)``."""
    return _make_ohlc


@pytest.fixture(scope="session")
def to_long() -> Callable[[dict[str, pd.DataFrame]], pd.DataFrame]:
    """Wide per-symbol frames -> one long table."""
    return _to_long


@pytest.fixture
def ohlc() -> pd.DataFrame:
    """120 daily bars of one symbol."""
    return _make_ohlc(120, seed=1)


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Six hand-written daily bars with distinct opens/closes (easy to reason about fills)."""
    idx = pd.date_range("2021-03-01", periods=6, freq="D", tz="UTC", name="datetime")
    return pd.DataFrame(
        {
            "open": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0],
            "high": [10.5, 11.5, 12.5, 13.5, 14.5, 15.5],
            "low": [9.5, 10.5, 11.5, 12.5, 13.5, 14.5],
            "close": [10.2, 11.2, 12.2, 13.2, 14.2, 15.2],
            "volume": [100.0] * 6,
        },
        index=idx,
    )
