"""Exceptions raised by bt-core. Each message names what is wrong and where."""

from __future__ import annotations

from bt_engine import StrategyError


class DataError(ValueError):
    """Market data is unusable: missing columns, bad prices, unsorted or duplicate times."""


class ParameterError(ValueError):
    """A run or strategy parameter is unknown or out of range."""


class ActionError(ValueError):
    """A strategy returned or submitted an order that cannot be understood."""


__all__ = ["ActionError", "DataError", "ParameterError", "StrategyError"]
