"""bt-core: the Strategy API, the Backtest runner, results and the ``bt`` command.

from bt_core import Backtest, Strategy
result = Backtest(data, MyStrategy, cash=100_000, commission=0.0005).run(fast=10, slow=30)
result.stats, result.equity, result.fills, result.orders, result.trades
"""

from bt_core.backtest import BUILTINS, Backtest, RejectedOrdersWarning
from bt_core.config import RunConfig
from bt_core.data import MarketData, load_data
from bt_core.errors import ActionError, BtCoreError, DataError, ParameterError, StrategyError
from bt_core.orders import Order, OrderHandle
from bt_core.result import Result
from bt_core.strategy import Strategy
from bt_core.ticks import load_ticks
from bt_core.timeframes import align_timeframe, timeframe_bars

__version__ = "0.1.0"

__all__ = [
    "BUILTINS",
    "ActionError",
    "Backtest",
    "BtCoreError",
    "DataError",
    "MarketData",
    "Order",
    "OrderHandle",
    "ParameterError",
    "RejectedOrdersWarning",
    "Result",
    "RunConfig",
    "Strategy",
    "StrategyError",
    "__version__",
    "align_timeframe",
    "load_data",
    "load_ticks",
    "timeframe_bars",
]
