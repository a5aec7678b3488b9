"""Walk-forward analysis: optimise on an in-sample window, run the chosen parameters on the
out-of-sample window that follows, move on; rolling or anchored windows.

Each out-of-sample run starts flat with the run's cash on its own bars: indicators warm
up inside the window, and no position or information crosses from one window to the next.
The stitched out-of-sample equity chains the windows' returns (each window's curve scaled
to start where the previous one ended).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bt_core.errors import ParameterError
from bt_core.optimize._work import make_backtest, slice_data

if TYPE_CHECKING:
    from bt_core.backtest import Backtest
    from bt_core.optimize.result import OptimizeResult
    from bt_core.optimize.search import TrialCallback

_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
Length = int | str | pd.DateOffset


def parse_length(name: str, v: Length) -> int | pd.DateOffset:
    """A window length: an int (bars), ``"100b"`` (bars), ``"30D"``, ``"6W"``, ``"12M"``,
    ``"2Y"`` (calendar), or a number as text (months, as in ``--walk-forward 12:3``)."""
    if isinstance(v, pd.DateOffset):
        return v
    if isinstance(v, bool):
        raise ParameterError(f"{name} must be a length, got {v!r}", parameter=name)
    if isinstance(v, (int, np.integer)):
        if v < 1:
            raise ParameterError(f"{name} must be >= 1 bar, got {v}", parameter=name)
        return int(v)
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", v)
        if m:
            k, unit = int(m.group(1)), m.group(2).lower()
            if k < 1:
                raise ParameterError(f"{name} must be >= 1, got {v!r}", parameter=name)
            if unit in ("b", "bar", "bars"):
                return k
            if unit == "":
                return pd.DateOffset(months=k)
            if unit[:1] in _UNITS and unit in (
                unit[:1],
                unit[:1] + "s",
                _UNITS[unit[:1]],
                _UNITS[unit[:1]][:-1],
            ):
                offset: Any = pd.DateOffset
                return offset(**{_UNITS[unit[:1]]: k})  # type: ignore[no-any-return]
    raise ParameterError(
        f"{name}: bad length {v!r}; use bars (100 or '100b') or a duration ('30D', '6W', "
        "'12M', '2Y')",
        parameter=name,
    )


@dataclass(frozen=True)
class Window:
    """Bar ranges [is_start, is_stop) and [oos_start, oos_stop); oos_start == is_stop."""

    is_start: int
    is_stop: int
    oos_start: int
    oos_stop: int


def windows(
    index: pd.DatetimeIndex, train: Length, test: Length, *, anchored: bool = False
) -> list[Window]:
    """The walk-forward windows over ``index``: out-of-sample windows ``test`` long that tile
    the data after the first ``train``, each with the in-sample window ``train`` long just
    before it (anchored: from the first bar, growing). A last out-of-sample window shorter
    than ``test`` is dropped."""
    tr, te = parse_length("train", train), parse_length("test", test)
    n = len(index)
    out: list[Window] = []

    # A calendar window ending up to one bar spacing after the last bar is complete (the
    # data ends on a Friday, the month on a Sunday).
    spacing = pd.Timedelta(int(np.median(np.diff(index.asi8)))) if n > 1 else pd.Timedelta(0)

    def advance(pos: int, length: int | pd.DateOffset) -> int | None:
        if isinstance(length, int):
            end = pos + length
            return end if end <= n else None
        target = index[pos] + length
        end = int(index.searchsorted(target, side="left"))
        if end >= n and target > index[-1] + spacing:
            return None
        return end

    def back(pos: int, length: int | pd.DateOffset) -> int:
        if isinstance(length, int):
            return max(0, pos - length)
        return int(index.searchsorted(index[pos] - length, side="left"))

    # Each out-of-sample window starts where the previous one stopped (they tile the data);
    # its in-sample window is the ``train`` just before it (or everything before it).
    oos_start = advance(0, tr)
    while oos_start is not None and oos_start < n:
        oos_stop = advance(oos_start, te)
        if oos_stop is None or oos_stop <= oos_start:
            break
        out.append(Window(0 if anchored else back(oos_start, tr), oos_start, oos_start, oos_stop))
        oos_start = oos_stop
    if not out:
        raise ParameterError(
            f"the data ({n} bars, {index[0]} to {index[-1]}) is too short for one walk-forward "
            f"window of train={train!r} + test={test!r}",
            parameter="walk_forward",
        )
    return out


@dataclass
class WalkForwardResult:
    """Per window: the in-sample optimisation and the out-of-sample run of its best
    parameters.

    Attributes:
        table: one row per window: its bounds (times), the chosen parameters, the
            in-sample and out-of-sample score and the main statistics of both.
        oos_equity: the stitched out-of-sample equity curve (starts at the run's cash).
        efficiency: mean out-of-sample score / mean in-sample score (walk-forward
            efficiency; NaN when undefined).
        results: each window's OptimizeResult (kept small: no curves).
    """

    table: pd.DataFrame
    oos_equity: pd.Series
    efficiency: float
    windows: list[Window]
    results: list[OptimizeResult] = field(repr=False)
    oos_results: list[Any] = field(repr=False)


_SHOWN = ("total_return", "sharpe", "max_drawdown", "n_trades")


def walk_forward(
    bt: Backtest,
    space: Any,
    *,
    train: Length,
    test: Length,
    anchored: bool = False,
    on_trial: TrialCallback | None = None,
    **optimize_kwargs: Any,
) -> WalkForwardResult:
    """Walk-forward analysis of ``bt``'s strategy over ``space`` (see the module docstring).
    ``optimize_kwargs`` go to each in-sample :meth:`~bt_core.Backtest.optimize` (method,
    maximize/minimize, constraint, n_trials, n_jobs, backend, seed, ...).

    ``on_trial(done, total, row)`` is called after each in-sample trial of every window, as
    :func:`~bt_core.optimize.optimize` calls it, counted over the whole walk: ``total`` is
    the windows times the trials of one window's search (every window searches the same
    space), and ``row`` carries ``window`` (its number) beside the trial's columns."""
    from bt_core.optimize.search import optimize

    md = bt.data
    wins = windows(md.index, train, test, anchored=anchored)
    if on_trial is not None and not callable(on_trial):
        raise ParameterError(
            f"on_trial must be a callable(done, total, row), got {on_trial!r}",
            parameter="on_trial",
        )
    optimize_kwargs.setdefault("progress", False)
    rows: list[dict[str, Any]] = []
    results: list[OptimizeResult] = []
    oos_results: list[Any] = []
    curves: list[pd.Series] = []
    level = float(bt.config.cash)
    counted = [0]  # trials of the windows before this one
    for k, w in enumerate(wins):
        is_bt = _sub(bt, w.is_start, w.is_stop)
        if on_trial is not None:
            optimize_kwargs["on_trial"] = _window_trials(on_trial, k, len(wins), counted)
        res = optimize(is_bt, space, **optimize_kwargs)
        counted[0] += res.n_trials
        results.append(res)
        res.backtest = None  # the window's data need not outlive this loop
        obj = res.objectives[0]
        row: dict[str, Any] = {
            "window": k,
            "is_start": md.index[w.is_start],
            "is_end": md.index[w.is_stop - 1],
            "oos_start": md.index[w.oos_start],
            "oos_end": md.index[w.oos_stop - 1],
        }
        best = res.best_params
        for name in res.param_names:
            row[name] = None if best is None else best[name]
        is_stats = res.best_stats or {}
        row["is_score"] = obj.score(res.best_stats)
        if best is None:
            row["oos_score"] = math.nan
            row["error"] = "no in-sample trial succeeded"
            oos_results.append(None)
            rows.append(row)
            continue
        oos_bt = _sub(bt, w.oos_start, w.oos_stop)
        try:
            oos = oos_bt.run(**best)
            oos_stats = oos.stats
            row["oos_score"] = obj.score(oos_stats)
            row["error"] = None
            eq = oos.equity.to_numpy()
            curves.append(pd.Series(eq / eq[0] * level, index=oos.equity.index))
            level = float(curves[-1].iloc[-1])
        except Exception as e:  # a failing window is recorded, the walk goes on
            oos_stats = {}
            row["oos_score"] = math.nan
            row["error"] = f"{type(e).__name__}: {e}"
            oos = None
        oos_results.append(oos)
        for s in _SHOWN:
            row[f"is_{s}"] = is_stats.get(s)
            row[f"oos_{s}"] = oos_stats.get(s)
        rows.append(row)
    table = pd.DataFrame(rows)
    equity = pd.concat(curves) if curves else pd.Series(dtype=np.float64)
    equity.name = "oos_equity"
    is_mean = np.nanmean(table["is_score"].to_numpy(np.float64)) if len(table) else math.nan
    oos_mean = np.nanmean(table["oos_score"].to_numpy(np.float64)) if len(table) else math.nan
    eff = float(oos_mean / is_mean) if is_mean and math.isfinite(is_mean) else math.nan
    return WalkForwardResult(table, equity, eff, wins, results, oos_results)


def _window_trials(
    on_trial: TrialCallback, window: int, n_windows: int, counted: list[int]
) -> TrialCallback:
    """One window's trial callback, reporting to ``on_trial`` over the whole walk."""

    def report(done: int, total: int, row: dict[str, Any]) -> None:
        on_trial(counted[0] + done, total * n_windows, {"window": window, **row})

    return report


def _sub(bt: Backtest, start: int, stop: int) -> Backtest:
    from bt_core.optimize._work import Job

    job = Job(bt.strategy, bt.config, bt.benchmark)  # type: ignore[arg-type]
    return make_backtest(slice_data(bt.data, start, stop), job)


__all__ = ["WalkForwardResult", "Window", "parse_length", "walk_forward", "windows"]
