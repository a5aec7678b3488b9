"""``Backtest``: data + strategy + costs -> :class:`~bt_core.result.Result`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bt_core.config import RunConfig
from bt_core.data import FIELDS, MarketData, load_data
from bt_core.errors import BtCoreError, DataError, ParameterError, StrategyError, engine_errors
from bt_core.result import Result, RunOutput
from bt_core.strategy import Strategy
from bt_engine import Engine

if TYPE_CHECKING:
    from bt_core.optimize import OptimizeResult

#: Built-in Rust strategies and their parameters. An entry buys ``size`` units when given,
#: else ``pct`` of equity; ``pct=None`` (the default) is an equal share per symbol: all of
#: it for one symbol (costs included, as backtesting.py does).
BUILTINS: dict[str, dict[str, Any]] = {
    "sma_cross": {"fast": 10, "slow": 30, "size": None, "pct": None}
}


def _entry_size(size: Any, pct: Any, n_symbols: int) -> tuple[float, str]:
    """(amount, sizing) for a driver's entries: ``size`` units, else ``pct`` of equity (an
    equal share per symbol when None)."""
    if size is not None:
        return _number("size", size, positive=True), "units"
    if pct is None:
        return 1.0 / n_symbols, "pct"
    return _number("pct", pct, positive=True), "pct"

ProgressFn = Callable[[int, int], None]


def _utc_series(s: Any) -> pd.Series:
    """A benchmark on the same clock as the data: naive times are UTC, like the data's."""
    if not isinstance(s, pd.Series) or not isinstance(s.index, pd.DatetimeIndex):
        raise ParameterError("benchmark must be a pandas Series on a DatetimeIndex")
    idx = s.index.tz_localize("UTC") if s.index.tz is None else s.index.tz_convert("UTC")
    return s.set_axis(idx.as_unit("ns"))


def _number(name: str, v: Any, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise ParameterError(f"parameter {name} must be a number, got {v!r}", parameter=name)
    f = float(v)
    if not math.isfinite(f):
        raise ParameterError(f"parameter {name} must be finite, got {v!r}", parameter=name)
    if f < 0 or (positive and f == 0):
        raise ParameterError(
            f"parameter {name} must be {'> 0' if positive else '>= 0'}, got {v!r}", parameter=name
        )
    return f


class RejectedOrdersWarning(UserWarning):
    """Most of a run's orders were rejected: its statistics describe a strategy that barely
    traded (filter it in a sweep with ``warnings.simplefilter("ignore", ...)``)."""


@contextmanager
def _callback(phase: str) -> Iterator[None]:
    """An exception raised by the strategy's ``phase`` callback, as a StrategyError."""
    try:
        yield
    except BtCoreError:
        raise
    except Exception as e:
        raise StrategyError(
            f"strategy {phase}() raised {type(e).__name__}: {e}", phase=phase
        ) from e


class Backtest:
    """A backtest of ``strategy`` on ``data``.

    Args:
        data: a DataFrame (wide: DatetimeIndex + OHLCV columns in any case; or long with a
            ``symbol`` column), a dict of symbol -> DataFrame, a CSV/Parquet path, or a
            :class:`~bt_core.MarketData` from :func:`~bt_core.load_data` (validated once, reused
            as is: load once, run many).
        strategy: a :class:`Strategy` subclass, or the name of a built-in Rust strategy
            (``"sma_cross"``); may be None when only ``run_signals``/``run_weights`` are used.
        config: the run's settings, a :class:`~bt_core.RunConfig` (or a mapping of its fields).
        cash, commission, commission_min, commission_fixed, slippage_bps, fill_on,
            periods_per_year, day_offset_hours: shorthands that override the same field of
            ``config`` (see :class:`~bt_core.RunConfig` for what each means); any other
            RunConfig field (``fees``, ``slippage``, ``bar_path``, ``limit_fill``,
            ``volume_limit``, ...) may be given by keyword too.
        symbol: name for single-symbol data without a symbol column, or the one symbol to
            take from long data.
        benchmark: optional benchmark price or equity series for alpha/beta.
    """

    def __init__(
        self,
        data: Any,
        strategy: type[Strategy] | str | None = None,
        *,
        config: RunConfig | Mapping[str, Any] | None = None,
        cash: float | None = None,
        commission: float | None = None,
        commission_min: float | None = None,
        commission_fixed: float | None = None,
        slippage_bps: float | None = None,
        fill_on: str | None = None,
        periods_per_year: float | None = None,
        symbol: str | None = None,
        benchmark: pd.Series | None = None,
        day_offset_hours: float | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(strategy, str):
            if strategy not in BUILTINS:
                raise ParameterError(
                    f"unknown built-in strategy {strategy!r}; available: {', '.join(BUILTINS)}",
                    parameter="strategy",
                )
        elif strategy is not None and not (
            isinstance(strategy, type) and issubclass(strategy, Strategy)
        ):
            raise ParameterError(
                f"strategy must be a Strategy subclass or a built-in name, got {strategy!r}",
                parameter="strategy",
            )
        self.config: RunConfig = RunConfig.build(
            config,
            cash=cash,
            commission=commission,
            commission_min=commission_min,
            commission_fixed=commission_fixed,
            slippage_bps=slippage_bps,
            fill_on=fill_on,
            periods_per_year=periods_per_year,
            day_offset_hours=day_offset_hours,
            **settings,
        )
        self.strategy = strategy
        self.data: MarketData = load_data(data, symbol=symbol)
        # After the data: a market preset expands with its symbols and calendar.
        self._engine_config = self.config.to_engine(
            symbols=self.data.symbols, times=self.data.index
        )
        self.benchmark = _utc_series(benchmark) if benchmark is not None else None

    @property
    def periods_per_year(self) -> float | None:
        return self.config.periods_per_year

    # ----- running ---------------------------------------------------------------------
    def _engine(self, exposure_curve: bool = True) -> Engine:
        with engine_errors():
            return Engine(self.data.handle, self._engine_config, exposure_curve=exposure_curve)

    def run(self, progress: ProgressFn | None = None, **params: Any) -> Result:
        """Run the strategy with ``params`` overriding its class-attribute defaults.

        ``progress(done, total)`` is called every few thousand bars when given.
        """
        return self._run(params, progress)

    def _run(
        self,
        params: dict[str, Any],
        progress: ProgressFn | None = None,
        *,
        exposure_curve: bool = True,
    ) -> Result:
        """``run``; without ``exposure_curve`` the engine keeps only the curve's figures
        (the same stats, 8 bytes less per bar: what a sweep's worker holds per set), and
        ``result.exposure`` is unavailable."""
        if self.strategy is None:
            raise ParameterError("no strategy given: pass one to Backtest(...) or use run_signals")
        if isinstance(self.strategy, str):
            return self._run_builtin(self.strategy, params, exposure_curve)
        return self._run_python(self.strategy, params, progress, exposure_curve)

    def _run_builtin(
        self, name: str, params: dict[str, Any], exposure_curve: bool = True
    ) -> Result:
        defaults = BUILTINS[name]
        unknown = set(params) - set(defaults)
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {sorted(unknown)} for {name}; its parameters are: "
                f"{', '.join(defaults)}"
            )
        p = {**defaults, **params}
        for k in ("fast", "slow"):
            if isinstance(p[k], bool) or not isinstance(p[k], (int, np.integer)) or p[k] < 1:
                raise ParameterError(
                    f"parameter {k} must be an integer >= 1, got {p[k]!r}", parameter=k
                )
            if p[k] >= 2**64:  # the engine's window is a machine word
                raise ParameterError(
                    f"parameter {k} must be below 2**64, got {p[k]!r}", parameter=k
                )
        amount, sizing = _entry_size(p["size"], p["pct"], len(self.data.symbols))
        eng = self._engine(exposure_curve)
        with engine_errors():
            eng.run_sma_cross(int(p["fast"]), int(p["slow"]), amount, sizing)
        return self._result(eng, name, p, exposure_curve, stacklevel=5)

    def _run_python(
        self,
        cls: type[Strategy],
        params: dict[str, Any],
        progress: ProgressFn | None,
        exposure_curve: bool = True,
    ) -> Result:
        bound = cls._bind_params(params)
        strat = cls.__new__(cls)
        eng = self._engine(exposure_curve)
        bar = strat._attach(eng, self.data, bound)
        with engine_errors(), _callback("on_start"):
            if cls.__init__ is not object.__init__:  # a user-defined __init__ runs with params set
                cls.__init__(strat)
            strat.on_start()

        def overridden(name: str) -> Any:
            return (
                getattr(strat, name) if getattr(cls, name) is not getattr(Strategy, name) else None
            )

        warmup = getattr(strat, "warmup", None)
        if warmup is None:
            warmup = strat._auto_warmup()
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise ParameterError(
                f"warmup must be an integer >= 0 (or None: from the indicators), got {warmup!r}",
                parameter="warmup",
            )
        total = self.data.n_bars
        every = max(1, total // 100)
        tick = None if progress is None else (lambda done: progress(done, total))
        with engine_errors():
            eng.run_strategy(
                strat.next,
                bar,
                strat._normalize,
                on_order=overridden("on_order"),
                on_trade=overridden("on_trade"),
                progress=tick,
                progress_every=every if tick else 0,
                start=int(warmup),
                max_events_per_bar=self.config.max_events_per_bar,
            )
        with engine_errors(), _callback("on_stop"):
            strat.on_stop()
        return self._result(eng, cls.__name__, bound, exposure_curve, stacklevel=5)

    def run_signals(
        self,
        entries: Any,
        exits: Any,
        *,
        size: float | None = None,
        pct: float | None = None,
        short_entries: Any = None,
        short_exits: Any = None,
    ) -> Result:
        """Vectorized: on an entry while flat buy ``size`` units (when given) or ``pct`` of
        equity (default: an equal share per symbol, all of it for one; costs included); sell
        all on an exit; loop in Rust. With ``short_entries`` (shorting allowed: see
        ``allow_short``) a short entry while flat sells as much, and a ``short_exits`` signal
        buys the short back; a long entry wins over a short entry on the same bar.

        ``entries``/``exits``/``short_*``: bool arrays (bars,) or (bars, symbols), or
        Series/DataFrames on the data's index (columns = symbols).
        """
        e = self._matrix("entries", entries, bool)
        x = self._matrix("exits", exits, bool)
        se = None if short_entries is None else self._matrix("short_entries", short_entries, bool)
        sx = None if short_exits is None else self._matrix("short_exits", short_exits, bool)
        amount, sizing = _entry_size(size, pct, len(self.data.symbols))
        eng = self._engine()
        with engine_errors():
            eng.run_signals(e, x, amount, sizing, se, sx)
        return self._result(eng, "signals", {"size": size, "pct": pct})

    def run_weights(self, weights: Any, *, min_trade: float = 1e-9) -> Result:
        """Vectorized target weights (fraction of equity per symbol; negative: short, where
        shorting is allowed; in a cash account absolute weights sum to <= 1 per row).

        A row that is all NaN means "do not rebalance"; orders are sized at the decision bar's
        close and fill at the next open. Loop in Rust.
        """
        w = self._matrix("weights", weights, np.float64)
        min_trade = _number("min_trade", min_trade)
        eng = self._engine()
        with engine_errors():
            eng.run_weights(w, min_trade)
        return self._result(eng, "weights", {})

    def _matrix(self, name: str, values: Any, dtype: Any) -> np.ndarray:
        md = self.data
        if isinstance(values, (pd.Series, pd.DataFrame)):
            idx = values.index
            if not isinstance(idx, pd.DatetimeIndex):
                raise DataError(f"{name} must be indexed by datetime like the data")
            idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
            if not idx.equals(md.index):
                raise DataError(
                    f"{name} index does not match the data's {md.n_bars} timestamps "
                    f"(got {len(idx)} rows from {idx.min()} to {idx.max()})"
                )
            if isinstance(values, pd.DataFrame):
                missing = [s for s in md.symbols if s not in values.columns]
                if missing:
                    raise DataError(f"{name} has no column for symbols {missing}")
                values = values[list(md.symbols)].to_numpy()
            else:
                values = values.to_numpy()
        arr = np.asarray(values)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.shape != (md.n_bars, len(md.symbols)):
            raise DataError(
                f"{name} has shape {arr.shape}, expected ({md.n_bars}, {len(md.symbols)})"
            )
        if (
            dtype is bool
            and arr.dtype != bool
            and (pd.isna(arr).any() or not np.isin(arr, [0, 1]).all())
        ):
            raise DataError(f"{name} must be boolean (True/False), got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=dtype)

    # ----- parameter search ------------------------------------------------------------
    def optimize(
        self,
        space: Any,
        method: str = "grid",
        *,
        maximize: Any = None,
        minimize: Any = None,
        constraint: Callable[[dict[str, Any]], bool] | None = None,
        n_trials: int | None = None,
        n_jobs: int | None = None,
        backend: str = "process",
        seed: Any = None,
        storage: Any = None,
        **options: Any,
    ) -> OptimizeResult:
        """Search the strategy's parameters; see :mod:`bt_core.optimize`.

        Args:
            space: parameter name -> range text (``"5:50:5"``), ``range``, list, or
                :class:`~bt_core.optimize.Int`/``Float``/``Categorical`` (log ranges too).
            method: ``"grid"`` (every combination), ``"random"`` (``n_trials`` sets, seeded)
                or ``"bayes"`` (optuna TPE; NSGA-II with several objectives).
            maximize, minimize: a stat name, a callable(stats) -> float, or a list of them
                (multi-objective). Default: maximize ``"sharpe"``.
            constraint: callable(params) -> bool, applied before anything runs.
            n_jobs: workers (None: all cores; 1: in this process).
            backend: ``"process"`` (pool over all cores, data shared once), ``"thread"``,
                ``"ray"`` (local, or the cluster at ``RAY_ADDRESS``) or ``"rust"`` (the
                engine's batch sweep for built-in strategies).
            seed: makes random and Bayesian search reproducible (for a given ``n_jobs``).
            storage: an optuna storage (e.g. ``"sqlite:///study.db"``) to persist a Bayesian
                study; calling again with the same storage resumes it.
            options: ``study_name``, ``progress`` (bar with ETA; default on a terminal),
                ``cv`` (:class:`~bt_core.optimize.PurgedKFold` or
                ``CombinatorialPurgedKFold``), ``blocks`` (CSCV blocks, default 16),
                ``start_method`` (process pool: ``"fork"`` or ``"spawn"``), ``chunk``
                (sets per task: Ray, default about 8 tasks per worker, 1 for Bayesian
                search; Rust batch, default 512),
                ``folds`` and ``pruner`` (Bayesian: each trial scored fold by fold on
                contiguous parts of the data, and stopped early by an optuna pruner, by
                default the median pruner), ``on_trial`` (a callable(done, total, row)
                called in this process after each finished trial, on every backend; ``row``
                is the trial's row of the table as a dict; see
                :func:`bt_core.optimize.optimize`).

        Returns an :class:`~bt_core.optimize.OptimizeResult`: the ranked table (one row per
        set, every stat a column; a failing set is a row with its error), best parameters,
        ``best_result()``, the Pareto front and the overfitting statistics.
        """
        from bt_core.optimize import optimize

        return optimize(
            self,
            space,
            method,
            maximize=maximize,
            minimize=minimize,
            constraint=constraint,
            n_trials=n_trials,
            n_jobs=n_jobs,
            backend=backend,
            seed=seed,
            storage=storage,
            **options,
        )

    # ----- results ---------------------------------------------------------------------
    def _result(
        self,
        eng: Engine,
        name: str,
        params: dict[str, Any],
        exposure_curve: bool = True,
        stacklevel: int = 3,
    ) -> Result:
        """The Result of a finished engine; ``stacklevel`` points warnings at the caller of
        the public method (run_signals -> _result, run -> _run -> _run_* -> _result)."""
        md = self.data
        # Only the equity curve (a view, not a copy) is taken now; the engine's columns are
        # fetched and the tables built on first access, so sweeps that read equity or stats
        # do not pay for them.
        out = RunOutput(eng, md, exposure_curve=exposure_curve)
        rejected = sum(n for n, _ in out.rejections.values())
        if rejected * 2 > out.n_orders:
            warnings.warn(
                f"{rejected} of {out.n_orders} orders of {name} were rejected; see "
                "result.rejection_summary() and result.orders['reason_code']",
                RejectedOrdersWarning,
                stacklevel=stacklevel,
            )
        return Result(
            equity=pd.Series(eng.equity_curve(), index=md.index, name="equity", copy=False),
            params=dict(params),
            config=self.config.to_dict(),
            strategy=name,
            given_periods_per_year=self.config.periods_per_year,
            benchmark=self.benchmark,
            output=out,
        )


__all__ = ["BUILTINS", "Backtest", "FIELDS", "RejectedOrdersWarning"]
