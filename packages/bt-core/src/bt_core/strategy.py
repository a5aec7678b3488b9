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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bt_core.data import OHLCVLines
from bt_core.errors import ActionError, ParameterError, engine_errors
from bt_core.orders import EXTRA_FIELDS, Normalizer, Order, OrderHandle
from bt_core.orders import _number as _number
from bt_engine import Line, OrderRequest

if TYPE_CHECKING:
    from bt_core.data import MarketData
    from bt_core.timeframes import BarLength, TimeframeView
    from bt_engine import BarView, Engine, FillInfo, OrderInfo


class SymbolData(OHLCVLines):
    """Guarded OHLCV lines of one symbol (created lazily, shared for the whole run)."""

    __slots__ = ("_engine", "_lines", "index", "symbol")

    def __init__(self, engine: Engine, md: MarketData, s: int):
        self._engine = engine
        self._lines: dict[str, Line] = {}
        self.index = s
        self.symbol = md.symbols[s]

    def field(self, name: str) -> Line:
        """Any field of the data by name, e.g. an extra column such as ``pre_close``."""
        line = self._lines.get(name)
        if line is None:
            line = self._lines[name] = self._engine.data_line(name, self.index)
        return line

    def __getattr__(self, name: str) -> Line:
        # `Close`, `CLOSE`: the data's columns answer in any case, so do their accessors.
        lower = name.lower()
        if lower != name and lower in _FIELD_NAMES:
            return self.field(lower)
        raise AttributeError(f"symbol data has no attribute {name!r}; fields: {_FIELD_LIST}")


_FIELD_NAMES = ("open", "high", "low", "close", "volume")
_FIELD_LIST = ", ".join(_FIELD_NAMES)


class DataView(OHLCVLines):
    """``self.data``: ``data.close`` etc. for single-symbol runs, ``data["600000.SH"]`` always."""

    def __init__(self, engine: Engine, md: MarketData):
        self._md = md
        self._per = [SymbolData(engine, md, s) for s in range(len(md.symbols))]
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
                f"the data has {len(self._per)} symbols ({', '.join(self.symbols)}): use "
                "self.data[symbol].close etc."
            )
        return self._per[0]

    def field(self, name: str) -> Line:
        """Any field of the only symbol by name (see :meth:`SymbolData.field`)."""
        return self._single().field(name)

    def __getattr__(self, name: str) -> Line:
        # Also reached when a field property raised (several symbols): _single says why.
        lower = name.lower()
        if lower in _FIELD_NAMES:
            return getattr(self._single(), lower)
        raise AttributeError(f"self.data has no attribute {name!r}; fields: {_FIELD_LIST}")


class Strategy:
    """Base class of event-driven strategies.

    Parameters are public class attributes (numbers, strings, bools) overridable per run:
    ``Backtest(data, MyStrategy).run(fast=5)``.

    Sizing: ``buy(size)`` buys units, ``buy(value=...)`` a cash value, ``buy(pct=...)`` a
    fraction of equity (value and percent sizes become units at the fill price; a buy takes
    at most what cash pays for, costs included). Without any, ``buy()`` (and "BUY") uses
    ``order_size`` units when it is set, else ``order_pct`` of equity — by default all of it,
    as backtesting.py does; ``sell()`` (and "SELL") sells ``order_size`` units when set, else
    the whole position (nothing when flat).
    """

    #: Units for buy()/sell() without a size (None: size by ``order_pct``).
    order_size: float | None = None
    #: Fraction of equity for buy() without a size when ``order_size`` is None.
    order_pct: float = 1.0
    #: ``next`` is first called on bar ``warmup``; earlier bars still fill orders and record
    #: equity. None (the default): the first bar on which every indicator made with ``I`` has
    #: a value. Set it (e.g. in on_start) to override.
    warmup: int | None = None

    # Set by _attach before on_start.
    _engine: Engine
    _md: MarketData
    _bar: BarView
    _normalize: Normalizer
    _day_offset_hours: float
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
        for name in ("order_size", "order_pct"):
            v = merged.get(name)
            if name == "order_size" and v is None:
                continue
            if not isinstance(v, (int, float, np.number)) or isinstance(v, bool) or v <= 0:
                raise ParameterError(
                    f"parameter {name!r} must be a number > 0, got {v!r}", parameter=name
                )
        return merged

    # ----- indicators ------------------------------------------------------------------
    def I(  # noqa: E743 - short name is the convention (backtesting.py, backtrader)
        self, func: Callable[..., Any] | np.ndarray | pd.Series, *args: Any, **kwargs: Any
    ) -> Any:
        """Compute an indicator over the whole data once, and reveal it bar by bar.

        ``func`` is called with the full arrays (Lines passed as arguments are replaced by their
        whole series, read-only); it must be causal (value t uses data up to t only). Call it
        before the first bar (in ``on_start``/``init``). Returns a Line, or a tuple of Lines when
        ``func`` returns several series (a tuple, or a DataFrame: one Line per column). The
        result is copied into the engine, so changing the
        array afterwards changes nothing.
        """

        def full(a: Any) -> Any:
            return a.full() if isinstance(a, Line) else a

        # An indicator of a timeframe's line is a line of that timeframe (one value per
        # coarse bar, shown as the coarse bars are).
        coarse = self.__dict__.get("_coarse", {})
        like = next(
            (a for a in (*args, *kwargs.values()) if isinstance(a, Line) and id(a) in coarse),
            None,
        )
        if callable(func):
            out = func(*(full(a) for a in args), **{k: full(v) for k, v in kwargs.items()})
        else:
            out = func
        if isinstance(out, tuple):
            return tuple(self._as_line(o, like) for o in out)
        if isinstance(out, pd.DataFrame):  # several series, e.g. MACD line, signal, histogram
            return tuple(self._as_line(out[c], like) for c in out.columns)
        return self._as_line(out, like)

    def _as_line(self, values: Any, like: Line | None = None) -> Line:
        arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
        if like is not None and arr.ndim == 1 and len(arr) == len(like.full()):
            line = like.with_values(arr)
            coarse = self.__dict__["_coarse"]
            coarse[id(line)] = (line, coarse[id(like)][1])
        elif arr.ndim != 1 or len(arr) != self._md.n_bars:
            per_coarse = (
                f" or, computed on a timeframe's line, one per coarse bar ({len(like.full())})"
                if like is not None
                else ""
            )
            raise ParameterError(
                f"an indicator must have one value per bar ({self._md.n_bars}){per_coarse}, "
                f"got shape {arr.shape}"
            )
        else:
            line = self._engine.line(arr)
        self.__dict__.setdefault("_indicators", []).append(line)
        return line

    def _auto_warmup(self) -> int:
        """The first bar on which every indicator made with :meth:`I` has a value (what
        ``next`` sees first unless ``warmup`` is set), as backtesting.py does. A timeframe's
        indicator has its first value on the fine bar where that coarse bar becomes visible."""
        first = 0
        coarse = self.__dict__.get("_coarse", {})
        for line in self.__dict__.get("_indicators", ()):
            values = line.full()
            present = np.flatnonzero(~np.isnan(values))
            if id(line) in coarse:
                visible_from = coarse[id(line)][1]
                at = int(visible_from[present[0]]) if present.size else self._md.n_bars
            else:
                at = int(present[0]) if present.size else len(values)
            first = max(first, at)
        return first

    # ----- coarser timeframes ----------------------------------------------------------
    def timeframe(self, rule: str, *, bar_length: BarLength = None) -> TimeframeView:
        """Coarser bars built from the run's bars, e.g. ``self.timeframe("1W")`` on daily
        data or ``self.timeframe("1min")`` on ticks (rules and the visibility rule:
        :mod:`bt_core.timeframes`). ``tf.close[-1]`` is the newest complete coarse bar,
        ``len(tf.close)`` how many are complete so far; ``self.I(sma, tf.close, 10)`` is an
        indicator on the coarse bars. ``bar_length`` is how long one fine bar lasts after its
        stamp (e.g. ``"1D"`` for daily bars stamped at midnight, so that ``"W-FRI"`` weeks
        show at Friday's close); the default 0 treats bars as instants, so a coarse bar shows
        from the first bar stamped at or after its end. Built once per run (cached by rule and
        bar_length); call it in ``on_start``."""
        from bt_core.timeframes import TimeframeView, bar_length_ns, build

        cache = self.__dict__.setdefault("_timeframes", {})
        key = (rule, bar_length_ns(bar_length))
        view = cache.get(key)
        if view is None:
            tf = build(
                self._md, rule, bar_length=bar_length, day_offset_hours=self._day_offset_hours
            )
            view = cache[key] = TimeframeView(self._engine, self._md, tf)
            coarse = self.__dict__.setdefault("_coarse", {})
            for sym in view._per:
                visible_from = sym.visible_from()
                for f in ("open", "high", "low", "close", "volume"):
                    line = sym.field(f)
                    coarse[id(line)] = (line, visible_from)
        return view

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
    def times(self) -> pd.DatetimeIndex:
        """The time of every bar of the run (UTC): the calendar, not prices, so that a
        strategy can tell e.g. the last bar of a month without looking ahead at the data."""
        return self._md.index

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

    def sellable(self, symbol: str | None = None) -> float:
        """Units of ``symbol`` (None: the only symbol) a sell may take now: the long position
        less the units T+n still locks (``InstrumentSpec.t_plus``, e.g. the A-share preset's
        T+1: shares bought today are sellable from the next trading day)."""
        return self._engine.sellable(self._sym(symbol))

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
        value: float | None = None,
        pct: float | None = None,
        symbol: str | None = None,
        limit: float | None = None,
        stop: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        tif: str = "gtc",
        expire: Any = None,
        parent: int | None = None,
    ) -> OrderHandle:
        """Buy ``size`` units, or ``value`` in cash, or ``pct`` of equity (one of them; none:
        the default sizing, see the class docstring).

        The kind follows the prices given: none -> market; ``limit`` -> limit; ``stop`` ->
        stop-market (triggers when the price reaches ``stop``); ``stop`` and ``limit`` ->
        stop-limit; ``trail`` (a price distance) or ``trail_pct`` (a fraction) -> a trailing
        stop that follows the best price since it was placed (starting from the last close).
        ``sl``/``tp`` (prices) or ``sl_pct``/``tp_pct`` (fractions of the entry's first fill
        price) attach a bracket: a stop-loss and a take-profit, linked one-cancels-other,
        working only once (and as far as) the entry fills. ``tif``: "gtc", "day", "gtd"
        (until ``expire``, a date or time, naive = UTC), "ioc", "fok". ``parent``: an order id
        this one waits for (one-triggers-other).

        Returns the order's handle: its id (an int) with ``status`` and ``cancel()``.
        """
        handle = self._submit(
            symbol, "buy", size, limit, tif, value, pct,
            _extra(stop, trail, trail_pct, sl, tp, sl_pct, tp_pct, expire, parent),
        )  # fmt: skip
        assert handle is not None  # buying always has a default size
        return handle

    def sell(
        self,
        size: float | None = None,
        *,
        value: float | None = None,
        pct: float | None = None,
        symbol: str | None = None,
        limit: float | None = None,
        stop: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        tif: str = "gtc",
        expire: Any = None,
        parent: int | None = None,
    ) -> OrderHandle | None:
        """Sell ``size`` units, or ``value`` in cash, or ``pct`` of equity; none: ``order_size``
        units when set, else the whole position (None when flat). Selling more than held is
        rejected (a value or percent sell is capped at the position). Order kinds, brackets
        and time in force as for :meth:`buy` (a sell stop triggers at or below its stop)."""
        return self._submit(
            symbol, "sell", size, limit, tif, value, pct,
            _extra(stop, trail, trail_pct, sl, tp, sl_pct, tp_pct, expire, parent),
        )  # fmt: skip

    def close(self, symbol: str | None = None) -> OrderHandle | None:
        """Close the whole position at market (sell a long, buy back a short); None when
        flat."""
        s = self._sym(symbol)
        pos = self._engine.position(s)
        if pos > 0:
            return self._order(s, "sell", pos, "units")
        if pos < 0:
            return self._order(s, "buy", -pos, "units")
        return None

    def cancel(self, order_id: int) -> bool:
        """Cancel a working or pending order; False if it already filled, expired or was
        cancelled. Cancelling an entry that has not filled cancels its bracket exits."""
        return self._engine.cancel(order_id)

    def modify(
        self,
        order_id: int,
        *,
        limit: float | None = None,
        stop: float | None = None,
        size: float | None = None,
    ) -> None:
        """Replace a working order's limit price, stop price or size (the rest is kept);
        ``on_order`` then sees a "modified" event."""
        with engine_errors():
            self._engine.modify(int(order_id), limit=limit, stop=stop, size=size)

    def oco(self, *orders: int) -> int:
        """Link working orders one-cancels-other: when one fills, the others are cancelled.
        Returns the group's id."""
        with engine_errors():
            return self._engine.link_oco([int(o) for o in orders])

    # ----- targets and rebalancing ---------------------------------------------------------
    def order_target_size(self, target: float, symbol: str | None = None) -> OrderHandle | None:
        """Buy or sell the difference between ``target`` units and the position (None when
        there is none). Working orders are not netted: cancel them first if they would
        double up."""
        s = self._sym(symbol)
        delta = _number("target", target) - self._engine.position(s)
        if delta == 0:
            return None
        side = "buy" if delta > 0 else "sell"
        return self._order(s, side, abs(delta), "units")

    def order_target_value(self, target: float, symbol: str | None = None) -> OrderHandle | None:
        """Trade towards a position worth ``target`` in cash: the difference from the position
        marked at the last close, converted to units at the fill price (so the position ends
        near, not exactly at, the target when the price moves); a target of 0 sells all."""
        s = self._sym(symbol)
        target = _number("target", target)
        pos = self._engine.position(s)
        if target == 0:
            return self.order_target_size(0.0, self._md.symbols[s]) if pos else None
        price = self._last_price(s)
        delta = target - pos * price
        if delta == 0:
            return None
        return self._order(s, "buy" if delta > 0 else "sell", abs(delta), "value")

    def order_target_percent(
        self, target: float, symbol: str | None = None
    ) -> OrderHandle | None:
        """Trade towards a position worth the fraction ``target`` of equity (see
        :meth:`order_target_value`)."""
        return self.order_target_value(_number("target", target) * self._engine.equity, symbol)

    def rebalance(
        self, weights: Mapping[str, float], *, cash_buffer: float = 0.0
    ) -> list[OrderHandle]:
        """Trade every symbol towards ``weights`` (fractions of equity; symbols held but not
        named go to 0), keeping ``cash_buffer`` (a fraction of equity) in cash. Sells are sent
        before buys, so that at the next open they free cash first; buys are capped at what
        cash (on margin: buying power) pays for then. A negative weight is a short (the
        symbol must allow it); in a cash account the absolute weights sum to at most 1."""
        buffer = _number("cash_buffer", cash_buffer)
        if not 0 <= buffer < 1:
            raise ActionError(f"cash_buffer must be in [0, 1), got {cash_buffer!r}")
        targets = {self._sym(k): _number(f"weight of {k}", w) for k, w in weights.items()}
        bad = [
            self._md.symbols[s]
            for s, w in targets.items()
            if w < 0 and not self._engine.shortable(s)
        ]
        if bad:
            raise ActionError(
                f"negative weights for {bad}, which may not be shorted (set allow_short)"
            )
        gross = sum(abs(w) for w in targets.values())
        if gross > 1 + 1e-9 and self._engine.config["account"] == "cash":
            raise ActionError(
                f"weights have a gross sum of {gross:.6g} > 1 (a cash account has no "
                "leverage; use account='margin')"
            )
        equity = self._engine.equity * (1 - buffer)
        positions = self._engine.positions()
        for held in np.flatnonzero(positions).tolist():
            targets.setdefault(held, 0.0)
        sells: list[OrderHandle] = []
        buys: list[tuple[int, float, str]] = []
        for s, w in sorted(targets.items()):
            pos = float(positions[s])
            if w == 0:
                if pos > 0:
                    sells.append(self._order(s, "sell", pos, "units"))
                elif pos < 0:
                    buys.append((s, -pos, "units"))
                continue
            delta = w * equity - pos * self._last_price(s)
            if delta < 0:
                sells.append(self._order(s, "sell", -delta, "value"))
            elif delta > 0:
                buys.append((s, delta, "value"))
        return sells + [self._order(s, "buy", v, how) for s, v, how in buys]

    def _order(self, s: int, side: str, amount: float, sizing: str) -> OrderHandle:
        # Callers pass engine positions or sizes computed here, always numbers: the request is
        # built directly, without request()'s checks of user input.
        return OrderHandle(
            self._engine.submit(OrderRequest(s, side, float(amount), None, "gtc", sizing)),
            self._engine,
        )

    def _last_price(self, s: int) -> float:
        price = self._engine.last_price(s)
        if not np.isfinite(price):
            raise ActionError(
                f"{self._md.symbols[s]} has no price yet (no bar so far): cannot size by value"
            )
        return price

    # ----- internals -------------------------------------------------------------------
    def _sym(self, symbol: str | None) -> int:
        if symbol is None:
            if len(self._md.symbols) != 1:
                raise ActionError(
                    f"symbol= is required: the data has {len(self._md.symbols)} symbols "
                    f"({', '.join(self._md.symbols)}); use self.data[symbol] and "
                    "buy(..., symbol=...)"
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
        self,
        symbol: str | None,
        side: str,
        size: float | None,
        limit: float | None,
        tif: str,
        value: float | None = None,
        pct: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> OrderHandle | None:
        req = self._normalize.make(symbol, side, size, limit, tif, value, pct, extra)
        return None if req is None else OrderHandle(self._engine.submit(req), self._engine)

    def _default_size(self, side: str, s: int) -> tuple[Any, str] | None:
        """(amount, sizing) of an order given without a size (see the class docstring)."""
        units = self.params.get("order_size", self.order_size)
        if units is not None:
            return units, "units"
        if side == "buy":
            return self.params.get("order_pct", self.order_pct), "pct"
        pos = self._engine.position(s)
        return (pos, "units") if pos > 0 else None

    # ----- attaching to a run -----------------------------------------------------------
    def _attach(self, engine: Engine, md: MarketData, params: dict[str, Any]) -> BarView:
        """Bind this strategy to one run: parameters, data view, order normalizer. The one
        place where a runner sets a strategy up; returns the bar object ``next`` receives."""
        for k, v in params.items():
            setattr(self, k, v)
        self.params = params
        self._engine = engine
        self._md = md
        self.data = DataView(engine, md)
        #: Turns what ``next`` returns into order requests (see bt_core.orders).
        self._normalize = Normalizer(self._sym, self._default_size)
        self._bar = engine.bar_view()
        # Read now: the engine's settings are out of reach while its loop runs.
        self._day_offset_hours = float(engine.config["day_offset_hours"])
        for stale in ("_timeframes", "_coarse"):
            self.__dict__.pop(stale, None)
        return self._bar


def _extra(
    stop: Any,
    trail: Any,
    trail_pct: Any,
    sl: Any,
    tp: Any,
    sl_pct: Any,
    tp_pct: Any,
    expire: Any,
    parent: Any,
) -> dict[str, Any] | None:
    """The order fields beyond size, limit and tif that were given (None when none was)."""
    # A chained `is` is true only when every field is None: the plain market order, the
    # common call, returns before building anything (about 0.4 us per order).
    if stop is trail is trail_pct is sl is tp is None and (
        sl_pct is tp_pct is expire is parent is None
    ):
        return None
    values = (stop, trail, trail_pct, sl, tp, sl_pct, tp_pct, expire, parent)
    given = {k: v for k, v in zip(EXTRA_FIELDS, values, strict=True) if v is not None}
    return given


__all__ = ["DataView", "Order", "Strategy", "SymbolData"]
