"""One run configuration: cash, costs (fee lines, slippage models), fill timing, the intrabar
rules (bar path, limit fills, volume cap) and, as they arrive, market presets and margin.
``Backtest`` keywords, ``bt run --config run.toml``, the server's request models and the
optimizer all use this one object.

The engine settings are validated by the engine itself (one set of rules, in Rust), when the
configuration is built, and cross into Rust once, as one dict (:meth:`RunConfig.to_engine`).
Adding a setting is one field in Rust's ``Config`` plus one field here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

import bt_engine
from bt_core import markets
from bt_core.errors import BtCoreError, ParameterError, engine_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: Settings that belong to the engine (the others shape the analysis of the result), as the
#: engine names them.
ENGINE_KEYS = tuple(bt_engine.CONFIG_KEYS)

_NUMBERS = (
    "cash",
    "commission",
    "commission_min",
    "commission_fixed",
    "slippage_bps",
    "day_offset_hours",
    "periods_per_year",
    "borrow_rate",
    "initial_margin",
    "maintenance_margin",
    "max_leverage",
)


_OPTIONAL_NUMBERS = ("initial_margin", "maintenance_margin", "max_leverage")


def _ns(v: Any, name: str) -> int:
    """A date or time (text, datetime, pandas Timestamp, ns int) as ns on the run's clock."""
    if isinstance(v, bool):
        raise ParameterError(f"{name} must be a date or time, got {v!r}", parameter=name)
    if isinstance(v, (int, np.integer)):
        return int(v)
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError) as e:
        raise ParameterError(f"{name} must be a date or time, got {v!r}", parameter=name) from e
    if ts is pd.NaT:
        raise ParameterError(f"{name} must be a date or time, got {v!r}", parameter=name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


class FeeLine(BaseModel):
    """One line of a run's fees, charged per order (a minimum once per order however many
    partial fills it takes).

    Attributes:
        name: shown in messages (defaults to the type).
        type: ``"rate"`` (``rate`` x value, at least ``min``), ``"per_unit"`` (``per_unit`` x
            units, at least ``min``), ``"tiered"`` (progressive ``tiers`` of
            ``(from_value, rate)``, the first from 0: each slice of an order's value pays its
            tier's rate), ``"fixed"`` (``amount`` per order).
        side: ``"both"``, ``"buy"`` or ``"sell"`` (a stamp duty: sells only).
        kind: ``"commission"`` or ``"tax"``: the fill reports them separately.
        from_, until: the line is in force for fills on or after ``from`` and before
            ``until`` (dates or times on the run's trading-day clock: UTC shifted by
            ``day_offset_hours``); in TOML and dicts the key is ``from``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str | None = None
    type: Literal["rate", "per_unit", "tiered", "fixed"] = "rate"
    rate: float | None = None
    min: float = 0.0
    per_unit: float | None = None
    tiers: tuple[tuple[float, float], ...] | None = None
    amount: float | None = None
    side: Literal["both", "buy", "sell"] = "both"
    kind: Literal["commission", "tax"] = "commission"
    from_: Any = Field(default=None, alias="from")
    until: Any = None

    @field_validator("from_", "until", mode="after")
    @classmethod
    def _time(cls, v: Any, info: Any) -> Any:
        return None if v is None else _ns(v, "fees." + info.field_name.rstrip("_"))

    def to_engine(self) -> dict[str, Any]:
        d = self.model_dump(by_alias=True, exclude_none=True)
        if self.tiers is not None:
            d["tiers"] = [list(t) for t in self.tiers]
        return d


class SlippageModel(BaseModel):
    """A slippage model other than plain basis points (``slippage_bps``).

    Attributes:
        model: ``"bps"`` (``bps`` of the reference price), ``"range"`` (``share`` of the bar's
            high-low range) or ``"sqrt_impact"`` (reference x ``coef`` x sigma x
            sqrt(units / bar volume); sigma: standard deviation of the close-to-close log
            returns of the ``window`` bars before the fill, none with fewer than two).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Literal["bps", "range", "sqrt_impact"]
    bps: float | None = None
    share: float | None = None
    coef: float | None = None
    window: int | None = None

    def to_engine(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class InstrumentSpec(BaseModel):
    """Per-symbol trading facts (None: the engine's default).

    Attributes:
        size_increment: order sizes must be whole multiples of it (a lot, e.g. 100 shares);
            value and percent sizes round down to it. 0: any size.
        tick_size: limit and stop prices must lie on this grid (bracket levels given as
            percentages are rounded to it). 0: any price.
        multiplier: cash value of one unit per point of price (futures-style contracts).
        allow_short: may sells take this symbol below zero (overrides the run's
            ``allow_short``).
        borrow_rate: annual rate paid on the value of a short in this symbol.
        margin_initial, margin_maintenance: this symbol's margin rates (fractions of the
            position's value; e.g. 0.1 and 0.08 for a future), overriding the account's.
        min_size: the smallest order size (e.g. 200 shares on Shanghai's STAR market); a
            smaller sell is allowed only when it closes the whole position. 0: none.
        t_plus: units bought become sellable this many trading days later (A-shares: 1);
            a sell of locked units is rejected (code ``t_plus``), a value or percent sell is
            sized down to the sellable units. 0: at once.
        suspend_on_zero_volume: a bar without volume trades nothing (suspended).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    size_increment: float | None = None
    tick_size: float | None = None
    multiplier: float | None = None
    allow_short: bool | None = None
    borrow_rate: float | None = None
    margin_initial: float | None = None
    margin_maintenance: float | None = None
    min_size: float | None = None
    t_plus: int | None = None
    suspend_on_zero_volume: bool | None = None


class PriceBand(BaseModel):
    """One row of a dated price-limit schedule: from ``from`` on, a day's prices stay within
    ``reference x (1 - down)`` and ``reference x (1 + up)`` rounded to the tick (reference:
    the symbol's last close of a previous trading day, or the data's ``pre_close`` column).
    ``pct`` is shorthand for ``up = down = pct``; no figures: no limit from then on.

    Attributes:
        from_: a date or time on the run's clock (key ``from``); None: from the start.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: Any = Field(default=None, alias="from")
    up: float | None = None
    down: float | None = None
    pct: float | None = None

    @field_validator("from_", mode="after")
    @classmethod
    def _time(cls, v: Any) -> Any:
        return None if v is None else _ns(v, "price_limits.from")

    def to_engine(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class RunConfig(BaseModel):
    """The settings of one run.

    Attributes:
        cash: starting cash.
        commission: commission as a fraction of traded notional (0.0005 = 5 bps).
        commission_min: minimum commission per order (charged once across its partial
            fills). commission_fixed: added to every order's commission.
        fees: more fee lines after the commission (:class:`FeeLine`): per-share fees,
            tiers, sell-only taxes, dated rates.
        slippage_bps: slippage against the trader, in basis points of the reference price.
        slippage: another slippage model (:class:`SlippageModel`; not with slippage_bps).
        fill_on: ``"next_open"`` (default: decided on bar t, filled on bar t+1) or ``"close"``
            (filled on the deciding bar's close: optimistic, it trades on a price it has seen).
        day_offset_hours: shift applied to UTC times to find a DAY order's trading day.
        bar_path: the order in which a bar's prices trade: ``"pessimistic"`` (default: a
            long sees the low first, a short the high first, so a bar reaching a position's
            stop and its target takes the stop; flat as adaptive), ``"ohlc"`` (open, high,
            low, close), ``"adaptive"`` (via the low first when the open is nearer the low).
        limit_fill: ``"touch"`` (a limit fills when the price reaches it) or ``"through"``
            (only when the price trades beyond it).
        volume_limit: at most this fraction of a bar's volume trades per symbol and bar; the
            rest of an order stays working (IOC: cancelled; FOK: all or nothing). None: no cap.
        instruments: per-symbol :class:`InstrumentSpec` by symbol name, ``"*"`` for every
            symbol (applied first when listed first), e.g. ``{"*": {"size_increment": 100,
            "tick_size": 0.01}}``.
        account: ``"cash"`` (default: buys are paid from cash, no leverage) or ``"margin"``
            (borrows against equity; cash may go negative).
        initial_margin: equity needed to open or add to a position, as a fraction of its
            value (default 1 in a cash account, where it must stay 1; 0.5 on margin).
        maintenance_margin: when equity at a close is below this fraction of the positions'
            value (default 0 in a cash account, i.e. only when equity is negative; 0.25 on
            margin), a margin call liquidates whole positions at the next open, largest
            requirement first, until the rest is covered, and cancels the strategy's working
            orders in them (``Result.margin_calls``, ``orders.liquidation``).
        max_leverage: gross exposure after a fill that adds risk may not exceed this multiple
            of equity (None: the margin rates are the only limit).
        allow_short: may sells take positions below zero (every symbol; per symbol with
            ``instruments``). In a cash account a short needs cash worth its value besides
            its proceeds.
        borrow_rate: annual rate charged on the value of short positions, accrued at every
            bar for the calendar time since the previous one (actual/365), into cash and the
            symbol's realised P&L (``stats["total_borrow"]``).
        price_limits: dated daily price bands by symbol (``"*"``: every symbol), lists of
            :class:`PriceBand`: a limit order priced beyond the day's band is rejected (code
            ``price_limit``), fills and slippage stay within it, a bar locked at limit-up
            fills no buy and one locked at limit-down no sell.
        market: a market preset (``"cn_ashare"``: China A-shares, see
            :mod:`bt_core.markets.cn_ashare`), expanded with the data's symbols and calendar
            into ``instruments``, ``price_limits`` and ``fees``; the settings given here
            override the preset's. market_options: the preset's options.
        periods_per_year: for annualised statistics; inferred from the bar spacing when None.
        max_events_per_bar: order/fill events a strategy's callbacks may handle within one
            bar before the run stops with a StrategyError (an on_order that answers every
            event with a new order would otherwise loop forever within the bar).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cash: float = 100_000.0
    commission: float = 0.0
    commission_min: float = 0.0
    commission_fixed: float = 0.0
    fees: tuple[FeeLine, ...] = ()
    slippage_bps: float = 0.0
    slippage: SlippageModel | None = None
    fill_on: Literal["next_open", "close"] = "next_open"
    day_offset_hours: float = 0.0
    bar_path: Literal["pessimistic", "ohlc", "adaptive"] = "pessimistic"
    limit_fill: Literal["touch", "through"] = "touch"
    volume_limit: float | None = None
    instruments: dict[str, InstrumentSpec] = Field(default_factory=dict)
    account: Literal["cash", "margin"] = "cash"
    initial_margin: float | None = None
    maintenance_margin: float | None = None
    max_leverage: float | None = None
    allow_short: bool = False
    borrow_rate: float = 0.0
    periods_per_year: float | None = None
    max_events_per_bar: int = 100_000
    price_limits: dict[str, tuple[PriceBand, ...]] = Field(default_factory=dict)
    market: Literal["cn_ashare"] | None = None
    market_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("max_events_per_bar", mode="before")
    @classmethod
    def _positive_int(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(
                f"parameter max_events_per_bar must be an integer >= 1, got {v!r}",
                parameter="max_events_per_bar",
            )
        return int(v)

    @field_validator(*_NUMBERS, mode="before")
    @classmethod
    def _plain_number(cls, v: Any, info: Any) -> Any:
        name = info.field_name
        if v is None and name in ("periods_per_year", *_OPTIONAL_NUMBERS):
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            raise ParameterError(f"parameter {name} must be a number, got {v!r}", parameter=name)
        f = float(v)
        if not math.isfinite(f):
            raise ParameterError(f"parameter {name} must be finite, got {v!r}", parameter=name)
        if name == "periods_per_year" and f <= 0:
            raise ParameterError(f"parameter {name} must be > 0, got {v!r}", parameter=name)
        return f

    @field_validator("allow_short", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> Any:
        if not isinstance(v, (bool, np.bool_)):
            raise ParameterError(
                f"parameter allow_short must be True or False, got {v!r}", parameter="allow_short"
            )
        return bool(v)

    @field_validator("fill_on", "bar_path", "limit_fill", "account", mode="before")
    @classmethod
    def _choice(cls, v: Any, info: Any) -> Any:
        name = info.field_name
        allowed = {
            "fill_on": ("next_open", "close"),
            "bar_path": ("pessimistic", "ohlc", "adaptive"),
            "limit_fill": ("touch", "through"),
            "account": ("cash", "margin"),
        }[name]
        if v not in allowed:
            choices = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
            raise ParameterError(f"parameter {name} must be {choices}, got {v!r}", parameter=name)
        return v

    @field_validator("volume_limit", mode="before")
    @classmethod
    def _fraction(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            raise ParameterError(
                f"parameter volume_limit must be a number or None, got {v!r}",
                parameter="volume_limit",
            )
        return float(v)

    @field_validator("market_options", mode="before")
    @classmethod
    def _plain_table(cls, v: Any) -> Any:
        # A table given as a DataFrame is kept as plain rows: the configuration stays
        # comparable and saveable as JSON.
        if isinstance(v, Mapping) and "instruments" in v:
            return {**v, "instruments": markets.cn_ashare.instrument_table(v["instruments"])}
        return v

    @model_validator(mode="after")
    def _engine_accepts(self) -> RunConfig:
        # The engine's own rules (ranges, limits): one definition, in Rust.
        with engine_errors():
            bt_engine.check_config(self.to_engine())
        if self.market is not None:
            markets.check_options(self.market, self.market_options)
        elif self.market_options:
            raise ParameterError(
                "market_options given without a market", parameter="market_options"
            )
        return self

    # ----- building -------------------------------------------------------------------
    @classmethod
    def build(
        cls, base: RunConfig | Mapping[str, Any] | None = None, **overrides: Any
    ) -> RunConfig:
        """``base`` (a RunConfig or a mapping of settings) with ``overrides`` (None = keep).

        Errors are :class:`~bt_core.ParameterError` naming the setting.
        """
        if isinstance(base, RunConfig):
            values = base.model_dump()
        elif base is None:
            values = {}
        elif isinstance(base, Mapping):
            values = dict(base)
        else:
            raise ParameterError(
                f"config must be a RunConfig or a mapping of settings, got {type(base).__name__}",
                parameter="config",
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ParameterError(
                f"unknown run setting(s) {unknown}; known: {', '.join(cls.model_fields)}",
                parameter=unknown[0],
            )
        try:
            return cls(**values)
        except ValidationError as e:
            raise _parameter_error(e) from None

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        """Settings from a TOML file: keys at the top level or in a ``[run]`` table."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ParameterError(f"config file not found: {p}", parameter="config") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ParameterError(f"cannot read config file {p}: {e}", parameter="config") from e
        except tomllib.TOMLDecodeError as e:
            raise ParameterError(f"{p} is not valid TOML: {e}", parameter="config") from e
        if "run" in data:
            rest = sorted(set(data) - {"run"})
            if rest or not isinstance(data["run"], dict):
                raise ParameterError(
                    f"{p}: put every setting in the [run] table (found also {rest})",
                    parameter="config",
                )
            data = data["run"]
        try:
            return cls.build(data, **overrides)
        except ParameterError as e:
            raise ParameterError(f"{p}: {e}", **e.fields) from e

    # ----- crossing into the engine ---------------------------------------------------
    def to_engine(
        self, symbols: Sequence[str] | None = None, times: pd.DatetimeIndex | None = None
    ) -> dict[str, Any]:
        """The engine's settings, as the one dict ``bt_engine.Engine`` takes.

        A market preset needs the data's ``symbols`` and ``times`` (its calendar): without
        them the dict holds the plain settings only.
        """
        d = {k: getattr(self, k) for k in ENGINE_KEYS}
        d["fees"] = [f.to_engine() for f in self.fees]
        d["slippage"] = None if self.slippage is None else self.slippage.to_engine()
        d["instruments"] = {k: v.model_dump(exclude_none=True) for k, v in self.instruments.items()}
        d["price_limits"] = {k: [b.to_engine() for b in v] for k, v in self.price_limits.items()}
        if self.market is None or symbols is None:
            return d
        preset = markets.expand(
            self.market,
            self.market_options,
            list(symbols),
            pd.DatetimeIndex([]) if times is None else times,
            day_offset_hours=self.day_offset_hours,
            use_commission=self.commission == 0 and self.commission_min == 0,
            user_fee_names={f.name or f.type for f in self.fees},
        )
        d["fees"] = preset["fees"] + d["fees"]
        # The user's settings win: per symbol key by key, "*" after every preset entry.
        instruments = preset["instruments"]
        for k, v in d["instruments"].items():
            instruments[k] = {**instruments.get(k, {}), **v}
        d["instruments"] = instruments
        d["price_limits"] = {**preset["price_limits"], **d["price_limits"]}
        return d

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _parameter_error(e: ValidationError) -> BtCoreError:
    first = e.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, BtCoreError):
        return original
    name = ".".join(str(p) for p in first.get("loc", ())) or "config"
    return ParameterError(f"parameter {name}: {first.get('msg')}", parameter=name)


__all__ = ["ENGINE_KEYS", "FeeLine", "InstrumentSpec", "PriceBand", "RunConfig", "SlippageModel"]
