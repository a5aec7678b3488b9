"""Where trials run: in this process, on threads, in a process pool over all cores, on a Ray
cluster, or (built-in strategies) in the engine's Rust batch sweep.

Every backend takes an iterator of ``(trial, params)`` lazily (so that Bayesian search can
ask for the next set only when a slot is free) and yields :class:`~._work.Row` as trials
finish. The data reaches each worker once: a forked worker inherits it, a spawned one maps
one file read-only (shared in place), a Ray worker reads the data in place in its machine's
object store, fetched once per sweep.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import replace
from itertools import islice
from typing import Any

import numpy as np

import bt_engine
from bt_core.backtest import BUILTINS, Backtest, _entry_size
from bt_core.data import MarketData
from bt_core.errors import ParameterError, from_engine
from bt_core.optimize._work import (
    Job,
    Row,
    SharedData,
    SharedLayout,
    StrategyRef,
    attach,
    evaluate,
    failed_row,
    make_backtest,
    resolve,
    row_of,
)

Task = tuple[int, dict[str, Any]]
BACKENDS = ("process", "thread", "ray", "rust", "sequential")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def n_workers(n_jobs: int | None) -> int:
    """``None`` or -1: all cores; -k: all but k-1; k > 0: k."""
    if n_jobs is None:
        return cpu_count()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ParameterError(
            f"n_jobs must be a non-zero integer or None, got {n_jobs!r}", parameter="n_jobs"
        )
    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


# ----- runners ----------------------------------------------------------------------------


class Runner(ABC):
    """A backend's workers for the length of a sweep (``with`` block): ``run(tasks)`` may be
    called several times (Bayesian search runs one batch per call) on the same workers."""

    width = 1

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @abstractmethod
    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        """The rows of ``tasks``, in any order, as they finish."""


class Sequential(Runner):
    def __init__(self, bt: Backtest, job: Job) -> None:
        self.bt, self.job = bt, job

    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        for trial, params in tasks:
            yield evaluate(self.bt, self.job, trial, params)


def _pool_loop(submit: Any, tasks: Iterable[Task], width: int) -> Iterator[Row]:
    """Keep ``width`` tasks in flight (pulling tasks lazily); yield rows as they finish."""
    it = iter(tasks)
    pending: set[Future[Row]] = set()
    for task in islice(it, width):
        pending.add(submit(task))
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            yield f.result()
        for task in islice(it, len(done)):
            pending.add(submit(task))


class Threads(Runner):
    """Threads share the one data handle; engines are thread-safe. Built-in strategies run
    with the GIL released; Python strategies and the statistics hold it."""

    def __init__(self, bt: Backtest, job: Job, n: int) -> None:
        self.bt, self.job, self.width = bt, job, n
        self.ex = ThreadPoolExecutor(n, thread_name_prefix="bt-optimize")

    def __exit__(self, *exc: Any) -> None:
        self.ex.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        yield from _pool_loop(
            lambda t: self.ex.submit(evaluate, self.bt, self.job, *t), tasks, 2 * self.width
        )


#: What forked workers inherit: a sweep's data and job, by token. Set before the pool starts
#: its workers and removed when it is shut down.
_INHERITED: dict[str, tuple[MarketData, Job]] = {}
#: The one Backtest of this worker process (set by the pool initializer).
_WORKER: dict[str, tuple[Backtest, Job]] = {}


def _init_forked(token: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    md, job = _INHERITED[token]
    _WORKER["bt"] = (make_backtest(md, job), job)


def _init_spawned(layout: SharedLayout, job: Job) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job = replace(job, strategy=resolve(job.strategy))
    _WORKER["bt"] = (make_backtest(attach(layout), job), job)


def _work(task: Task) -> Row:
    bt, job = _WORKER["bt"]
    return evaluate(bt, job, *task)


def _return_free_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; a no-op
    elsewhere). A forked worker's allocations reuse the free chunks it inherited, and each
    page it writes there is copied while the parent keeps its own, unused copy: before a
    sweep of 400 sets on 1M bars this made the pool grow by 20 MiB per worker halfway
    through (+131 MiB at the peak against +105 with the pages returned first)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


#: Pools alive that froze this process's objects (a sweep may run beside another).
_FROZEN = {"pools": 0}
_FROZEN_LOCK = threading.Lock()


def _freeze_objects() -> None:
    """Keep a forked worker's full garbage collections off the objects it inherited: a
    collection writes to every tracked object's header, which copies its page in the worker
    (19 MiB per worker, 60 % into a sweep of 400 sets, before ``gc.freeze``)."""
    with _FROZEN_LOCK:
        if _FROZEN["pools"] == 0:
            gc.freeze()
        _FROZEN["pools"] += 1


def _unfreeze_objects() -> None:
    with _FROZEN_LOCK:
        _FROZEN["pools"] -= 1
        if _FROZEN["pools"] == 0:
            gc.unfreeze()


def default_start_method() -> str:
    """fork where the platform has it and it is safe (Linux): workers inherit the data
    handle without a copy; spawn elsewhere (the data then goes through a shared file)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class Processes(Runner):
    """A process pool. Forked workers inherit the data handle (no copy, no pickling);
    spawned ones map one file written once, read in place. Rows come back small."""

    def __init__(self, md: MarketData, job: Job, n: int, start_method: str | None = None):
        method = start_method or default_start_method()
        if method not in mp.get_all_start_methods():
            raise ParameterError(
                f"start method {method!r} is not available here; use one of "
                f"{mp.get_all_start_methods()}",
                parameter="start_method",
            )
        self.width = n
        ctx = mp.get_context(method)
        self.shared: SharedData | None = None
        self.frozen = False
        self.token = uuid.uuid4().hex
        if method == "fork":
            _INHERITED[self.token] = (md, job)
            self.ex = ProcessPoolExecutor(
                n, mp_context=ctx, initializer=_init_forked, initargs=(self.token,)
            )
            # The workers fork at the first submit: from a heap without free pages, and with
            # the objects they inherit frozen.
            _return_free_heap()
            _freeze_objects()
            self.frozen = True
        else:
            self.shared = SharedData(md)
            ship = replace(job, strategy=StrategyRef.of(resolve(job.strategy)))
            self.ex = ProcessPoolExecutor(
                n, mp_context=ctx, initializer=_init_spawned, initargs=(self.shared.layout, ship)
            )

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self.ex.shutdown(wait=True)
            else:
                # Ctrl-C or an error: drop queued tasks and stop the workers now; what
                # finished has already been handed on.
                procs = list((getattr(self.ex, "_processes", None) or {}).values())
                self.ex.shutdown(wait=False, cancel_futures=True)
                for p in procs:
                    with contextlib.suppress(Exception):
                        p.terminate()
        finally:
            if self.frozen:
                _unfreeze_objects()
            _INHERITED.pop(self.token, None)
            if self.shared is not None:
                self.shared.close()

    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        yield from _pool_loop(lambda t: self.ex.submit(_work, t), tasks, 2 * self.width)


# ----- Ray ------------------------------------------------------------------------------


def _ray() -> Any:
    # Under `uv run`, Ray would start each worker through `uv run` again (re-resolving and
    # shipping the project); the workers of a local instance already run in this
    # environment. RAY_ENABLE_UV_RUN_RUNTIME_ENV=1 turns Ray's behaviour back on.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError as e:
        raise ImportError("backend='ray' needs Ray: pip install 'bt-core[ray]' (or ray)") from e
    return ray


def ray_init(n: int | None = None) -> Any:
    """Join the cluster at ``RAY_ADDRESS`` when set, else start (or reuse) a local Ray."""
    ray = _ray()
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address is None:
            kwargs.update(num_cpus=n or cpu_count(), include_dashboard=False)
        ray.init(address=address, **kwargs)
    return ray


#: What this Ray worker process holds for the sweep it last served: {token: (Backtest, Job)}.
#: One sweep at a time, so a worker keeps at most one copy of a sweep's data.
_RAY_HELD: dict[str, tuple[Backtest, Job]] = {}


def _ray_chunk(token: str, refs: list[Any], chunk: list[Task]) -> list[Row]:
    """A Ray task: run ``chunk`` on this worker's Backtest of the sweep ``token``, building
    it from the object store (``refs``: the data and the job, nested so that Ray does not
    fetch them for every task) the first time this worker serves the sweep."""
    held = _RAY_HELD.get(token)
    if held is None:
        import ray

        _RAY_HELD.clear()
        (symbols, ts, fields, facts), job = ray.get(refs)
        # The arrays are read-only views of this machine's object store: the engine reads
        # them in place, so the workers of a machine share one copy of the data.
        try:
            handle = bt_engine.Data.shared(symbols, ts, fields)
        except bt_engine.ConfigError:
            # Memory the engine may not share (a writable buffer, as Ray could hand out):
            # one copy in immutable bytes instead.
            handle = bt_engine.Data.shared(
                symbols, _immutable(ts), {k: _immutable(v) for k, v in fields.items()}
            )
        md = MarketData.from_handle(handle).adopt(facts)
        job = replace(job, strategy=resolve(job.strategy))
        held = _RAY_HELD[token] = (make_backtest(md, job), job)
    bt, job = held
    return [evaluate(bt, job, t, p) for t, p in chunk]


def _immutable(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in a bytes object: memory nobody can ever write to."""
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), a.dtype).reshape(a.shape)


def _ship_by_value(strategy: Any) -> None:
    """Strategy classes from files or test modules are not importable on Ray's workers:
    have cloudpickle send their code instead of a reference."""
    if isinstance(strategy, str):
        return
    mod = sys.modules.get(strategy.__module__)
    if mod is None or strategy.__module__ == "__main__":
        return
    file = getattr(mod, "__file__", "") or ""
    if "site-packages" in file or strategy.__module__.split(".")[0] in ("bt_core", "bt_engine"):
        return
    from ray import cloudpickle

    with contextlib.suppress(ValueError):
        cloudpickle.register_pickle_by_value(mod)


class Ray(Runner):
    """Ray tasks of one CPU each, ``2 x n`` in flight: the data and the job go to the object
    store once (``ray.put``) and each worker process builds its Backtest from them once per
    sweep, reading the data in place in the object store (one copy per machine). Tasks
    rather than actors: Ray keeps its worker processes (and their imports) from one sweep to
    the next, where each sweep's actors started new processes (about 5 s of start-up per
    sweep on 2 cores), and idle workers hold no CPUs of the cluster."""

    def __init__(self, md: MarketData, job: Job, n: int, chunk: int = 1) -> None:
        self.ray = ray_init(n)
        _ship_by_value(job.strategy)
        self.width, self.chunk = n, max(1, chunk)
        self.token = uuid.uuid4().hex
        data = (list(md.symbols), md.ts, dict(md.fields), md.facts())
        self.refs = [self.ray.put(data), self.ray.put(job)]
        self.task = self.ray.remote(num_cpus=1, max_retries=0)(_ray_chunk)
        self.pending: set[Any] = set()

    def __exit__(self, *exc: Any) -> None:
        for ref in self.pending:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        it = iter(tasks)

        def fill() -> None:
            while len(self.pending) < 2 * self.width:
                part = list(islice(it, self.chunk))
                if not part:
                    return
                self.pending.add(self.task.remote(self.token, self.refs, part))

        fill()
        while self.pending:
            done, _ = self.ray.wait(list(self.pending), num_returns=1)
            for ref in done:
                self.pending.discard(ref)
                yield from self.ray.get(ref)
            fill()


# ----- the Rust batch sweep (built-in strategies) -----------------------------------------


def _batchable(
    params: dict[str, Any], defaults: dict[str, Any], n_symbols: int
) -> tuple[int, int, float, str] | None:
    """(fast, slow, amount, sizing) when the engine's batch sweep runs this set as ``run()``
    would: integer windows and an entry sized in units (``size``) or as a fraction of
    equity (``pct``, or the default equal share), resolved as ``run()`` resolves it. None
    sends the set through ``Backtest.run`` (which also reports bad values as ``run()``
    does)."""
    p = {**defaults, **params}
    if set(p) - {"fast", "slow", "size", "pct"}:
        return None
    fast, slow = p.get("fast"), p.get("slow")
    ints = all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v < 2**64
        for v in (fast, slow)
    )
    if not ints:
        return None
    try:
        amount, sizing = _entry_size(p.get("size"), p.get("pct"), n_symbols)
    except ParameterError:
        return None
    return int(fast), int(slow), amount, sizing  # type: ignore[arg-type]


class Rust(Runner):
    """The engine's batch sweep (built-in strategies; see :func:`run_rust`)."""

    def __init__(self, bt: Backtest, job: Job, n: int, chunk: int = 512) -> None:
        if job.strategy != "sma_cross":
            raise ParameterError(
                f"backend='rust' runs the built-in strategies ({', '.join(BUILTINS)}); "
                f"use backend='process' for {job.strategy!r}",
                parameter="backend",
            )
        self.bt, self.job, self.width, self.chunk = bt, job, n, chunk

    def run(self, tasks: Iterable[Task]) -> Iterator[Row]:
        return run_rust(self.bt, self.job, tasks, self.width, self.chunk)


class _Collector:
    """The batch sweep's callback: each finished set becomes the Result a single run builds
    (``Backtest._result`` reads the same columns from a SweepRun as from an Engine), then
    its row."""

    def __init__(self, bt: Backtest, job: Job, runs: list[Any], defaults: dict[str, Any]):
        self.bt, self.job, self.runs, self.defaults = bt, job, runs, defaults
        self.rows: list[Row] = []
        self.t0 = time.perf_counter()

    def __call__(self, i: int, outcome: Any) -> None:
        trial, params, _ = self.runs[i]
        if isinstance(outcome, BaseException):
            self.rows.append(failed_row(trial, params, from_engine(outcome), self.t0))
        else:
            res = self.bt._result(
                outcome, "sma_cross", {**self.defaults, **params}, exposure_curve=False
            )
            self.rows.append(row_of(res, trial, params, self.job, self.t0))
        self.t0 = time.perf_counter()


#: Bytes of shared averages the batch sweep keeps at once. Each set's statistics take far
#: longer than recomputing a window (~3 ms per million bars), so a sweep here trades a few
#: recomputed windows for memory: 2 windows of a million bars, where the engine's default
#: (32 MiB, for the bare kernel) keeps 4.
RUST_MEMORY_BUDGET = 16 << 20
#: Engine threads of the batch sweep when every set's statistics are computed. The
#: statistics (Python, holding the GIL) take ~10x as long as the engine's run of a set, so
#: one engine thread keeps them fed while they use the other core; each further thread
#: only holds one more finished run (its curves, orders and fills) waiting in memory.
RUST_THREADS = 1


def run_rust(
    bt: Backtest, job: Job, tasks: Iterable[Task], n: int, chunk: int = 512
) -> Iterator[Row]:
    """The built-in SMA cross through ``bt_engine.sweep_sma_cross``: ``chunk`` sets per call
    on engine threads with the GIL released (:data:`RUST_THREADS`, at most ``n``) beside the
    statistics in this thread, each window's averages computed once per call.
    Each set's result is turned into the same ``Result`` a single run builds, so its stats
    are a single run's; sets the batch cannot run as ``run()`` would go through ``run()``."""
    defaults = BUILTINS["sma_cross"]
    md = bt.data
    engine_config = bt._engine_config
    it = iter(tasks)
    while True:
        part = list(islice(it, chunk))
        if not part:
            return
        batch = [(t, p, _batchable(p, defaults, len(md.symbols))) for t, p in part]
        for t, p, b in batch:
            if b is None:
                yield evaluate(bt, job, t, p)
        runs = [(t, p, b) for t, p, b in batch if b is not None]
        if not runs:
            continue
        collect = _Collector(bt, job, runs, defaults)
        # Rows are collected during the call (the callback cannot yield) and handed on after
        # it, also when Ctrl-C stops it: what finished is kept.
        stopped: BaseException | None = None
        try:
            bt_engine.sweep_sma_cross(
                md.handle,
                engine_config,
                [b[0] for _, _, b in runs],  # type: ignore[index]
                [b[1] for _, _, b in runs],  # type: ignore[index]
                [b[2] for _, _, b in runs],  # type: ignore[index]
                collect,
                threads=min(n, RUST_THREADS),
                memory_budget=RUST_MEMORY_BUDGET,
                sizing=[b[3] for _, _, b in runs],  # type: ignore[index]
                exposure_curves=False,  # a row needs the figures only
            )
        except BaseException as e:
            stopped = e
        collect.rows.sort(key=lambda r: r.trial)
        yield from collect.rows
        if stopped is not None:
            raise stopped


__all__ = [
    "BACKENDS",
    "Processes",
    "Ray",
    "Runner",
    "Rust",
    "Sequential",
    "Threads",
    "cpu_count",
    "default_start_method",
    "n_workers",
    "ray_init",
    "run_rust",
]
