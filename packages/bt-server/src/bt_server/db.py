"""The run store: SQLite in WAL mode through SQLAlchemy Core.

Why SQLite (and not DuckDB, which bt-data uses): the records are many small transactions from
several threads and processes at once (the API, the worker supervisors, ``bt-server token``
while the server runs). SQLite's WAL gives concurrent readers with one writer at a time and
survives ``kill -9``: a committed transaction is in the WAL file. ``synchronous=FULL`` makes
it survive a power cut as well. DuckDB allows one writing process and is built for scans.

Result tables are not kept here but in Parquet files beside the database (see
:mod:`bt_server.results`); a record says where a job's files are by its id only.

One ``jobs`` table holds every kind of job (``run``, ``backfill``, and the optimisations to
come): the queue, the worker pool and the event stream are the same for all of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

#: Bump with a migration in :data:`MIGRATIONS` whenever a table changes.
SCHEMA_VERSION = 1

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("user", String, nullable=False, index=True),
    Column("scope", String, nullable=False),
    Column("hash", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("owner", String, nullable=False),
    Column("status", String, nullable=False),
    Column("strategy", String),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("progress", Float, nullable=False, default=0.0),
    Column("error", JSON),
    Column("stats", JSON),
    Column("summary", JSON),
    Column("resubmitted_from", String),
    Index("ix_jobs_owner_kind_created", "owner", "kind", "created_at"),
    Index("ix_jobs_status", "status"),
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String, primary_key=True),
    Index("ix_job_tags_tag", "tag"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String, primary_key=True),
    Column("owner", String),  # NULL: shared with every user (the bundled sample)
    Column("name", String, nullable=False),
    Column("format", String, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("symbol", String),  # the name given at upload (names single-symbol data)
    Column("symbols", JSON, nullable=False),
    Column("n_bars", Integer, nullable=False),
    Column("start", String),
    Column("end", String),
    Column("created_at", Float, nullable=False),
    Index("ix_datasets_owner", "owner"),
)

#: version -> what creates it from the one before (version 1: the tables above).
MIGRATIONS: dict[int, Any] = {1: lambda conn: metadata.create_all(conn)}


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer bt-server; it is not touched."""


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


class Database:
    """Access to the run store. Thread-safe: each call takes a pooled connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self.engine: Engine = create_engine(
            f"sqlite:///{self.path}",
            json_serializer=_json,
            connect_args={"check_same_thread": False, "timeout": 30},
            # One connection per busy thread: FastAPI's pool (40) and the supervisors.
            pool_size=20,
            max_overflow=40,
        )
        event.listen(self.engine, "connect", _pragmas)
        self._migrate()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. Writers of this process queue on a lock rather than inside
        SQLite, whose busy handler sleeps in growing steps (up to 100 ms) when writers
        collide: that turned a burst of submissions into seconds of tail latency."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: WAL lets it run beside a writer, so it takes no lock."""
        with self.engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        # One explicit BEGIN IMMEDIATE around the check and the DDL: two processes starting on
        # a fresh data directory at once (the server and `bt-server token create`) must not
        # both see "no tables". SQLite's DDL is transactional, the driver's default is not.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                self._migrate_locked(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    def _migrate_locked(self, conn: Connection) -> None:
        meta.create(conn, checkfirst=True)
        row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{self.path} has schema version {current}; this bt-server knows up to "
                f"{SCHEMA_VERSION}. Upgrade bt-server."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        if current != SCHEMA_VERSION:
            values = {"key": "schema_version", "value": str(SCHEMA_VERSION)}
            if row:
                conn.execute(update(meta).where(meta.c.key == "schema_version").values(values))
            else:
                conn.execute(insert(meta).values(values))

    def schema_version(self) -> int:
        with self.read() as conn:
            return int(
                conn.execute(
                    select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar_one()
            )

    # ------------------------------------------------------------------ tokens
    def add_token(self, token_id: str, user: str, scope: str, digest: str) -> None:
        with self.begin() as conn:
            conn.execute(
                insert(tokens).values(
                    id=token_id, user=user, scope=scope, hash=digest, created_at=time.time()
                )
            )

    def get_token(self, token_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.id == token_id)).mappings().first()
        return dict(row) if row else None

    def list_tokens(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at)).mappings().all()
        return [dict(r) for r in rows]

    def revoke_tokens(self, id_or_user: str) -> int:
        """Revoke the token with this id, or every token of this user; returns how many."""
        with self.begin() as conn:
            res = conn.execute(
                update(tokens)
                .where(
                    (tokens.c.id == id_or_user) | (tokens.c.user == id_or_user),
                    tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
        return int(res.rowcount or 0)

    def has_active_admin(self) -> bool:
        with self.read() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(tokens)
                .where(tokens.c.scope == "admin", tokens.c.revoked_at.is_(None))
            ).scalar_one()
        return bool(n)

    def touch_token(self, token_id: str) -> None:
        with self.begin() as conn:
            conn.execute(
                update(tokens).where(tokens.c.id == token_id).values(last_used_at=time.time())
            )

    # ------------------------------------------------------------------ jobs
    def add_job(
        self,
        job_id: str,
        kind: str,
        owner: str,
        spec: dict[str, Any],
        *,
        strategy: str | None = None,
        tags: Sequence[str] = (),
        resubmitted_from: str | None = None,
    ) -> None:
        with self.begin() as conn:
            conn.execute(
                insert(jobs).values(
                    id=job_id,
                    kind=kind,
                    owner=owner,
                    status="queued",
                    strategy=strategy,
                    spec=spec,
                    created_at=time.time(),
                    progress=0.0,
                    resubmitted_from=resubmitted_from,
                )
            )
            for tag in dict.fromkeys(tags):
                conn.execute(insert(job_tags).values(job_id=job_id, tag=tag))

    def get_job(
        self, job_id: str, *, kind: str | None = None, owner: str | None = None
    ) -> dict[str, Any] | None:
        q = select(jobs).where(jobs.c.id == job_id)
        if kind is not None:
            q = q.where(jobs.c.kind == kind)
        if owner is not None:
            q = q.where(jobs.c.owner == owner)
        with self.read() as conn:
            row = conn.execute(q).mappings().first()
            if row is None:
                return None
            tags = conn.execute(
                select(job_tags.c.tag).where(job_tags.c.job_id == job_id).order_by(job_tags.c.tag)
            ).scalars()
            out = dict(row)
            out["tags"] = list(tags)
        return out

    def list_jobs(
        self,
        *,
        kind: str,
        owner: str,
        status: str | None = None,
        strategy: str | None = None,
        tag: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        conds = [jobs.c.kind == kind, jobs.c.owner == owner]
        if status is not None:
            conds.append(jobs.c.status == status)
        if strategy is not None:
            conds.append(jobs.c.strategy == strategy)
        if created_after is not None:
            conds.append(jobs.c.created_at >= created_after)
        if created_before is not None:
            conds.append(jobs.c.created_at < created_before)
        if tag is not None:
            conds.append(jobs.c.id.in_(select(job_tags.c.job_id).where(job_tags.c.tag == tag)))
        where = and_(*conds)
        with self.read() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(where)).scalar_one()
            rows = [
                dict(r)
                for r in conn.execute(
                    select(jobs)
                    .where(where)
                    .order_by(jobs.c.created_at.desc(), jobs.c.id)
                    .limit(limit)
                    .offset(offset)
                ).mappings()
            ]
            ids = [r["id"] for r in rows]
            tags: dict[str, list[str]] = {i: [] for i in ids}
            if ids:
                for job_id, t in conn.execute(
                    select(job_tags.c.job_id, job_tags.c.tag)
                    .where(job_tags.c.job_id.in_(ids))
                    .order_by(job_tags.c.tag)
                ):
                    tags[job_id].append(t)
        for r in rows:
            r["tags"] = tags[r["id"]]
        return rows, int(total)

    def count_active(self, kind: str | None = None) -> int:
        q = select(func.count()).select_from(jobs).where(jobs.c.status.in_(ACTIVE))
        if kind is not None:
            q = q.where(jobs.c.kind == kind)
        with self.read() as conn:
            return int(conn.execute(q).scalar_one())

    def transition(self, job_id: str, frm: Sequence[str], to: str, **values: Any) -> bool:
        """Move a job from one of ``frm`` to ``to`` (atomically); False if it was elsewhere."""
        now = time.time()
        if to == "running":
            values.setdefault("started_at", now)
        if to in TERMINAL:
            values.setdefault("finished_at", now)
        with self.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(list(frm)))
                .values(status=to, **values)
            )
        return bool(res.rowcount)

    def set_progress(self, job_id: str, progress: float) -> None:
        with self.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(progress=progress)
            )

    def interrupt_active(self) -> list[str]:
        """Mark every queued or running job ``interrupted`` (after a restart): their workers
        are gone. Returns their ids."""
        with self.begin() as conn:
            ids = list(conn.execute(select(jobs.c.id).where(jobs.c.status.in_(ACTIVE))).scalars())
            if ids:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(ids))
                    .values(
                        status="interrupted",
                        finished_at=time.time(),
                        error={
                            "code": "interrupted",
                            "kind": "server",
                            "message": "the server stopped before the job finished; resubmit it",
                            "fields": {},
                        },
                    )
                )
        return ids

    def delete_job(self, job_id: str) -> bool:
        with self.begin() as conn:
            conn.execute(delete(job_tags).where(job_tags.c.job_id == job_id))
            res = conn.execute(delete(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(TERMINAL)))
        return bool(res.rowcount)

    def job_ids(self, status: str | None = None) -> set[str]:
        q = select(jobs.c.id)
        if status is not None:
            q = q.where(jobs.c.status == status)
        with self.read() as conn:
            return set(conn.execute(q).scalars())

    def active_jobs_using_dataset(self, dataset_id: str) -> int:
        with self.read() as conn:
            rows = conn.execute(select(jobs.c.spec).where(jobs.c.status.in_(ACTIVE))).scalars()
            return sum(
                1
                for spec in rows
                if isinstance(spec, dict)
                and (spec.get("data") or {}).get("dataset_id") == dataset_id
            )

    # ------------------------------------------------------------------ datasets
    def add_dataset(self, **values: Any) -> None:
        with self.begin() as conn:
            conn.execute(insert(datasets).values(created_at=time.time(), **values))

    def get_dataset(self, dataset_id: str, *, user: str | None = None) -> dict[str, Any] | None:
        q = select(datasets).where(datasets.c.id == dataset_id)
        if user is not None:
            q = q.where((datasets.c.owner == user) | datasets.c.owner.is_(None))
        with self.read() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def list_datasets(
        self, user: str, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        where = (datasets.c.owner == user) | datasets.c.owner.is_(None)
        with self.read() as conn:
            total = conn.execute(
                select(func.count()).select_from(datasets).where(where)
            ).scalar_one()
            rows = conn.execute(
                select(datasets)
                .where(where)
                .order_by(datasets.c.created_at.desc(), datasets.c.id)
                .limit(limit)
                .offset(offset)
            ).mappings()
            return [dict(r) for r in rows], int(total)

    def shared_dataset_named(self, name: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = (
                conn.execute(
                    select(datasets).where(datasets.c.owner.is_(None), datasets.c.name == name)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def delete_dataset(self, dataset_id: str) -> bool:
        with self.begin() as conn:
            res = conn.execute(delete(datasets).where(datasets.c.id == dataset_id))
        return bool(res.rowcount)

    def dataset_ids(self) -> set[str]:
        with self.read() as conn:
            return set(conn.execute(select(datasets.c.id)).scalars())


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


__all__ = ["ACTIVE", "SCHEMA_VERSION", "TERMINAL", "Database", "SchemaTooNewError"]
