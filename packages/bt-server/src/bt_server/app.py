"""The FastAPI application: :func:`create_app` builds one from :class:`~bt_server.Settings`.

Handlers that touch the database or files are plain ``def`` functions, so FastAPI runs them on
its thread pool; runs themselves execute in worker processes (:mod:`bt_server.pool`). The
event loop only routes requests and feeds WebSockets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    Depends,
    FastAPI,
    File,
    Form,
    Query,
    Request,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import bt_core
from bt_server import datasets as ds
from bt_server import results
from bt_server.auth import Principal, RateLimiter, TokenService, load_key, retry_after
from bt_server.db import TERMINAL, Database
from bt_server.errors import ApiError, invalid, not_found, pydantic_errors
from bt_server.events import EventHub
from bt_server.models import (
    Accepted,
    BackfillOut,
    BackfillRequest,
    CoverageOut,
    DatasetData,
    DatasetOut,
    DatasetPage,
    ErrorBody,
    Health,
    OptimizationOut,
    OptimizationPage,
    OptimizationRequest,
    RunOut,
    RunPage,
    RunRequest,
    Status,
    StoreData,
    StrategyId,
    StrategyOut,
    Symbol,
    SymbolsOut,
    TablePage,
    Tag,
)
from bt_server.pool import QueueFull, Task, WorkerPool, make_pool
from bt_server.settings import Settings
from bt_server.strategies import StrategyInfo, StrategyRegistry

log = logging.getLogger("bt_server")

#: What a job kind is called in messages.
KIND_NAMES = {"run": "run", "optimization": "optimisation", "backfill": "backfill"}
#: Where a job kind's record is served (its ``Location``).
KIND_PATHS = {"run": "/runs", "optimization": "/optimizations", "backfill": "/data/backfill"}
_TOUCH_EVERY = 60.0  # seconds between writes of a token's last use
_CANCEL_WAIT = 5.0  # seconds POST /cancel waits for the worker to be stopped
_EVENT_RECHECK = 2.0  # seconds between looks at the record while a WebSocket waits


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad request",
        401: "No valid token",
        403: "The token's scope does not allow this",
        404: "Not found (or not yours)",
        406: "None of the accepted media types can be produced",
        409: "Conflicts with the current state",
        413: "Request too large",
        415: "Unsupported upload type",
        422: "Invalid request; `errors` has the field paths",
        429: "Queue full or rate limited; see Retry-After",
        503: "A server resource is unavailable",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


_AUTH = _error_responses(401, 413, 422, 429)


#: POST bodies that may be as large as a dataset upload (files).
_UPLOAD_PATHS = ("/datasets", "/factors/analyze")


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimit:
    """Refuses request bodies over the limit, by Content-Length and while they stream in
    (a chunked body has no length to check up front)."""

    def __init__(self, app: ASGIApp, default: int, upload: int) -> None:
        self.app = app
        self.default = default
        self.upload = upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and scope["path"].rstrip("/") in _UPLOAD_PATHS
        limit = self.upload if is_upload else self.default
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_error(
                        send,
                        ApiError(
                            413,
                            "request_too_large",
                            _too_large(limit),
                            fields={"limit_bytes": limit},
                        ),
                    )
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return msg

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


async def _send_error(send: Send, err: ApiError) -> None:
    resp = JSONResponse(err.body(), status_code=err.status, headers=err.headers)
    await resp({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


@dataclass
class Services:
    """Everything the handlers share, built once per application."""

    settings: Settings
    db: Database
    tokens: TokenService
    limiter: RateLimiter
    registry: StrategyRegistry
    hub: EventHub
    pool: WorkerPool
    touched: dict[str, float]
    touch_lock: threading.Lock


def _ts(v: float | None) -> dt.datetime | None:
    return None if v is None else dt.datetime.fromtimestamp(v, tz=dt.timezone.utc)


def _epoch(v: dt.datetime | None) -> float | None:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.timestamp()


def run_out(job: dict[str, Any]) -> RunOut:
    spec = job["spec"]
    return RunOut(
        id=job["id"],
        status=job["status"],
        progress=job["progress"],
        strategy=spec["strategy"],
        params=spec["params"],
        config=spec["config"],
        data=spec["data"],
        tags=job["tags"],
        timeout=spec["timeout"],
        created_at=_ts(job["created_at"]),  # type: ignore[arg-type]
        started_at=_ts(job["started_at"]),
        finished_at=_ts(job["finished_at"]),
        stats=job["stats"],
        summary=job["summary"],
        error=job["error"],
        resubmitted_from=job["resubmitted_from"],
    )


def backfill_out(job: dict[str, Any]) -> BackfillOut:
    return BackfillOut(
        id=job["id"],
        status=job["status"],
        progress=job["progress"],
        request={k: v for k, v in job["spec"].items() if k != "timeout"},
        created_at=_ts(job["created_at"]),  # type: ignore[arg-type]
        started_at=_ts(job["started_at"]),
        finished_at=_ts(job["finished_at"]),
        summary=job["summary"],
        error=job["error"],
    )


def dataset_out(row: dict[str, Any]) -> DatasetOut:
    return DatasetOut(
        id=row["id"],
        name=row["name"],
        format=row["format"],
        size_bytes=row["size_bytes"],
        symbols=row["symbols"],
        symbol=row["symbol"],
        n_bars=row["n_bars"],
        start=row["start"],
        end=row["end"],
        created_at=_ts(row["created_at"]),  # type: ignore[arg-type]
        shared=row["owner"] is None,
    )


def prepare(settings: Settings) -> Database:
    """Open (or create) the run store and bring it to a clean state after a stop: jobs that
    were queued or running are ``interrupted``, unfinished files are removed, and the sample
    dataset is offered."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_path)
    # Only after the data directory is ours: another server's running jobs are not ours to
    # mark interrupted.
    interrupted = db.interrupt_active()
    if interrupted:
        log.warning("%d job(s) were interrupted by the last stop", len(interrupted))
    results.remove_stale(settings.data_dir, db.job_ids(), db.job_ids("succeeded"))
    ds.remove_orphans(db, settings.data_dir)
    if settings.sample_dataset:
        try:
            ds.ensure_sample(db, settings.data_dir)
        except bt_core.DataError:
            log.exception("the bundled sample data is not valid; it is not offered")
    return db


class DataDirInUse(RuntimeError):
    """Another bt-server already serves this data directory."""


def _claim(data_dir: Path) -> Any:
    """Hold ``data_dir/server.lock`` for the life of the application: two servers on one
    data directory would each take the other's running jobs for interrupted ones."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks; one server by rule
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "server.lock", "a+b")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DataDirInUse(
            f"another bt-server is using {data_dir}; stop it or choose another data_dir"
        ) from None
    return handle


def create_app(settings: Settings | None = None) -> FastAPI:
    """A bt-server application. Its workers start and stop with the application's lifespan.

    Raises:
        DataDirInUse: another server (in this or another process) holds the data directory.
    """
    settings = settings if settings is not None else Settings.load()
    claim = _claim(settings.data_dir)
    db = prepare(settings)
    hub = EventHub()
    registry = StrategyRegistry(settings.strategy_modules, settings.strategy_dirs)
    svc = Services(
        settings=settings,
        db=db,
        tokens=TokenService(
            db,
            load_key(
                settings.data_dir,
                settings.secret.get_secret_value() if settings.secret else None,
            ),
        ),
        limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
        registry=registry,
        hub=hub,
        pool=make_pool(settings, db, hub, registry),
        touched={},
        touch_lock=threading.Lock(),
    )

    lifespans = [0]  # test clients may nest lifespans; the first starts, the last stops

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifespans[0] += 1
        if lifespans[0] == 1:
            hub.bind(asyncio.get_running_loop())
            svc.pool.start()
        try:
            yield
        finally:
            lifespans[0] -= 1
            if lifespans[0] == 0:
                hub.bind(None)
                await run_in_threadpool(svc.pool.stop)
                await run_in_threadpool(db.interrupt_active)
                db.close()
                if claim is not None:
                    claim.close()

    from bt_server import __version__

    app = FastAPI(
        title="bt-server",
        version=__version__,
        description=(
            "Self-hosted pyrust-bt backtests: submit runs on your datasets or the server's "
            "market data store, follow their progress, fetch results. Every endpoint but "
            "/health needs `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
    )
    app.state.services = svc
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            expose_headers=["Location", "Retry-After", "X-Total-Count"],
        )
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, upload=settings.max_upload_bytes)
    _install_error_handlers(app)
    _routes(app, svc)
    from bt_server import factors  # imports this module's User: mounted once it is loaded

    app.include_router(factors.router)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = pydantic_errors(list(exc.errors()))
        first = errors[0] if errors else None
        message = (
            f"{'.'.join(str(p) for p in first['path'])}: {first['message']}"
            if first
            else "invalid request"
        )
        return JSONResponse(
            ApiError(422, "invalid_request", message, errors=errors).body(), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
        }
        code = codes.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.status_code != 404 else "no such resource"
        fields = {"limit_bytes": exc.limit} if isinstance(exc, BodyTooLarge) else {}
        return JSONResponse(
            ApiError(exc.status_code, code, message, fields=fields).body(),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            ApiError(500, "internal_error", "the server failed; see its log").body(),
            status_code=500,
        )


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _authenticate(svc: Services, token: str | None) -> Principal:
    principal = svc.tokens.verify(token) if token else None
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid bearer token is required" if token else "no bearer token given",
            headers={"WWW-Authenticate": "Bearer"},
        )
    wait = svc.limiter.take(principal.token_id)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this token",
            fields={"retry_after": wait},
            headers={"Retry-After": retry_after(wait)},
        )
    now = time.monotonic()
    with svc.touch_lock:
        due = now - svc.touched.get(principal.token_id, -_TOUCH_EVERY) >= _TOUCH_EVERY
        if due:
            svc.touched[principal.token_id] = now
    if due:
        svc.db.touch_token(principal.token_id)
    return principal


_BEARER = HTTPBearer(auto_error=False, description="A token from `bt-server token create`.")


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    svc: Services = request.app.state.services
    # The header is read as sent (the scheme object only documents it in /docs).
    return _authenticate(svc, _bearer(request.headers.get("authorization")))


def _admin(principal: Annotated[Principal, Depends(_caller)]) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "this needs an admin token")
    return principal


User = Annotated[Principal, Depends(_caller)]
Admin = Annotated[Principal, Depends(_admin)]
RunId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="A run id.")]
DatasetId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="A dataset id.")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
TableLimit = Annotated[int, Query(ge=1, le=100_000)]
Points = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="Downsample to this many rows.")
]
PeriodQ = Annotated[str | None, Query(pattern=r"^[0-9a-z]{1,8}$")]
AdjustQ = Annotated[str | None, Query(pattern=r"^[a-z_]{1,16}$")]
SymbolsQ = Annotated[list[Symbol] | None, Query(max_length=200)]
NameForm = Annotated[
    str | None, Form(max_length=200, description="A label (default: the file name).")
]
SymbolForm = Annotated[
    Symbol | None, Form(description="Name single-symbol data / pick one symbol.")
]
FileForm = Annotated[UploadFile, File(description="CSV or Parquet bars (wide or long).")]


def _routes(app: FastAPI, svc: Services) -> None:
    settings, db, pool, registry = svc.settings, svc.db, svc.pool, svc.registry
    data_dir = settings.data_dir

    def authenticate(token: str | None) -> Principal:
        return _authenticate(svc, token)

    # ------------------------------------------------------------------ health
    @app.get("/health", response_model=Health, tags=["server"])
    def health() -> Health:
        """Liveness, unauthenticated: no user data."""
        from bt_server import __version__

        return Health(
            status="ok",
            version=__version__,
            schema_version=db.schema_version(),
            workers=settings.workers,
            queued=pool.queued(),
            running=pool.running(),
        )

    # ------------------------------------------------------------------ strategies
    @app.get("/strategies", response_model=list[StrategyOut], responses=_AUTH, tags=["strategies"])
    def list_strategies(user: User) -> list[StrategyOut]:
        """Built-in strategies and the server's Strategy classes, each with the JSON schema
        of its parameters."""
        return [StrategyOut(**info.describe()) for info in registry]

    # ------------------------------------------------------------------ datasets
    @app.post(
        "/datasets",
        status_code=201,
        response_model=DatasetOut,
        responses=_error_responses(401, 413, 415, 422, 429),
        tags=["datasets"],
    )
    def upload_dataset(
        user: User,
        response: Response,
        file: FileForm,
        name: NameForm = None,
        symbol: SymbolForm = None,
    ) -> DatasetOut:
        """Upload bars; they are validated exactly as ``bt run`` validates a file."""
        content = file.file.read(settings.max_upload_bytes + 1)
        if len(content) > settings.max_upload_bytes:
            raise ApiError(
                413,
                "request_too_large",
                _too_large(settings.max_upload_bytes),
                fields={"limit_bytes": settings.max_upload_bytes},
            )
        fmt = ds.sniff_format(content, file.filename, file.content_type)
        if fmt is None:
            raise invalid(
                ["body", "file"],
                "unsupported_media_type",
                "upload CSV (.csv) or Parquet (.parquet)",
                status=415,
            )
        # The client's file name is a label only: never a path on this server.
        label = (name or Path(file.filename or "").name or "upload").strip()[:200] or "upload"
        try:
            row = ds.store_dataset(
                db,
                data_dir,
                owner=user.user,
                name=label,
                content=content,
                fmt=fmt,
                symbol=symbol,
            )
        except bt_core.DataError as e:
            raise _data_error(e, ["body", "file"]) from None
        response.headers["Location"] = f"/datasets/{row['id']}"
        return dataset_out(row)

    @app.get("/datasets", response_model=DatasetPage, responses=_AUTH, tags=["datasets"])
    def list_datasets(user: User, limit: Limit = 50, offset: Offset = 0) -> DatasetPage:
        """Your datasets and the shared ones, newest first."""
        rows, total = db.list_datasets(user.user, limit=limit, offset=offset)
        return DatasetPage(
            items=[dataset_out(r) for r in rows], total=total, limit=limit, offset=offset
        )

    @app.get(
        "/datasets/{dataset_id}",
        response_model=DatasetOut,
        responses=_error_responses(401, 404, 422, 429),
        tags=["datasets"],
    )
    def get_dataset(user: User, dataset_id: DatasetId) -> DatasetOut:
        row = db.get_dataset(dataset_id, user=user.user)
        if row is None:
            raise not_found("dataset")
        return dataset_out(row)

    @app.delete(
        "/datasets/{dataset_id}",
        status_code=204,
        responses=_error_responses(401, 403, 404, 409, 422, 429),
        tags=["datasets"],
    )
    def delete_dataset(user: User, dataset_id: DatasetId) -> Response:
        """Delete one of your datasets (a shared one: admins only). Refused while a queued or
        running job uses it."""
        row = db.get_dataset(dataset_id, user=user.user)
        if row is None:
            raise not_found("dataset")
        if row["owner"] is None and not user.is_admin:
            raise ApiError(403, "forbidden", "only an admin may delete a shared dataset")
        if db.active_jobs_using_dataset(dataset_id):
            raise ApiError(
                409,
                "dataset_in_use",
                "a queued or running job uses this dataset",
                fields={"dataset_id": dataset_id},
            )
        db.delete_dataset(dataset_id)
        ds.dataset_path(data_dir, dataset_id, row["format"]).unlink(missing_ok=True)
        return Response(status_code=204)

    # ------------------------------------------------------------------ store data
    def _store() -> Any:
        from bt_data import BarStore, NotAStoreError, SchemaVersionError, resolve_db_path

        path = resolve_db_path(settings.store_path)
        if path != ":memory:" and not Path(path).exists():
            return None  # no store yet: nothing stored, and a read must not create one
        try:
            return BarStore(path)
        except (NotAStoreError, SchemaVersionError, PermissionError):
            log.exception("the market data store cannot be opened")
            raise ApiError(
                503, "store_unavailable", "the server's market data store cannot be opened"
            ) from None

    @app.get(
        "/data/symbols",
        response_model=SymbolsOut,
        responses=_error_responses(401, 413, 422, 429, 503),
        tags=["market data"],
    )
    def store_symbols(
        user: User,
        period: PeriodQ = None,
        adjust: AdjustQ = None,
    ) -> SymbolsOut:
        """Symbols with bars in the server's bt-data store."""
        _check_period_adjust(period, adjust)
        store = _store()
        return SymbolsOut(symbols=[] if store is None else store.symbols(period, adjust))

    @app.get(
        "/data/coverage",
        response_model=CoverageOut,
        responses=_error_responses(401, 413, 422, 429, 503),
        tags=["market data"],
    )
    def store_coverage(
        user: User,
        symbols: SymbolsQ = None,
        period: PeriodQ = None,
        adjust: AdjustQ = None,
    ) -> CoverageOut:
        """First and last bar and the count per symbol, period and adjustment."""
        _check_period_adjust(period, adjust)
        store = _store()
        if store is None:
            return CoverageOut(items=[])
        df = store.coverage(symbols or None, period, adjust)
        return CoverageOut(items=df.to_dict(orient="records"))  # type: ignore[arg-type]

    @app.post(
        "/data/backfill",
        status_code=202,
        response_model=Accepted,
        responses=_error_responses(401, 403, 409, 413, 422, 429),
        tags=["market data"],
    )
    def start_backfill(user: Admin, body: BackfillRequest, response: Response) -> Accepted:
        """Fetch the store's missing bars from the server's provider (admin). Follow it at
        the returned location or over its WebSocket."""
        if settings.backfill_provider == "none":
            raise ApiError(
                409, "backfill_unavailable", "this server has no backfill provider configured"
            )
        spec = body.model_dump(mode="json")
        _bar_query(spec, ["body"])
        spec["timeout"] = settings.run_timeout
        return _submit(user, "backfill", spec, None, [], response)

    @app.get(
        "/data/backfill/{job_id}",
        response_model=BackfillOut,
        responses=_error_responses(401, 403, 404, 422, 429),
        tags=["market data"],
    )
    def get_backfill(user: Admin, job_id: RunId) -> BackfillOut:
        return backfill_out(_job(user, job_id, "backfill"))

    # ------------------------------------------------------------------ runs
    def _submit(
        user: Principal,
        kind: str,
        spec: dict[str, Any],
        strategy: str | None,
        tags: list[str],
        response: Response,
        resubmitted_from: str | None = None,
    ) -> Accepted:
        """Record and queue a job: the 202 body, with its ``Location`` set on ``response``;
        429 with Retry-After when the queue is full."""
        job_id = uuid.uuid4().hex
        task = Task(job_id=job_id, kind=kind, spec=spec, timeout=float(spec["timeout"]))
        try:
            pool.submit(
                task,
                lambda: db.add_job(
                    job_id,
                    kind,
                    user.user,
                    spec,
                    strategy=strategy,
                    tags=tags,
                    resubmitted_from=resubmitted_from,
                ),
            )
        except QueueFull as e:
            raise ApiError(
                429,
                "queue_full",
                "the job queue is full; retry later",
                fields={"retry_after": e.retry_after, "queue_size": settings.queue_size},
                headers={"Retry-After": retry_after(e.retry_after)},
            ) from None
        location = f"{KIND_PATHS[kind]}/{job_id}"
        response.headers["Location"] = location
        return Accepted(id=job_id, status="queued", location=location)

    def _strategy(sid: str) -> StrategyInfo:
        info = registry.get(sid)
        if info is None:
            raise invalid(
                ["body", "strategy"],
                "unknown_strategy",
                f"no strategy {sid!r}; GET /strategies lists them",
            )
        return info

    def _params(info: StrategyInfo, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return info.validate(params)
        except ValidationError as e:
            errors = pydantic_errors(e.errors(), ("body", "params"))
            raise ApiError(
                422,
                "invalid_parameters",
                f"parameters of {info.id}: {errors[0]['message']}",
                errors=errors,
            ) from None

    def _timeout(given: float | None) -> float:
        timeout = given if given is not None else settings.run_timeout
        if timeout > settings.run_timeout:
            raise invalid(
                ["body", "timeout"],
                "timeout_too_long",
                f"timeout must be at most the server's {settings.run_timeout:g} s",
            )
        return timeout

    def _data(user: Principal, spec: DatasetData | StoreData) -> dict[str, Any]:
        data = spec.model_dump(mode="json")
        if isinstance(spec, DatasetData):
            row = db.get_dataset(spec.dataset_id, user=user.user)
            if row is None:
                raise invalid(["body", "data", "dataset_id"], "unknown_dataset", "no such dataset")
            if data["symbol"] is None:
                data["symbol"] = row["symbol"]
            elif len(row["symbols"]) > 1 and data["symbol"] not in row["symbols"]:
                raise invalid(
                    ["body", "data", "symbol"],
                    "unknown_symbol",
                    f"the dataset has no symbol {data['symbol']!r}",
                )
        else:
            _bar_query(data, ["body", "data"])
        return data

    def _run_spec(user: Principal, body: RunRequest) -> dict[str, Any]:
        info = _strategy(body.strategy)
        return {
            "strategy": info.id,
            "params": _params(info, body.params),
            "config": body.config.model_dump(mode="json"),
            "data": _data(user, body.data),
            "tags": list(dict.fromkeys(body.tags)),
            "timeout": _timeout(body.timeout),
        }

    @app.post(
        "/runs",
        status_code=202,
        response_model=Accepted,
        responses=_error_responses(401, 413, 422, 429),
        tags=["runs"],
    )
    def submit_run(user: User, body: RunRequest, response: Response) -> Accepted:
        """Queue a backtest. 202 with the run's id and Location; 429 with Retry-After when
        the queue is full."""
        spec = _run_spec(user, body)
        return _submit(user, "run", spec, spec["strategy"], spec["tags"], response)

    @app.get("/runs", response_model=RunPage, responses=_AUTH, tags=["runs"])
    def list_runs(
        user: User,
        status: Status | None = None,
        strategy: StrategyId | None = None,
        tag: Tag | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> RunPage:
        """Your runs, newest first, without curves or tables."""
        rows, total = db.list_jobs(
            kind="run",
            owner=user.user,
            status=status,
            strategy=strategy,
            tag=tag,
            created_after=_epoch(created_after),
            created_before=_epoch(created_before),
            limit=limit,
            offset=offset,
        )
        return RunPage(items=[run_out(r) for r in rows], total=total, limit=limit, offset=offset)

    def _job(user: Principal, job_id: str, kind: str) -> dict[str, Any]:
        job = db.get_job(job_id, kind=kind, owner=user.user)
        if job is None:
            raise not_found(KIND_NAMES[kind])
        return job

    def _run(user: Principal, run_id: str) -> dict[str, Any]:
        return _job(user, run_id, "run")

    def _cancel(user: Principal, job_id: str, kind: str) -> dict[str, Any]:
        job = _job(user, job_id, kind)
        if job["status"] in TERMINAL:
            raise ApiError(
                409,
                "not_cancellable",
                f"the {KIND_NAMES[kind]} is already {job['status']}",
                fields={"status": job["status"]},
            )
        pool.cancel(job_id)
        deadline = time.monotonic() + _CANCEL_WAIT
        while time.monotonic() < deadline:
            job = _job(user, job_id, kind)
            if job["status"] in TERMINAL:
                break
            time.sleep(0.02)
        return job

    def _delete(user: Principal, job_id: str, kind: str) -> Response:
        job = _job(user, job_id, kind)
        if job["status"] not in TERMINAL or not db.delete_job(job_id):
            raise ApiError(
                409,
                "run_active" if kind == "run" else "job_active",
                f"cancel the {KIND_NAMES[kind]} before deleting it",
                fields={"status": job["status"]},
            )
        shutil.rmtree(results.run_dir(data_dir, job_id), ignore_errors=True)
        return Response(status_code=204)

    _RUN_ERRORS = _error_responses(401, 404, 422, 429)

    @app.get("/runs/{run_id}", response_model=RunOut, responses=_RUN_ERRORS, tags=["runs"])
    def get_run(user: User, run_id: RunId) -> RunOut:
        """Status, progress, settings, statistics or the error of one run."""
        return run_out(_run(user, run_id))

    def _finished(job: dict[str, Any]) -> Path:
        if job["status"] != "succeeded":
            raise ApiError(
                409,
                "no_results",
                f"the run is {job['status']}: it has no results",
                fields={"status": job["status"]},
            )
        return results.run_dir(data_dir, job["id"])

    _TABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
        200: {
            "model": TablePage,
            "description": "Rows as JSON, CSV or Parquet (by Accept); X-Total-Count has the "
            "number of rows in the whole table.",
            "content": {
                results.CSV_TYPE: {"schema": {"type": "string"}},
                results.PARQUET_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **_error_responses(401, 404, 406, 409, 422, 429),
    }

    def _table_response(
        request: Request, df: Any, total: int, offset: int, limit: int | None
    ) -> Response:
        media = results.choose_media_type(request.headers.get("accept"))
        if media is None:
            raise ApiError(
                406,
                "not_acceptable",
                f"this resource is served as {', '.join(results.MEDIA_TYPES)}",
            )
        headers = {"X-Total-Count": str(total)}
        if media == results.CSV_TYPE:
            return Response(results.to_csv(df), media_type="text/csv", headers=headers)
        if media == results.PARQUET_TYPE:
            return Response(results.to_parquet(df), media_type=media, headers=headers)
        body = (
            f'{{"items":{results.json_records(df)},"total":{total},"offset":{offset},'
            f'"limit":{"null" if limit is None else limit}}}'
        )
        return Response(body, media_type=results.JSON_TYPE, headers=headers)

    @app.get(
        "/runs/{run_id}/equity",
        response_class=Response,
        responses=_TABLE_RESPONSES,
        tags=["results"],
    )
    def run_equity(
        user: User,
        request: Request,
        run_id: RunId,
        points: Points = None,
    ) -> Response:
        """The equity curve (datetime, equity), optionally downsampled (first and last kept)."""
        directory = _finished(_run(user, run_id))
        df = results.read_table(directory, "equity")
        return _table_response(request, results.downsample(df, points), len(df), 0, None)

    def _table_endpoint(name: str) -> Callable[..., Response]:
        def endpoint(
            user: User,
            request: Request,
            run_id: RunId,
            offset: Offset = 0,
            limit: TableLimit = 1000,
        ) -> Response:
            directory = _finished(_run(user, run_id))
            df = results.read_table(directory, name)
            return _table_response(
                request, df.iloc[offset : offset + limit], len(df), offset, limit
            )

        endpoint.__name__ = f"run_{name}"
        endpoint.__doc__ = f"The run's {name}, a page at a time (offset, limit)."
        return endpoint

    for _name in ("fills", "orders", "trades"):
        app.get(
            f"/runs/{{run_id}}/{_name}",
            response_class=Response,
            responses=_TABLE_RESPONSES,
            tags=["results"],
            name=f"run_{_name}",
        )(_table_endpoint(_name))

    @app.get(
        "/runs/{run_id}/report",
        response_class=Response,
        responses={
            200: {"content": {"text/html": {"schema": {"type": "string"}}}},
            **_error_responses(401, 404, 409, 422, 429),
        },
        tags=["results"],
    )
    def run_report(user: User, run_id: RunId) -> HTMLResponse:
        """The run's HTML tear sheet (made on first request, then kept)."""
        job = _run(user, run_id)
        directory = _finished(job)
        path = directory / "report.html"
        if not path.is_file():
            import bt_analysis

            eq = results.read_table(directory, "equity").set_index("datetime")["equity"]
            html = bt_analysis.report_html(
                eq,
                results.read_table(directory, "trades"),
                title=f"{job['spec']['strategy']} backtest {job['id'][:8]}",
                periods_per_year=job["spec"]["config"].get("periods_per_year"),
            )
            ds.write_atomic(path, html.encode())
        return HTMLResponse(path.read_text())

    @app.post(
        "/runs/{run_id}/cancel",
        response_model=RunOut,
        responses=_error_responses(401, 404, 409, 422, 429),
        tags=["runs"],
    )
    def cancel_run(user: User, run_id: RunId) -> RunOut:
        """Stop a queued or running run (a running one's worker process is killed)."""
        return run_out(_cancel(user, run_id, "run"))

    @app.post(
        "/runs/{run_id}/resubmit",
        status_code=202,
        response_model=Accepted,
        responses=_error_responses(401, 404, 409, 422, 429),
        tags=["runs"],
    )
    def resubmit_run(user: User, run_id: RunId, response: Response) -> Accepted:
        """Queue a finished, failed, cancelled or interrupted run again, as a new run."""
        job = _run(user, run_id)
        if job["status"] not in TERMINAL:
            raise ApiError(
                409,
                "run_active",
                f"the run is {job['status']}",
                fields={"status": job["status"]},
            )
        spec = job["spec"]
        return _submit(user, "run", spec, spec["strategy"], job["tags"], response, run_id)

    @app.delete(
        "/runs/{run_id}",
        status_code=204,
        responses=_error_responses(401, 404, 409, 422, 429),
        tags=["runs"],
    )
    def delete_run(user: User, run_id: RunId) -> Response:
        """Delete a run that is not queued or running, with its result files."""
        return _delete(user, run_id, "run")

    # ------------------------------------------------------------------ optimisations
    def _opt_spec(user: Principal, body: OptimizationRequest) -> dict[str, Any]:
        from bt_core.optimize import Space

        info = _strategy(body.strategy)
        fixed = _params(info, body.params)
        for name in body.space:
            if name not in info.defaults:
                raise invalid(
                    ["body", "space", name],
                    "unknown_parameter",
                    f"{info.id} has no parameter {name!r}; it has: {', '.join(info.defaults)}",
                )
            if name in fixed:
                raise invalid(
                    ["body", "params", name],
                    "fixed_and_searched",
                    f"parameter {name!r} is both fixed (params) and searched (space)",
                )
        try:
            space = Space(dict(body.space))
        except bt_core.ParameterError as e:
            name = str(e.fields.get("parameter") or "")
            where = ["body", "space", name] if name in body.space else ["body", "space"]
            raise invalid(where, "invalid_space", str(e)) from None
        if body.method == "grid" and body.trials is not None:
            raise invalid(
                ["body", "trials"],
                "trials_with_grid",
                "a grid runs every combination: trials is for random and bayes",
            )
        n = space.grid_size() if body.method == "grid" else (body.trials or 100)
        if n > settings.max_trials:
            raise invalid(
                ["body", "trials" if body.method != "grid" else "space"],
                "too_many_trials",
                f"{n} parameter sets; this server runs at most {settings.max_trials} per "
                "optimisation",
            )
        objectives = [
            *([body.maximize] if isinstance(body.maximize, str) else body.maximize or []),
            *([body.minimize] if isinstance(body.minimize, str) else body.minimize or []),
        ]
        if len(objectives) > 1 and body.method != "bayes":
            raise invalid(
                ["body", "method"],
                "several_objectives",
                "several objectives need method 'bayes'; grid and random rank by one",
            )
        return {
            "strategy": info.id,
            "space": dict(body.space),
            "method": body.method,
            "maximize": body.maximize,
            "minimize": body.minimize,
            "trials": body.trials,
            "seed": body.seed,
            "params": fixed,
            "config": body.config.model_dump(mode="json"),
            "data": _data(user, body.data),
            "tags": list(dict.fromkeys(body.tags)),
            "timeout": _timeout(body.timeout),
        }

    def opt_out(job: dict[str, Any], with_trials: bool = True) -> OptimizationOut:
        trials = None
        if with_trials and job["status"] == "running":
            live = pool.live_trials(job["id"])
            if live is None:  # it finished since the record was read
                job = db.get_job(job["id"], kind="optimization") or job
            else:
                trials = live[:100]
        if with_trials and job["status"] == "succeeded":
            df = results.read_table(results.run_dir(data_dir, job["id"]), "trials")
            trials = json.loads(results.json_records(df.head(100)))
        return OptimizationOut(
            id=job["id"],
            status=job["status"],
            progress=job["progress"],
            strategy=job["spec"]["strategy"],
            request={k: v for k, v in job["spec"].items() if k != "tags"},
            tags=job["tags"],
            created_at=_ts(job["created_at"]),  # type: ignore[arg-type]
            started_at=_ts(job["started_at"]),
            finished_at=_ts(job["finished_at"]),
            summary=job["summary"],
            trials=trials,
            error=job["error"],
        )

    _OPT_ERRORS = _error_responses(401, 404, 422, 429)

    @app.post(
        "/optimizations",
        status_code=202,
        response_model=Accepted,
        responses=_error_responses(401, 413, 422, 429),
        tags=["optimisations"],
    )
    def submit_optimization(user: User, body: OptimizationRequest, response: Response) -> Accepted:
        """Queue a parameter search (grid, random or bayes) of one strategy on one dataset;
        it runs in one worker, under the same time and memory limits as a run."""
        spec = _opt_spec(user, body)
        return _submit(user, "optimization", spec, spec["strategy"], spec["tags"], response)

    @app.get(
        "/optimizations",
        response_model=OptimizationPage,
        responses=_AUTH,
        tags=["optimisations"],
    )
    def list_optimizations(
        user: User,
        status: Status | None = None,
        strategy: StrategyId | None = None,
        tag: Tag | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OptimizationPage:
        """Your optimisations, newest first (without their trial tables)."""
        rows, total = db.list_jobs(
            kind="optimization",
            owner=user.user,
            status=status,
            strategy=strategy,
            tag=tag,
            limit=limit,
            offset=offset,
        )
        return OptimizationPage(
            items=[opt_out(r, with_trials=False) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
        )

    @app.get(
        "/optimizations/{opt_id}",
        response_model=OptimizationOut,
        responses=_OPT_ERRORS,
        tags=["optimisations"],
    )
    def get_optimization(user: User, opt_id: RunId) -> OptimizationOut:
        """Status, progress, best parameters and the best trials of one optimisation."""
        return opt_out(_job(user, opt_id, "optimization"))

    @app.get(
        "/optimizations/{opt_id}/trials",
        response_class=Response,
        responses=_TABLE_RESPONSES,
        tags=["optimisations"],
    )
    def optimization_trials(
        user: User,
        request: Request,
        opt_id: RunId,
        offset: Offset = 0,
        limit: TableLimit = 1000,
    ) -> Response:
        """Every trial, ranked (JSON, CSV or Parquet by Accept); while the optimisation runs,
        the trials finished so far, in the order they finished."""
        job = _job(user, opt_id, "optimization")
        if job["status"] == "running":
            live = pool.live_trials(opt_id)
            if live is not None:
                import pandas as pd

                df = pd.DataFrame.from_records(live)
                return _table_response(
                    request, df.iloc[offset : offset + limit], len(df), offset, limit
                )
            job = _job(user, opt_id, "optimization")  # it finished since it was read
        df = results.read_table(_finished(job), "trials")
        return _table_response(request, df.iloc[offset : offset + limit], len(df), offset, limit)

    @app.get(
        "/optimizations/{opt_id}/report",
        response_class=Response,
        responses={
            200: {"content": {"text/html": {"schema": {"type": "string"}}}},
            **_error_responses(401, 404, 409, 422, 429),
        },
        tags=["optimisations"],
    )
    def optimization_report(user: User, opt_id: RunId) -> HTMLResponse:
        """The HTML report: score over the space (heatmap), the ranked table, overfitting."""
        directory = _finished(_job(user, opt_id, "optimization"))
        return HTMLResponse((directory / "report.html").read_text())

    @app.post(
        "/optimizations/{opt_id}/cancel",
        response_model=OptimizationOut,
        responses=_error_responses(401, 404, 409, 422, 429),
        tags=["optimisations"],
    )
    def cancel_optimization(user: User, opt_id: RunId) -> OptimizationOut:
        """Stop a queued or running optimisation (its worker process is killed)."""
        return opt_out(_cancel(user, opt_id, "optimization"))

    @app.delete(
        "/optimizations/{opt_id}",
        status_code=204,
        responses=_error_responses(401, 404, 409, 422, 429),
        tags=["optimisations"],
    )
    def delete_optimization(user: User, opt_id: RunId) -> Response:
        """Delete a finished optimisation with its files."""
        return _delete(user, opt_id, "optimization")

    # ------------------------------------------------------------------ live events
    async def follow(websocket: WebSocket, job_id: str, kind: str, need_admin: bool) -> None:
        await websocket.accept()
        token = _bearer(websocket.headers.get("authorization")) or websocket.query_params.get(
            "token"
        )
        try:
            principal = await run_in_threadpool(authenticate, token)
        except ApiError as e:
            await _ws_close(websocket, e.code, e.message, 4401 if e.status == 401 else 4429)
            return
        if need_admin and not principal.is_admin:
            await _ws_close(websocket, "forbidden", "this needs an admin token", 4403)
            return
        try:
            await _stream(websocket, svc, job_id, kind, principal)
        except WebSocketDisconnect:
            return

    @app.websocket("/runs/{run_id}/events")
    async def run_events(websocket: WebSocket, run_id: str) -> None:
        """Status changes, progress and the final equity sample of one run. Authenticate
        with ``Authorization: Bearer`` or ``?token=``."""
        await follow(websocket, run_id, "run", False)

    @app.websocket("/optimizations/{opt_id}/events")
    async def optimization_events(websocket: WebSocket, opt_id: str) -> None:
        """Status changes and progress of one optimisation (as /runs/{id}/events)."""
        await follow(websocket, opt_id, "optimization", False)

    @app.websocket("/data/backfill/{job_id}/events")
    async def backfill_events(websocket: WebSocket, job_id: str) -> None:
        await follow(websocket, job_id, "backfill", True)

    def _check_period_adjust(period: str | None, adjust: str | None) -> None:
        from bt_data import ADJUSTS, PERIODS

        if period is not None and period not in PERIODS:
            raise invalid(
                ["query", "period"], "unknown_period", f"period must be one of {', '.join(PERIODS)}"
            )
        if adjust is not None and adjust not in ADJUSTS:
            raise invalid(
                ["query", "adjust"], "unknown_adjust", f"adjust must be one of {', '.join(ADJUSTS)}"
            )


def _bar_query(spec: dict[str, Any], path: list[str]) -> None:
    """Check symbols/start/end/period/adjust as bt-data will (start after end, say)."""
    from bt_data import BarQuery

    try:
        BarQuery(
            spec["symbols"], spec.get("start"), spec.get("end"), spec["period"], spec["adjust"]
        )
    except ValueError as e:
        raise invalid([*path, "start"], "invalid_range", str(e)) from None


def _data_error(e: bt_core.DataError, path: list[str]) -> ApiError:
    return ApiError(
        422,
        "data_error",
        str(e),
        fields=dict(e.fields),
        errors=[{"path": path, "code": "data_error", "message": str(e)}],
    )


async def _ws_close(websocket: WebSocket, code: str, message: str, close_code: int) -> None:
    try:
        await websocket.send_json({"type": "error", "code": code, "message": message})
        await websocket.close(code=close_code)
    except (WebSocketDisconnect, RuntimeError):
        pass


def _snapshot(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "status",
        "job_id": job["id"],
        "status": job["status"],
        "progress": job["progress"],
        "error": job["error"],
        "stats": job["stats"],
    }


async def _stream(
    websocket: WebSocket, svc: Services, job_id: str, kind: str, principal: Principal
) -> None:
    get: Callable[[], Awaitable[dict[str, Any] | None]] = lambda: run_in_threadpool(  # noqa: E731
        svc.db.get_job, job_id, kind=kind, owner=principal.user
    )
    # Subscribe before reading the record, so no event falls between the two.
    with svc.hub.subscribe(job_id) as queue:
        job = await get()
        if job is None:
            await _ws_close(websocket, "not_found", f"no such {kind}", 4404)
            return
        await websocket.send_json(_snapshot(job))
        if job["status"] in TERMINAL:
            await websocket.close(code=1000)
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=_EVENT_RECHECK)
            except asyncio.TimeoutError:
                # A record can change without an event reaching us (a restart between); the
                # record is the truth.
                job = await get()
                if job is None or job["status"] in TERMINAL:
                    if job is not None:
                        await websocket.send_json(_snapshot(job))
                    await websocket.close(code=1000)
                    return
                continue
            await websocket.send_json(event)
            if event.get("type") == "status" and event.get("status") in TERMINAL:
                await websocket.close(code=1000)
                return


__all__ = ["DataDirInUse", "create_app", "prepare"]
