"""The app's only way to the server: a small typed HTTP client of bt-server (httpx).

Every failure, whether the server's error body (``{"code", "message", "fields", "errors"}``),
a status without one, a timeout or a refused connection, becomes an :class:`ApiError`
whose ``str()`` is a sentence a person can act on. Pages show that sentence; they never
show a traceback.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
import pandas as pd

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
Format = Literal["csv", "parquet"]
_MEDIA = {"csv": CSV, "parquet": PARQUET}

#: What a status means when the body does not say (or to lead the server's own message).
_STATUS_TEXT = {
    400: "bad request",
    401: "not signed in: the server wants a valid API token (set it in the sidebar)",
    403: "this token is not allowed to do that",
    404: "not found (or it belongs to another user)",
    406: "the server cannot produce that format",
    409: "not possible in the current state",
    413: "too large for the server",
    415: "unsupported file type",
    422: "the server rejected the request",
    429: "too many requests or the queue is full",
    500: "the server failed",
    503: "a server resource is unavailable",
}


class ApiError(Exception):
    """A failed call. ``status`` is 0 when the server was not reached at all."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        fields: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.fields = dict(fields or {})
        self.retry_after = retry_after

    def field_messages(self) -> list[str]:
        """``"params.fast: must be positive"`` for each field error the server listed."""
        out = []
        for e in self.errors:
            path = [str(p) for p in e.get("path", []) if p != "body"]
            where = ".".join(path)
            out.append(f"{where}: {e.get('message', '')}" if where else str(e.get("message", "")))
        return out

    def __str__(self) -> str:
        if self.status == 0:
            return self.message
        lead = _STATUS_TEXT.get(self.status, "request failed")
        text = f"{lead} (HTTP {self.status}, {self.code}): {self.message}"
        if self.status == 429 and self.retry_after is not None:
            text += f"; retry in {self.retry_after:g} s"
        extra = [m for m in self.field_messages() if m and m not in self.message]
        if extra:
            text += " [" + "; ".join(extra) + "]"
        return text


def _error_from(response: httpx.Response) -> ApiError:
    status = response.status_code
    retry: float | None = None
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            retry = float(header)
        except ValueError:
            retry = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body and isinstance(body["error"], dict):
        body = body["error"]  # the same shape, wrapped
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
        if retry is None and isinstance(fields, dict):
            value = fields.get("retry_after")
            retry = float(value) if isinstance(value, (int, float)) else None
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return ApiError(
            status,
            str(body.get("code") or "error"),
            body["message"],
            errors=errors,
            fields=fields,
            retry_after=retry,
        )
    text = response.text.strip()[:300] or response.reason_phrase or "no details"
    return ApiError(status, "http_error", text, retry_after=retry)


class BtClient:
    """bt-server at ``base_url`` with a bearer ``token`` (None: only /health and the schema)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BtClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise ApiError(
                0, "timeout", f"bt-server at {self.base_url} did not answer {method} {path} in time"
            ) from None
        except httpx.HTTPError as e:
            raise ApiError(
                0,
                "unreachable",
                f"cannot reach bt-server at {self.base_url} ({type(e).__name__}); "
                "check the API URL in the sidebar",
            ) from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._request(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "bad_response", f"{path} did not answer with JSON"
            ) from None

    def _frame(self, path: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        # Parquet keeps the types (datetimes, NaN) that JSON would flatten.
        content = self._request(
            "GET", path, params=dict(params or {}), headers={"Accept": PARQUET}
        ).content
        try:
            return pd.read_parquet(io.BytesIO(content))
        except Exception as e:  # pyarrow's error classes are its own
            raise ApiError(
                200, "bad_response", f"{path} did not answer with a Parquet table ({e})"
            ) from None

    # ------------------------------------------------------------------ server
    def health(self) -> dict[str, Any]:
        return dict(self._json("GET", "/health"))

    def openapi(self) -> dict[str, Any]:
        return dict(self._json("GET", "/openapi.json"))

    def schemas(self) -> dict[str, Any]:
        """The JSON schemas of the server's request and response bodies, by name (RunConfig
        is a run's settings, StoreData a query of the market data store...)."""
        found = self.openapi().get("components", {}).get("schemas", {})
        if not isinstance(found, dict) or "RunConfig" not in found:
            raise ApiError(200, "bad_response", "the server's OpenAPI schema has no RunConfig")
        return found

    def strategies(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/strategies"))

    # ------------------------------------------------------------------ data
    def datasets(self, limit: int = 200) -> list[dict[str, Any]]:
        return list(self._json("GET", "/datasets", params={"limit": limit})["items"])

    def upload_dataset(
        self,
        filename: str,
        content: bytes,
        *,
        name: str | None = None,
        symbol: str | None = None,
    ) -> dict[str, Any]:
        form = {k: v for k, v in {"name": name, "symbol": symbol}.items() if v}
        return dict(self._json("POST", "/datasets", files={"file": (filename, content)}, data=form))

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{dataset_id}")

    def symbols(self) -> list[str]:
        return list(self._json("GET", "/data/symbols")["symbols"])

    def coverage(self) -> pd.DataFrame:
        items = self._json("GET", "/data/coverage")["items"]
        return pd.DataFrame(items, columns=["symbol", "period", "adjust", "first", "last", "count"])

    # ------------------------------------------------------------------ runs
    def submit_run(self, body: Mapping[str, Any]) -> str:
        return str(self._json("POST", "/runs", json=dict(body))["id"])

    def runs(self, limit: int = 100, **filters: str | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {k: v for k, v in filters.items() if v}
        params["limit"] = limit
        return list(self._json("GET", "/runs", params=params)["items"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/runs/{run_id}"))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/runs/{run_id}/cancel"))

    def delete_run(self, run_id: str) -> None:
        self._request("DELETE", f"/runs/{run_id}")

    def equity(self, run_id: str, points: int | None = None) -> pd.Series:
        df = self._frame(f"/runs/{run_id}/equity", {"points": points} if points else None)
        return pd.Series(
            df["equity"].to_numpy(), index=pd.DatetimeIndex(df["datetime"]), name="equity"
        )

    def table(self, run_id: str, name: str, limit: int = 100_000) -> pd.DataFrame:
        """A result table of a run: ``fills``, ``orders`` or ``trades``."""
        return self._frame(f"/runs/{run_id}/{name}", {"limit": limit})

    def bars(self, run_id: str, symbol: str | None = None) -> pd.DataFrame:
        """The bars a run was tested on (one symbol), for price charts and the benchmark."""
        return self._frame(f"/runs/{run_id}/bars", {"symbol": symbol} if symbol else None)

    def download(self, path: str, fmt: Format, limit: int | None = None) -> bytes:
        params = {"limit": limit} if limit else {}
        return self._request("GET", path, params=params, headers={"Accept": _MEDIA[fmt]}).content

    def report(self, run_id: str) -> str:
        return self._request("GET", f"/runs/{run_id}/report").text

    def wait(
        self,
        job_id: str,
        *,
        kind: Literal["runs", "optimizations"] = "runs",
        timeout: float = 120.0,
        every: float = 0.25,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a run or optimisation until it ends (or ``timeout`` s); returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            job = dict(self._json("GET", f"/{kind}/{job_id}"))
            if on_progress is not None:
                on_progress(job)
            if job["status"] in TERMINAL or time.monotonic() >= deadline:
                return job
            time.sleep(every)

    # ------------------------------------------------------------------ optimisations
    def submit_optimization(self, body: Mapping[str, Any]) -> str:
        return str(self._json("POST", "/optimizations", json=dict(body))["id"])

    def optimizations(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self._json("GET", "/optimizations", params={"limit": limit})["items"])

    def optimization(self, opt_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/optimizations/{opt_id}"))

    def trials(self, opt_id: str) -> pd.DataFrame:
        return self._frame(f"/optimizations/{opt_id}/trials", {"limit": 100_000})

    def cancel_optimization(self, opt_id: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/optimizations/{opt_id}/cancel"))

    def optimization_report(self, opt_id: str) -> str:
        return self._request("GET", f"/optimizations/{opt_id}/report").text

    # ------------------------------------------------------------------ factors
    def analyze_factor(
        self,
        factor: tuple[str, bytes],
        prices: tuple[str, bytes],
        *,
        periods: list[int],
        quantiles: int,
        max_horizon: int,
    ) -> dict[str, Any]:
        """IC / rank IC, quantile returns, turnover and decay, computed by the server."""
        form = {
            "periods": ",".join(str(p) for p in periods),
            "quantiles": str(quantiles),
            "max_horizon": str(max_horizon),
        }
        return dict(
            self._json(
                "POST",
                "/factors/analyze",
                files={"factor": factor, "prices": prices},
                data=form,
                timeout=120,
            )
        )


__all__ = ["TERMINAL", "ApiError", "BtClient"]
