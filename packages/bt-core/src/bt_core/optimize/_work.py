"""The unit of work of every backend (one parameter set -> one small row) and the ways the
market data reaches a worker once: inherited (fork), a file mapped read-only (spawn), the
Ray object store. The row of a parameter set is built from the same ``Backtest.run`` as a
single run, so its stats are that run's bit for bit."""

from __future__ import annotations

import contextlib
import importlib
import math
import mmap
import os
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import bt_analysis
import bt_engine
from bt_core.backtest import Backtest, RejectedOrdersWarning
from bt_core.config import RunConfig
from bt_core.data import FIELDS, MarketData
from bt_core.errors import BtCoreError, DataError, engine_errors
from bt_core.result import Result
from bt_core.strategy import Strategy

StrategySpec = type[Strategy] | str


@dataclass(frozen=True)
class Job:
    """What every trial of a sweep shares: the strategy, the run configuration, the
    benchmark, and which diagnostics a row carries (``blocks`` for the probability of
    overfitting, ``cv`` for cross-validation, ``keep_equity`` for walk-forward)."""

    strategy: StrategySpec | StrategyRef
    config: RunConfig
    benchmark: pd.Series | None = None
    blocks: int = 16
    cv: Any = None
    keep_equity: bool = False
    folds: int = 0


@dataclass
class Diagnostics:
    """Per-bar return facts of one trial, for the overfitting statistics: per-observation
    Sharpe ratio (mean / sample std), skewness, raw (not excess) kurtosis, the number of
    returns, and (count, mean, M2) of the returns in ``blocks`` contiguous blocks."""

    sr: float
    skew: float
    kurtosis: float
    n_obs: int
    blocks: np.ndarray
    cv: dict[str, np.ndarray] | None = None


@dataclass
class Row:
    """One finished trial: small, picklable, no equity curve unless asked for."""

    trial: int
    params: dict[str, Any]
    stats: dict[str, Any] | None
    error: str | None = None
    error_type: str | None = None
    duration: float = 0.0
    diag: Diagnostics | None = None
    equity: pd.Series | None = field(default=None, repr=False)


def moments(x: np.ndarray) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of ``x``."""
    n = int(x.size)
    if n == 0:
        return 0, 0.0, 0.0
    m = float(x.mean())
    return n, m, float(((x - m) ** 2).sum())


def block_moments(equity: np.ndarray, n_blocks: int) -> np.ndarray:
    """(count, mean, M2) of the returns of ``equity`` in ``n_blocks`` contiguous, nearly
    equal blocks (``np.array_split``'s: the first ``n % n_blocks`` one longer), each block's
    returns made from the curve when needed."""
    if n_blocks <= 0:
        return np.zeros((0, 3))
    size, extra = divmod(int(equity.size) - 1, n_blocks)
    cuts = np.cumsum([0] + [size + 1] * extra + [size] * (n_blocks - extra))
    return np.array(
        [
            moments(equity[a + 1 : b + 1] / equity[a:b] - 1.0)
            for a, b in zip(cuts[:-1], cuts[1:], strict=True)
        ],
        dtype=np.float64,
    )


def diagnostics(equity: np.ndarray, job: Job) -> Diagnostics:
    # No array of the returns (bt_analysis.return_moments makes them a block at a time): a
    # sweep holds this beside the curves of a set on every core at once.
    n = int(equity.size) - 1
    blocks = block_moments(equity, job.blocks)
    cv = None
    if job.cv is not None:
        cv = job.cv.trial_moments(equity[1:] / equity[:-1] - 1.0)
    if n < 1:
        return Diagnostics(math.nan, math.nan, math.nan, max(n, 0), blocks, cv)
    _, m, m2, m3, m4 = bt_analysis.return_moments(equity)
    sd = math.sqrt(m2 / (n - 1)) if n > 1 else math.nan
    sr = m / sd if sd and sd > 0 else math.nan
    if n > 2 and m2 > 0:
        var = m2 / n
        skew = (m3 / n) / var**1.5
        kurt = (m4 / n) / (var * var)
    else:
        skew, kurt = math.nan, math.nan
    return Diagnostics(sr, skew, kurt, n, blocks, cv)


def row_of(result: Result, trial: int, params: dict[str, Any], job: Job, t0: float) -> Row:
    stats = result.stats
    diag = diagnostics(result.equity.to_numpy(), job)
    return Row(
        trial=trial,
        params=params,
        stats=stats,
        # The whole trial, its diagnostics included.
        duration=time.perf_counter() - t0,
        diag=diag,
        equity=result.equity.copy() if job.keep_equity else None,
    )


def failed_row(trial: int, params: dict[str, Any], e: BaseException, t0: float) -> Row:
    if isinstance(e, BtCoreError):
        text = str(e)
    else:
        last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        text = f"{type(e).__name__}: {e}{where}"
    return Row(
        trial=trial,
        params=params,
        stats=None,
        error=text,
        error_type=type(e).__name__,
        duration=time.perf_counter() - t0,
    )


#: A task's parameter naming the fold to run on (Bayesian search with ``folds``).
FOLD = "__fold__"
#: Each worker's fold Backtests, built once per (Backtest, folds, fold).
_FOLDS: dict[tuple[int, int, int], Backtest] = {}


def fold_bounds(n_bars: int, folds: int, k: int) -> tuple[int, int]:
    """Bars [start, stop) of fold ``k`` of ``folds`` contiguous, nearly equal folds."""
    part = np.array_split(np.arange(n_bars), folds)[k]
    return int(part[0]), int(part[-1]) + 1


def _fold_backtest(bt: Backtest, job: Job, k: int) -> Backtest:
    key = (id(bt), job.folds, k)
    if key not in _FOLDS:
        lo, hi = fold_bounds(bt.data.n_bars, job.folds, k)
        _FOLDS[key] = make_backtest(slice_data(bt.data, lo, hi), job)
    return _FOLDS[key]


def evaluate(bt: Backtest, job: Job, trial: int, params: dict[str, Any]) -> Row:
    """Run one parameter set; an exception (in the strategy, or bad parameters) becomes a
    failed row with its message instead of stopping the sweep. A task naming a fold runs
    on that fold's bars only."""
    t0 = time.perf_counter()
    if FOLD in params:
        params = dict(params)
        bt = _fold_backtest(bt, job, int(params.pop(FOLD)))
    try:
        # Every row carries n_rejected; a warning per parameter set would only be noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RejectedOrdersWarning)
            # A row needs the exposure curve's figures only, not the curve.
            result = bt._run(params, exposure_curve=False)
        return row_of(result, trial, params, job, t0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        return failed_row(trial, params, e, t0)


def make_backtest(md: MarketData, job: Job) -> Backtest:
    return Backtest(md, resolve(job.strategy), config=job.config, benchmark=job.benchmark)


# ----- data: columns, slices, shared memory ---------------------------------------------


def columns(
    md: MarketData, start: int = 0, stop: int | None = None
) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    """The engine's input for bars ``start:stop`` of ``md``: per symbol, the rows where it has
    a bar (its NaN rows are "no bar" in the aligned layout, not prices). Symbols without a
    bar in the range are left out."""
    ts = md.ts[start:stop]
    names = (*FIELDS, *md.extra_fields)
    fields = {f: md.fields[f][start:stop] for f in names}
    symbols: list[str] = []
    cols: list[dict[str, np.ndarray]] = []
    for s, sym in enumerate(md.symbols):
        present = ~np.isnan(fields["close"][:, s])
        if not present.any():
            continue
        every = bool(present.all())
        d = {"ts": np.ascontiguousarray(ts if every else ts[present])}
        for f in names:
            col = fields[f][:, s]
            d[f] = np.ascontiguousarray(col if every else col[present])
        symbols.append(sym)
        cols.append(d)
    if not symbols:
        raise DataError(f"no bars in rows {start}:{stop} of the data")
    return symbols, cols


def slice_data(md: MarketData, start: int, stop: int) -> MarketData:
    """Bars ``start:stop`` of ``md`` as their own validated data handle: over the same
    memory when every symbol has a bar there (a fold or window costs no copy of its bars),
    else over a copy of the rows of the symbols that have."""
    close = md.fields["close"][start:stop]
    if close.size and bool((~np.isnan(close)).any(axis=0).all()):
        fields = {f: v[start:stop] for f, v in md.fields.items()}
        with engine_errors():
            shared = bt_engine.Data.shared(list(md.symbols), md.ts[start:stop], fields)
        return MarketData.from_handle(shared, md.index[start:stop])
    symbols, cols = columns(md, start, stop)
    with engine_errors():
        handle = bt_engine.Data(symbols, cols)
    index = md.index[start:stop] if len(symbols) == len(md.symbols) else None
    return MarketData.from_handle(handle, index)


@dataclass(frozen=True)
class SharedLayout:
    """Where the aligned columns of a data set sit in the file the workers map."""

    path: str
    n_bars: int
    symbols: tuple[str, ...]
    fields: tuple[str, ...]
    facts: dict[str, Any]


class SharedData:
    """The aligned data written once into a file, for worker processes that do not inherit
    the parent's memory (spawn, forkserver): each maps it read-only and the engine reads the
    mapping in place, so all of them share the one copy in the page cache, however many
    there are. In RAM (``/dev/shm``) where the system has it; removed when the sweep ends."""

    def __init__(self, md: MarketData) -> None:
        names = (*FIELDS, *md.extra_fields)
        where = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="bt-sweep-", suffix=".bin", dir=where)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(md.ts.data)
                for name in names:
                    f.write(np.ascontiguousarray(md.fields[name]).data)
        except BaseException:
            os.unlink(path)
            raise
        self.layout = SharedLayout(path, md.n_bars, md.symbols, names, md.facts())

    def close(self) -> None:
        # PermissionError: Windows keeps a file that a live process still maps (the workers
        # have exited by now; a mapping made elsewhere keeps the file until it is closed).
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.unlink(self.layout.path)


def attach(layout: SharedLayout) -> MarketData:
    """The data handle over a read-only mapping of the shared file (no copy)."""
    n, ns = layout.n_bars, len(layout.symbols)
    with open(layout.path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    ts = np.frombuffer(mapped, np.int64, n)
    fields = {
        name: np.frombuffer(mapped, np.float64, n * ns, 8 * n * (1 + k * ns)).reshape(n, ns)
        for k, name in enumerate(layout.fields)
    }
    with engine_errors():
        handle = bt_engine.Data.shared(list(layout.symbols), ts, fields)
    return MarketData.from_handle(handle).adopt(layout.facts)


# ----- strategies by reference (workers that import them) ------------------------------


@dataclass(frozen=True)
class StrategyRef:
    """A strategy class by module and name, with its file for modules loaded from a path
    (as ``bt optimize`` loads them) that a fresh process cannot import by name."""

    module: str
    qualname: str
    file: str | None

    @classmethod
    def of(cls, strategy: StrategySpec) -> StrategySpec | StrategyRef:
        if isinstance(strategy, str):
            return strategy
        mod = importlib.import_module(strategy.__module__)
        return cls(strategy.__module__, strategy.__qualname__, getattr(mod, "__file__", None))

    def load(self) -> type[Strategy]:
        from bt_core.loading import import_strategy_file

        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            if self.file is None:
                raise
            mod = import_strategy_file(self.file)
        obj: Any = mod
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]


def resolve(strategy: StrategySpec | StrategyRef) -> StrategySpec:
    return strategy.load() if isinstance(strategy, StrategyRef) else strategy


__all__ = [
    "Diagnostics",
    "Job",
    "Row",
    "SharedData",
    "SharedLayout",
    "StrategyRef",
    "attach",
    "block_moments",
    "columns",
    "evaluate",
    "make_backtest",
    "moments",
    "slice_data",
]
