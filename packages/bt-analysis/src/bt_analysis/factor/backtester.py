"""Vectorized quantile-portfolio backtests of a cross-sectional factor.

Model (all conventions deliberate and tested):

* Dates are the rows of ``prices``. The factor row of date ``t`` is known at
  ``t`` and trades at the price of ``t`` (as alphalens assumes; pass the
  prices you can actually trade at, e.g. next-bar opens aligned to ``t``).
* Rebalance every ``rebalance`` rows, starting on the first date with at least
  ``min_assets`` eligible names. Eligible on a rebalance date: finite factor
  AND a price on that date (no future information is used; alphalens instead
  drops names without a forward return, which peeks at the future). A
  rebalance date with too few eligible names keeps the previous holdings
  (reported in ``skipped_rebalances``).
* Buckets: equal-count quantiles (:func:`bt_analysis.factor.core.quantize`
  rule). Weights within a bucket: ``"equal"`` (1/n) or ``"factor"``
  (proportional to ``|f - mean f|`` over that date's eligible names, so the
  extreme names weigh most; a bucket whose names all sit at the mean falls
  back to equal weights).
* Between rebalances holdings drift with prices (buy and hold); a held name
  without a price is marked at its last price (prices are forward-filled for
  valuation only, never for selection).
* Turnover at a rebalance = sum of |target weight - drifted weight| (one-way
  traded value over portfolio value; the first rebalance trades from cash, so
  its turnover is 1). Costs: ``cost_bps / 1e4`` times the traded value,
  charged at the rebalance close, so that date's net return is
  ``(1 + gross) * (1 - c * turnover) - 1``.
* ``long_short``: long the top bucket, short the bottom one, one unit each
  per unit of capital (gross 2), returns ``top - bottom`` per period minus the
  cost of both legs' turnover. ``universe``: all eligible names, weighted
  like the buckets (equal: 1/n; factor: proportional to ``|f - mean f|``).
* Statistics come from :mod:`bt_analysis.stats` (the functions behind
  :func:`bt_analysis.performance_metrics`), see :meth:`FactorBacktestResult.stats`.
  Periods per year are inferred from the spacing of the price dates with
  :func:`bt_analysis.infer_periods_per_year` unless given; when the dates do
  not tell (not a DatetimeIndex, one date, intraday bars on a single day,
  spacing over a year) the annualised figures are NaN, never a guessed 252.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from bt_analysis import stats as st
from bt_analysis._json import json_safe
from bt_analysis._validation import AnalysisInputError
from bt_analysis.factor._validate import FactorInputError, as_wide, check_prices
from bt_analysis.factor.core import _quantile_codes
from bt_analysis.periods import infer_periods_per_year

__all__ = ["CrossSectionFactorBacktester", "FactorBacktestResult"]

Weighting = Literal["equal", "factor"]


@dataclass(frozen=True)
class FactorBacktestResult:
    """Output of :meth:`CrossSectionFactorBacktester.run`.

    Attributes
    ----------
    returns: net simple returns per date (index ``date``, the price dates from
        the first rebalance on); columns ``Q1..Qn`` (Q1 = lowest factor),
        ``long_short`` and ``universe``.
    equity: ``(1 + returns).cumprod()``, starting from 1 before the first cost.
    turnover: one-way turnover per rebalance date (index ``date``), same
        columns; ``long_short`` is the sum of its two legs.
    costs: cost per rebalance date as a fraction of the portfolio value at the
        rebalance (``long_short``: of the capital at the start of that period).
    counts: names held per bucket at each rebalance date.
    skipped_rebalances: scheduled rebalance dates with too few eligible names.
    params: the settings used.
    """

    returns: pd.DataFrame
    equity: pd.DataFrame
    turnover: pd.DataFrame
    costs: pd.DataFrame
    counts: pd.DataFrame
    skipped_rebalances: pd.Index
    params: dict[str, Any] = field(default_factory=dict)

    def period_returns(self) -> pd.DataFrame:
        """Net return over each elapsed period: ``returns`` without its first row,
        whose entry cost is compounded into the first period instead.

        ``returns`` has one row per date, but its first row is the entry at the
        first rebalance: no time passes there, only the cost is paid. Counting it
        as a period would add a fake observation to every mean and standard
        deviation and one period too many to the CAGR, so the annualised
        statistics use these ``len(returns) - 1`` rows (index: the dates after
        the first; empty when the backtest spans a single date). Compounding is
        unchanged: ``(1 + period_returns()).prod()`` is ``equity.iloc[-1]`` up to
        rounding.
        """
        r = self.returns
        out = r.iloc[1:].copy()
        if len(out):
            out.iloc[0] = (1.0 + r.iloc[0]) * (1.0 + r.iloc[1]) - 1.0
        return out

    def stats(self) -> pd.DataFrame:
        """Per-portfolio summary (rows = portfolios), computed with the
        :mod:`bt_analysis.stats` functions that :func:`bt_analysis.performance_metrics`
        uses (zero risk-free rate):

        * ``total_return`` = ``stats.total_return(returns)``;
        * ``max_drawdown`` = ``stats.max_drawdown(returns)`` (<= 0; the curve
          starts at 1 before the entry cost, so that cost counts as a loss);
        * ``annual_return`` = ``stats.cagr(period_returns(), ppy)``, i.e.
          ``(1 + total) ** (ppy / (n - 1)) - 1`` for ``n`` rows of ``returns``;
        * ``annual_volatility`` = ``stats.annual_volatility(period_returns(), ppy)``;
        * ``sharpe`` = ``stats.sharpe_ratio(period_returns(), ppy)`` (NaN with
          fewer than 2 periods, ±inf or NaN without dispersion, as that
          function defines it; ``to_dict`` turns those into None);
        * ``mean_turnover`` per rebalance; ``total_cost`` (sum of the
          per-rebalance cost fractions).

        ``ppy`` is ``params["periods_per_year"]``; when it is None (the dates'
        spacing did not tell and none was given) the three annualised columns
        are NaN and the others are still filled in.
        """
        ppy = self.params.get("periods_per_year")
        periods = self.period_returns()
        nan = float("nan")
        rows: dict[str, dict[str, float]] = {}
        for col in self.returns.columns:
            marks = self.returns[col].to_numpy()
            p = periods[col].to_numpy()
            rows[col] = {
                "total_return": st.total_return(marks),
                "annual_return": nan if ppy is None else st.cagr(p, ppy),
                "annual_volatility": nan if ppy is None else st.annual_volatility(p, ppy),
                "sharpe": nan if ppy is None else st.sharpe_ratio(p, ppy),
                "max_drawdown": st.max_drawdown(marks),
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out["mean_turnover"] = self.turnover.mean()
        out["total_cost"] = self.costs.sum()
        out.index.name = "portfolio"
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: params, stats, and the equity curves as ``{date: value}``."""
        return json_safe(
            {
                "params": self.params,
                "stats": self.stats().to_dict(orient="index"),
                "equity": {c: self.equity[c].to_dict() for c in self.equity.columns},
                "skipped_rebalances": list(self.skipped_rebalances),
            }
        )


def _infer_periods_per_year(dates: pd.Index) -> float | None:
    """Periods per year from the spacing of ``dates``; None when it does not tell."""
    if not isinstance(dates, pd.DatetimeIndex):
        return None  # e.g. integer period numbers: no calendar to read a spacing from
    try:
        return infer_periods_per_year(dates)
    except AnalysisInputError:
        # A single date, one day of intraday bars, or dates years apart: the
        # annualised figures are reported as NaN instead of a guess.
        return None


class CrossSectionFactorBacktester:
    """Quantile portfolios of a cross-sectional factor, rebalanced every N periods.

    Parameters
    ----------
    factor:
        ``date x asset`` frame or ``(date, asset)`` Series; dates must be in
        ``prices.index``, assets columns of ``prices``.
    prices:
        ``date x asset`` positive trade prices.
    quantiles:
        Number of equal-count buckets (>= 2).
    rebalance:
        Rebalance every this many price rows (>= 1).
    weighting:
        ``"equal"`` or ``"factor"`` (see module docstring).
    cost_bps:
        Cost per unit of traded value, in basis points (one way).
    min_assets:
        Minimum eligible names to rebalance (default ``quantiles``).
    periods_per_year:
        Periods (price rows) per year for the annualised statistics. None
        (default) infers it from the spacing of ``prices.index`` with
        :func:`bt_analysis.infer_periods_per_year` (daily weekday dates give
        252, weekly 52, monthly 12); if the dates do not tell, it stays None
        and the annualised statistics are NaN. The value used is
        ``self.periods_per_year`` and ``result.params["periods_per_year"]``.
    """

    #: cells (rebalance rows x assets) processed per chunk; bounds temporary memory
    _chunk_cells: int = 2_000_000

    def __init__(
        self,
        factor: pd.DataFrame | pd.Series,
        prices: pd.DataFrame,
        *,
        quantiles: int = 5,
        rebalance: int = 1,
        weighting: Weighting = "equal",
        cost_bps: float = 0.0,
        min_assets: int | None = None,
        periods_per_year: float | None = None,
    ) -> None:
        if (
            isinstance(quantiles, bool)
            or not isinstance(quantiles, (int, np.integer))
            or quantiles < 2
        ):
            raise FactorInputError(f"quantiles: must be an integer >= 2, got {quantiles!r}")
        if (
            isinstance(rebalance, bool)
            or not isinstance(rebalance, (int, np.integer))
            or rebalance < 1
        ):
            raise FactorInputError(f"rebalance: must be an integer >= 1, got {rebalance!r}")
        if weighting not in ("equal", "factor"):
            raise FactorInputError(f"weighting: expected 'equal' or 'factor', got {weighting!r}")
        if not np.isfinite(cost_bps) or cost_bps < 0:
            raise FactorInputError(f"cost_bps: must be a finite number >= 0, got {cost_bps!r}")
        if periods_per_year is not None and (
            isinstance(periods_per_year, bool)
            or not isinstance(periods_per_year, (int, float, np.integer, np.floating))
            or not np.isfinite(periods_per_year)
            or periods_per_year <= 0
        ):
            raise FactorInputError(
                f"periods_per_year: must be None or a finite number > 0, got {periods_per_year!r}"
            )
        self.prices = check_prices(prices)
        fac = as_wide(factor, "factor")
        missing = fac.index.difference(self.prices.index)
        if len(missing):
            raise FactorInputError(f"factor: date {missing[0]!r} is not in prices.index")
        missing_a = fac.columns.difference(self.prices.columns)
        if len(missing_a):
            raise FactorInputError(f"factor: asset {missing_a[0]!r} is not a column of prices")
        self.factor = fac.reindex(index=self.prices.index, columns=self.prices.columns)
        self.quantiles = int(quantiles)
        self.rebalance = int(rebalance)
        self.weighting: Weighting = weighting
        self.cost_bps = float(cost_bps)
        self.min_assets = self.quantiles if min_assets is None else int(min_assets)
        if self.min_assets < 1:
            raise FactorInputError(f"min_assets: must be >= 1, got {min_assets!r}")
        self.periods_per_year: float | None = (
            _infer_periods_per_year(self.prices.index)
            if periods_per_year is None
            else float(periods_per_year)
        )

    # ------------------------------------------------------------------ internals

    def _schedule(self, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = eligible.sum(axis=1) >= self.min_assets
        if not ok.any():
            raise FactorInputError(
                f"factor: no date has at least min_assets={self.min_assets} names with "
                "a finite factor and a price"
            )
        r0 = int(np.argmax(ok))
        scheduled = np.arange(r0, len(ok), self.rebalance)
        return scheduled[ok[scheduled]], scheduled[~ok[scheduled]]

    def _raw_weights(self, f: np.ndarray, held: np.ndarray) -> np.ndarray:
        """Unnormalised weights: 1 (equal) or ``|f - mean f|`` (factor); 0 if not held."""
        if self.weighting == "equal":
            return held.astype(np.float64)
        with np.errstate(all="ignore"):
            mu = np.where(held, f, 0.0).sum(axis=1) / held.sum(axis=1)
        return np.where(held, np.abs(f - mu[:, None]), 0.0)

    def _simulate(
        self, fv: np.ndarray, eligible: np.ndarray, px: np.ndarray, reb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gross returns (rows ``reb[0]..``), turnover and names per bucket (per rebalance).

        Columns ``0..Q-1`` are the buckets, column ``Q`` the universe (the union
        of all buckets weighted the same way). ``px``: forward-filled prices, 0
        where an asset never had a price.

        Bucket values are sums of shares x price, turned into per-(row, bucket)
        totals by ``np.bincount`` over flat (row, bucket) keys; turnover uses
        the same keys. Rebalances are processed in chunks of rows (a short
        loop, ~2M cells each) so temporaries stay small and cache-friendly;
        nothing loops over single dates or assets.
        """
        Q = self.quantiles
        K = Q + 1
        T, A = px.shape
        R = len(reb)
        r0 = int(reb[0])
        lengths = np.diff(np.append(reb, T - 1))  # price rows held by each block
        row_start = np.concatenate([[0], np.cumsum(lengths)])
        n = int(row_start[-1])  # rows r0+1 .. T-1

        def sums(key: np.ndarray, v: np.ndarray, rows: int) -> np.ndarray:
            out = np.bincount(key.ravel(), weights=v.ravel(), minlength=rows * K)
            return out.reshape(rows, K)

        norm = np.zeros((R, K))  # bucket totals of raw weight
        cnt = np.zeros((R, K))  # names per bucket
        s_end = np.zeros((n, K))  # unnormalised bucket values at each row
        to = np.zeros((R, K))
        prev_lab = prev_u = None
        step = max(1, self._chunk_cells // max(A, 1))
        for b0 in range(0, R, step):
            b1 = min(R, b0 + step)
            m = b1 - b0
            rows = reb[b0:b1]
            f = np.where(eligible[rows], fv[rows], np.nan)
            lab = _quantile_codes(f, Q).astype(np.int64) - 1
            lab[lab < 0] = Q  # bucket Q = not held
            held = lab < Q
            raw = self._raw_weights(f, held)
            key = (np.arange(m) * K)[:, None] + lab
            nrm = sums(key, raw, m)
            if self.weighting == "factor" and (held & (nrm.ravel()[key] == 0)).any():
                # A bucket whose names all sit exactly at the mean has no factor
                # weight: those names get equal weights instead.
                raw[held & (nrm.ravel()[key] == 0)] = 1.0
                nrm = sums(key, raw, m)
            nrm[:, Q] = nrm[:, :Q].sum(axis=1)
            norm[b0:b1] = nrm
            c_ = np.bincount(key.ravel(), minlength=m * K).reshape(m, K).astype(np.float64)
            c_[:, Q] = c_[:, :Q].sum(axis=1)
            cnt[b0:b1] = c_
            # shares per unit of raw weight, bought at the rebalance price
            u = np.divide(raw, px[rows], out=np.zeros_like(raw), where=held)

            # bucket values at rows t in each block's holding interval (t-1, t]
            j0, j1 = int(row_start[b0]), int(row_start[b1])
            if j1 > j0:
                lens = lengths[b0:b1]
                if np.all(lens[: j1 - j0] == 1):  # one row per block (daily rebalancing)
                    key_t, u_t = key[: j1 - j0], u[: j1 - j0]
                else:
                    key_t = (np.arange(j1 - j0) * K)[:, None] + np.repeat(lab, lens, axis=0)
                    u_t = np.repeat(u, lens, axis=0)
                se = sums(key_t, u_t * px[r0 + 1 + j0 : r0 + 1 + j1], j1 - j0)
                se[:, Q] = se[:, :Q].sum(axis=1)
                s_end[j0:j1] = se

            # turnover at rebalances b in [b0, b1) with b >= 1: previous book -> new book
            if b0 == 0:
                p_lab, p_u, n_lab, n_raw, bs = lab[:-1], u[:-1], lab[1:], raw[1:], np.arange(1, b1)
            else:
                assert prev_lab is not None and prev_u is not None
                p_lab = np.vstack([prev_lab, lab[:-1]])
                p_u = np.vstack([prev_u, u[:-1]])
                n_lab, n_raw, bs = lab, raw, np.arange(b0, b1)
            if len(bs):
                kk = (np.arange(len(bs)) * K)[:, None]
                key_p, key_n = kk + p_lab, kk + n_lab
                with np.errstate(all="ignore"):
                    inv_norm = np.where(norm[bs] > 0, 1.0 / norm[bs], 0.0)
                    s_reb = s_end[reb[bs] - r0 - 1]  # drifted bucket totals at the rebalance
                    inv_s = np.where(s_reb > 0, 1.0 / s_reb, 0.0)
                value = p_u * px[reb[bs]]  # drifted (unnormalised) holdings
                t_new = n_raw * inv_norm.ravel()[key_n]  # target weights
                d_old = value * inv_s.ravel()[key_p]  # drifted weights
                # Per bucket, sum |t - d| over all names = (sum t) + (sum d) - 2 sum
                # over the names that stay of min(t, d): entering names have d = 0
                # there, leaving names t = 0. Totals of t and d are 1 (0 if empty).
                stay = (p_lab == n_lab) & (n_lab < Q)
                key_s = np.where(stay, key_n, kk + Q)
                kept = sums(key_s, np.minimum(t_new, d_old), len(bs))
                to[bs, :Q] = (norm[bs, :Q] > 0).astype(np.float64) + (s_reb[:, :Q] > 0)
                to[bs, :Q] -= 2.0 * kept[:, :Q]
                # universe: every held name is in it, normalised over all buckets
                tu = n_raw * inv_norm[:, Q][:, None]
                du = value * inv_s[:, Q][:, None]
                to[bs, Q] = np.abs(tu - du).sum(axis=1)
            prev_lab, prev_u = lab[-1:].copy(), u[-1:].copy()
        to[0] = norm[0] > 0  # the first rebalance buys everything from cash

        s_beg = np.empty_like(s_end)
        if n:
            s_beg[0] = norm[0]
            s_beg[1:] = s_end[:-1]
            starts = reb[1:] - r0  # the row after a rebalance starts from the new book
            inside = starts < n
            s_beg[starts[inside]] = norm[1:][inside]
        with np.errstate(all="ignore"):
            g = np.where(s_beg > 0, s_end / s_beg - 1.0, 0.0)  # empty bucket = cash
        gross = np.vstack([np.zeros((1, K)), g])
        return gross, to, cnt

    # ------------------------------------------------------------------ public

    def run(self) -> FactorBacktestResult:
        """Run the backtest; see :class:`FactorBacktestResult` for the output."""
        raw = self.prices.to_numpy()
        fv = self.factor.to_numpy()
        eligible = np.isfinite(fv) & ~np.isnan(raw)
        reb, skipped = self._schedule(eligible)
        # Valuation prices: a held name without a price keeps its last price;
        # 0 where an asset never had a price (it can never be held there).
        px = self.prices.ffill().to_numpy(copy=True)
        px[np.isnan(px)] = 0.0
        Q = self.quantiles
        gross_all, to_all, cnt = self._simulate(fv, eligible, px, reb)
        gross, ugross = gross_all[:, :Q], gross_all[:, Q:]
        to, uto = to_all[:, :Q], to_all[:, Q:]

        c = self.cost_bps / 1e4
        r0 = int(reb[0])
        dates = self.prices.index[r0:]
        reb_pos = reb - r0
        names = [f"Q{k + 1}" for k in range(Q)]

        def net(gr: np.ndarray, tover: np.ndarray) -> np.ndarray:
            cost = np.zeros_like(gr)
            cost[reb_pos] = c * tover
            return (1.0 + gr) * (1.0 - cost) - 1.0

        q_net = net(gross, to)
        u_net = net(ugross, uto)
        top, bot = gross[:, Q - 1], gross[:, 0]
        ls_cost = np.zeros(len(dates))
        ls_cost[reb_pos] = c * (to[:, Q - 1] * (1 + top[reb_pos]) + to[:, 0] * (1 + bot[reb_pos]))
        ls = top - bot - ls_cost
        cols = [*names, "long_short", "universe"]
        returns = pd.DataFrame(np.column_stack([q_net, ls, u_net[:, 0]]), index=dates, columns=cols)
        returns.index.name = "date"
        returns.columns.name = "portfolio"
        equity = (1.0 + returns).cumprod()
        reb_dates = self.prices.index[reb]
        ls_to = to[:, Q - 1] + to[:, 0]
        turnover = pd.DataFrame(
            np.column_stack([to, ls_to, uto[:, 0]]), index=reb_dates, columns=cols
        )
        turnover.index.name = "date"
        costs = pd.DataFrame(
            np.column_stack([c * to, ls_cost[reb_pos], c * uto[:, 0]]),
            index=reb_dates,
            columns=cols,
        )
        costs.index.name = "date"
        counts = pd.DataFrame(
            cnt[:, :Q].astype(np.int64),
            index=reb_dates,
            columns=names,
        )
        counts.index.name = "date"
        return FactorBacktestResult(
            returns=returns,
            equity=equity,
            turnover=turnover,
            costs=costs,
            counts=counts,
            skipped_rebalances=self.prices.index[skipped],
            params={
                "quantiles": Q,
                "rebalance": self.rebalance,
                "weighting": self.weighting,
                "cost_bps": self.cost_bps,
                "min_assets": self.min_assets,
                "periods_per_year": self.periods_per_year,
            },
        )
