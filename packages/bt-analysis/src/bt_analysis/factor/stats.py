"""Factor statistics on a :class:`~bt_analysis.factor.core.FactorData` panel.

All functions are vectorized over ``dates x assets`` numpy arrays (no loop over
dates); loops run only over horizons, buckets or groups.

Conventions shared with alphalens-reloaded (cross-checked in the tests):

* IC per date is the correlation, across the date's clean assets, of factor
  and forward return; Spearman = Pearson on average ranks (``scipy.stats.spearmanr``).
* ``mean_return_by_quantile`` first demeans forward returns per date (or per
  date and group), averages per (bucket, date), then across dates; its standard
  error is ``std(ddof=1) / sqrt(count)`` of the per-date means.
* Turnover of bucket ``q`` at date ``t`` = share of the names in ``q`` at ``t``
  that were not in ``q`` ``period`` rows earlier; rank autocorrelation = Pearson
  correlation of a date's factor ranks with those ``period`` rows earlier.

Deliberate difference: the long-short spread is ``top - bottom`` (1 long + 1
short per unit of capital). alphalens-reloaded >= 0.5 halves it (``/ 2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from bt_analysis._json import json_safe
from bt_analysis.factor._validate import FactorInputError, check_int_list
from bt_analysis.factor.core import (
    FactorData,
    _align,
    _forward_at,
    average_ranks,
    period_column,
)

__all__ = [
    "factor_ic",
    "ic_summary",
    "ic_decay",
    "mean_return_by_quantile",
    "quantile_spread",
    "monotonicity",
    "quantile_turnover",
    "factor_rank_autocorrelation",
    "group_ic_summary",
    "factor_summary",
    "row_corr",
]

Method = Literal["pearson", "spearman"]


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) per row, NaN stays NaN (pandas ``rank(axis=1)``)."""
    return average_ranks(x)


def row_corr(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Row-wise Pearson correlation over the cells where ``mask`` (and both values) hold.

    Rows with fewer than 2 cells or zero variance give NaN; results are
    clipped to [-1, 1] against rounding.
    """
    m = ~np.isnan(x) & ~np.isnan(y)
    if mask is not None:
        m &= mask
    n = m.sum(axis=1)
    with np.errstate(all="ignore"):
        xm = np.where(m, x, 0.0).sum(axis=1) / n
        ym = np.where(m, y, 0.0).sum(axis=1) / n
        xd = np.where(m, x - xm[:, None], 0.0)
        yd = np.where(m, y - ym[:, None], 0.0)
        num = (xd * yd).sum(axis=1)
        den = np.sqrt((xd * xd).sum(axis=1) * (yd * yd).sum(axis=1))
        r = num / den
    r[(n < 2) | ~(den > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _demeaned_returns(fd: FactorData, col: str, group_adjust: bool) -> np.ndarray:
    m = fd.mask
    r = np.where(m, fd.forward_returns[col].to_numpy(), np.nan)
    if group_adjust:
        if fd.group_codes is None:
            raise FactorInputError("group_adjust=True needs a FactorData built with groups=")
        out = np.full(r.shape, np.nan)
        for g in np.unique(fd.group_codes[m]):
            mg = m & (fd.group_codes == g)
            with np.errstate(all="ignore"):
                mean = np.where(mg, r, 0.0).sum(axis=1) / mg.sum(axis=1)
            out = np.where(mg, r - mean[:, None], out)
        return out
    with np.errstate(all="ignore"):
        mean = np.where(m, r, 0.0).sum(axis=1) / m.sum(axis=1)
    return r - mean[:, None]


def factor_ic(
    fd: FactorData,
    method: Method = "spearman",
    *,
    group_adjust: bool = False,
    by_group: bool = False,
) -> pd.DataFrame:
    """Information coefficient per date (and group) for each horizon.

    Parameters
    ----------
    method: ``"spearman"`` (rank IC, alphalens' IC) or ``"pearson"``.
    group_adjust: demean forward returns within (date, group) first.
    by_group: one IC per (date, group).

    Returns
    -------
    DataFrame indexed by ``date`` (or ``(date, group)``), columns ``fwd_<h>``,
    values in [-1, 1]; NaN where a cross-section has < 2 names or no variance.
    Dates without any clean observation are omitted.
    """
    if method not in ("pearson", "spearman"):
        raise FactorInputError(f"method: expected 'pearson' or 'spearman', got {method!r}")
    m = fd.mask
    f = np.where(m, fd.factor.to_numpy(), np.nan)
    cols = fd.columns
    rets = {
        c: _demeaned_returns(fd, c, group_adjust)
        if group_adjust
        else np.where(m, fd.forward_returns[c].to_numpy(), np.nan)
        for c in cols
    }
    if by_group:
        if fd.group_codes is None or fd.group_labels is None:
            raise FactorInputError("by_group=True needs a FactorData built with groups=")
        parts = []
        for g in np.unique(fd.group_codes[m]):
            mg = m & (fd.group_codes == g)
            fg = np.where(mg, f, np.nan)
            if method == "spearman":
                fg = _rank_rows(fg)
            data = {}
            for c in cols:
                rg = np.where(mg, rets[c], np.nan)
                data[c] = row_corr(fg, _rank_rows(rg) if method == "spearman" else rg)
            present = mg.any(axis=1)
            idx = pd.MultiIndex.from_arrays(
                [fd.dates[present], np.repeat(fd.group_labels[g], present.sum())],
                names=["date", "group"],
            )
            parts.append(pd.DataFrame({c: v[present] for c, v in data.items()}, index=idx))
        if not parts:
            empty = pd.MultiIndex.from_arrays([[], []], names=["date", "group"])
            return pd.DataFrame({c: pd.Series(dtype=float) for c in cols}, index=empty)
        return pd.concat(parts).sort_index()
    if method == "spearman":
        f = _rank_rows(f)
    data = {}
    for c in cols:
        r = rets[c]
        data[c] = row_corr(f, _rank_rows(r) if method == "spearman" else r)
    present = np.flatnonzero(m.any(axis=1))
    out = pd.DataFrame({c: v[present] for c, v in data.items()}, index=fd.dates[present])
    out.index.name = "date"
    return out


def ic_summary(ic: pd.DataFrame) -> pd.DataFrame:
    """Summary statistics of an IC frame (one row per column of ``ic``).

    Columns: ``ic_mean``, ``ic_std`` (ddof=1), ``icir`` (mean / std, per
    period, not annualised), ``t_stat`` and ``p_value`` (two-sided one-sample
    t-test of mean IC = 0), ``positive_ratio`` (share of IC > 0),
    ``ic_skew``, ``ic_kurtosis`` (excess, scipy defaults), ``n`` (dates).
    NaN ICs are ignored.
    """
    from scipy import stats as sps  # on first use: importing scipy.stats takes seconds

    rows = {}
    for c in ic.columns:
        x = ic[c].to_numpy(dtype=float)
        x = x[~np.isnan(x)]
        n = len(x)
        mean = float(x.mean()) if n else np.nan
        std = float(x.std(ddof=1)) if n > 1 else np.nan
        with np.errstate(all="ignore"):
            icir = mean / std if std and std > 0 else np.nan
            t = icir * np.sqrt(n) if n > 1 else np.nan
        p = float(2 * sps.t.sf(abs(t), n - 1)) if np.isfinite(t) else np.nan
        rows[c] = {
            "ic_mean": mean,
            "ic_std": std,
            "icir": icir,
            "t_stat": t,
            "p_value": p,
            "positive_ratio": float((x > 0).mean()) if n else np.nan,
            "ic_skew": float(sps.skew(x)) if n > 2 and std > 0 else np.nan,
            "ic_kurtosis": float(sps.kurtosis(x)) if n > 3 and std > 0 else np.nan,
            "n": n,
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "period"
    return out


def ic_decay(
    factor: pd.DataFrame | pd.Series,
    prices: pd.DataFrame,
    horizons: Sequence[int] = tuple(range(1, 21)),
    method: Method = "spearman",
    *,
    min_assets: int = 2,
) -> pd.DataFrame:
    """Mean IC for each horizon, each horizon cleaned on its own.

    Unlike :func:`prepare_factor_data` with several periods, a (date, asset)
    missing a long-horizon return does not drop its short-horizon IC. For
    each horizon ``h`` the result equals ``ic_summary(factor_ic(
    prepare_factor_data(factor, prices, (h,), quantiles=1,
    min_assets=min_assets), method))``; inputs are validated once.

    Returns a frame indexed by ``horizon`` (bars) with the :func:`ic_summary`
    columns.
    """
    if method not in ("pearson", "spearman"):
        raise FactorInputError(f"method: expected 'pearson' or 'spearman', got {method!r}")
    hs = check_int_list(horizons, "horizons")
    fac, pvals, rows = _align(factor, prices)
    f = fac.to_numpy(copy=True)
    f[~np.isfinite(f)] = np.nan
    parts = []
    for h in hs:
        r = _forward_at(pvals, rows, h)
        keep = ~np.isnan(f) & np.isfinite(r)
        keep[keep.sum(axis=1) < min_assets] = False
        fh = np.where(keep, f, np.nan)
        rh = np.where(keep, r, np.nan)
        if method == "spearman":
            fh, rh = _rank_rows(fh), _rank_rows(rh)
        present = keep.any(axis=1)
        ic = pd.DataFrame({period_column(h): row_corr(fh, rh)[present]})
        s = ic_summary(ic)
        s.index = pd.Index([h], name="horizon")
        parts.append(s)
    return pd.concat(parts)


def mean_return_by_quantile(
    fd: FactorData,
    *,
    by_date: bool = False,
    by_group: bool = False,
    demeaned: bool = True,
    group_adjust: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean forward return per bucket, with its standard error.

    Returns ``(mean, std_err)``, decimal returns per horizon (columns
    ``fwd_<h>``, NOT rescaled to one period). Index ``factor_quantile``; with
    ``by_date`` ``(factor_quantile, date)``, with ``by_group`` the ``group``
    level is appended. With ``by_date`` the standard error is that of the
    asset returns within the cell; otherwise that of the per-date means.
    """
    m = fd.mask
    lab = np.where(m, fd.quantile.to_numpy(), 0).astype(np.int64)
    nq = int(lab.max()) if lab.size else 0
    T = len(fd.dates)
    if by_group:
        if fd.group_codes is None or fd.group_labels is None:
            raise FactorInputError("by_group=True needs a FactorData built with groups=")
        G = len(fd.group_labels)
        gcode = np.where(m, fd.group_codes, 0)
    else:
        G = 1
        gcode = np.zeros(lab.shape, dtype=np.int64)
    # One flat key per (bucket, date, group) cell -> bincount does the grouping.
    key = ((lab - 1) * T + np.arange(T)[:, None]) * G + gcode
    key_m = key[m]
    ncell = nq * T * G
    cnt = np.bincount(key_m, minlength=ncell).astype(float)
    means: dict[str, np.ndarray] = {}
    ses: dict[str, np.ndarray] = {}
    for c in fd.columns:
        if group_adjust:
            r = _demeaned_returns(fd, c, True)
        elif demeaned:
            r = _demeaned_returns(fd, c, False)
        else:
            r = fd.forward_returns[c].to_numpy()
        v = r[m]
        with np.errstate(all="ignore"):
            mu = np.bincount(key_m, weights=v, minlength=ncell) / cnt
            ss = np.bincount(key_m, weights=(v - mu[key_m]) ** 2, minlength=ncell)
            sd = np.sqrt(ss / (cnt - 1))
            ses[c] = sd / np.sqrt(cnt)
        means[c] = mu
    cell_q = np.repeat(np.arange(1, nq + 1), T * G)
    cell_d = np.tile(np.repeat(np.arange(T), G), nq)
    cell_g = np.tile(np.arange(G), nq * T)
    present = cnt > 0
    if by_date:
        arrays: list[Any] = [cell_q[present], fd.dates[cell_d[present]]]
        names = ["factor_quantile", "date"]
        if by_group:
            assert fd.group_labels is not None
            arrays.append(fd.group_labels[cell_g[present]])
            names.append("group")
        idx = pd.MultiIndex.from_arrays(arrays, names=names)
        mean = pd.DataFrame({c: v[present] for c, v in means.items()}, index=idx)
        se = pd.DataFrame({c: v[present] for c, v in ses.items()}, index=idx)
        return mean, se
    # Second stage: across dates, per (bucket[, group]).
    key2 = (cell_q[present] - 1) * G + cell_g[present]
    n2 = nq * G
    cnt2 = np.bincount(key2, minlength=n2).astype(float)
    mean_d, se_d = {}, {}
    for c in fd.columns:
        v = means[c][present]
        with np.errstate(all="ignore"):
            mu = np.bincount(key2, weights=v, minlength=n2) / cnt2
            sd = np.sqrt(np.bincount(key2, weights=(v - mu[key2]) ** 2, minlength=n2) / (cnt2 - 1))
        mean_d[c], se_d[c] = mu, sd / np.sqrt(cnt2)
    keep = cnt2 > 0
    q_lev = np.repeat(np.arange(1, nq + 1), G)[keep]
    if by_group:
        assert fd.group_labels is not None
        idx2: pd.Index = pd.MultiIndex.from_arrays(
            [q_lev, fd.group_labels[np.tile(np.arange(G), nq)[keep]]],
            names=["factor_quantile", "group"],
        )
    else:
        idx2 = pd.Index(q_lev, name="factor_quantile")
    mean = pd.DataFrame({c: v[keep] for c, v in mean_d.items()}, index=idx2)
    se = pd.DataFrame({c: v[keep] for c, v in se_d.items()}, index=idx2)
    return mean, se


def quantile_spread(
    mean: pd.DataFrame,
    std_err: pd.DataFrame | None = None,
    upper: int | None = None,
    lower: int | None = None,
) -> tuple[pd.DataFrame | pd.Series, pd.DataFrame | pd.Series | None]:
    """Long ``upper`` bucket minus short ``lower`` bucket (default: top - bottom).

    Works on the output of :func:`mean_return_by_quantile` (with or without
    ``by_date``). The spread is NOT halved (alphalens >= 0.5 halves it); the
    standard error is ``sqrt(se_u^2 + se_l^2)``.
    """
    qs = mean.index.get_level_values("factor_quantile")
    upper = int(qs.max()) if upper is None else upper
    lower = int(qs.min()) if lower is None else lower

    def pick(frame: pd.DataFrame, q: int) -> pd.DataFrame | pd.Series:
        if isinstance(frame.index, pd.MultiIndex):
            return frame.xs(q, level="factor_quantile")
        return frame.loc[q]

    spread = pick(mean, upper) - pick(mean, lower)
    se: pd.DataFrame | pd.Series | None = None
    if std_err is not None:
        se = (pick(std_err, upper) ** 2 + pick(std_err, lower) ** 2) ** 0.5
    return spread, se


def monotonicity(mean: pd.DataFrame) -> pd.Series:
    """Spearman correlation between bucket number and mean return, per column.

    +1: returns rise strictly with the factor bucket; -1: fall strictly.
    Input: ``mean_return_by_quantile(...)[0]`` (index ``factor_quantile``).
    """
    from scipy import stats as sps  # on first use: importing scipy.stats takes seconds

    q = mean.index.get_level_values("factor_quantile").to_numpy(dtype=float)
    out = {}
    for c in mean.columns:
        v = mean[c].to_numpy(dtype=float)
        ok = ~np.isnan(v)
        if ok.sum() < 2 or np.ptp(v[ok]) == 0:
            out[c] = np.nan
        else:
            out[c] = float(sps.spearmanr(q[ok], v[ok])[0])
    return pd.Series(out, name="monotonicity")


def quantile_turnover(fd: FactorData, quantile: int | None = None, period: int = 1) -> pd.DataFrame:
    """Share of names in a bucket that were not in it ``period`` rows earlier.

    Returns a frame indexed by ``date`` with one column per bucket (or only
    ``quantile``), in [0, 1]; the first ``period`` dates and dates where the
    bucket is empty (now or ``period`` rows earlier) are NaN.
    """
    m = fd.mask
    lab = np.where(m, fd.quantile.to_numpy(), 0)
    qs = range(1, fd.n_quantiles + 1) if quantile is None else [quantile]
    out = {}
    for q in qs:
        b = lab == q
        prev = np.zeros_like(b)
        prev[period:] = b[:-period]
        had = np.zeros(len(b), dtype=bool)
        had[period:] = b[:-period].any(axis=1)
        n = b.sum(axis=1)
        with np.errstate(all="ignore"):
            t = (b & ~prev).sum(axis=1) / n
        t = np.where((n > 0) & had, t, np.nan)
        out[q] = t
    res = pd.DataFrame(out, index=fd.dates)
    res.columns.name = "factor_quantile"
    return res


def factor_rank_autocorrelation(fd: FactorData, period: int = 1) -> pd.Series:
    """Pearson correlation of each date's factor ranks with those ``period`` rows earlier.

    Ranks are average ranks over the date's clean names; the correlation uses
    names present on both dates. Indexed by ``date``; the first ``period``
    dates are NaN. Near 1: a slow factor (low turnover).
    """
    m = fd.mask
    rk = _rank_rows(np.where(m, fd.factor.to_numpy(), np.nan))
    prev = np.full(rk.shape, np.nan)
    prev[period:] = rk[:-period]
    return pd.Series(row_corr(rk, prev), index=fd.dates, name=period)


def group_ic_summary(fd: FactorData, method: Method = "spearman") -> pd.DataFrame:
    """IC statistics per group: index ``(group, period)``, :func:`ic_summary` columns."""
    ic = factor_ic(fd, method, by_group=True)
    parts = {g: ic_summary(sub.droplevel("group")) for g, sub in ic.groupby(level="group")}
    return pd.concat(parts, names=["group", "period"])


def factor_summary(fd: FactorData, *, turnover_period: int = 1) -> dict[str, Any]:
    """Headline statistics, JSON-safe (NaN/inf -> None).

    Keys: ``ic`` and ``rank_ic`` (per horizon :func:`ic_summary` rows),
    ``mean_return_by_quantile`` (per horizon, per bucket), ``spread`` (top -
    bottom per horizon), ``monotonicity``, ``turnover`` (mean per bucket),
    ``rank_autocorrelation`` (mean), ``dropped``, ``n_dates``, ``n_assets``.
    """
    ic = ic_summary(factor_ic(fd, "pearson"))
    ric = ic_summary(factor_ic(fd, "spearman"))
    mean, se = mean_return_by_quantile(fd)
    spread, _ = quantile_spread(mean, se)
    return json_safe(
        {
            "ic": ic.to_dict(orient="index"),
            "rank_ic": ric.to_dict(orient="index"),
            "mean_return_by_quantile": {c: mean[c].to_dict() for c in mean.columns},
            "spread": dict(spread),
            "monotonicity": monotonicity(mean).to_dict(),
            "turnover": quantile_turnover(fd, period=turnover_period).mean().to_dict(),
            "rank_autocorrelation": float(factor_rank_autocorrelation(fd, turnover_period).mean()),
            "dropped": dict(fd.dropped),
            "n_dates": int(fd.mask.any(axis=1).sum()),
            "n_assets": int(fd.mask.any(axis=0).sum()),
            "periods": [period_column(p) for p in fd.periods],
        }
    )
