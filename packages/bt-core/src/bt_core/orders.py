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
DICT_KEYS = frozenset({"action", "type", "size", "value", "pct", "price", "symbol", "tif"})
#: How an order's size is given: units, a cash value, or a fraction of equity (the last two
#: become units at the fill price; see the README's "Sizing").
SIZINGS = ("units", "value", "pct")


@dataclass(frozen=True)
class Order:
    """An order request, usable as a return value of ``next`` (alone or in a list)."""

    side: str  # "buy" | "sell"
    size: float | None = None  # units; None (and no value/pct) -> the strategy's default
    symbol: str | None = None
    limit: float | None = None
    tif: str = "gtc"  # "gtc" | "day"
    value: float | None = None  # cash value instead of units
    pct: float | None = None  # fraction of equity instead of units


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


def _sizing(size: Any, value: Any, pct: Any) -> tuple[Any, str] | None:
    """(amount, sizing) from the one of size / value / pct that is given; None if none is."""
    given = [(v, k) for v, k in ((size, "units"), (value, "value"), (pct, "pct")) if v is not None]
    if len(given) > 1:
        names = {"units": "size", "value": "value", "pct": "pct"}
        raise ActionError(
            "give one of size=, value= or pct=, not " + " and ".join(names[k] for _, k in given)
        )
    return given[0] if given else None


def request(
    symbol: int,
    side: str,
    size: Any,
    limit: Any = None,
    tif: Any = "gtc",
    sizing: str = "units",
) -> OrderRequest:
    """One order request from already resolved parts (side in :data:`SIDES`, sizing in
    :data:`SIZINGS`)."""
    amount, limit, tif = _checked(size, limit, tif)
    return OrderRequest(symbol, side, amount, limit, tif, sizing)


class Normalizer:
    """Turns what ``next`` returns into order requests, for one strategy.

    ``resolve(symbol_or_None) -> index`` and ``default(side, symbol_index) -> (amount, sizing)
    | None`` come from the strategy (None: no order, e.g. selling with nothing held).
    """

    __slots__ = ("default", "resolve")

    def __init__(
        self,
        resolve: Callable[[str | None], int],
        default: Callable[[str, int], tuple[Any, str] | None],
    ):
        self.resolve = resolve
        self.default = default

    def make(
        self,
        symbol: str | None,
        side: str,
        size: Any,
        limit: Any,
        tif: Any,
        value: Any = None,
        pct: Any = None,
    ) -> OrderRequest | None:
        if size is None and value is None and pct is None:
            # The common call, buy()/sell() or "BUY": the strategy's default sizing.
            if limit is not None or tif != "gtc":
                _checked(1.0, limit, tif)
            s = self.resolve(symbol)
            default = self.default(side, s)
            if default is None:
                return None
            amount, sizing = default
            if limit is None and tif == "gtc":
                return OrderRequest(s, side, _number("order size", amount), None, "gtc", sizing)
            amount, limit, tif = _checked(amount, limit, tif)
            return OrderRequest(s, side, amount, limit, tif, sizing)
        sized = _sizing(size, value, pct)
        assert sized is not None
        amount, limit, tif = _checked(sized[0], limit, tif)
        return OrderRequest(self.resolve(symbol), side, amount, limit, tif, sized[1])

    def __call__(self, ret: Any) -> list[OrderRequest]:
        if isinstance(ret, (list, tuple)):
            out: list[OrderRequest] = []
            for item in ret:
                if item is not None:
                    out.extend(self(item))
            return out
        return [r for r in self._one(ret) if r is not None]

    def _one(self, ret: Any) -> list[OrderRequest | None]:
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
            return [self.make(ret.symbol, side, ret.size, ret.limit, ret.tif, ret.value, ret.pct)]
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
                    ret.get("symbol"),
                    action.lower(),
                    ret.get("size"),
                    price,
                    ret.get("tif", "gtc"),
                    ret.get("value"),
                    ret.get("pct"),
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
    "SIZINGS",
    "TIME_IN_FORCE",
    "Normalizer",
    "Order",
    "OrderHandle",
    "request",
]
