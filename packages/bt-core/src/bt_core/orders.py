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

from bt_core.errors import ENGINE_EXCEPTIONS, ActionError, reraise
from bt_engine import OrderRequest

if TYPE_CHECKING:
    from bt_engine import Engine, OrderInfo

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCE = ("gtc", "day", "gtd", "ioc", "fok")
#: String actions ``next`` may return (any case); HOLD means "no order".
ACTIONS = ("BUY", "SELL", "HOLD")
#: Order fields beyond side, size, symbol, limit and tif, as ``buy()``/``sell()`` take them:
#: a stop price (with ``limit``: stop-limit), a trailing distance (price or fraction), bracket
#: exits (price or fraction from the entry's fill), an expiry for ``tif="gtd"`` (a date or
#: time; naive means UTC), and a parent order for one-triggers-other.
EXTRA_FIELDS = ("stop", "trail", "trail_pct", "sl", "tp", "sl_pct", "tp_pct", "expire", "parent")
#: Keys an action dict may have ("price" is the limit price).
DICT_KEYS = frozenset(
    {"action", "type", "size", "value", "pct", "price", "limit", "symbol", "tif", *EXTRA_FIELDS}
)
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
    tif: str = "gtc"  # see TIME_IN_FORCE
    value: float | None = None  # cash value instead of units
    pct: float | None = None  # fraction of equity instead of units
    stop: float | None = None
    trail: float | None = None
    trail_pct: float | None = None
    sl: float | None = None
    tp: float | None = None
    sl_pct: float | None = None
    tp_pct: float | None = None
    expire: Any = None
    parent: int | None = None

    def extras(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EXTRA_FIELDS if getattr(self, k) is not None}


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
        raise ActionError(f"tif must be one of {', '.join(TIME_IN_FORCE)}, got {tif!r}")
    return size, limit, tif.lower()


def _expire_ns(v: Any) -> int:
    """An expiry (date or time, naive = UTC; or ns since the epoch) as ns."""
    import pandas as pd

    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as e:
        raise ActionError(f"expire must be a date or time, got {v!r}") from e
    if ts is pd.NaT:
        raise ActionError(f"expire must be a date or time, got {v!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


def extras(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's keyword arguments for the :data:`EXTRA_FIELDS` given (None: not given)."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if v is None:
            continue
        if k == "expire":
            out[k] = _expire_ns(v)
        elif k == "parent":
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ActionError(f"parent must be an order id, got {v!r}")
            out[k] = int(v)
        else:
            out[k] = _number(f"{k} price" if k in ("stop", "sl", "tp") else k, v)
    return out


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
    **extra: Any,
) -> OrderRequest:
    """One order request from already resolved parts (side in :data:`SIDES`, sizing in
    :data:`SIZINGS`, ``extra`` among :data:`EXTRA_FIELDS`)."""
    amount, limit, tif = _checked(size, limit, tif)
    # engine_errors() as a plain try: a generator context manager per order costs microseconds.
    try:
        return OrderRequest(symbol, side, amount, limit, tif, sizing, **extras(extra))
    except ENGINE_EXCEPTIONS as e:
        reraise(e)


def kind_of(limit: Any, stop: Any, trail: Any, trail_pct: Any) -> str:
    """The order type the given prices describe (see :data:`ORDER_TYPES`)."""
    if trail is not None or trail_pct is not None:
        return "trailing_stop"
    if stop is not None:
        return "stop_limit" if limit is not None else "stop"
    return "limit" if limit is not None else "market"


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
        extra: Mapping[str, Any] | None = None,
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
            if limit is None and tif == "gtc" and not extra:
                return OrderRequest(s, side, _number("order size", amount), None, "gtc", sizing)
            return request(s, side, amount, limit, tif, sizing, **(extra or {}))
        sized = _sizing(size, value, pct)
        assert sized is not None
        return request(
            self.resolve(symbol), side, sized[0], limit, tif, sized[1], **(extra or {})
        )

    def __call__(self, ret: Any) -> list[OrderRequest]:
        if isinstance(ret, (list, tuple)):
            out: list[OrderRequest] = []
            for item in ret:
                if item is not None:
                    out.extend(self(item))
            return out
        return [r for r in self._one(ret) if r is not None]

    def _one(self, ret: Any) -> list[OrderRequest | None]:
        if isinstance(ret, OrderHandle):
            return []  # `return self.buy(...)`: already submitted
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
            return [
                self.make(
                    ret.symbol, side, ret.size, ret.limit, ret.tif, ret.value, ret.pct, ret.extras()
                )
            ]
        if isinstance(ret, Mapping):
            unknown = set(ret) - DICT_KEYS
            if unknown:
                raise ActionError(
                    f"unknown keys {sorted(unknown)} in action dict; allowed: {sorted(DICT_KEYS)}"
                )
            action = ret.get("action")
            if not isinstance(action, str) or action.upper() not in ("BUY", "SELL"):
                raise ActionError(f"action dict needs 'action': 'BUY' or 'SELL', got {action!r}")
            if "price" in ret and "limit" in ret:
                raise ActionError("give the limit price as 'price' or 'limit', not both")
            price = ret.get("price", ret.get("limit"))
            extra = {k: ret.get(k) for k in EXTRA_FIELDS}
            inferred = kind_of(price, extra.get("stop"), extra.get("trail"), extra.get("trail_pct"))
            kind = str(ret.get("type", inferred)).lower()
            if kind not in ORDER_TYPES:
                raise ActionError(
                    f"action 'type' must be one of {', '.join(ORDER_TYPES)}, got {kind!r}"
                )
            if kind != inferred:
                needs = {
                    "market": "no price, stop or trail",
                    "limit": "a 'price'",
                    "stop": "a 'stop' and no 'price'",
                    "stop_limit": "a 'stop' and a 'price'",
                    "trailing_stop": "a 'trail' or 'trail_pct'",
                }
                raise ActionError(f"a {kind} action needs {needs[kind]}; got {dict(ret)!r}")
            return [
                self.make(
                    ret.get("symbol"),
                    action.lower(),
                    ret.get("size"),
                    price,
                    ret.get("tif", "gtc"),
                    ret.get("value"),
                    ret.get("pct"),
                    extra,
                )
            ]
        raise ActionError(
            f"next() returned {type(ret).__name__} {ret!r}; expected None, 'BUY'/'SELL'/'HOLD',"
            " a dict, an Order, or a list of those"
        )


__all__ = [
    "ACTIONS",
    "DICT_KEYS",
    "EXTRA_FIELDS",
    "ORDER_TYPES",
    "SIDES",
    "SIZINGS",
    "TIME_IN_FORCE",
    "Normalizer",
    "Order",
    "OrderHandle",
    "extras",
    "kind_of",
    "request",
]
