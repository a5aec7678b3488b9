"""Evaluate, rank and compare many factors on the same prices."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_analysis._json import json_safe
from bt_analysis.factor._validate import FactorInputError, as_wide
from bt_analysis.factor.core import FactorData, GroupsLike, period_column, prepare_factor_data
from bt_analysis.factor.stats import (
    _rank_rows,
    factor_ic,
    factor_rank_autocorrelation,
    ic_summary,
    mean_return_by_quantile,
    monotonicity,
    quantile_turnover,
    row_corr,
)

__all__ = ["MultiFactorAnalyzer", "DEFAULT_RANK_WEIGHTS"]

#: Weights of the ranking criteria (see :meth:`MultiFactorAnalyzer.rank`).
DEFAULT_RANK_WEIGHTS: dict[str, float] = {
    "icir": 0.4,
    "monotonicity": 0.2,
    "stability": 0.2,
    "turnover": 0.2,
}


class MultiFactorAnalyzer:
    """Evaluate many factors at once against the same prices.

    Parameters
    ----------
    factors:
        ``{name: factor}``; each factor a ``date x asset`` frame or a
        ``(date, asset)`` Series (see :func:`prepare_factor_data`).
    prices:
        ``date x asset`` positive prices.
    periods:
        Forward-return horizons in bars.
    period:
        The horizon used for the one-line summary and the ranking (default:
        the shortest of ``periods``).
    quantiles, groups, min_assets:
        Passed to :func:`prepare_factor_data` for every factor.
    """

    def __init__(
        self,
        factors: Mapping[str, pd.DataFrame | pd.Series],
        prices: pd.DataFrame,
        *,
        periods: Sequence[int] = (1, 5, 10),
        period: int | None = None,
        quantiles: int = 5,
        groups: GroupsLike | None = None,
        min_assets: int | None = None,
    ) -> None:
        if not isinstance(factors, Mapping) or not factors:
            raise FactorInputError("factors: expected a non-empty mapping name -> factor")
        self.prices = prices
        self.periods = tuple(sorted({int(p) for p in periods}))
        self.period = self.periods[0] if period is None else int(period)
        if self.period not in self.periods:
            raise FactorInputError(f"period: {period} is not one of periods={self.periods}")
        self.quantiles = quantiles
        self._raw = {str(k): v for k, v in factors.items()}
        self._data: dict[str, FactorData] = {}
        self._summary: pd.DataFrame | None = None
        for name, fac in self._raw.items():
            try:
                self._data[name] = prepare_factor_data(
                    fac,
                    prices,
                    periods=self.periods,
                    quantiles=quantiles,
                    groups=groups,
                    min_assets=min_assets,
                )
            except FactorInputError as exc:
                raise FactorInputError(f"factor {name!r}: {exc}") from exc

    @property
    def names(self) -> list[str]:
        return list(self._data)

    def factor_data(self, name: str) -> FactorData:
        """The cleaned panel of one factor."""
        if name not in self._data:
            raise KeyError(f"unknown factor {name!r}; known: {self.names}")
        return self._data[name]

    def ic_table(self, method: str = "spearman") -> pd.DataFrame:
        """:func:`ic_summary` of every factor and horizon; index ``(factor, period)``."""
        parts = {n: ic_summary(factor_ic(fd, method)) for n, fd in self._data.items()}  # type: ignore[arg-type]
        return pd.concat(parts, names=["factor", "period"])

    def summary(self) -> pd.DataFrame:
        """One row per factor at horizon ``period``.

        Columns: ``ic_mean``, ``icir`` (Pearson IC); ``rank_ic_mean``,
        ``rank_ic_std``, ``rank_icir``, ``t_stat``, ``p_value`` (rank IC);
        ``stability`` (share of dates whose rank IC has the sign of its mean);
        ``monotonicity`` (Spearman of bucket vs mean return, in [-1, 1]);
        ``spread`` (top - bottom mean demeaned return); ``turnover`` (mean of
        the top and bottom buckets' turnover, one row apart);
        ``rank_autocorrelation``; ``direction`` (+1 if a high factor predicts
        high returns, -1 otherwise, from the mean rank IC); ``n_dates``.
        """
        if self._summary is not None:
            return self._summary.copy()
        col = period_column(self.period)
        rows = {}
        for name, fd in self._data.items():
            ric = factor_ic(fd, "spearman")[col]
            pic = factor_ic(fd, "pearson")[[col]]
            rs = ic_summary(ric.to_frame()).loc[col]
            ps = ic_summary(pic).loc[col]
            mean, _ = mean_return_by_quantile(fd)
            to = quantile_turnover(fd, period=1)
            top_bot = to[[to.columns.min(), to.columns.max()]].mean(axis=1)
            x = ric.dropna().to_numpy()
            sign = np.sign(rs["ic_mean"]) if np.isfinite(rs["ic_mean"]) else 0.0
            rows[name] = {
                "ic_mean": ps["ic_mean"],
                "icir": ps["icir"],
                "rank_ic_mean": rs["ic_mean"],
                "rank_ic_std": rs["ic_std"],
                "rank_icir": rs["icir"],
                "t_stat": rs["t_stat"],
                "p_value": rs["p_value"],
                "stability": float((np.sign(x) == sign).mean()) if len(x) and sign else np.nan,
                "monotonicity": monotonicity(mean)[col],
                "spread": float(mean[col].loc[mean.index.max()] - mean[col].loc[mean.index.min()]),
                "turnover": float(top_bot.mean()),
                "rank_autocorrelation": float(factor_rank_autocorrelation(fd).mean()),
                "direction": float(sign) if sign else np.nan,
                "n_dates": int(fd.mask.any(axis=1).sum()),
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "factor"
        self._summary = out  # the panels are fixed at construction, so this never goes stale
        return out.copy()

    def rank(self, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Rank factors by a weighted score of per-criterion percentile ranks.

        Criteria (keys of ``weights``, default :data:`DEFAULT_RANK_WEIGHTS`):
        ``icir`` (|rank ICIR|, higher is better), ``monotonicity``
        (|monotonicity|), ``stability`` (higher), ``turnover`` (lower is
        better). A signed factor that reliably predicts LOW returns ranks as
        well as its mirror image; see ``direction``. Each criterion becomes a
        percentile rank in (0, 1] across factors; a missing value scores 0.
        ``score`` is the weighted mean, in [0, 1]; ``rank`` 1 is best. Sorting
        is numeric (a score of 0 ranks below any positive score).
        """
        w = dict(DEFAULT_RANK_WEIGHTS if weights is None else weights)
        unknown = set(w) - set(DEFAULT_RANK_WEIGHTS)
        if unknown:
            raise FactorInputError(
                f"weights: unknown criteria {sorted(unknown)}; use {sorted(DEFAULT_RANK_WEIGHTS)}"
            )
        if any((not np.isfinite(v)) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise FactorInputError(f"weights: must be finite, >= 0 and not all 0, got {w}")
        s = self.summary()
        crit = pd.DataFrame(
            {
                "icir": s["rank_icir"].abs(),
                "monotonicity": s["monotonicity"].abs(),
                "stability": s["stability"],
                "turnover": -s["turnover"],
            },
            index=s.index,
        )
        pct = crit.rank(pct=True).fillna(0.0)
        total = sum(w.values())
        score = sum(pct[k] * v for k, v in w.items()) / total
        out = s.assign(score=score)
        out = out.sort_values("score", ascending=False, kind="mergesort")
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        return out

    def correlation(self, method: str = "spearman") -> pd.DataFrame:
        """Mean cross-sectional correlation between factors (``factor x factor``).

        For each date the correlation of two factors across the assets where
        both are finite (Spearman: on ranks), averaged over dates.
        """
        if method not in ("pearson", "spearman"):
            raise FactorInputError(f"method: expected 'pearson' or 'spearman', got {method!r}")
        wides = {n: as_wide(f, f"factor {n!r}") for n, f in self._raw.items()}
        idx = None
        cols = None
        for wdf in wides.values():
            idx = wdf.index if idx is None else idx.union(wdf.index)
            cols = wdf.columns if cols is None else cols.union(wdf.columns)
        arrays = {}
        for n, wdf in wides.items():
            a = wdf.reindex(index=idx, columns=cols).to_numpy(copy=True)
            a[~np.isfinite(a)] = np.nan
            arrays[n] = a
        names = list(arrays)
        out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
        for i, na in enumerate(names):
            for nb in names[i + 1 :]:
                x, y = arrays[na], arrays[nb]
                if method == "spearman":
                    both = ~np.isnan(x) & ~np.isnan(y)
                    x = _rank_rows(np.where(both, x, np.nan))
                    y = _rank_rows(np.where(both, y, np.nan))
                r = row_corr(x, y)
                r = r[~np.isnan(r)]
                c = float(r.mean()) if len(r) else np.nan
                out.loc[na, nb] = out.loc[nb, na] = c
        out.index.name = "factor"
        out.columns.name = "factor"
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``ranking`` (rows per factor), ``ic`` table, ``correlation``."""
        rank = self.rank()
        ic = self.ic_table()
        return json_safe(
            {
                "period": period_column(self.period),
                "ranking": rank.to_dict(orient="index"),
                "ic": {
                    f: pd.DataFrame(ic.xs(f, level="factor")).to_dict(orient="index")
                    for f in self.names
                },
                "correlation": self.correlation().to_dict(orient="index"),
            }
        )

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON (no NaN/inf); returns the path."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False), encoding="utf-8")
        return p

    def to_csv(self, directory: str | Path) -> dict[str, Path]:
        """Write ``factor_ranking.csv``, ``factor_ic.csv``, ``factor_correlation.csv``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {
            "ranking": d / "factor_ranking.csv",
            "ic": d / "factor_ic.csv",
            "correlation": d / "factor_correlation.csv",
        }
        self.rank().to_csv(paths["ranking"])
        self.ic_table().to_csv(paths["ic"])
        self.correlation().to_csv(paths["correlation"])
        return paths
