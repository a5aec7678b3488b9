"""Errors as the API shows them: a status, a stable snake_case ``code``, a message, and the
structured fields (``row``, ``column``, ``parameter``, ``bar`` ...) or field paths of the
request. Clients branch on ``code`` and ``fields``; the message is for people.

bt-core's and bt-data's exceptions are mapped here by class and ``kind``, never by their text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import bt_core
from bt_analysis import json_safe

#: bt-core error kinds -> the code a client sees.
CODE_BY_KIND = {
    "data": "data_error",
    "config": "parameter_error",
    "order": "order_error",
    "strategy": "strategy_error",
}


class ApiError(Exception):
    """An error response: ``status`` with ``{"code", "message", "fields", "errors"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.errors = errors or []
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fields": json_safe(self.fields),
            "errors": self.errors,
        }


def not_found(what: str) -> ApiError:
    # The same answer for "does not exist" and "belongs to someone else": ids are not probed.
    return ApiError(404, "not_found", f"no such {what}")


def field_error(path: Sequence[str | int], code: str, message: str) -> dict[str, Any]:
    return {
        "path": [str(p) if not isinstance(p, int) else p for p in path],
        "code": code,
        "message": message,
    }


def invalid(path: Sequence[str | int], code: str, message: str, status: int = 422) -> ApiError:
    """A request whose field at ``path`` is wrong (``code`` says how)."""
    return ApiError(status, code, message, errors=[field_error(path, code, message)])


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def pydantic_errors(errors: list[Any], prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's error list as field errors (the input values are not echoed back)."""
    out = []
    for e in errors:
        loc = [*prefix, *e.get("loc", ())]
        ctx = e.get("ctx") or {}
        original = ctx.get("error")
        code = str(e.get("type", "invalid"))
        message = str(e.get("msg", "invalid value"))
        if isinstance(original, bt_core.BtCoreError):
            # RunConfig's own checks (a non-finite cash, an unknown fill_on): keep its code.
            code = CODE_BY_KIND.get(original.kind, code)
            message = str(original)
        out.append(field_error(loc, code, message))
    return out


def describe_exception(e: BaseException) -> dict[str, Any]:
    """A run's ``error``: code, kind, message and fields, from the exception's class."""
    if isinstance(e, MemoryError) or isinstance(e.__cause__, MemoryError):
        # Over the worker's address-space cap (a strategy's allocation is wrapped in a
        # StrategyError; the cause says what happened).
        return {
            "code": "memory_limit",
            "kind": "limit",
            "message": "the run needed more memory than the server allows",
            "fields": {},
        }
    if isinstance(e, bt_core.BtCoreError):
        fields = {k: _plain(v) for k, v in e.fields.items()}
        cause = e.__cause__
        if isinstance(e, bt_core.StrategyError) and cause is not None:
            fields["exception"] = type(cause).__name__
        return {
            "code": CODE_BY_KIND.get(e.kind, "run_error"),
            "kind": e.kind,
            "message": str(e),
            "fields": fields,
        }
    try:
        import bt_data
    except ImportError:  # pragma: no cover - bt-data is a dependency
        bt_data = None  # type: ignore[assignment]
    if bt_data is not None:
        if isinstance(e, bt_data.StoreLockedError):
            return {"code": "store_locked", "kind": "data", "message": str(e), "fields": {}}
        if isinstance(e, (bt_data.NotAStoreError, bt_data.SchemaVersionError)):
            # Their messages name the server's file: say what, not where.
            return {
                "code": "store_unavailable",
                "kind": "data",
                "message": "the server's market data store cannot be opened",
                "fields": {},
            }
        if isinstance(e, bt_data.BtDataError):
            fields = {
                k: _plain(getattr(e, k))
                for k in ("row", "column")
                if getattr(e, k, None) is not None
            }
            return {"code": "data_error", "kind": "data", "message": str(e), "fields": fields}
    # Anything else is a bug or an environment failure: its text may hold server paths, so
    # the client gets the class only and the log gets the rest.
    return {
        "code": "internal_error",
        "kind": "internal",
        "message": f"the run failed unexpectedly ({type(e).__name__}); see the server log",
        "fields": {},
    }


__all__ = [
    "CODE_BY_KIND",
    "ApiError",
    "describe_exception",
    "field_error",
    "invalid",
    "not_found",
    "pydantic_errors",
]
