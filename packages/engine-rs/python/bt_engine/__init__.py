"""bt-engine: the Rust core of pyrust-bt (matching, ledger, indicators), driven from Python.

Most users go through ``bt_core.Backtest``; this module is the narrow, numpy-only interface.
"""

from bt_engine._engine import (
    BarView,
    Engine,
    FillInfo,
    Line,
    OrderInfo,
    StrategyError,
    __version__,
    atr,
    bollinger,
    ema,
    rsi,
    sma,
)

__all__ = [
    "BarView",
    "Engine",
    "FillInfo",
    "Line",
    "OrderInfo",
    "StrategyError",
    "__version__",
    "atr",
    "bollinger",
    "ema",
    "rsi",
    "sma",
]
