"""The Ray executor (``executor = "ray"``): the same queue, records and API as the local worker
pool, with each job run as a Ray task on a cluster (or on a local Ray).

A job's task runs the same handler as a worker process (:data:`bt_server.worker.HANDLERS`),
so its stats, tables and errors are those of the process executor. What differs is what a
machine of the cluster cannot reach:

- the market data: the server reads the dataset file or the stored bars and puts them in the
  object store once per job; the task validates them exactly as a worker process does;
- the strategy: the server sends the class (by value when it comes from a strategy folder,
  which the cluster's machines do not have; classes of ``strategy_modules`` must be
  installed there);
- the result files: the task writes them to a temporary folder on its machine and streams
  them back; the server installs them into its data directory before the record says
  ``succeeded``, all or nothing.

A task is a Ray generator: it streams progress, equity samples and finished trials as it
runs. The server's supervisor thread for it enforces cancellation and the time limit with
``ray.cancel(force=True)`` (which kills the Ray worker process running it). The memory limit
is watched inside the task: over it, the task reports ``memory_limit`` and is killed the same
way. A backfill writes to the server's bar store, so its task is pinned to the server's node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

import bt_core
from bt_server import results
from bt_server.datasets import validate
from bt_server.db import Database
from bt_server.errors import describe_exception
from bt_server.events import EventHub
from bt_server.pool import _POLL, Task, WorkerPool, _error, _memory_error
from bt_server.strategies import StrategyInfo, StrategyRegistry
from bt_server.worker import (
    HANDLERS,
    WORKER_NICENESS,
    Emitter,
    WorkerContext,
    bars_market_data,
    dataset_file,
    read_store_bars,
)

log = logging.getLogger("bt_server")

_MEMORY_EVERY = 0.25  # seconds between a task's looks at its own memory
_KILL_WAIT = 60.0  # seconds a task over its memory limit waits to be killed before it exits
_STRATEGY_FOLDER_MODULES = "_bt_server_strategies_"  # see bt_server.strategies._load_file


def import_ray() -> Any:
    # Under `uv run`, Ray would start each worker through `uv run` again (re-resolving the
    # project); a local Ray's workers already run in this environment.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "executor = 'ray' needs Ray: pip install 'bt-server[ray]' (or ray)"
        ) from e
    return ray


# ----------------------------------------------------------------------------- in the task
class _Queue:
    """The Emitter's connection inside a task: messages go to the generator's queue."""

    def __init__(self, q: queue.SimpleQueue[Any]) -> None:
        self.send = q.put


class _OneStrategy:
    """The registry of a task: the one strategy its job names."""

    def __init__(self, info: StrategyInfo | None) -> None:
        self.info = info

    def get(self, sid: str) -> StrategyInfo | None:
        return self.info if self.info is not None and self.info.id == sid else None


class _TaskContext(WorkerContext):
    """A worker context whose data, strategy and output folder came with the task."""

    def __init__(
        self, config: dict[str, Any], out: Path, info: StrategyInfo | None, data: Any
    ) -> None:
        self.config = config
        self.data_dir = out  # results are written here, then sent back
        self.registry = _OneStrategy(info)  # type: ignore[assignment]
        self._data = data
        self._datasets = OrderedDict()

    def market_data(self, data: dict[str, Any]) -> bt_core.MarketData:
        if self._data is None:
            raise RuntimeError("this job was sent without market data")
        if self._data[0] == "dataset":
            _, fmt, content, symbol = self._data
            return validate(content, fmt, "dataset", symbol)
        return bars_market_data(self._data[1])


_niced = [False]


def run_job(
    message: dict[str, Any], data: Any, info: StrategyInfo | None, config: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    """The body of a job's Ray task (a generator: each message is streamed to the server).

    Messages: ``("started",)``, then what a worker process sends (``progress``, ``equity``,
    ``trial``), then ``("files", {...})`` and ``("done", payload)``, or ``("error", ...)``.
    """
    if not _niced[0]:
        # As a worker process: below the API when the server's own machine computes.
        _niced[0] = True
        with contextlib.suppress(AttributeError, OSError):
            os.nice(WORKER_NICENESS)
    out = Path(tempfile.mkdtemp(prefix="bt-server-job-"))
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    me = psutil.Process()
    baseline = me.memory_info().rss
    limit = int(config["memory_bytes"])

    def work() -> None:
        try:
            ctx = _TaskContext(config, out, info, data)
            payload = HANDLERS[message["kind"]](ctx, message, Emitter(_Queue(q)))  # type: ignore[arg-type]
            q.put(("files", results.collect_files(results.run_dir(out, message["job_id"]))))
            q.put(("done", payload))
        except Exception as e:
            q.put(("error", describe_exception(e)))
        finally:
            q.put(None)

    threading.Thread(target=work, daemon=True, name="bt-job").start()
    try:
        yield ("started",)
        last_check = time.monotonic()
        while True:
            try:
                msg = q.get(timeout=_MEMORY_EVERY)
            except queue.Empty:
                msg = False
            now = time.monotonic()
            if now - last_check >= _MEMORY_EVERY:
                last_check = now
                if me.memory_info().rss - baseline > limit:
                    yield ("error", _memory_error(limit))
                    # The job's thread cannot be stopped from here: the server kills this
                    # process (ray.cancel); should it not, exit all the same.
                    time.sleep(_KILL_WAIT)
                    os._exit(3)
            if msg is None:
                return
            if msg is not False:
                yield msg
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ----------------------------------------------------------------------------- in the server
def _shippable(info: StrategyInfo) -> StrategyInfo:
    """``info`` as it can travel to a task: without its (rebuildable) pydantic model, and
    its class sent by value when it comes from a strategy folder."""
    cls = info.cls
    if cls is not None and cls.__module__.startswith(_STRATEGY_FOLDER_MODULES):
        from ray import cloudpickle

        module = sys.modules.get(cls.__module__)
        if module is not None:
            with contextlib.suppress(ValueError):  # registered already
                cloudpickle.register_pickle_by_value(module)
    return dataclasses.replace(info, _model=None)


class RayPool(WorkerPool):
    """The worker pool's queue and records, with jobs run as Ray tasks: ``workers`` jobs
    at a time, each task asking Ray for one CPU."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        *,
        workers: int,
        queue_size: int,
        memory_bytes: int,
        worker_config: dict[str, Any],
        data_dir: Path,
        registry: StrategyRegistry,
        address: str | None,
    ) -> None:
        self.data_dir = data_dir
        self.registry = registry
        self.address = address
        self._ray: Any = None
        self._remote: Any = None
        self._owns_ray = False
        self._ray_lock = threading.Lock()
        super().__init__(
            db,
            hub,
            workers=workers,
            queue_size=queue_size,
            memory_bytes=memory_bytes,
            worker_config=worker_config,
        )

    def _make_slot(self, n: int) -> Any:
        return _RaySlot(self, n)

    def ray(self) -> Any:
        """Ray, joined or started once: the cluster at the configured address, else at
        ``$RAY_ADDRESS``, else a local instance with ``workers`` CPUs."""
        with self._ray_lock:
            if self._ray is None:
                ray = import_ray()
                if not ray.is_initialized():
                    address = self.address or os.environ.get("RAY_ADDRESS") or None
                    kwargs: dict[str, Any] = {"log_to_driver": False}
                    if address is None:
                        kwargs.update(num_cpus=len(self._slots), include_dashboard=False)
                    ray.init(address=address, **kwargs)
                    self._owns_ray = True
                self._remote = ray.remote(run_job)
                self._ray = ray
            return self._ray

    def stop(self) -> None:
        super().stop()
        with self._ray_lock:
            if self._owns_ray and self._ray is not None:
                self._ray.shutdown()
            self._ray, self._remote, self._owns_ray = None, None, False

    def dispatch(self, task: Task) -> Any:
        """Start ``task``'s Ray task: its data in the object store (once), its strategy."""
        ray = self.ray()
        spec = task.spec
        info: StrategyInfo | None = None
        data_ref = None
        options: dict[str, Any] = {"num_cpus": 1}
        if task.kind in ("run", "optimization"):
            found = self.registry.get(spec["strategy"])
            if found is None:  # removed from the server's folders since it was submitted
                raise bt_core.ParameterError(
                    f"unknown strategy {spec['strategy']!r}", parameter="strategy"
                )
            info = _shippable(found)
            data = spec["data"]
            if data["source"] == "dataset":
                fmt, path = dataset_file(self.data_dir, data["dataset_id"])
                payload: Any = ("dataset", fmt, path.read_bytes(), data.get("symbol"))
            else:
                payload = ("bars", read_store_bars(self.worker_config["store_path"], data))
            data_ref = ray.put(payload)
        else:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # A backfill writes the server's bar store: it runs where the store is.
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False
            )
        return self._remote.options(**options).remote(
            task.message(), data_ref, info, self.worker_config
        )


class _RaySlot(threading.Thread):
    """Supervises one job at a time on Ray (the counterpart of a worker process's slot)."""

    def __init__(self, pool: RayPool, n: int) -> None:
        super().__init__(daemon=True, name=f"bt-ray-supervisor-{n}")
        self.pool = pool
        self.task: Task | None = None
        self.ready = threading.Event()
        self._ref: Any = None

    def kill_worker(self) -> None:
        ref, ray = self._ref, self.pool._ray
        if ref is not None and ray is not None:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)

    def run(self) -> None:
        try:
            self.pool.ray()
        except Exception:
            if not self.pool.stopping:
                log.exception("Ray could not be started or joined")
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
                self.pool.finish(task, "failed", _error("internal_error", "the server failed"))
            finally:
                self._ref = None
                with self.pool._cond:
                    self.task = None

    def _execute(self, task: Task) -> None:
        pool = self.pool
        if not pool.begin(task):
            return  # cancelled while it waited
        try:
            ray = pool.ray()
        except Exception:
            log.exception("no Ray for job %s", task.job_id)
            pool.finish(task, "failed", _error("worker_unavailable", "Ray is not available"))
            return
        try:
            self._ref = gen = pool.dispatch(task)
        except Exception as e:  # the data or strategy is gone: the worker's own errors
            pool.finish(task, "failed", describe_exception(e))
            return
        started = time.monotonic()
        # Until the task starts, the limit bounds the wait for a free CPU of the cluster.
        deadline = started + task.timeout
        marks: dict[str, float] = {}
        while True:
            if task.cancel.is_set():
                self.kill_worker()
                pool.finish(task, "cancelled", None)
                return
            if time.monotonic() > deadline:
                self.kill_worker()
                pool.finish(
                    task,
                    "failed",
                    _error(
                        "time_limit",
                        f"the job ran longer than its time limit of {task.timeout:g} s",
                        timeout=task.timeout,
                    ),
                )
                return
            ready, _ = ray.wait([gen], timeout=_POLL)
            if not ready:
                continue
            try:
                msg = ray.get(next(gen))
            except StopIteration:
                msg = None
            except ray.exceptions.RayError as e:
                if pool.stopping:
                    return  # the record is marked interrupted by the server
                if task.cancel.is_set():
                    continue  # cancelled meanwhile: recorded as such above
                log.warning("the Ray task of job %s failed: %s", task.job_id, e)
                msg = None
            if msg is None:
                pool.finish(
                    task,
                    "failed",
                    _error(
                        "worker_crashed",
                        "the Ray worker running the job died (out of memory, a crash in "
                        "native code, or a lost node)",
                    ),
                )
                return
            if msg[0] == "started":
                deadline = time.monotonic() + task.timeout
                continue
            if msg[0] == "files":
                results.install_files(msg[1], results.run_dir(pool.data_dir, task.job_id))
                continue
            if msg[0] == "error" and msg[1].get("code") == "memory_limit":
                self.kill_worker()
            if pool.handle(task, msg, started, marks):
                return


__all__ = ["RayPool", "import_ray", "run_job"]
