"""bt-engine: the Rust core of pyrust-bt (matching, ledger, indicators), driven from Python.

Most users go through ``bt_core.Backtest``; this module is the narrow, numpy-only interface:
``Data`` (validated, engine-owned bars, reusable by many runs), ``Engine`` (one run with one
configuration dict), ``OrderRequest``, typed errors, and the indicator functions.
"""

from bt_engine._engine import (
    CONFIG_KEYS,
    BarView,
    ConfigError,
    Data,
    DataError,
    Engine,
    EngineError,
    FillInfo,
    Line,
    OrderError,
    OrderInfo,
    OrderRequest,
    StrategyError,
    SweepRun,
    Timeframe,
    __version__,
    atr,
    bollinger,
    check_config,
    ema,
    rsi,
    sma,
    sweep_sma_cross,
)

__all__ = [
    "CONFIG_KEYS",
    "BarView",
    "ConfigError",
    "Data",
    "DataError",
    "Engine",
    "EngineError",
    "FillInfo",
    "Line",
    "OrderError",
    "OrderInfo",
    "OrderRequest",
    "StrategyError",
    "SweepRun",
    "Timeframe",
    "__version__",
    "atr",
    "bollinger",
    "check_config",
    "ema",
    "rsi",
    "sma",
    "sweep_sma_cross",
]
