"""The worker pool: a bounded queue of jobs and one supervisor thread per worker process.

A supervisor hands its worker one job at a time and watches it: progress goes to the record
and to live subscribers; a cancelled job, a job over its time limit and a worker over its
memory limit are stopped by killing the worker process (the only way to stop code that does
not cooperate), and a fresh worker takes its place. Nothing here runs on the event loop.

The queue lives in memory; the records in the database are the truth. After a restart no
worker holds the jobs that were queued or running, so the server marks them ``interrupted``
(see :meth:`bt_server.db.Database.interrupt_active`) and clients may resubmit them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from bt_server.db import Database
from bt_server.events import EventHub
from bt_server.settings import Settings, SettingsError

log = logging.getLogger("bt_server")

_POLL = 0.05  # seconds between looks at a running job
_MEMORY_EVERY = 0.25  # seconds between memory checks
_PROGRESS_WRITE_EVERY = 0.5  # seconds between progress writes to the record
_READY_TIMEOUT = 120.0


class QueueFull(Exception):
    """The queue is full; ``retry_after`` estimates when a slot frees up (seconds)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the job queue is full")
        self.retry_after = retry_after


@dataclass
class Task:
    job_id: str
    kind: str
    spec: dict[str, Any]
    timeout: float
    cancel: threading.Event = field(default_factory=threading.Event)

    def message(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "spec": self.spec}


def _context() -> Any:
    # forkserver: each worker is forked from a clean process that has bt-core, pandas and
    # pyarrow imported already, so a worker replacing a killed one is ready in milliseconds;
    # and unlike plain fork it never copies the server's threads or locks.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["bt_server.worker"])
        return ctx
    return mp.get_context("spawn")


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, ctx: Any, config: dict[str, Any]) -> None:
        from bt_server import worker

        self.conn, child = ctx.Pipe()
        lifeline_r, self.lifeline = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=worker.main, args=(child, lifeline_r, config), daemon=True, name="bt-worker"
        )
        self.proc.start()
        child.close()
        lifeline_r.close()
        self.pid: int | None = None
        self._ps: psutil.Process | None = None
        self.baseline = 0

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            raise RuntimeError("a worker process did not start in time")
        msg = self.conn.recv()
        if msg[0] != "ready":
            raise RuntimeError(f"a worker process sent {msg[0]!r} instead of 'ready'")
        self.pid = int(msg[1])
        self._ps = psutil.Process(self.pid)
        # The idle worker's own footprint (interpreter, libraries): a job's limit is on top.
        self.baseline = self.rss()

    def rss(self) -> int:
        try:
            return int(self._ps.memory_info().rss) if self._ps is not None else 0
        except psutil.Error:
            return 0

    def alive(self) -> bool:
        return bool(self.proc.is_alive())

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        for c in (self.conn, self.lifeline):
            with contextlib.suppress(OSError):
                c.close()


class WorkerPool:
    """Runs jobs in ``workers`` processes; at most ``queue_size`` wait."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        *,
        workers: int,
        queue_size: int,
        memory_bytes: int,
        worker_config: dict[str, Any],
    ) -> None:
        self.db = db
        self.hub = hub
        self.queue_size = queue_size
        self.memory_bytes = memory_bytes
        self.worker_config = worker_config
        self._ctx = _context()
        self._queue: deque[Task] = deque()
        self._cond = threading.Condition()
        self._spawn_lock = threading.Lock()
        self._stopping = False
        self._avg_seconds = 1.0
        self.started = threading.Event()
        # The trials of running optimisations, as they finish (the record holds only the
        # progress until the table is written at the end).
        self._live: dict[str, list[dict[str, Any]]] = {}
        self._live_lock = threading.Lock()
        self._slots = [self._make_slot(i) for i in range(workers)]

    def _make_slot(self, n: int) -> Any:
        return _Slot(self, n)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        for s in self._slots:
            s.start()
        threading.Thread(target=self._wait_started, daemon=True).start()

    def _wait_started(self) -> None:
        for s in self._slots:
            s.ready.wait()
        self.started.set()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
        for s in self._slots:
            s.kill_worker()
        for s in self._slots:
            s.join(15)

    @property
    def stopping(self) -> bool:
        return self._stopping

    # ------------------------------------------------------------------ queue
    def submit(self, task: Task, record: Callable[[], None]) -> None:
        """Queue ``task``; ``record`` (which writes its record) runs under the queue's lock,
        so a full queue never leaves a record behind and a worker never sees a task whose
        record is not committed. Raises :class:`QueueFull`."""
        with self._cond:
            if self._stopping:
                raise QueueFull(5.0)
            if len(self._queue) >= self.queue_size:
                raise QueueFull(self.retry_after())
            record()
            self._queue.append(task)
            self._cond.notify()

    def retry_after(self) -> float:
        return max(1.0, min(60.0, self._avg_seconds * (len(self._queue) + 1) / len(self._slots)))

    def queued(self) -> int:
        return len(self._queue)

    def running(self) -> int:
        return sum(1 for s in self._slots if s.task is not None)

    def _next(self, slot: Any) -> Task | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            task = self._queue.popleft()
            slot.task = task
            return task

    def cancel(self, job_id: str) -> bool:
        """Stop a job: dequeue it, or tell its supervisor to kill the worker. True if this
        pool held it. The record is updated by whoever held the job."""
        with self._cond:
            for t in self._queue:
                if t.job_id == job_id:
                    self._queue.remove(t)
                    t.cancel.set()
                    held = True
                    break
            else:
                held = False
                for s in self._slots:
                    if s.task is not None and s.task.job_id == job_id:
                        s.task.cancel.set()
                        held = True
        if self.db.transition(job_id, ["queued"], "cancelled"):
            self.hub.publish(job_id, {"type": "status", "status": "cancelled"})
        return held

    def live_trials(self, job_id: str) -> list[dict[str, Any]] | None:
        """The trials a running optimisation has finished so far, in the order they
        finished; None when this pool runs no such optimisation (any more)."""
        with self._live_lock:
            rows = self._live.get(job_id)
            return None if rows is None else list(rows)

    # ------------------------------------------------------------------ one job's messages
    def begin(self, task: Task) -> bool:
        """Mark a dequeued job running; False when it was cancelled while it waited."""
        if task.cancel.is_set() or not self.db.transition(task.job_id, ["queued"], "running"):
            return False
        if task.kind == "optimization":
            with self._live_lock:
                self._live[task.job_id] = []
        self.hub.publish(task.job_id, {"type": "status", "status": "running", "progress": 0.0})
        return True

    def handle(
        self, task: Task, msg: tuple[Any, ...], started: float, marks: dict[str, float]
    ) -> bool:
        """One message from the process running ``task``: progress, equity samples, a
        finished trial, the outcome. True once the job is finished (its record written).
        ``marks`` keeps the time of the last progress write between calls."""
        kind = msg[0]
        now = time.monotonic()
        if kind == "progress":
            progress = float(msg[1])
            self.hub.publish(task.job_id, {"type": "progress", "progress": progress})
            if now - marks.get("write", 0.0) >= _PROGRESS_WRITE_EVERY:
                marks["write"] = now
                self.db.set_progress(task.job_id, progress)
        elif kind == "equity":
            self.hub.publish(task.job_id, {"type": "equity_sample", **msg[1]})
        elif kind == "trial":
            with self._live_lock:
                rows = self._live.get(task.job_id)
                if rows is not None:
                    rows.append(msg[1]["row"])
            self.hub.publish(task.job_id, {"type": "trial", **msg[1]})
        elif kind == "done":
            self._ran(now - started)
            payload = msg[1]
            if "equity" in payload:
                self.hub.publish(task.job_id, {"type": "equity", **payload["equity"]})
            self.finish(
                task, "succeeded", None, stats=payload.get("stats"), summary=payload.get("summary")
            )
            return True
        elif kind == "error":
            self._ran(now - started)
            self.finish(task, "failed", msg[1])
            return True
        return False

    def finish(self, task: Task, status: str, error: dict[str, Any] | None, **values: Any) -> None:
        """Write a job's outcome to its record (unless it already has one) and tell its
        live clients."""
        if status == "succeeded":
            values["progress"] = 1.0
        changed = self.db.transition(
            task.job_id, ["running", "queued"], status, error=error, **values
        )
        # After the record: a reader that finds the live table gone finds the final one.
        with self._live_lock:
            self._live.pop(task.job_id, None)
        if changed:
            event: dict[str, Any] = {"type": "status", "status": status}
            if error is not None:
                event["error"] = error
            if values.get("stats") is not None:
                event["stats"] = values["stats"]
            if status == "succeeded":
                event["progress"] = 1.0
            self.hub.publish(task.job_id, event)

    def _ran(self, seconds: float) -> None:
        self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * seconds

    def new_worker(self) -> _Worker:
        with self._spawn_lock:
            w = _Worker(self._ctx, self.worker_config)
        try:
            w.wait_ready(_READY_TIMEOUT)
        except BaseException:
            w.kill()
            raise
        return w


class _Slot(threading.Thread):
    """Supervises one worker process."""

    def __init__(self, pool: WorkerPool, n: int) -> None:
        super().__init__(daemon=True, name=f"bt-supervisor-{n}")
        self.pool = pool
        self.task: Task | None = None
        self.worker: _Worker | None = None
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def kill_worker(self) -> None:
        with self._lock:
            w, self.worker = self.worker, None
        if w is not None:
            w.kill()

    def _ensure_worker(self) -> _Worker:
        with self._lock:
            w = self.worker
        if w is not None and w.alive():
            return w
        if w is not None:
            w.kill()
        w = self.pool.new_worker()
        with self._lock:
            if self.pool.stopping:
                w.kill()
                raise RuntimeError("the pool is stopping")
            self.worker = w
        return w

    def run(self) -> None:
        try:
            self._ensure_worker()
        except Exception:
            if not self.pool.stopping:
                log.exception("a worker process failed to start")
        finally:
            self.ready.set()
        while True:
            task = self.pool._next(self)
            if task is None:
                return
            try:
                self._execute(task)
            except Exception:
                log.exception("supervising job %s failed", task.job_id)
                self._finish(task, "failed", _error("internal_error", "the server failed"))
            finally:
                with self.pool._cond:
                    self.task = None

    # ------------------------------------------------------------------ one job
    def _execute(self, task: Task) -> None:
        pool = self.pool
        if not pool.begin(task):
            return  # cancelled while it waited
        try:
            worker = self._ensure_worker()
        except Exception:
            if not pool.stopping:
                log.exception("no worker for job %s", task.job_id)
                self._finish(
                    task, "failed", _error("worker_unavailable", "no worker process could start")
                )
            return
        started = time.monotonic()
        deadline = started + task.timeout
        try:
            worker.conn.send(task.message())
        except (OSError, EOFError):
            self._lost(task, worker, started)
            return
        marks: dict[str, float] = {}
        last_memory = 0.0
        while True:
            now = time.monotonic()
            if task.cancel.is_set():
                self._replace(worker)
                self._finish(task, "cancelled", None)
                return
            if now > deadline:
                self._replace(worker)
                self._finish(
                    task,
                    "failed",
                    _error(
                        "time_limit",
                        f"the job ran longer than its time limit of {task.timeout:g} s",
                        timeout=task.timeout,
                    ),
                )
                return
            if now - last_memory >= _MEMORY_EVERY:
                last_memory = now
                rss = worker.rss()
                if rss > self.pool.memory_bytes + worker.baseline:
                    self._replace(worker)
                    self._finish(task, "failed", _memory_error(self.pool.memory_bytes))
                    return
            try:
                ready = worker.conn.poll(_POLL)
                msg = worker.conn.recv() if ready else None
            except (OSError, EOFError):
                self._lost(task, worker, started)
                return
            if msg is None:
                if not worker.alive():
                    self._lost(task, worker, started)
                    return
                continue
            if pool.handle(task, msg, started, marks):
                return

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            if self.worker is worker:
                self.worker = None
        worker.kill()
        if not self.pool.stopping:
            try:
                self._ensure_worker()  # the next job should not wait for a new worker
            except Exception:
                log.exception("a replacement worker failed to start")

    def _lost(self, task: Task, worker: _Worker, started: float) -> None:
        if self.pool.stopping:
            return  # the server is stopping: the record is marked interrupted by the server
        code = worker.proc.exitcode
        self._replace(worker)
        if task.cancel.is_set():
            self._finish(task, "cancelled", None)
            return
        self._finish(
            task,
            "failed",
            _error(
                "worker_crashed",
                "the worker process running the job died (out of memory, or a crash in "
                "native code)",
                exitcode=code,
            ),
        )

    def _finish(self, task: Task, status: str, error: dict[str, Any] | None, **values: Any) -> None:
        self.pool.finish(task, status, error, **values)


def _error(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {
        "code": code,
        "kind": "limit" if "limit" in code else "server",
        "message": message,
        "fields": fields,
    }


def _memory_error(limit: int) -> dict[str, Any]:
    return _error(
        "memory_limit",
        f"the job used more than its memory limit of {limit // (1024 * 1024)} MiB",
        limit_mb=limit // (1024 * 1024),
    )


def make_pool(settings: Settings, db: Database, hub: EventHub, registry: Any) -> WorkerPool:
    """The executor ``settings.executor`` names: local worker processes, or Ray tasks."""
    common: dict[str, Any] = {
        "workers": settings.workers,
        "queue_size": settings.queue_size,
        "memory_bytes": settings.run_memory_mb * 1024 * 1024,
        "worker_config": settings.worker_config(),
    }
    if settings.executor == "ray":
        from bt_server.ray_executor import RayPool, import_ray

        try:
            import_ray()
        except ImportError as e:  # stop the start-up, naming the extra to install
            raise SettingsError(f"setting executor: {e}") from None
        return RayPool(
            db,
            hub,
            data_dir=settings.data_dir,
            registry=registry,
            address=settings.ray_address,
            **common,
        )
    return WorkerPool(db, hub, **common)


__all__ = ["QueueFull", "Task", "WorkerPool", "make_pool"]
