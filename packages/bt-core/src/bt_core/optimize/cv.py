"""Cross-validation for time series: purged k-fold and combinatorial purged cross-validation
(CPCV) with an embargo (M. López de Prado, *Advances in Financial Machine Learning*, Wiley
2018, chapters 7 and 12).

Observations are a run's per-bar returns: observation ``i`` is the return from bar ``i`` to
bar ``i + 1``. The ``n`` observations are cut into contiguous groups; a split tests on one
group (k-fold) or on ``k`` of ``N`` groups (CPCV) and trains on the rest, less

- the purge: the ``purge`` observations just before each test segment (whose outcome
  overlaps the test period when a decision looks ``purge`` bars ahead, e.g. an indicator
  window or a holding period), and
- the embargo: the ``embargo`` observations just after each test segment (serial
  correlation carries test information into the following train data).

``purge`` and ``embargo`` are numbers of observations, or a fraction of ``n`` when < 1.

In a parameter search (``Backtest.optimize(..., cv=...)``) every parameter set is run
once over the whole data; each row carries the moments of its returns on every train set
and test group, and :func:`evaluate_cv` picks, per split, the set with the best train
Sharpe ratio and measures it on the test groups (and, for CPCV, on the φ backtest paths).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from bt_core.errors import ParameterError


def _count(name: str, v: float | int, n: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or v < 0:
        raise ParameterError(f"{name} must be a number >= 0, got {v!r}", parameter=name)
    return int(math.ceil(float(v) * n)) if 0 < v < 1 else int(v)


class _Groups(ABC):
    n_groups: int
    purge: float | int
    embargo: float | int

    def groups(self, n: int) -> list[np.ndarray]:
        if n < self.n_groups:
            raise ParameterError(
                f"{n} observations cannot make {self.n_groups} groups", parameter="n_groups"
            )
        return np.array_split(np.arange(n), self.n_groups)

    @abstractmethod
    def _test_sets(self) -> list[tuple[int, ...]]:
        """The groups held out by each split."""

    def split(self, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(train indices, test indices) of each split, over ``n`` observations."""
        groups = self.groups(n)
        purge, embargo = _count("purge", self.purge, n), _count("embargo", self.embargo, n)
        for test_groups in self._test_sets():
            test = np.concatenate([groups[g] for g in test_groups])
            keep = np.ones(n, dtype=bool)
            keep[test] = False
            for g in test_groups:
                lo, hi = int(groups[g][0]), int(groups[g][-1]) + 1
                keep[max(0, lo - purge) : lo] = False
                keep[hi : min(n, hi + embargo)] = False
            yield np.flatnonzero(keep), test

    @property
    def n_splits(self) -> int:
        return len(self._test_sets())

    def test_groups(self) -> list[tuple[int, ...]]:
        return self._test_sets()

    def trial_moments(self, r: np.ndarray) -> dict[str, np.ndarray]:
        """(count, mean, M2) of ``r`` on each split's train set and on each group."""
        from bt_core.optimize._work import moments

        train = np.array([moments(r[tr]) for tr, _ in self.split(len(r))])
        groups = np.array([moments(r[g]) for g in self.groups(len(r))])
        return {"train": train, "groups": groups}


class PurgedKFold(_Groups):
    """k contiguous folds; each is the test set once, the others (purged and embargoed
    around it) the train set."""

    def __init__(
        self, n_splits: int = 5, *, purge: float | int = 0, embargo: float | int = 0
    ) -> None:
        if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
            raise ParameterError(
                f"n_splits must be an integer >= 2, got {n_splits!r}", parameter="n_splits"
            )
        self.n_groups, self.purge, self.embargo = n_splits, purge, embargo

    def _test_sets(self) -> list[tuple[int, ...]]:
        return [(g,) for g in range(self.n_groups)]

    def __repr__(self) -> str:
        return f"PurgedKFold({self.n_groups}, purge={self.purge}, embargo={self.embargo})"


@dataclass(frozen=True)
class CombinatorialPurgedKFold(_Groups):
    """CPCV: ``n_groups`` contiguous groups, every choice of ``n_test_groups`` of them as the
    test set (C(N, k) splits), which assemble into φ = k/N · C(N, k) complete backtest paths
    (López de Prado 2018, section 12.4)."""

    n_groups: int = 6  # type: ignore[misc]
    n_test_groups: int = 2
    purge: float | int = 0
    embargo: float | int = 0

    def __post_init__(self) -> None:
        for name, v in (("n_groups", self.n_groups), ("n_test_groups", self.n_test_groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {v!r}", parameter=name)
        if not 1 <= self.n_test_groups < self.n_groups:
            raise ParameterError(
                f"n_test_groups must be between 1 and n_groups - 1 ({self.n_groups - 1}), "
                f"got {self.n_test_groups}",
                parameter="n_test_groups",
            )

    def _test_sets(self) -> list[tuple[int, ...]]:
        return list(combinations(range(self.n_groups), self.n_test_groups))

    @property
    def n_paths(self) -> int:
        return math.comb(self.n_groups, self.n_test_groups) * self.n_test_groups // self.n_groups

    def paths(self) -> list[list[int]]:
        """For each path, the split that supplies each group (path p takes, for group g, the
        p-th split that tests g)."""
        by_group: list[list[int]] = [[] for _ in range(self.n_groups)]
        for s, tg in enumerate(self._test_sets()):
            for g in tg:
                by_group[g].append(s)
        return [[by_group[g][p] for g in range(self.n_groups)] for p in range(self.n_paths)]


# ----- evaluation of a sweep ---------------------------------------------------------------


def _sharpe(m: np.ndarray) -> float:
    n, _, m2 = m
    if n < 2 or m2 <= 0:
        return math.nan
    return float(m[1] / math.sqrt(m2 / (n - 1)))


def _merge(parts: Sequence[np.ndarray]) -> np.ndarray:
    p = np.asarray(parts, dtype=np.float64)
    n = p[:, 0].sum()
    if n == 0:
        return np.zeros(3)
    mean = (p[:, 0] * p[:, 1]).sum() / n
    m2 = p[:, 2].sum() + (p[:, 0] * (p[:, 1] - mean) ** 2).sum()
    return np.array([n, mean, m2])


@dataclass
class CVResult:
    """Per split: the trial chosen on the train set and its test performance; for CPCV, the
    Sharpe ratio of each backtest path; and the share of splits whose chosen trial ranks in
    the bottom half of the test set (an overfitting rate, as in CSCV).

    Sharpe ratios are per observation times ``sqrt(periods_per_year)`` (annualised) when the
    periods per year are known, else per observation."""

    splits: pd.DataFrame
    paths: pd.DataFrame | None
    overfit_rate: float
    scale: float


def evaluate_cv(
    cv: Any,
    trials: Sequence[int],
    params: Sequence[dict[str, Any]],
    moments_of: Sequence[dict[str, np.ndarray]],
    periods_per_year: float | None,
) -> CVResult:
    scale = math.sqrt(periods_per_year) if periods_per_year else 1.0
    test_sets = cv.test_groups()
    rows = []
    chosen: list[int] = []
    below = 0
    for s, tg in enumerate(test_sets):
        train_sr = np.array([_sharpe(m["train"][s]) for m in moments_of])
        test_sr = np.array([_sharpe(_merge([m["groups"][g] for g in tg])) for m in moments_of])
        if np.isnan(train_sr).all():
            chosen.append(-1)
            continue
        best = int(np.nanargmax(train_sr))
        chosen.append(best)
        v = np.where(np.isnan(test_sr), -np.inf, test_sr)
        rank = (v < v[best]).sum() + ((v == v[best]).sum() + 1) / 2
        below += int(rank / (len(v) + 1) <= 0.5)
        rows.append(
            {
                "split": s,
                "test_groups": ",".join(map(str, tg)),
                "trial": trials[best],
                **params[best],
                "train_sharpe": train_sr[best] * scale,
                "test_sharpe": test_sr[best] * scale,
                "test_rank_pct": float(rank / len(v)),
            }
        )
    paths_df = None
    if isinstance(cv, CombinatorialPurgedKFold):
        prow = []
        for p, splits_of in enumerate(cv.paths()):
            if any(chosen[s] < 0 for s in splits_of):
                continue
            merged = _merge([moments_of[chosen[s]]["groups"][g] for g, s in enumerate(splits_of)])
            prow.append(
                {
                    "path": p,
                    "sharpe": _sharpe(merged) * scale,
                    "trials": ",".join(str(trials[chosen[s]]) for s in splits_of),
                }
            )
        paths_df = pd.DataFrame(prow)
    n = len(rows)
    return CVResult(pd.DataFrame(rows), paths_df, below / n if n else math.nan, scale)


__all__ = ["CVResult", "CombinatorialPurgedKFold", "PurgedKFold", "evaluate_cv"]
