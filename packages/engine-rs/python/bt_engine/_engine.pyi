from collections.abc import Callable, Sequence
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__version__: str

__all__ = [
    "__version__",
    "EngineError",
    "DataError",
    "ConfigError",
    "OrderError",
    "StrategyError",
    "Data",
    "OrderRequest",
    "Engine",
    "Line",
    "Timeframe",
    "BarView",
    "OrderInfo",
    "FillInfo",
    "check_config",
    "CONFIG_KEYS",
    "sma",
    "ema",
    "rsi",
    "atr",
    "bollinger",
    "SweepRun",
    "sweep_sma_cross",
]

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]
_OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
_Tif = Literal["gtc", "day", "gtd", "ioc", "fok"]
_OrderEvent = Literal[
    "submitted",
    "accepted",
    "triggered",
    "partially_filled",
    "filled",
    "cancelled",
    "expired",
    "modified",
    "rejected",
]

class EngineError(ValueError):
    kind: str
    fields: dict[str, Any]

class DataError(EngineError): ...
class ConfigError(EngineError): ...
class OrderError(EngineError): ...

class StrategyError(RuntimeError):
    kind: str
    fields: dict[str, Any]

def sma(x: _F64, window: int) -> _F64: ...
def ema(x: _F64, window: int) -> _F64: ...
def rsi(x: _F64, window: int) -> _F64: ...
def atr(high: _F64, low: _F64, close: _F64, window: int) -> _F64: ...
def bollinger(x: _F64, window: int, k: float = 2.0) -> tuple[_F64, _F64, _F64]: ...
def check_config(config: dict[str, Any]) -> None: ...

CONFIG_KEYS: list[str]
def sweep_sma_cross(
    data: Data,
    config: dict[str, Any] | None,
    fast: Sequence[int],
    slow: Sequence[int],
    size: Sequence[float],
    on_result: Callable[[int, SweepRun | ConfigError], Any],
    *,
    threads: int | None = None,
    memory_budget: int | None = None,
    sizing: Sequence[str] | None = None,
) -> int: ...
@final
class SweepRun:
    def equity_curve(self) -> _F64: ...
    def exposure_curve(self) -> _F64: ...
    def fills(self) -> dict[str, Any]: ...
    def order_columns(self) -> dict[str, Any]: ...
    def trades(self) -> dict[str, Any]: ...
    def ledger(self) -> dict[str, Any]: ...
    def margin_calls(self) -> dict[str, Any]: ...
    def rejections(self) -> dict[str, tuple[int, str]]: ...
    @property
    def n_orders(self) -> int: ...
    @property
    def final_equity(self) -> float: ...
    @property
    def n_trades(self) -> int: ...

@final
class Data:
    def __new__(
        cls,
        symbols: Sequence[str],
        columns: Sequence[dict[str, npt.NDArray[Any]]],
        *,
        labels: Sequence[str] | None = None,
        rows: Sequence[_I64 | None] | None = None,
    ) -> Data: ...
    @staticmethod
    def shared(symbols: Sequence[str], ts: _I64, fields: dict[str, _F64]) -> Data: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def n_bars(self) -> int: ...
    @property
    def n_symbols(self) -> int: ...
    @property
    def extra_names(self) -> list[str]: ...
    @property
    def ts(self) -> _I64: ...
    def field(self, name: str) -> _F64: ...

@final
class OrderRequest:
    def __new__(
        cls,
        symbol: int,
        side: str,
        size: float,
        limit: float | None = None,
        tif: str = "gtc",
        sizing: str = "units",
        *,
        stop: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
        expire: int | None = None,
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        parent: int | None = None,
    ) -> OrderRequest: ...
    @property
    def symbol(self) -> int: ...
    @property
    def side(self) -> Literal["buy", "sell"]: ...
    @property
    def size(self) -> float: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def stop(self) -> float | None: ...
    @property
    def order_type(self) -> _OrderType: ...
    @property
    def tif(self) -> _Tif: ...
    @property
    def sizing(self) -> Literal["units", "value", "pct"]: ...

@final
class Line:
    def __getitem__(self, k: int, /) -> float: ...
    def __len__(self) -> int: ...
    @property
    def last(self) -> float: ...
    def window(self, n: int) -> _F64: ...
    @property
    def values(self) -> _F64: ...
    def full(self) -> _F64: ...
    def crossed_above(self, other: Line) -> bool: ...
    def crossed_below(self, other: Line) -> bool: ...
    def with_values(self, array: _F64) -> Line: ...

@final
class Timeframe:
    def __new__(
        cls, data: Data, rule: str, *, day_offset_hours: float = 0.0, bar_length: int = 0
    ) -> Timeframe: ...
    @property
    def rule(self) -> str: ...
    @property
    def n_symbols(self) -> int: ...
    def n_bars(self, symbol: int) -> int: ...
    def field(self, name: str, symbol: int) -> _F64: ...
    def index(
        self, name: Literal["start", "first", "last", "visible_from", "counts"], symbol: int
    ) -> _I64: ...

@final
class BarView:
    @property
    def i(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def time(self) -> str: ...
    @property
    def open(self) -> float | _F64: ...
    @property
    def high(self) -> float | _F64: ...
    @property
    def low(self) -> float | _F64: ...
    @property
    def close(self) -> float | _F64: ...
    @property
    def volume(self) -> float | _F64: ...
    def get(self, field: str, symbol: int) -> float: ...
    def history(self, field: str, n: int) -> npt.NDArray[np.float64]: ...

@final
class OrderInfo:
    id: int
    event: _OrderEvent | None
    symbol: str
    symbol_index: int
    side: Literal["buy", "sell"]
    order_type: _OrderType
    tif: _Tif
    size: float
    sizing: Literal["units", "value", "pct"]
    amount: float
    filled: float
    limit_price: float | None
    stop_price: float | None
    triggered: bool
    avg_price: float | None
    status: Literal[
        "submitted",
        "pending",
        "accepted",
        "partially_filled",
        "filled",
        "cancelled",
        "expired",
        "rejected",
    ]
    reason_code: str | None
    reason: str | None
    submitted_bar: int
    closed_bar: int | None
    parent_id: int | None
    oco_group: int | None
    commission: float
    tax: float
    liquidation: bool

@final
class FillInfo:
    order_id: int
    symbol: str
    symbol_index: int
    bar: int
    ts: int
    side: Literal["buy", "sell"]
    size: float
    price: float
    commission: float
    tax: float
    slippage: float

@final
class Engine:
    def __new__(cls, data: Data, config: dict[str, Any] | None = None) -> Engine: ...
    @property
    def data(self) -> Data: ...
    @property
    def n_bars(self) -> int: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def ts(self) -> _I64: ...
    def line(self, array: _F64) -> Line: ...
    def data_line(self, field: str, symbol: int) -> Line: ...
    def timeframe_line(self, timeframe: Timeframe, field: str, symbol: int) -> Line: ...
    def bar_view(self) -> BarView: ...
    @property
    def cash(self) -> float: ...
    @property
    def equity(self) -> float: ...
    @property
    def bar_index(self) -> int: ...
    def position(self, symbol: int) -> float: ...
    def shortable(self, symbol: int) -> bool: ...
    def sellable(self, symbol: int) -> float: ...
    def last_price(self, symbol: int) -> float: ...
    def avg_cost(self, symbol: int) -> float: ...
    def positions(self) -> _F64: ...
    def open_orders(self) -> list[OrderInfo]: ...
    def order(self, id: int) -> OrderInfo: ...
    def submit(self, request: OrderRequest) -> int: ...
    def cancel(self, id: int) -> bool: ...
    def modify(
        self,
        id: int,
        *,
        limit: float | None = None,
        stop: float | None = None,
        size: float | None = None,
    ) -> None: ...
    def link_oco(self, ids: list[int]) -> int: ...
    def run_strategy(
        self,
        next: Callable[[BarView], Any],
        bar: BarView,
        normalize: Callable[[Any], list[OrderRequest]],
        on_order: Callable[[OrderInfo], Any] | None = None,
        on_trade: Callable[[FillInfo], Any] | None = None,
        progress: Callable[[int], Any] | None = None,
        progress_every: int = 0,
        start: int = 0,
        max_events_per_bar: int = 100_000,
    ) -> None: ...
    def run_signals(
        self,
        entries: npt.NDArray[np.bool_],
        exits: npt.NDArray[np.bool_],
        size: float,
        sizing: str = "units",
        short_entries: npt.NDArray[np.bool_] | None = None,
        short_exits: npt.NDArray[np.bool_] | None = None,
    ) -> None: ...
    def run_weights(self, weights: _F64, min_trade: float = 1e-9) -> None: ...
    def run_sma_cross(
        self, fast: int = 10, slow: int = 30, size: float = 1.0, sizing: str = "units"
    ) -> None: ...
    def equity_curve(self) -> _F64: ...
    def exposure_curve(self) -> _F64: ...
    def fills(self) -> dict[str, Any]: ...
    def orders(self) -> list[OrderInfo]: ...
    def order_columns(self) -> dict[str, Any]: ...
    def trades(self) -> dict[str, Any]: ...
    def ledger(self) -> dict[str, Any]: ...
    def margin_calls(self) -> dict[str, Any]: ...
    def rejections(self) -> dict[str, tuple[int, str]]: ...
    @property
    def n_orders(self) -> int: ...
