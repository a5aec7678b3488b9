"""The event-driven Strategy API.

Subclass :class:`Strategy`, declare parameters as class attributes, compute indicators in
``on_start`` with :meth:`Strategy.I` (vectorized, once), and decide in ``next(bar)``. Orders
decided on bar t fill on bar t+1 (market at the open; limits when the range reaches them)
unless the run uses ``fill_on="close"``.

Reading data never reveals the future: ``self.data.close[-1]`` is the current close,
``[-2]`` the previous one, ``.window(n)`` the last n values as a read-only numpy view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bt_core.errors import ActionError, ParameterError

if TYPE_CHECKING:
    from bt_core.data import MarketData
    from bt_engine import BarView, Engine, FillInfo, Line, OrderInfo


@dataclass(frozen=True)
class Order:
    """An order request, usable as a return value of ``next`` (alone or in a list)."""

    side: str  # "buy" | "sell"
    size: float | None = None  # None -> the strategy's order_size
    symbol: str | None = None
    limit: float | None = None
    tif: str = "gtc"  # "gtc" | "day"


_SIDES = {"buy": "buy", "sell": "sell"}
_DICT_KEYS = {"action", "type", "size", "price", "symbol", "tif"}


class SymbolData:
    """Guarded OHLCV lines of one symbol (created lazily, shared for the whole run)."""

    __slots__ = ("_engine", "_md", "_lines", "_registry", "index", "symbol")

    def __init__(self, engine: Engine, md: MarketData, s: int, registry: dict[int, np.ndarray]):
        self._engine = engine
        self._md = md
        self._lines: dict[str, Line] = {}
        self._registry = registry
        self.index = s
        self.symbol = md.symbols[s]

    def _line(self, name: str) -> Line:
        line = self._lines.get(name)
        if line is None:
            arr = np.ascontiguousarray(self._md.fields[name][:, self.index])
            arr.flags.writeable = False
            line = self._engine.line(arr)
            self._registry[id(line)] = arr
            self._lines[name] = line
        return line

    @property
    def open(self) -> Line:
        return self._line("open")

    @property
    def high(self) -> Line:
        return self._line("high")

    @property
    def low(self) -> Line:
        return self._line("low")

    @property
    def close(self) -> Line:
        return self._line("close")

    @property
    def volume(self) -> Line:
        return self._line("volume")


class DataView:
    """``self.data``: ``data.close`` etc. for single-symbol runs, ``data["600000.SH"]`` always."""

    def __init__(self, engine: Engine, md: MarketData, registry: dict[int, np.ndarray]):
        self._md = md
        self._per = [SymbolData(engine, md, s, registry) for s in range(len(md.symbols))]
        self.symbols = md.symbols

    def __getitem__(self, symbol: str | int) -> SymbolData:
        if isinstance(symbol, int):
            if not 0 <= symbol < len(self._per):
                raise IndexError(f"symbol index {symbol} out of range ({len(self._per)} symbols)")
            return self._per[symbol]
        return self._per[self._md.symbol_index(symbol)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._per)

    def __len__(self) -> int:
        return len(self._per)

    def _single(self) -> SymbolData:
        if len(self._per) != 1:
            raise AttributeError(
                f"the data has {len(self._per)} symbols; use self.data[symbol].close etc."
            )
        return self._per[0]

    @property
    def open(self) -> Line:
        return self._single().open

    @property
    def high(self) -> Line:
        return self._single().high

    @property
    def low(self) -> Line:
        return self._single().low

    @property
    def close(self) -> Line:
        return self._single().close

    @property
    def volume(self) -> Line:
        return self._single().volume


class Strategy:
    """Base class of event-driven strategies.

    Parameters are public class attributes (numbers, strings, bools) overridable per run:
    ``Backtest(data, MyStrategy).run(fast=5)``. ``order_size`` is the size used by the
    string/dict return forms and by ``buy()``/``sell()`` without a size.
    """

    order_size: float = 1.0
    #: ``next`` is first called on bar ``warmup`` (set it in on_start, e.g. to the longest
    #: indicator window); earlier bars still fill orders and record equity.
    warmup: int = 0

    # Set by the runner before on_start.
    _engine: Engine
    _md: MarketData
    _bar: BarView
    data: DataView
    params: dict[str, Any]

    # ----- lifecycle (override what you need; undefined callbacks cost nothing) -----------
    def on_start(self) -> None:
        """Called once before the first bar: compute indicators here with :meth:`I`.

        The default calls :meth:`init`, so backtesting.py-style ``init`` works too.
        """
        self.init()

    def init(self) -> None:
        """Alias hook of :meth:`on_start` (override one of them)."""

    def next(self, bar: BarView) -> Any:
        """Called once per bar. Return None, "BUY"/"SELL"/"HOLD", a dict, an Order or a list."""
        return None

    def on_order(self, order: OrderInfo) -> None:
        """Called when an order changes status (accepted, filled, cancelled, expired, rejected)."""

    def on_trade(self, fill: FillInfo) -> None:
        """Called on every fill."""

    def on_stop(self) -> None:
        """Called once after the last bar."""

    # ----- parameters ------------------------------------------------------------------
    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Public class attributes that are plain values: the strategy's parameters."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is object:
                continue
            for k, v in vars(klass).items():
                if (
                    k.startswith("_")
                    or callable(v)
                    or isinstance(v, (property, classmethod, staticmethod))
                ):
                    continue
                out[k] = v
        return out

    @classmethod
    def _bind_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        known = cls.parameters()
        for k in params:
            if k not in known:
                names = ", ".join(sorted(known)) or "none"
                raise ParameterError(
                    f"unknown parameter {k!r} for {cls.__name__}; its parameters are: {names}"
                )
        merged = {**known, **params}
        for (
            k,
            v,
        ) in merged.items():  # class defaults too: a NaN default is as wrong as a NaN override
            if isinstance(v, (float, np.floating)) and not math.isfinite(v):
                raise ParameterError(f"parameter {k!r} of {cls.__name__} must be finite, got {v}")
        if "order_size" in params:
            size = params["order_size"]
            if not isinstance(size, (int, float)) or isinstance(size, bool) or size <= 0:
                raise ParameterError(f"parameter 'order_size' must be a number > 0, got {size!r}")
        return merged

    # ----- indicators ------------------------------------------------------------------
    def I(  # noqa: E743 - short name is the convention (backtesting.py, backtrader)
        self, func: Callable[..., Any] | np.ndarray | pd.Series, *args: Any, **kwargs: Any
    ) -> Any:
        """Compute an indicator over the whole data once, and reveal it bar by bar.

        ``func`` is called with the full arrays (Lines passed as arguments are replaced by their
        full data); it must be causal (value t uses data up to t only). Returns a Line, or a tuple
        of Lines when ``func`` returns several series.
        """
        registry = self._line_arrays

        def full(a: Any) -> Any:
            arr = registry.get(id(a))
            return arr if arr is not None else a

        if callable(func):
            out = func(*(full(a) for a in args), **{k: full(v) for k, v in kwargs.items()})
        else:
            out = func
        if isinstance(out, tuple):
            return tuple(self._as_line(o) for o in out)
        return self._as_line(out)

    def _as_line(self, values: Any) -> Line:
        arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
        if arr.ndim != 1 or len(arr) != self._md.n_bars:
            raise ParameterError(
                f"an indicator must have one value per bar ({self._md.n_bars}), got shape "
                f"{arr.shape}"
            )
        arr.flags.writeable = False
        line = self._engine.line(arr)
        self._line_arrays[id(line)] = arr
        return line

    # ----- the ledger ------------------------------------------------------------------
    @property
    def i(self) -> int:
        """Index of the current bar."""
        return self._engine.bar_index

    @property
    def now(self) -> pd.Timestamp:
        """Time of the current bar (UTC)."""
        return self._md.index[self._engine.bar_index]

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._md.symbols

    @property
    def position(self) -> float:
        """Position (units) of the only symbol; use position_of(symbol) with several."""
        if len(self._md.symbols) == 1:  # the common case, kept cheap: it runs every bar
            return self._engine.position(0)
        return self._engine.position(self._sym(None))

    def position_of(self, symbol: str) -> float:
        return self._engine.position(self._sym(symbol))

    @property
    def cash(self) -> float:
        return self._engine.cash

    @property
    def equity(self) -> float:
        """Cash plus positions marked at their last close."""
        return self._engine.equity

    @property
    def open_orders(self) -> list[OrderInfo]:
        return self._engine.open_orders()

    # ----- orders ------------------------------------------------------------------------
    def buy(
        self,
        size: float | None = None,
        *,
        symbol: str | None = None,
        limit: float | None = None,
        tif: str = "gtc",
    ) -> int:
        """Buy ``size`` units (default ``order_size``) at market or ``limit``; returns the id."""
        return self._submit(symbol, "buy", size, limit, tif)

    def sell(
        self,
        size: float | None = None,
        *,
        symbol: str | None = None,
        limit: float | None = None,
        tif: str = "gtc",
    ) -> int:
        """Sell ``size`` units (default ``order_size``); selling more than held is rejected."""
        return self._submit(symbol, "sell", size, limit, tif)

    def close(self, symbol: str | None = None) -> int | None:
        """Sell the whole position at market; None when flat."""
        s = self._sym(symbol)
        pos = self._engine.position(s)
        if pos > 0:
            return self._engine.submit(s, "sell", pos, None, "gtc")
        return None

    def cancel(self, order_id: int) -> bool:
        """Cancel a working order; False if it already filled, expired or was cancelled."""
        return self._engine.cancel(order_id)

    # ----- internals -------------------------------------------------------------------
    def _sym(self, symbol: str | None) -> int:
        if symbol is None:
            if len(self._md.symbols) != 1:
                raise ActionError(
                    f"symbol= is required: the data has {len(self._md.symbols)} symbols "
                    f"({', '.join(self._md.symbols)})"
                )
            return 0
        if not isinstance(symbol, str):
            raise ActionError(f"symbol must be a string, got {symbol!r}")
        try:
            return self._md.symbols.index(symbol)
        except ValueError:
            raise ActionError(
                f"unknown symbol {symbol!r}; the data has: {', '.join(self._md.symbols)}"
            ) from None

    def _submit(
        self, symbol: str | None, side: str, size: float | None, limit: float | None, tif: str
    ) -> int:
        return self._engine.submit(*self._request(symbol, side, size, limit, tif))

    def _request(
        self, symbol: str | None, side: str, size: Any, limit: Any, tif: Any
    ) -> tuple[int, str, float, float | None, str]:
        if size is None:
            size = self.params.get("order_size", self.order_size)
        if isinstance(size, bool) or not isinstance(size, (int, float, np.number)):
            raise ActionError(f"order size must be a number, got {size!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, (int, float, np.number))
        ):
            raise ActionError(f"limit price must be a number, got {limit!r}")
        if not isinstance(tif, str) or tif.lower() not in ("gtc", "day"):
            raise ActionError(f"tif must be 'gtc' or 'day', got {tif!r}")
        return (
            self._sym(symbol),
            side,
            float(size),
            None if limit is None else float(limit),
            tif.lower(),
        )

    def _normalize(self, ret: Any) -> list[tuple[int, str, float, float | None, str]]:
        """Turn a non-None return value of ``next`` into order requests (see ``next``)."""
        if isinstance(ret, (list, tuple)):
            out: list[tuple[int, str, float, float | None, str]] = []
            for item in ret:
                if item is not None:
                    out.extend(self._normalize(item))
            return out
        if isinstance(ret, str):
            word = ret.upper()
            if word == "HOLD":
                return []
            if word in ("BUY", "SELL"):
                return [self._request(None, word.lower(), None, None, "gtc")]
            raise ActionError(
                f"unknown action {ret!r}: expected 'BUY', 'SELL' or 'HOLD' (any case), "
                "a dict, an Order, or None"
            )
        if isinstance(ret, Order):
            side = _SIDES.get(str(ret.side).lower())
            if side is None:
                raise ActionError(f"Order.side must be 'buy' or 'sell', got {ret.side!r}")
            return [self._request(ret.symbol, side, ret.size, ret.limit, ret.tif)]
        if isinstance(ret, Mapping):
            extra = set(ret) - _DICT_KEYS
            if extra:
                raise ActionError(
                    f"unknown keys {sorted(extra)} in action dict; allowed: {sorted(_DICT_KEYS)}"
                )
            action = ret.get("action")
            if not isinstance(action, str) or action.upper() not in ("BUY", "SELL"):
                raise ActionError(f"action dict needs 'action': 'BUY' or 'SELL', got {action!r}")
            kind = str(ret.get("type", "market")).lower()
            if kind not in ("market", "limit"):
                raise ActionError(f"action 'type' must be 'market' or 'limit', got {kind!r}")
            price = ret.get("price")
            if kind == "limit" and price is None:
                raise ActionError("a limit action needs a 'price'")
            if kind == "market" and price is not None:
                raise ActionError("a market action takes no 'price' (use type='limit')")
            return [
                self._request(
                    ret.get("symbol"),
                    action.lower(),
                    ret.get("size"),
                    price,
                    ret.get("tif", "gtc"),
                )
            ]
        raise ActionError(
            f"next() returned {type(ret).__name__} {ret!r}; expected None, 'BUY'/'SELL'/'HOLD',"
            " a dict, an Order, or a list of those"
        )

    @property
    def _line_arrays(self) -> dict[int, np.ndarray]:
        return self.__dict__.setdefault("_line_registry", {})
