"""One run configuration: cash, costs, fill timing (and, as they arrive, market presets,
margin and bar-path rules). ``Backtest`` keywords, ``bt run --config run.toml``, the server's
request models and the optimizer all use this one object.

The engine settings are validated by the engine itself (one set of rules, in Rust), when the
configuration is built, and cross into Rust once, as one dict (:meth:`RunConfig.to_engine`).
Adding a setting is one field in Rust's ``Config`` plus one field here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

import bt_engine
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
)


class RunConfig(BaseModel):
    """The settings of one run.

    Attributes:
        cash: starting cash.
        commission: commission as a fraction of traded notional (0.0005 = 5 bps).
        commission_min: minimum commission per fill. commission_fixed: added to every fill.
        slippage_bps: slippage against the trader, in basis points of the reference price.
        fill_on: ``"next_open"`` (default: decided on bar t, filled on bar t+1) or ``"close"``
            (filled on the deciding bar's close: optimistic, it trades on a price it has seen).
        day_offset_hours: shift applied to UTC times to find a DAY order's trading day.
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
    slippage_bps: float = 0.0
    fill_on: Literal["next_open", "close"] = "next_open"
    day_offset_hours: float = 0.0
    periods_per_year: float | None = None
    max_events_per_bar: int = 100_000

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
        if v is None and name == "periods_per_year":
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            raise ParameterError(f"parameter {name} must be a number, got {v!r}", parameter=name)
        f = float(v)
        if not math.isfinite(f):
            raise ParameterError(f"parameter {name} must be finite, got {v!r}", parameter=name)
        if name == "periods_per_year" and f <= 0:
            raise ParameterError(f"parameter {name} must be > 0, got {v!r}", parameter=name)
        return f

    @field_validator("fill_on", mode="before")
    @classmethod
    def _fill_on(cls, v: Any) -> Any:
        if v not in ("next_open", "close"):
            raise ParameterError(
                f"parameter fill_on must be 'next_open' or 'close', got {v!r}", parameter="fill_on"
            )
        return v

    @model_validator(mode="after")
    def _engine_accepts(self) -> RunConfig:
        # The engine's own rules (ranges, limits): one definition, in Rust.
        with engine_errors():
            bt_engine.check_config(self.to_engine())
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
    def to_engine(self) -> dict[str, Any]:
        """The engine's settings, as the one dict ``bt_engine.Engine`` takes."""
        return {k: getattr(self, k) for k in ENGINE_KEYS}

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _parameter_error(e: ValidationError) -> BtCoreError:
    first = e.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, BtCoreError):
        return original
    name = ".".join(str(p) for p in first.get("loc", ())) or "config"
    return ParameterError(f"parameter {name}: {first.get('msg')}", parameter=name)


__all__ = ["ENGINE_KEYS", "RunConfig"]
