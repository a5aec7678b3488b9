"""The order vocabulary, in one place: sides, order types, time in force, and the forms a
strategy may use to ask for an order — ``"BUY"``/``"SELL"``/``"HOLD"`` strings, dicts,
:class:`Order` objects, lists of those — all turned into ``bt_engine.OrderRequest`` objects,
which is how orders cross into Rust. ``Strategy.buy``/``sell`` return an :class:`OrderHandle`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bt_core.errors import ActionError
from bt_engine import OrderRequest

if TYPE_CHECKING:
    from bt_engine import Engine, OrderInfo

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
TIME_IN_FORCE = ("gtc", "day")
#: String actions ``next`` may return (any case); HOLD means "no order".
ACTIONS = ("BUY", "SELL", "HOLD")
#: Keys an action dict may have.
DICT_KEYS = frozenset({"action", "type", "size", "price", "symbol", "tif"})


@dataclass(frozen=True)
class Order:
    """An order request, usable as a return value of ``next`` (alone or in a list)."""

    side: str  # "buy" | "sell"
    size: float | None = None  # None -> the strategy's order_size
    symbol: str | None = None
    limit: float | None = None
    tif: str = "gtc"  # "gtc" | "day"


class OrderHandle(int):
    """What ``buy()``/``sell()`` return: the order's id (usable wherever an id is expected)
    with its live ``status``/``info`` and ``cancel()``."""

    _engine: Engine

    def __new__(cls, order_id: int, engine: Engine) -> OrderHandle:
        h = super().__new__(cls, order_id)
        h._engine = engine
        return h

    @property
    def id(self) -> int:
        return int(self)

    @property
    def info(self) -> OrderInfo:
        """A snapshot of the order now (status, filled size, average price, reason)."""
        return self._engine.order(int(self))

    @property
    def status(self) -> str:
        return self.info.status

    def cancel(self) -> bool:
        """Cancel the order if it is still working; False if it already reached an end."""
        return self._engine.cancel(int(self))

    def __repr__(self) -> str:
        return f"OrderHandle(id={int(self)}, status={self.status!r})"


def _number(what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise ActionError(f"{what} must be a number, got {v!r}")
    return float(v)


def _checked(size: Any, limit: Any, tif: Any) -> tuple[float, float | None, str]:
    size = _number("order size", size)
    if limit is not None:
        limit = _number("limit price", limit)
    if not isinstance(tif, str) or tif.lower() not in TIME_IN_FORCE:
        raise ActionError(f"tif must be 'gtc' or 'day', got {tif!r}")
    return size, limit, tif.lower()


def request(symbol: int, side: str, size: Any, limit: Any = None, tif: Any = "gtc") -> OrderRequest:
    """One order request from already resolved parts (side must be in :data:`SIDES`)."""
    return OrderRequest(symbol, side, *_checked(size, limit, tif))


class Normalizer:
    """Turns what ``next`` returns into order requests, for one strategy.

    ``resolve(symbol_or_None) -> index`` and ``default_size()`` come from the strategy.
    """

    __slots__ = ("default_size", "resolve")

    def __init__(self, resolve: Callable[[str | None], int], default_size: Callable[[], Any]):
        self.resolve = resolve
        self.default_size = default_size

    def make(self, symbol: str | None, side: str, size: Any, limit: Any, tif: Any) -> OrderRequest:
        if size is None:
            size = self.default_size()
        checked = _checked(size, limit, tif)
        return OrderRequest(self.resolve(symbol), side, *checked)

    def __call__(self, ret: Any) -> list[OrderRequest]:
        if isinstance(ret, (list, tuple)):
            out: list[OrderRequest] = []
            for item in ret:
                if item is not None:
                    out.extend(self(item))
            return out
        if isinstance(ret, str):
            word = ret.upper()
            if word == "HOLD":
                return []
            if word in ("BUY", "SELL"):
                return [self.make(None, word.lower(), None, None, "gtc")]
            raise ActionError(
                f"unknown action {ret!r}: expected 'BUY', 'SELL' or 'HOLD' (any case), "
                "a dict, an Order, or None"
            )
        if isinstance(ret, Order):
            side = str(ret.side).lower()
            if side not in SIDES:
                raise ActionError(f"Order.side must be 'buy' or 'sell', got {ret.side!r}")
            return [self.make(ret.symbol, side, ret.size, ret.limit, ret.tif)]
        if isinstance(ret, Mapping):
            extra = set(ret) - DICT_KEYS
            if extra:
                raise ActionError(
                    f"unknown keys {sorted(extra)} in action dict; allowed: {sorted(DICT_KEYS)}"
                )
            action = ret.get("action")
            if not isinstance(action, str) or action.upper() not in ("BUY", "SELL"):
                raise ActionError(f"action dict needs 'action': 'BUY' or 'SELL', got {action!r}")
            kind = str(ret.get("type", "market")).lower()
            if kind not in ORDER_TYPES:
                raise ActionError(f"action 'type' must be 'market' or 'limit', got {kind!r}")
            price = ret.get("price")
            if kind == "limit" and price is None:
                raise ActionError("a limit action needs a 'price'")
            if kind == "market" and price is not None:
                raise ActionError("a market action takes no 'price' (use type='limit')")
            return [
                self.make(
                    ret.get("symbol"), action.lower(), ret.get("size"), price, ret.get("tif", "gtc")
                )
            ]
        raise ActionError(
            f"next() returned {type(ret).__name__} {ret!r}; expected None, 'BUY'/'SELL'/'HOLD',"
            " a dict, an Order, or a list of those"
        )


__all__ = [
    "ACTIONS",
    "DICT_KEYS",
    "ORDER_TYPES",
    "SIDES",
    "TIME_IN_FORCE",
    "Normalizer",
    "Order",
    "OrderHandle",
    "request",
]
