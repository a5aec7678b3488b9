"""The search: which parameter sets run (grid, random, Bayesian / multi-objective with
optuna), on which backend, with progress, Ctrl-C and resumable studies."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from bt_core._optional import require
from bt_core.backtest import BUILTINS
from bt_core.errors import ParameterError
from bt_core.optimize import backends as be
from bt_core.optimize._work import FOLD, Diagnostics, Job, Row
from bt_core.optimize.objective import Objective, objectives
from bt_core.optimize.result import OptimizeResult, build_table, table_record
from bt_core.optimize.space import Constraint, Params, Space, feasible

if TYPE_CHECKING:
    from bt_core.backtest import Backtest

METHODS = ("grid", "random", "bayes")

#: ``on_trial(done, total, row)``: see :func:`optimize`.
TrialCallback = Callable[[int, int, dict[str, Any]], None]
_ROW_ATTR = "bt_row"


def _known_params(bt: Backtest) -> tuple[list[str], str]:
    s = bt.strategy
    if s is None:
        raise ParameterError(
            "optimize needs a strategy: pass one to Backtest(...)", parameter="strategy"
        )
    if isinstance(s, str):
        return list(BUILTINS[s]), s
    return list(s.parameters()), s.__name__


def _runner(
    backend: str,
    bt: Backtest,
    job: Job,
    n: int,
    start_method: str | None,
    chunk: int | None,
    total: int | None,
) -> be.Runner:
    """The backend's runner; ``total`` is the number of sets when known up front (None for
    Bayesian search, which asks for one set at a time)."""
    # Once, here: forked workers inherit them, the others receive them with the data, and
    # no worker's first set computes them beside its run.
    bt.data.facts()
    if backend == "rust":
        return be.Rust(bt, job, n, chunk or 512)
    if backend == "sequential" or n == 1 and backend in ("process", "thread"):
        return be.Sequential(bt, job)
    if backend == "thread":
        return be.Threads(bt, job, n)
    if backend == "process":
        return be.Processes(bt.data, job, n, start_method)
    if chunk is None:
        # Sets per Ray task: about 8 tasks per worker, so that Ray's cost per task
        # (scheduling, the driver's wait) is spread without leaving a long tail.
        chunk = 1 if total is None else max(1, total // (8 * n))
    return be.Ray(bt.data, job, n, chunk)


class _Progress:
    """A progress bar with ETA on stderr (rich), or nothing."""

    def __init__(self, show: bool | None, total: int | None, label: str) -> None:
        self.bar: Any = None
        if show is None:
            show = sys.stderr.isatty()
        if not show:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.bar.add_task(label, total=total, best="")
        self.bar.start()

    def advance(self, best: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, best=best)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _grid_tasks(
    space: Space, constraint: Constraint | None
) -> tuple[list[tuple[int, Params]], int]:
    tasks: list[tuple[int, Params]] = []
    infeasible = 0
    for p in space.grid():
        if feasible(constraint, p):
            tasks.append((len(tasks), p))
        else:
            infeasible += 1
    return tasks, infeasible


def _random_tasks(
    space: Space, constraint: Constraint | None, n_trials: int, seed: Any
) -> tuple[list[tuple[int, Params]], int]:
    rng = np.random.default_rng(seed)
    seen: set[tuple[Any, ...]] = set()
    tasks: list[tuple[int, Params]] = []
    infeasible = 0
    attempts = 0
    # A finite space may hold fewer distinct sets than asked for: stop after many misses.
    while len(tasks) < n_trials and attempts < 100 * n_trials + 1000:
        attempts += 1
        p = space.sample(rng)
        key = tuple(repr(p[k]) for k in space.names)
        if key in seen:
            continue
        seen.add(key)
        if not feasible(constraint, p):
            infeasible += 1
            continue
        tasks.append((len(tasks), p))
    return tasks, infeasible


def _row_attr(r: Row) -> dict[str, Any]:
    d = r.diag
    return {
        "params": r.params,
        "stats": r.stats,
        "error": r.error,
        "error_type": r.error_type,
        "duration": r.duration,
        "diag": None
        if d is None
        else {
            "sr": d.sr,
            "skew": d.skew,
            "kurtosis": d.kurtosis,
            "n_obs": d.n_obs,
            "blocks": d.blocks.tolist(),
            "cv": None if d.cv is None else {k: v.tolist() for k, v in d.cv.items()},
        },
    }


def _row_from_attr(trial: int, a: dict[str, Any]) -> Row:
    d = a.get("diag")
    diag = (
        None
        if d is None
        else Diagnostics(
            d["sr"],
            d["skew"],
            d["kurtosis"],
            d["n_obs"],
            np.asarray(d["blocks"], dtype=np.float64),
            None
            if d["cv"] is None
            else {k: np.asarray(v, dtype=np.float64) for k, v in d["cv"].items()},
        )
    )
    return Row(
        trial,
        dict(a["params"]),
        a["stats"],
        a["error"],
        a["error_type"],
        float(a["duration"]),
        diag,
    )


def _run_folds(
    runner: be.Runner, batch: list[tuple[Any, Params]], obj: Objective, folds: int
) -> tuple[dict[int, Row], set[int]]:
    """Each trial of the batch fold by fold: after fold k, the mean score of folds 0..k is
    reported to optuna and the pruner may stop the trial (its later folds never run). A
    trial's row: the mean score, each numeric stat averaged over the folds it ran."""
    alive = {t.number: (t, p) for t, p in batch}
    done: dict[int, list[Row]] = {n: [] for n in alive}
    failed: dict[int, Row] = {}
    pruned: set[int] = set()
    for k in range(folds):
        if not alive:
            break
        tasks = [(n, {**p, FOLD: k}) for n, (_, p) in sorted(alive.items())]
        for row in sorted(runner.run(tasks), key=lambda r: r.trial):
            n = row.trial
            trial, _ = alive[n]
            if row.error is not None:
                failed[n] = row
                del alive[n]
                continue
            done[n].append(row)
            trial.report(float(np.nanmean([obj.score(r.stats) for r in done[n]])), k)
            if k < folds - 1 and trial.should_prune():
                pruned.add(n)
                del alive[n]
    out: dict[int, Row] = dict(failed)
    for n, fold_rows in done.items():
        if n in failed:
            continue
        out[n] = _fold_row(n, fold_rows, obj, n in pruned, folds)
    return out, pruned


def _fold_row(n: int, fold_rows: list[Row], obj: Objective, pruned: bool, folds: int) -> Row:
    stats: dict[str, Any] = {}
    for key in fold_rows[0].stats or {}:
        vals = [r.stats.get(key) for r in fold_rows if r.stats is not None]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        stats[key] = float(np.mean(nums)) if len(nums) == len(vals) else vals[-1]
    if isinstance(obj.key, str):
        scores = [obj.score(r.stats) for r in fold_rows]
        stats[obj.key] = float(np.nanmean(scores)) if not all(map(math.isnan, scores)) else None
    stats["folds_run"] = len(fold_rows)
    return Row(
        trial=n,
        params=dict(fold_rows[0].params),
        stats=stats,
        error=f"pruned after fold {len(fold_rows) - 1} of {folds}" if pruned else None,
        error_type="TrialPruned" if pruned else None,
        duration=sum(r.duration for r in fold_rows),
    )


def _bayes(
    runner: be.Runner,
    space: Space,
    objs: list[Objective],
    constraint: Constraint | None,
    n_trials: int,
    seed: Any,
    storage: Any,
    study_name: str | None,
    on_row: Callable[[Row], None],
    folds: int = 0,
    pruner: Any = None,
) -> tuple[Any, int, list[Row]]:
    """Ask-tell with optuna in batches of the runner's width: every trial of a batch is
    asked before any is told, so that a seed gives the same trials whatever order the
    workers finish in. Returns (study, infeasible count, rows of earlier sessions)."""
    optuna = require("optuna", extra="optimize", feature="method='bayes'")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions: Any = ["maximize" if o.maximize else "minimize" for o in objs]
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if len(objs) == 1
        else optuna.samplers.NSGAIISampler(seed=seed)
    )
    if folds and pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5)
    study = optuna.create_study(
        pruner=pruner,
        storage=storage,
        study_name=study_name or ("bt-optimize" if storage is not None else None),
        load_if_exists=storage is not None,
        sampler=sampler,
        directions=directions,
    )
    from optuna.trial import TrialState

    earlier: list[Row] = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.FAIL) and _ROW_ATTR in t.user_attrs:
            earlier.append(_row_from_attr(t.number, t.user_attrs[_ROW_ATTR]))
    for r in earlier:
        on_row(r)
    remaining = n_trials - len(earlier)
    infeasible = 0
    misses = 0
    while remaining > 0:
        batch: list[tuple[Any, Params]] = []
        while len(batch) < min(runner.width, remaining):
            trial = study.ask()
            params = space.suggest(trial)
            if feasible(constraint, params):
                batch.append((trial, params))
                continue
            infeasible += 1
            misses += 1
            study.tell(trial, state=TrialState.PRUNED)
            if misses > 50 * n_trials + 100:
                raise ParameterError(
                    "the Bayesian search cannot find parameter sets that satisfy the constraint",
                    parameter="constraint",
                )
        by_number = {t.number: (t, p) for t, p in batch}
        rows: dict[int, Row] = {}
        pruned: set[int] = set()
        try:
            if folds:
                rows, pruned = _run_folds(runner, batch, objs[0], folds)
                for number in sorted(rows):
                    on_row(rows[number])
            else:
                for row in runner.run([(t.number, p) for t, p in batch]):
                    rows[row.trial] = row
                    on_row(row)
        finally:
            # Told in trial order once the batch is complete (or stopped: unfinished
            # trials fail, so a resumed study does not wait for them).
            for number in sorted(by_number):
                trial, _ = by_number[number]
                got = rows.get(number)
                if got is None:
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                trial.set_user_attr(_ROW_ATTR, _row_attr(got))
                if number in pruned:
                    study.tell(trial, state=TrialState.PRUNED)
                    continue
                values = [o.score(got.stats) for o in objs]
                if got.error is not None or any(not math.isfinite(v) for v in values):
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    study.tell(trial, values if len(values) > 1 else values[0])
        remaining -= len(batch)
    return study, infeasible, earlier


def optimize(
    bt: Backtest,
    space: Any,
    method: str = "grid",
    *,
    maximize: Any = None,
    minimize: Any = None,
    constraint: Constraint | None = None,
    n_trials: int | None = None,
    n_jobs: int | None = None,
    backend: str = "process",
    seed: Any = None,
    storage: Any = None,
    study_name: str | None = None,
    progress: bool | None = None,
    cv: Any = None,
    blocks: int = 16,
    start_method: str | None = None,
    chunk: int | None = None,
    folds: int | None = None,
    pruner: Any = None,
    on_trial: TrialCallback | None = None,
) -> OptimizeResult:
    """See :meth:`bt_core.Backtest.optimize`; the options it passes on are documented there.

    ``on_trial(done, total, row)``, when given, is called in this (the calling) process after
    each finished trial, whatever the method and backend: ``done`` trials of ``total`` have
    finished (``total`` is the number of parameter sets to run: the grid or random sets the
    constraint keeps, or ``n_trials`` for Bayesian search; a resumed study's earlier trials
    are reported first and count as done), and ``row`` is the trial as a row of the result's
    table (a dict: ``trial``, the parameters, ``score`` or ``score_<stat>``, the trial's
    stats, ``error``, ``duration_s``). Trials arrive in the order they finish, not ranked.
    An exception raised by the callback stops the search and propagates.
    """
    if on_trial is not None and not callable(on_trial):
        raise ParameterError(
            f"on_trial must be a callable(done, total, row), got {on_trial!r}",
            parameter="on_trial",
        )
    names, strategy_name = _known_params(bt)
    sp = Space(space)
    sp.check_known(names, strategy_name)
    if maximize is None and minimize is None:
        maximize = "sharpe"
    # Statistic names are checked against the first run's stats (Result.stats carries more
    # than bt-analysis' METRIC_KEYS), before any other trial is counted.
    objs = objectives(maximize, minimize)
    named = [o for o in objs if isinstance(o.key, str)]
    if method not in METHODS:
        raise ParameterError(
            f"unknown method {method!r}; use one of {', '.join(METHODS)}", parameter="method"
        )
    if backend not in be.BACKENDS:
        raise ParameterError(
            f"unknown backend {backend!r}; use one of {', '.join(be.BACKENDS)}", parameter="backend"
        )
    if len(objs) > 1 and method != "bayes":
        raise ParameterError(
            "several objectives need method='bayes' (NSGA-II); grid and random rank by "
            "one objective",
            parameter="method",
        )
    if storage is not None and method != "bayes":
        raise ParameterError(
            "storage= keeps an optuna study: it needs method='bayes'", parameter="storage"
        )
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise ParameterError(
            f"n_trials must be an integer >= 1, got {n_trials!r}", parameter="n_trials"
        )
    if method == "grid" and n_trials is not None:
        raise ParameterError(
            "a grid runs every combination: n_trials is for random and bayes", parameter="n_trials"
        )
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0 or blocks % 2:
        raise ParameterError(
            f"blocks must be an even integer >= 0, got {blocks!r}", parameter="blocks"
        )
    if folds is not None:
        if method != "bayes" or len(objs) > 1:
            raise ParameterError(
                "folds= scores each Bayesian trial fold by fold so that a pruner can stop it "
                "early: it needs method='bayes' and one objective",
                parameter="folds",
            )
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ParameterError(f"folds must be an integer >= 2, got {folds!r}", parameter="folds")
    n = be.n_workers(n_jobs)
    job = Job(
        bt.strategy,  # type: ignore[arg-type]  # checked by _known_params
        bt.config,
        bt.benchmark,
        blocks,
        cv,
        folds=folds or 0,
    )

    tasks: list[tuple[int, Params]] = []
    infeasible = 0
    if method == "grid":
        tasks, infeasible = _grid_tasks(sp, constraint)
    elif method == "random":
        tasks, infeasible = _random_tasks(sp, constraint, n_trials or 100, seed)
    else:  # before any worker starts, so that a missing optuna costs nothing
        require("optuna", extra="optimize", feature="method='bayes'")
    if method != "bayes" and not tasks:
        raise ParameterError(
            f"no parameter set to run: the constraint excludes all {infeasible} of them",
            parameter="constraint",
        )
    total = len(tasks) if method != "bayes" else (n_trials or 100)

    rows: list[Row] = []
    best: dict[str, Any] = {"v": None}
    obj0 = objs[0]
    bar = _Progress(progress, total, f"{method} search")

    checked: list[bool] = []

    def on_row(r: Row) -> None:
        if named and r.stats is not None and not checked:
            checked.append(True)
            for o in named:
                if o.key not in r.stats:
                    word = "maximize" if o.maximize else "minimize"
                    raise ParameterError(
                        f"unknown statistic {o.key!r} to {word}; known: {', '.join(r.stats)}",
                        parameter=word,
                    )
        rows.append(r)
        v = obj0.score(r.stats)
        if math.isfinite(v) and (
            best["v"] is None or (v > best["v"] if obj0.maximize else v < best["v"])
        ):
            best["v"] = v
        bar.advance("" if best["v"] is None else f"best {obj0.name} {best['v']:.4g}")
        if on_trial is not None:
            on_trial(len(rows), total, table_record(r, sp.names, objs))

    interrupted = False
    study = None
    try:
        known = None if method == "bayes" else total
        with _runner(backend, bt, job, n, start_method, chunk, known) as runner:
            if method == "bayes":
                study, infeasible, _ = _bayes(
                    runner,
                    sp,
                    objs,
                    constraint,
                    n_trials or 100,
                    seed,
                    storage,
                    study_name,
                    on_row,
                    folds or 0,
                    pruner,
                )
            else:
                for r in runner.run(tasks):
                    on_row(r)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    table = build_table(rows, sp.names, objs)
    return OptimizeResult(
        table=table,
        param_names=sp.names,
        objectives=objs,
        method=method,
        backend=backend if n > 1 or backend in ("ray", "rust") else "sequential",
        rows=rows,
        backtest=bt,
        interrupted=interrupted,
        n_infeasible=infeasible,
        study=study,
        cv_spec=cv,
    )


__all__ = ["METHODS", "TrialCallback", "optimize"]
