"""``OptimizeResult``: the table of a sweep (one row per parameter set, every stat a column,
ranked), its best parameters, the best run on demand, the Pareto front and the overfitting
statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bt_analysis import METRIC_KEYS
from bt_core.optimize._work import Row
from bt_core.optimize.objective import Objective, pareto_ranks, ranking
from bt_core.optimize.overfit import PBO, DeflatedSharpe, deflated_sharpe_ratio, pbo_from_blocks

if TYPE_CHECKING:
    from bt_core.backtest import Backtest
    from bt_core.optimize.cv import CVResult
    from bt_core.result import Result


def score_columns(objs: Sequence[Objective]) -> list[str]:
    """``score`` for one objective; ``score_<name>`` for each of several (the stat of the
    same name stays its own column)."""
    return ["score"] if len(objs) == 1 else [f"score_{o.name}" for o in objs]


def table_record(
    r: Row, names: Sequence[str], objs: Sequence[Objective], stat_keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """One trial as a row of the table: trial, the parameters, the score(s), the stats
    (``stat_keys``, else the trial's own), the error and the run time."""
    rec: dict[str, Any] = {"trial": r.trial}
    for n in names:
        rec[n] = r.params.get(n)
    for c, o in zip(score_columns(objs), objs, strict=True):
        rec[c] = o.score(r.stats)
    keys = stat_keys if stat_keys is not None else list(r.stats or ())
    for k in keys:
        rec[k] = r.stats.get(k) if r.stats is not None else None
    rec["error"] = r.error
    rec["duration_s"] = r.duration
    return rec


def build_table(
    rows: Sequence[Row], names: Sequence[str], objs: Sequence[Objective]
) -> pd.DataFrame:
    """Rows -> the ranked table: trial, the parameters, the score(s), every stat, the
    error and the run time, best first."""
    score_cols = score_columns(objs)
    # Every stat a column: the documented metrics first, then any other key the runs'
    # stats carry, in the order they first appear.
    stat_keys = list(METRIC_KEYS)
    for r in rows:
        for k in r.stats or ():
            if k not in stat_keys:
                stat_keys.append(k)
    records = [table_record(r, names, objs, stat_keys) for r in rows]
    cols = ["trial", *names, *score_cols, *stat_keys, "error", "duration_s"]
    df = pd.DataFrame.from_records(records, columns=cols)
    if len(objs) > 1 and len(df):
        df.insert(
            1 + len(names) + len(score_cols),
            "pareto_rank",
            pareto_ranks(df[score_cols].to_numpy(np.float64), [o.maximize for o in objs]),
        )
    if not len(df):
        return df
    scores = df[score_cols].to_numpy(np.float64)
    failed = df["error"].notna().to_numpy()
    order = ranking(scores, [o.maximize for o in objs], failed, df["trial"].to_numpy())
    return df.iloc[order].reset_index(drop=True)


@dataclass
class OptimizeResult:
    """The outcome of :meth:`bt_core.Backtest.optimize`.

    Attributes:
        table: one row per parameter set run: ``trial`` (the order it was proposed in), the
            parameters, ``score`` (or one column per objective and ``pareto_rank``), every
            statistic of ``Result.stats``, ``error`` (None unless the run raised) and
            ``duration_s``; best first (NaN scores, then failed trials, last; ties in trial
            order).
        objectives: what the table is ranked by.
        method, backend: how it ran. interrupted: Ctrl-C stopped it (the table holds what
            finished). n_infeasible: parameter sets the constraint kept out.
        study: the optuna study (Bayesian / multi-objective search), else None.
    """

    table: pd.DataFrame
    param_names: list[str]
    objectives: list[Objective]
    method: str
    backend: str
    rows: list[Row] = field(repr=False)
    backtest: Backtest | None = field(default=None, repr=False)
    interrupted: bool = False
    n_infeasible: int = 0
    study: Any = field(default=None, repr=False)
    cv_spec: Any = field(default=None, repr=False)

    # ----- the answer ---------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        return len(self.table)

    @property
    def n_failed(self) -> int:
        return int(self.table["error"].notna().sum()) if len(self.table) else 0

    @property
    def failed(self) -> pd.DataFrame:
        return self.table[self.table["error"].notna()]

    def _best_row(self) -> pd.Series | None:
        if not len(self.table):
            return None
        top = self.table.iloc[0]
        score_cols = score_columns(self.objectives)
        if top["error"] is not None and not pd.isna(top["error"]):
            return None
        if any(pd.isna(top[c]) for c in score_cols):
            return None
        return top

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best parameter set (None when no trial has a score)."""
        top = self._best_row()
        if top is None:
            return None
        row = self._row(int(top["trial"]))
        return dict(row.params)

    @property
    def best_score(self) -> float | None:
        top = self._best_row()
        if top is None or len(self.objectives) != 1:
            return None
        return float(top["score"])

    @property
    def best_stats(self) -> dict[str, Any] | None:
        top = self._best_row()
        return None if top is None else self._row(int(top["trial"])).stats

    def best_result(self) -> Result:
        """The best parameter set run again (a sweep keeps no equity curves), equal to its
        row bit for bit."""
        if self.backtest is None:
            raise ValueError("this OptimizeResult has no Backtest to re-run (it was unpickled)")
        params = self.best_params
        if params is None:
            raise ValueError("no trial succeeded with a score: there is no best result")
        return self.backtest.run(**params)

    @property
    def pareto_front(self) -> pd.DataFrame:
        """The non-dominated rows (several objectives; the best row for one)."""
        if len(self.objectives) == 1:
            return self.table.head(1 if self._best_row() is not None else 0)
        return self.table[self.table["pareto_rank"] == 0].reset_index(drop=True)

    def _row(self, trial: int) -> Row:
        for r in self.rows:
            if r.trial == trial:
                return r
        raise KeyError(trial)

    # ----- overfitting -----------------------------------------------------------------
    def deflated_sharpe(self) -> DeflatedSharpe:
        """The deflated Sharpe ratio of the best trial given every successful trial
        (Bailey & López de Prado 2014): its per-bar Sharpe ratio, skewness and raw kurtosis,
        the number of trials N and the variance of their per-bar Sharpe ratios.

        N counts every trial run, not only independent ones: with correlated parameter sets
        (neighbours on a grid) the effective number is smaller, so the figure errs on the
        side of deflating too much."""
        top = self._best_row()
        if top is None:
            raise ValueError("no trial succeeded: no deflated Sharpe ratio")
        ok = [r for r in self.rows if r.diag is not None and math.isfinite(r.diag.sr)]
        best = self._row(int(top["trial"])).diag
        if best is None or len(ok) < 1:
            raise ValueError("the best trial has no return diagnostics")
        var = float(np.var([r.diag.sr for r in ok], ddof=1)) if len(ok) > 1 else 0.0  # type: ignore[union-attr]
        return deflated_sharpe_ratio(best.sr, len(ok), var, best.n_obs, best.skew, best.kurtosis)

    def pbo(self) -> PBO:
        """The probability of backtest overfitting by CSCV over the successful trials'
        per-bar returns, cut into the blocks each row carries (16 by default)."""
        ok = [r for r in self.rows if r.diag is not None and r.diag.blocks.size]
        if len(ok) < 2:
            raise ValueError("the probability of overfitting needs at least 2 successful trials")
        return pbo_from_blocks(np.stack([r.diag.blocks for r in ok]))  # type: ignore[union-attr]

    def overfitting(self) -> dict[str, Any]:
        """The deflated Sharpe ratio and the probability of overfitting, as plain numbers."""
        out: dict[str, Any] = {"n_trials": self.n_trials, "n_failed": self.n_failed}
        try:
            d = self.deflated_sharpe()
            out.update(
                deflated_sharpe=d.dsr,
                sharpe_per_bar=d.sr,
                expected_max_sharpe=d.sr0,
                var_sharpe=d.var_sharpe,
                skew=d.skew,
                kurtosis=d.kurtosis,
                n_obs=d.n_obs,
            )
        except ValueError as e:
            out["deflated_sharpe_error"] = str(e)
        try:
            p = self.pbo()
            out.update(
                pbo=p.pbo,
                prob_oos_loss=p.prob_oos_loss,
                cscv_blocks=p.n_blocks,
                cscv_splits=len(p.logits),
            )
        except ValueError as e:
            out["pbo_error"] = str(e)
        return out

    def cv(self) -> CVResult:
        """Cross-validation of the selection (when ``cv=`` was given to optimize)."""
        from bt_core.optimize.cv import evaluate_cv

        if self.cv_spec is None:
            raise ValueError("optimize was run without cv=")
        ok = [r for r in self.rows if r.diag is not None and r.diag.cv is not None]
        if not ok:
            raise ValueError("no trial succeeded: nothing to cross-validate")
        ppy = ok[0].stats.get("periods_per_year") if ok[0].stats else None
        return evaluate_cv(
            self.cv_spec,
            [r.trial for r in ok],
            [r.params for r in ok],
            [r.diag.cv for r in ok if r.diag is not None and r.diag.cv is not None],
            ppy,
        )

    # ----- output ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the table as CSV, or Parquet for a ``.parquet``/``.pq`` path (atomically)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        if p.suffix.lower() in (".parquet", ".pq"):
            self.table.to_parquet(tmp, index=False)
        else:
            self.table.to_csv(tmp, index=False)
        tmp.replace(p)
        return p

    def report(
        self,
        path: str | Path = "optimize.html",
        *,
        walk_forward: Any = None,
        title: str | None = None,
    ) -> Path:
        """A self-contained HTML report (needs plotly); see :mod:`bt_core.optimize.report`."""
        from bt_core.optimize.report import write_report

        return write_report(self, path, walk_forward=walk_forward, title=title)

    def __repr__(self) -> str:
        return (
            f"OptimizeResult(method={self.method!r}, backend={self.backend!r}, "
            f"trials={self.n_trials}, failed={self.n_failed}, best={self.best_params}, "
            f"interrupted={self.interrupted})"
        )


__all__ = ["OptimizeResult", "build_table", "score_columns", "table_record"]
