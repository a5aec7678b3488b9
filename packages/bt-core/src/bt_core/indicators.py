"""Vectorized indicators computed in Rust (see bt_engine for conventions).

Accept numpy arrays, pandas Series or lists; return numpy float64 arrays of the same length,
NaN during warm-up and wherever the input has no value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import bt_engine


def _arr(x: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64))


def sma(x: Any, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` values."""
    return bt_engine.sma(_arr(x), window)


def ema(x: Any, window: int) -> np.ndarray:
    """EMA with alpha = 2/(window+1), seeded with the SMA of the first ``window`` values."""
    return bt_engine.ema(_arr(x), window)


def rsi(x: Any, window: int = 14) -> np.ndarray:
    """Wilder's RSI (0..100)."""
    return bt_engine.rsi(_arr(x), window)


def atr(high: Any, low: Any, close: Any, window: int = 14) -> np.ndarray:
    """Average true range with Wilder smoothing."""
    return bt_engine.atr(_arr(high), _arr(low), _arr(close), window)


def bollinger(
    x: Any, window: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(middle, upper, lower) bands with the population standard deviation."""
    return bt_engine.bollinger(_arr(x), window, k)


__all__ = ["atr", "bollinger", "ema", "rsi", "sma"]
