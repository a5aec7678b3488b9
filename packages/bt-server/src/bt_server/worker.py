"""The worker process: receives one job at a time from its supervisor over a pipe, runs it and
sends back progress and the outcome.

A job's kind picks its handler in :data:`HANDLERS` (``run``, ``backfill``; an optimisation is
one more entry). Workers never touch the run store's database: the supervisor owns the
records, the worker owns the job's result files.

A worker ends itself when its server goes away (the "lifeline" pipe reaches end-of-file, which
happens even after ``kill -9`` of the server), so no orphan keeps computing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import bt_core
from bt_analysis import json_safe
from bt_server.datasets import FORMATS, dataset_path, load_market_data
from bt_server.errors import describe_exception
from bt_server.results import downsample, run_dir, write_optimization, write_results
from bt_server.strategies import StrategyRegistry

log = logging.getLogger("bt_server.worker")

#: Points of the equity sample pushed to live clients when a run ends.
EQUITY_SAMPLE_POINTS = 200
_PROGRESS_EVERY = 0.2  # seconds between progress messages
WORKER_NICENESS = 10


class Emitter:
    """Sends a job's progress to the supervisor, at most every few hundred milliseconds."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._last = 0.0
        self._times: list[str] = []
        self._values: list[float] = []

    def progress(self, done: int, total: int, *_: Any) -> None:
        now = time.monotonic()
        if total <= 0 or (now - self._last < _PROGRESS_EVERY and done < total):
            return
        self._last = now
        if self._times:
            self._conn.send(("equity", {"datetime": self._times, "equity": self._values}))
            self._times, self._values = [], []
        self._conn.send(("progress", min(1.0, done / total)))

    def trial(self, done: int, total: int, row: dict[str, Any]) -> None:
        """One finished trial of an optimisation: sent at once (a client's table grows
        trial by trial), after the progress it makes (rate-limited like any progress), so
        that whoever sees the trial sees at least that progress."""
        self.progress(done, total)
        self._conn.send(("trial", {"done": done, "total": total, "row": json_safe(row)}))

    def equity(self, when: str, value: float) -> None:
        """Queue one equity sample; samples travel with the next progress message."""
        self._times.append(when)
        self._values.append(value if value == value else 0.0)


def _sampled(cls: type[bt_core.Strategy], emit: Emitter, md: bt_core.MarketData) -> type:
    """``cls`` with a ``next`` that also samples the equity every few bars, for live
    clients. Same name, parameters and behaviour: only the samples are added."""
    every = max(1, md.n_bars // EQUITY_SAMPLE_POINTS)
    index = md.index
    inner = cls.next

    def next(self: Any, bar: Any) -> Any:
        action = inner(self, bar)
        i = bar.i
        if i % every == 0:
            emit.equity(index[i].isoformat(), float(self.equity))
        return action

    return type(
        cls.__name__,
        (cls,),
        {
            "next": next,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
        },
    )


def dataset_file(data_dir: Path, dataset_id: str) -> tuple[str, Path]:
    """The format and file of a stored dataset."""
    for fmt in FORMATS:
        path = dataset_path(data_dir, dataset_id, fmt)
        if path.is_file():
            return fmt, path
    raise bt_core.DataError(f"dataset {dataset_id} no longer exists", dataset=dataset_id)


def read_store_bars(store_path: str | None, data: dict[str, Any]) -> Any:
    """The bars a job on stored data asks for (a DataFrame), checked for gaps in symbols."""
    from bt_data import BarQuery, BarStore, resolve_db_path

    # Reading must not create a store (BarStore makes one where none exists).
    path = resolve_db_path(store_path)
    if path != ":memory:" and not Path(path).exists():
        raise bt_core.DataError("the server has no market data store yet", check="store")
    query = BarQuery(
        data["symbols"], data.get("start"), data.get("end"), data["period"], data["adjust"]
    )
    bars = BarStore(path).read(query)
    if bars.empty:
        raise bt_core.DataError(
            f"no stored bars for {', '.join(data['symbols'])} ({data['period']}, "
            f"{data['adjust']}) in the requested range",
            check="no_bars",
        )
    missing = [s for s in data["symbols"] if s not in set(bars["symbol"])]
    if missing:
        raise bt_core.DataError(
            f"no stored bars for {', '.join(missing)} in the requested range",
            symbol=missing[0],
            check="no_bars",
        )
    return bars


def bars_market_data(bars: Any) -> bt_core.MarketData:
    """Stored bars as a run's data."""
    # amount is NaN where the source had none; it is not a price, so drop an empty one.
    if bars["amount"].isna().all():
        bars = bars.drop(columns="amount")
    return bt_core.load_data(bars)


class WorkerContext:
    """What a worker keeps between jobs: the strategy registry and recently used datasets."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.data_dir = Path(config["data_dir"])
        self.registry = StrategyRegistry(config["strategy_modules"], config["strategy_dirs"])
        self._datasets: OrderedDict[tuple[str, str | None], bt_core.MarketData] = OrderedDict()

    def market_data(self, data: dict[str, Any]) -> bt_core.MarketData:
        if data["source"] == "dataset":
            return self._dataset(data["dataset_id"], data.get("symbol"))
        return self._store_bars(data)

    def _dataset(self, dataset_id: str, symbol: str | None) -> bt_core.MarketData:
        key = (dataset_id, symbol)
        md = self._datasets.get(key)
        if md is not None:
            self._datasets.move_to_end(key)
            return md
        fmt, path = dataset_file(self.data_dir, dataset_id)
        # Datasets never change once stored (only deleted), so a cached copy stays right.
        md = load_market_data(path, fmt, "dataset", symbol)
        self._datasets[key] = md
        while len(self._datasets) > 4:
            self._datasets.popitem(last=False)
        return md

    def _store_bars(self, data: dict[str, Any]) -> bt_core.MarketData:
        return bars_market_data(read_store_bars(self.config["store_path"], data))

    def provider(self) -> Any:
        from bt_data import FileProvider, XtDataProvider

        kind = self.config["backfill_provider"]
        if kind == "files":
            return FileProvider(self.config["backfill_files_dir"])
        if kind == "xtdata":
            return XtDataProvider()
        raise bt_core.ParameterError("this server has no backfill provider", parameter="provider")


def run_backtest(ctx: WorkerContext, task: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    spec = task["spec"]
    info = ctx.registry.get(spec["strategy"])
    if info is None:  # removed from the server's folders since it was submitted
        raise bt_core.ParameterError(f"unknown strategy {spec['strategy']!r}", parameter="strategy")
    md = ctx.market_data(spec["data"])
    target = info.target() if info.cls is None else _sampled(info.cls, emit, md)
    bt = bt_core.Backtest(md, target, config=spec["config"])
    result = bt.run(progress=emit.progress, **spec["params"])
    stats = json_safe(result.stats)
    summary = {
        "bars": int(md.n_bars),
        "symbols": list(md.symbols),
        "start": md.index[0].isoformat(),
        "end": md.index[-1].isoformat(),
        "final_equity": float(result.final_equity),
        "fills": len(result.fills),
        "orders": len(result.orders),
        "trades": len(result.trades),
    }
    write_results(
        result,
        run_dir(ctx.data_dir, task["job_id"]),
        {"stats": stats, "summary": summary, "params": json_safe(result.params)},
    )
    eq = downsample(result.equity.to_frame("equity"), EQUITY_SAMPLE_POINTS)
    return {
        "stats": stats,
        "summary": summary,
        "equity": {
            "datetime": [t.isoformat() for t in eq.index],
            "equity": json_safe(eq["equity"].tolist()),
        },
    }


def run_backfill(ctx: WorkerContext, task: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    from bt_data import BarQuery, BarStore, MarketDataService

    spec = task["spec"]
    query = BarQuery(
        spec["symbols"], spec.get("start"), spec.get("end"), spec["period"], spec["adjust"]
    )
    service = MarketDataService(
        BarStore(ctx.config["store_path"]), ctx.provider(), progress=emit.progress
    )
    report = service.backfill(query)
    return {
        "summary": {
            "gaps": len(report.gaps),
            "requests": report.requests,
            "bars_written": report.bars_written,
            "absent_recorded": report.absent_recorded,
        }
    }


def run_optimization(ctx: WorkerContext, task: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    spec = task["spec"]
    info = ctx.registry.get(spec["strategy"])
    if info is None:
        raise bt_core.ParameterError(f"unknown strategy {spec['strategy']!r}", parameter="strategy")
    md = ctx.market_data(spec["data"])
    bt = bt_core.Backtest(md, info.target(), config=spec["config"])
    target = info.target()
    if spec["params"]:
        # Fixed parameters ride along as one-value dimensions of the space.
        space = {**{k: [v] for k, v in spec["params"].items()}, **spec["space"]}
    else:
        space = dict(spec["space"])
    # One process: the worker is the unit the server limits in time and memory.
    res = bt.optimize(
        space,
        spec["method"],
        maximize=spec.get("maximize"),
        minimize=spec.get("minimize"),
        n_trials=spec.get("trials"),
        seed=spec.get("seed"),
        n_jobs=1,
        backend="sequential",
        progress=False,
        on_trial=emit.trial,
    )
    summary = {
        "n_trials": int(res.n_trials),
        "n_failed": int(res.n_failed),
        "n_infeasible": int(getattr(res, "n_infeasible", 0) or 0),
        "best_params": json_safe(res.best_params),
        "best_score": json_safe(res.best_score),
        "objectives": [o.name for o in res.objectives],
        "strategy": target if isinstance(target, str) else target.__name__,
    }
    write_optimization(res, run_dir(ctx.data_dir, task["job_id"]), summary)
    return {"summary": summary, "stats": json_safe(res.best_stats)}


HANDLERS: dict[str, Callable[[WorkerContext, dict[str, Any], Emitter], dict[str, Any]]] = {
    "run": run_backtest,
    "backfill": run_backfill,
    "optimization": run_optimization,
}


def _watch_lifeline(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()
    os._exit(3)


def _warm_up() -> None:
    """One tiny run and one Parquet write, so the first real job does not pay for lazy
    imports and allocator arenas (which would also count against the memory cap)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    idx = pd.date_range("2020-01-01", periods=64, freq="D")
    close = 10 + np.sin(np.arange(64) / 4.0)
    df = pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0},
        index=idx,
    )
    res = bt_core.Backtest(df, "sma_cross").run(fast=3, slow=8)
    _ = res.stats, res.fills, res.orders, res.trades
    import io

    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(res.trades), io.BytesIO())


def main(conn: Connection, lifeline: Connection, config: dict[str, Any]) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    # Below the API in the scheduler: with every core busy running jobs, status requests and
    # WebSockets still get answered promptly (measured by benchmarks/bench_load.py).
    with contextlib.suppress(AttributeError, OSError):
        os.nice(WORKER_NICENESS)
    threading.Thread(target=_watch_lifeline, args=(lifeline,), daemon=True).start()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    _warm_up()
    # The memory limit is enforced by the supervisor, which watches this process's resident
    # memory and kills it when a job goes over. An address-space cap (RLIMIT_AS) would be
    # exact but breaks DuckDB and pyarrow, which reserve far more address space than they use.
    ctx = WorkerContext(config)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        emit = Emitter(conn)
        try:
            payload = HANDLERS[task["kind"]](ctx, task, emit)
            conn.send(("done", payload))
        except Exception as e:
            error = describe_exception(e)
            if error["code"] == "internal_error":
                log.error("job %s failed:\n%s", task.get("job_id"), traceback.format_exc())
            del e
            gc.collect()  # after a MemoryError, give the memory back before the next job
            conn.send(("error", error))


__all__ = [
    "HANDLERS",
    "Emitter",
    "WorkerContext",
    "bars_market_data",
    "dataset_file",
    "main",
    "read_store_bars",
]
