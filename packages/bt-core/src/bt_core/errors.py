"""Exceptions raised by bt-core. Each message names what is wrong and where, and each error
carries the same facts as structured attributes (``kind``, ``fields`` and each field by name:
``bar``, ``time``, ``symbol``, ``column``, ``row``, ``parameter``, ``check`` ...), so programs
branch on them, never on the English text.

Every error from the Rust engine is converted in one place, :func:`engine_errors`, on every
path (data loading, engine construction, every ``run_*``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import bt_engine


class BtCoreError(Exception):
    """Base of bt-core's errors."""

    kind = "error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields: dict[str, Any] = dict(fields)
        for k, v in fields.items():
            setattr(self, k, v)

    def __getattr__(self, name: str) -> Any:
        # Fields an error does not carry read as None (e.g. ``err.bar`` of a data error).
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class DataError(BtCoreError, ValueError):
    """Market data is unusable: missing columns, bad prices, unsorted or duplicate times."""

    kind = "data"


class ParameterError(BtCoreError, ValueError):
    """A run or strategy parameter is unknown or out of range (``parameter`` names it)."""

    kind = "config"


class ActionError(BtCoreError, ValueError):
    """A strategy returned or submitted an order that cannot be understood or accepted."""

    kind = "order"


class StrategyError(BtCoreError, bt_engine.StrategyError):
    """A strategy callback raised; ``phase``, ``bar`` and ``time`` say where, and
    ``__cause__`` holds the original exception."""

    kind = "strategy"


_BY_ENGINE_CLASS: list[tuple[type[BaseException], type[BtCoreError]]] = [
    (bt_engine.DataError, DataError),
    (bt_engine.ConfigError, ParameterError),
    (bt_engine.OrderError, ActionError),
    (bt_engine.EngineError, ParameterError),
]


def from_engine(e: BaseException) -> BaseException:
    """The bt-core error for an engine exception (others are returned unchanged)."""
    if isinstance(e, BtCoreError):
        return e
    fields = dict(getattr(e, "fields", None) or {})
    if isinstance(e, bt_engine.StrategyError):
        cause = e.__cause__
        err: BtCoreError = StrategyError(str(e), **fields)
        err.__cause__ = from_engine(cause) if cause is not None else None
        return err
    for engine_cls, ours in _BY_ENGINE_CLASS:
        if isinstance(e, engine_cls):
            converted = ours(str(e), **fields)
            converted.__cause__ = e.__cause__
            return converted
    return e


#: The engine's exceptions that bt-core converts to its own (see :func:`from_engine`).
ENGINE_EXCEPTIONS = (bt_engine.EngineError, bt_engine.StrategyError)


def reraise(e: BaseException) -> NoReturn:
    """Inside ``except ENGINE_EXCEPTIONS as e``: raise ``e`` as bt-core's exception (the
    original is the new one's context), or ``e`` itself when it has no counterpart."""
    converted = from_engine(e)
    if converted is e:
        raise e
    raise converted from converted.__cause__


@contextmanager
def engine_errors() -> Iterator[None]:
    """Re-raise engine exceptions as bt-core's (the original is the new one's context)."""
    try:
        yield
    except ENGINE_EXCEPTIONS as e:
        reraise(e)


__all__ = [
    "ActionError",
    "BtCoreError",
    "DataError",
    "ENGINE_EXCEPTIONS",
    "ParameterError",
    "StrategyError",
    "engine_errors",
    "from_engine",
    "reraise",
]
