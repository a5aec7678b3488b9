"""Objectives (what a sweep ranks by) and the ranking itself: NaN and failed trials last,
ties in trial order, and for several objectives the Pareto front first."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bt_core.errors import ParameterError

StatsFn = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Objective:
    """One objective: a stat's name or a function of the stats dict, and its direction."""

    name: str
    key: str | StatsFn
    maximize: bool

    def score(self, stats: dict[str, Any] | None) -> float:
        """The score of a trial's stats; NaN when it failed, the stat is missing or None, or
        the function returns something that is not a finite-or-infinite number."""
        if stats is None:
            return math.nan
        v = stats.get(self.key) if isinstance(self.key, str) else self.key(stats)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            return math.nan
        return float(v)


def _one(spec: Any, maximize: bool, known: Sequence[str]) -> Objective:
    if isinstance(spec, str):
        if known and spec not in known:
            raise ParameterError(
                f"unknown statistic {spec!r} to {'maximize' if maximize else 'minimize'}; "
                f"known: {', '.join(known)}",
                parameter="maximize" if maximize else "minimize",
            )
        return Objective(spec, spec, maximize)
    if callable(spec):
        name = getattr(spec, "__name__", "objective")
        return Objective("score" if name == "<lambda>" else name, spec, maximize)
    raise ParameterError(
        f"an objective is a statistic's name or a function of the stats dict, got {spec!r}",
        parameter="maximize" if maximize else "minimize",
    )


def objectives(maximize: Any, minimize: Any, known: Sequence[str] = ()) -> list[Objective]:
    """``maximize``/``minimize``: a stat name, a callable(stats) -> float, or a list of them
    (several objectives; both lists may be given together)."""
    out: list[Objective] = []
    for spec, up in ((maximize, True), (minimize, False)):
        if spec is None:
            continue
        specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
        if not specs:
            raise ParameterError(
                f"{'maximize' if up else 'minimize'} is an empty list",
                parameter="maximize" if up else "minimize",
            )
        out.extend(_one(s, up, known) for s in specs)
    if not out:
        raise ParameterError(
            "nothing to optimise: give maximize= or minimize=", parameter="maximize"
        )
    names = [o.name for o in out]
    for i, n in enumerate(names):
        if n in names[:i]:
            # Two functions both called "score" (lambdas): number them.
            out[i] = Objective(f"{n}_{i}", out[i].key, out[i].maximize)
    return out


def _keys(scores: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Scores turned so that smaller is better in every column (a copy)."""
    k = scores.astype(np.float64, copy=True)
    for j, up in enumerate(maximize):
        if up:
            k[:, j] = -k[:, j]
    return k


def pareto_ranks(scores: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting: 0 for the Pareto front, 1 for the front once it is removed, ...
    Rows with a NaN score get rank -1 (they are ranked after every other row)."""
    n = scores.shape[0]
    ranks = np.full(n, -1, dtype=np.int64)
    k = _keys(scores, maximize)
    valid = ~np.isnan(k).any(axis=1)
    left = np.flatnonzero(valid)
    r = 0
    while left.size:
        sub = k[left]
        # a dominates b: a <= b everywhere and a < b somewhere.
        le = (sub[:, None, :] <= sub[None, :, :]).all(axis=2)
        lt = (sub[:, None, :] < sub[None, :, :]).any(axis=2)
        dominated = (le & lt).any(axis=0)
        front = left[~dominated]
        ranks[front] = r
        left = left[dominated]
        r += 1
    return ranks


def ranking(
    scores: np.ndarray,
    maximize: Sequence[bool],
    failed: np.ndarray,
    trials: np.ndarray | None = None,
) -> np.ndarray:
    """The order of the rows, best first.

    One objective: by score (higher first when maximised, lower first when minimised; 0.0
    ranks above -0.5 and below 0.5 as numbers do), NaN scores after every number, failed
    trials after those; equal scores keep their trial order (a stable sort). Several
    objectives: by Pareto rank, then by the first objective, then trial order; rows with any
    NaN score, then failed rows, last.
    """
    n = scores.shape[0]
    # Ties go by trial number, not by the order rows arrived in from the workers.
    order = np.arange(n) if trials is None else np.asarray(trials)
    k = _keys(scores, maximize)
    nan_any = np.isnan(k).any(axis=1)
    group = np.where(failed, 2, np.where(nan_any, 1, 0))
    first = np.where(np.isnan(k[:, 0]), 0.0, k[:, 0]) if n else k[:, 0]
    first = first + 0.0  # -0.0 and 0.0 are equal scores: ties keep trial order
    if scores.shape[1] == 1:
        return np.lexsort((order, first, group))
    ranks = pareto_ranks(scores, maximize)
    ranks = np.where(ranks < 0, 0, ranks)
    return np.lexsort((order, first, ranks, group))


__all__ = ["Objective", "objectives", "pareto_ranks", "ranking"]
