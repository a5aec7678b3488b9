"""Forward returns, quantile buckets and the cleaned factor panel.

Conventions (deliberate, documented; compare alphalens-reloaded 0.5):

* A factor is a ``date x asset`` DataFrame (or a ``(date, asset)`` Series). The
  value on date ``t`` is assumed known when the price on ``t`` is paid, exactly
  like alphalens (pass the prices you can trade at, e.g. next open, yourself).
* Forward return for horizon ``h`` (in price bars): ``p[t + h] / p[t] - 1`` of
  the SAME asset, ``t + h`` counted in rows of the price index. Never across
  assets. alphalens forward-fills prices first; we do not, so a missing price at
  ``t`` or ``t + h`` gives a missing forward return instead of a stale one.
  alphalens also applies ``filter_zscore=20`` by default (with a whole-sample,
  look-ahead mean); we never filter.
* NaN / +-inf factor values are dropped, never turned into 0. A (date, asset)
  row is kept only if the factor and the forward returns of EVERY horizon are
  finite (alphalens drops the row the same way), then dates with fewer than
  ``min_assets`` kept assets are dropped entirely.
* Quantile buckets are equal-count on ranks with exact integer arithmetic: with
  ``n`` names and ``q`` buckets, the name of (0-based, ties -> lowest) rank
  ``r`` goes to bucket ``max(1, ceil(r * q / (n - 1)))``. That is exactly what
  ``pandas.qcut`` (used by alphalens) computes in real arithmetic, so 10 names
  in 5 buckets give 2/2/2/2/2 and bucket sizes never differ by more than one.
  ``qcut`` computes the edges in floating point: when ``k * (n - 1) / q`` is an
  integer it sometimes puts the name sitting exactly on an edge one bucket up
  (e.g. 19 names / 6 buckets -> 4/3/3/3/2/4); we always put it in the lower
  bucket (right-closed intervals, what qcut means). Tied values share a bucket;
  where alphalens cannot bin a date because edges coincide it drops the date,
  we keep the date with the ties in one bucket.
* Fixed ``bins`` reproduce ``pandas.cut`` (alphalens ``bins=``): equal-width
  buckets between the date's min and max (int), or explicit right-closed edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bt_analysis.factor._validate import (
    FactorInputError,
    as_wide,
    check_int_list,
    check_prices,
    groups_to_codes,
)

__all__ = [
    "FactorData",
    "forward_returns",
    "quantize",
    "prepare_factor_data",
    "neutralize",
    "period_column",
]

GroupsLike = Mapping[Any, Any] | pd.Series | pd.DataFrame


def period_column(period: int) -> str:
    """Column name used for the ``period``-bar forward return (``"fwd_5"``)."""
    return f"fwd_{int(period)}"


# --------------------------------------------------------------------------- forward returns


def _forward_returns_wide(prices: pd.DataFrame, period: int) -> pd.DataFrame:
    # Shift along the date axis only: each column (asset) is its own series,
    # so a return is never formed from two different assets.
    vals = prices.to_numpy()
    out = np.full(vals.shape, np.nan)
    if period < len(vals):
        out[:-period] = vals[period:] / vals[:-period] - 1.0
    return pd.DataFrame(out, index=prices.index, columns=prices.columns)


def forward_returns(
    prices: pd.DataFrame, periods: Sequence[int] | int = (1, 5, 10)
) -> pd.DataFrame:
    """Forward simple returns per asset for each horizon.

    Parameters
    ----------
    prices:
        ``date x asset`` prices (positive; NaN = no price). Index sorted, unique.
    periods:
        Horizons in price bars (rows of ``prices``).

    Returns
    -------
    DataFrame indexed by ``(date, asset)`` with one column per horizon named
    ``fwd_<h>`` (see :func:`period_column`), as decimal returns
    ``p[t+h]/p[t] - 1``. Rows where every horizon is NaN are omitted.
    """
    px = check_prices(prices)
    per = check_int_list(periods, "periods")
    # ravel in C order = date-major, matching MultiIndex.from_product(dates, assets)
    idx = pd.MultiIndex.from_product([px.index, px.columns], names=["date", "asset"])
    cols = {period_column(h): _forward_returns_wide(px, h).to_numpy().ravel() for h in per}
    return pd.DataFrame(cols, index=idx).dropna(how="all")


# --------------------------------------------------------------------------- bucketing


def _run_start(tie: np.ndarray) -> np.ndarray:
    """0-based index of the first slot of each slot's tie run (``tie[:, j]``: j+1 ties j)."""
    ncol = tie.shape[1] + 1
    pos = np.arange(1, ncol)
    out = np.empty((tie.shape[0], ncol), dtype=np.int64)
    out[:, 0] = 0
    out[:, 1:] = np.maximum.accumulate(np.where(tie, 0, pos), axis=1)
    return out


def _sorted_ranks(
    vals: np.ndarray, *, want_max: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise sort order; 0-based min-rank and max-rank of each sorted slot; valid count.

    Ties share the rank of their run, so the (unstable) sort order among
    equal values never changes a result. ``rmax`` is only computed with
    ``want_max`` (otherwise it is ``rmin``).
    """
    nan = np.isnan(vals)
    n_valid = (~nan).sum(axis=1)
    if nan.any() and not np.isposinf(vals).any():
        # argsort is ~2x slower with NaN present; +inf sorts last just the same
        order = np.argsort(np.where(nan, np.inf, vals), axis=1)
    else:
        order = np.argsort(vals, axis=1)  # NaN sorts last
    ncol = vals.shape[1]
    pos = np.broadcast_to(np.arange(ncol), vals.shape)
    if ncol < 2:
        return order, pos, pos, n_valid
    svals = np.sort(vals, axis=1)  # cheaper than gathering through ``order``
    tie = svals[:, 1:] == svals[:, :-1]  # NaN never equals NaN
    rows = np.flatnonzero(tie.any(axis=1))
    if len(rows) == 0:
        return order, pos, pos, n_valid
    # Only rows that contain ties pay for the run accumulation.
    rmin = np.array(pos, dtype=np.int64)
    rmin[rows] = _run_start(tie[rows])
    rmax = rmin
    if want_max:
        rmax = np.array(pos, dtype=np.int64)
        rmax[rows] = ncol - 1 - _run_start(tie[rows, ::-1])[:, ::-1]
    return order, rmin, rmax, n_valid


def average_ranks(vals: np.ndarray) -> np.ndarray:
    """Row-wise 1-based average ranks (ties share the mean rank); NaN stays NaN."""
    order, rmin, rmax, n_valid = _sorted_ranks(vals, want_max=True)
    avg = (rmin + rmax) / 2.0 + 1.0
    avg[np.arange(vals.shape[1])[None, :] >= n_valid[:, None]] = np.nan
    out = np.empty(vals.shape)
    np.put_along_axis(out, order, avg, axis=1)
    return out


def _quantile_labels(vals: np.ndarray, quantiles: int | Sequence[float]) -> np.ndarray:
    """Row-wise equal-count (or probability-edged) bucket labels, NaN where invalid."""
    codes = _quantile_codes(vals, quantiles)
    return np.where(codes > 0, codes, np.nan)


def _quantile_codes(vals: np.ndarray, quantiles: int | Sequence[float]) -> np.ndarray:
    """Row-wise bucket labels as int16, 1..n_buckets, 0 where invalid.

    ``vals`` holds finite values or NaN. The rank rule of the module docstring
    is applied through order statistics: with ``r`` = number of values strictly
    below ``x``, ``r > j`` holds exactly when ``x > sorted[j]``. So one row sort
    and q-1 comparisons give the labels (no argsort, no scatter), and ties
    always share a bucket.
    """
    nrow, ncol = vals.shape
    valid = ~np.isnan(vals)
    n = valid.sum(axis=1).astype(np.int64)
    nm1 = np.maximum(n - 1, 1)
    svals = np.sort(vals, axis=1)  # NaN last
    rows = np.arange(nrow)

    def above(j: np.ndarray) -> np.ndarray:
        # x > sorted[j] per row (j clipped into the row; callers mask rows where j is invalid)
        thr = svals[rows, np.clip(j, 0, max(ncol - 1, 0))]
        return vals > thr[:, None]

    if isinstance(quantiles, (int, np.integer)):
        q = int(quantiles)
        # bucket = max(1, ceil(r*q/(n-1))) = 1 + #{k in 1..q-1 : r > floor(k*(n-1)/q)},
        # all in integers (no floating-point edges).
        lab = np.ones(vals.shape, dtype=np.int16)
        for k in range(1, q):
            lab += above((k * nm1) // q)
        ok = valid
    else:
        probs = np.asarray(quantiles, dtype=np.float64)
        # Ranks are compared with the positions p*(n-1); the tolerance puts a
        # name sitting on a position (up to rounding of p) in the lower bucket:
        # r > p*(n-1) + tol  <=>  r > floor(p*(n-1) + tol) for integer r.
        lab_i = np.zeros(vals.shape, dtype=np.int16)
        for p in probs:
            lab_i += above(np.floor(p * nm1 + 1e-9).astype(np.int64))
        # r >= ceil(p0*(n-1) - tol) = m0: at least m0 values strictly below x
        m0 = np.ceil(probs[0] * nm1 - 1e-9).astype(np.int64)
        first = np.where((m0 > 0)[:, None], above(m0 - 1), True)
        lab = np.maximum(lab_i, 1)
        ok = valid & first & (lab_i < len(probs))
    if not (n >= 2).all():
        ok &= (n >= 2)[:, None]
    lab[~ok] = 0
    return lab


def _bin_labels(vals: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    out = np.full(vals.shape, np.nan)
    valid = ~np.isnan(vals)
    if isinstance(bins, (int, np.integer)):
        nb = int(bins)
        has = valid.any(axis=1)
        with np.errstate(all="ignore"):
            mn = np.where(has, np.nanmin(np.where(valid, vals, np.inf), axis=1), 0.0)
            mx = np.where(has, np.nanmax(np.where(valid, vals, -np.inf), axis=1), 0.0)
        same = mn == mx
        # pandas.cut: widen a zero range by 0.1% (or 0.001) each side; otherwise
        # linspace(min, max) with the lowest edge pushed down by 0.1% of the range.
        mn_a = np.where(same, mn - np.where(mn != 0, 0.001 * np.abs(mn), 0.001), mn)
        mx_a = np.where(same, mx + np.where(mx != 0, 0.001 * np.abs(mx), 0.001), mx)
        step = (mx_a - mn_a) / nb
        edges = np.arange(nb + 1, dtype=np.float64)[None, :] * step[:, None]
        edges += mn_a[:, None]
        edges[:, -1] = mx_a
        edges[:, 0] = np.where(same, edges[:, 0], edges[:, 0] - (mx - mn) * 0.001)
        lab = (vals[:, :, None] > edges[:, None, :-1]).sum(axis=2).astype(np.float64)
        out = np.where(valid, lab, np.nan)
    else:
        e = np.asarray(bins, dtype=np.float64)
        idx = np.searchsorted(e, np.where(valid, vals, e[0]), side="left").astype(np.float64)
        ok = valid & (vals > e[0]) & (vals <= e[-1])
        out = np.where(ok, idx, np.nan)
    return out


def _check_bucketing(
    quantiles: int | Sequence[float] | None, bins: int | Sequence[float] | None
) -> tuple[int | Sequence[float] | None, int | Sequence[float] | None, int]:
    if (quantiles is None) == (bins is None):
        raise FactorInputError("give exactly one of quantiles= or bins=")
    spec = quantiles if quantiles is not None else bins
    what = "quantiles" if quantiles is not None else "bins"
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 1:
            raise FactorInputError(f"{what}: must be >= 1, got {spec}")
        return quantiles, bins, int(spec)
    try:
        arr = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FactorInputError(f"{what}: expected an int or a sequence of numbers") from exc
    if arr.ndim != 1 or len(arr) < 2 or not np.all(np.diff(arr) > 0) or not np.isfinite(arr).all():
        raise FactorInputError(
            f"{what}: edges must be >= 2 finite increasing numbers, got {spec!r}"
        )
    if quantiles is not None and (arr[0] < 0 or arr[-1] > 1):
        raise FactorInputError(f"quantiles: probabilities must lie in [0, 1], got {spec!r}")
    return (
        (tuple(arr) if quantiles is not None else None),
        (tuple(arr) if bins is not None else None),
        len(arr) - 1,
    )


def _labels(
    vals: np.ndarray,
    quantiles: int | Sequence[float] | None,
    bins: int | Sequence[float] | None,
    group_codes: np.ndarray | None,
) -> np.ndarray:
    def one(v: np.ndarray) -> np.ndarray:
        if quantiles is not None:
            return _quantile_labels(v, quantiles)
        assert bins is not None
        return _bin_labels(v, bins)

    if group_codes is None:
        return one(vals)
    out = np.full(vals.shape, np.nan)
    # One vectorized pass per group (a handful of industries), not per date.
    for g in np.unique(group_codes[group_codes >= 0]):
        in_g = group_codes == g
        lab = one(np.where(in_g, vals, np.nan))
        out = np.where(in_g, lab, out)
    return out


def quantize(
    factor: pd.DataFrame | pd.Series,
    quantiles: int | Sequence[float] | None = 5,
    bins: int | Sequence[float] | None = None,
    *,
    groups: GroupsLike | None = None,
    by_group: bool = False,
) -> pd.DataFrame:
    """Bucket each date's cross-section of factor values.

    Parameters
    ----------
    factor:
        ``date x asset`` frame or ``(date, asset)`` Series. NaN/inf = no value.
    quantiles:
        Number of equal-count buckets, or increasing probabilities in [0, 1]
        (e.g. ``[0, .1, .5, .9, 1]``). See the module docstring for the exact rule.
    bins:
        Instead of quantiles: number of equal-width buckets per date, or
        increasing right-closed edges (``pandas.cut`` semantics).
    groups, by_group:
        With ``by_group=True`` buckets are formed within each group per date.

    Returns
    -------
    ``date x asset`` float frame of bucket labels ``1..n_buckets`` (1 = lowest
    factor), NaN where the factor is missing or outside the given edges.
    """
    quantiles, bins, _ = _check_bucketing(quantiles, bins)
    wide = as_wide(factor, "factor")
    vals = wide.to_numpy(copy=True)
    vals[~np.isfinite(vals)] = np.nan
    codes = None
    if by_group:
        if groups is None:
            raise FactorInputError("by_group=True needs groups=")
        codes, _ = groups_to_codes(groups, wide.index, wide.columns, ~np.isnan(vals))
    lab = _labels(vals, quantiles, bins, codes)
    return pd.DataFrame(lab, index=wide.index, columns=wide.columns)


# --------------------------------------------------------------------------- the panel


@dataclass(frozen=True)
class FactorData:
    """A cleaned factor panel, aligned on ``dates x assets``.

    All frames share ``index`` (name ``date``) and ``columns`` (name ``asset``);
    cells outside the clean set (``mask`` False) are NaN.

    Attributes
    ----------
    factor: factor values.
    forward_returns: ``{"fwd_<h>": date x asset decimal forward returns}``.
    quantile: bucket labels ``1..n_quantiles`` as floats.
    group_codes: int ``date x asset`` codes into ``group_labels`` (-1 = none) or None.
    group_labels: the group names, or None.
    periods: the horizons in bars.
    n_quantiles: number of buckets.
    dropped: counts of dropped (date, asset) observations by reason.
    """

    factor: pd.DataFrame
    forward_returns: dict[str, pd.DataFrame]
    quantile: pd.DataFrame
    periods: tuple[int, ...]
    n_quantiles: int
    group_codes: np.ndarray | None = None
    group_labels: pd.Index | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``date x asset`` array of the clean observations."""
        return ~np.isnan(self.quantile.to_numpy())

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.factor.index  # type: ignore[return-value]

    @property
    def assets(self) -> pd.Index:
        return self.factor.columns

    @property
    def columns(self) -> list[str]:
        """Forward-return column names in horizon order."""
        return [period_column(p) for p in self.periods]

    def to_long(self) -> pd.DataFrame:
        """alphalens-style long frame.

        Index ``(date, asset)``; columns ``fwd_<h>`` ..., ``factor``, ``group``
        (only with groups), ``factor_quantile`` (int).
        """
        m = self.mask
        r, c = np.nonzero(m)
        idx = pd.MultiIndex.from_arrays([self.dates[r], self.assets[c]], names=["date", "asset"])
        data: dict[str, Any] = {
            col: self.forward_returns[col].to_numpy()[r, c] for col in self.columns
        }
        data["factor"] = self.factor.to_numpy()[r, c]
        if self.group_codes is not None and self.group_labels is not None:
            data["group"] = np.asarray(self.group_labels, dtype=object)[self.group_codes[r, c]]
        data["factor_quantile"] = self.quantile.to_numpy()[r, c].astype(np.int64)
        return pd.DataFrame(data, index=idx)

    @classmethod
    def from_long(
        cls,
        data: pd.DataFrame,
        *,
        n_quantiles: int | None = None,
        return_columns: Mapping[str, int] | None = None,
    ) -> FactorData:
        """Build from a long frame (our :meth:`to_long` layout or alphalens' one).

        ``return_columns`` maps existing forward-return columns to horizons
        (e.g. ``{"1D": 1, "5D": 5}`` for an alphalens frame); by default the
        ``fwd_<h>`` columns are used. Labels in ``factor_quantile`` are kept as is.
        """
        if not isinstance(data.index, pd.MultiIndex) or data.index.nlevels != 2:
            raise FactorInputError("data: needs a (date, asset) MultiIndex")
        for col in ("factor", "factor_quantile"):
            if col not in data.columns:
                raise FactorInputError(f"data: missing column {col!r}")
        if return_columns is None:
            return_columns = {
                c: int(c[4:]) for c in data.columns if isinstance(c, str) and c.startswith("fwd_")
            }
        if not return_columns:
            raise FactorInputError("data: no forward-return columns")
        frame = data.copy()
        frame.index = frame.index.set_names(["date", "asset"])
        fac = frame["factor"].astype(float).unstack("asset")
        dates, assets = fac.index, fac.columns
        fwd = {
            period_column(h): frame[c]
            .astype(float)
            .unstack("asset")
            .reindex(index=dates, columns=assets)
            for c, h in return_columns.items()
        }
        q = (
            frame["factor_quantile"]
            .astype(float)
            .unstack("asset")
            .reindex(index=dates, columns=assets)
        )
        codes = labels = None
        if "group" in frame.columns:
            g = frame["group"].astype(object).unstack("asset").reindex(index=dates, columns=assets)
            codes, labels = groups_to_codes(g, dates, assets, ~np.isnan(q.to_numpy()))
        nq = int(np.nanmax(q.to_numpy())) if n_quantiles is None else int(n_quantiles)
        return cls(
            factor=fac,
            forward_returns=fwd,
            quantile=q,
            periods=tuple(sorted(return_columns.values())),
            n_quantiles=nq,
            group_codes=codes,
            group_labels=labels,
        )


def _align(
    factor: pd.DataFrame | pd.Series, prices: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Validate and align: the wide factor, prices of its assets (all price rows)
    and the price row of each factor date."""
    fac = as_wide(factor, "factor")
    px = check_prices(prices)
    missing_dates = fac.index.difference(px.index)
    if len(missing_dates):
        raise FactorInputError(
            f"factor: date {missing_dates[0]!r} is not in prices.index "
            f"({len(missing_dates)} factor date(s) missing)"
        )
    missing_assets = fac.columns.difference(px.columns)
    if len(missing_assets):
        raise FactorInputError(
            f"factor: asset {missing_assets[0]!r} is not a column of prices "
            f"({len(missing_assets)} asset(s) missing)"
        )
    return fac, px[fac.columns].to_numpy(), px.index.get_indexer(fac.index)


def _forward_at(pvals: np.ndarray, rows: np.ndarray, h: int) -> np.ndarray:
    """``p[t+h]/p[t] - 1`` per asset (column) at the price rows ``rows``; NaN past the end."""
    out = np.full((len(rows), pvals.shape[1]), np.nan)
    ok = rows + h < len(pvals)
    out[ok] = pvals[rows[ok] + h] / pvals[rows[ok]] - 1.0
    return out


def prepare_factor_data(
    factor: pd.DataFrame | pd.Series,
    prices: pd.DataFrame,
    periods: Sequence[int] | int = (1, 5, 10),
    quantiles: int | Sequence[float] | None = 5,
    bins: int | Sequence[float] | None = None,
    *,
    groups: GroupsLike | None = None,
    by_group: bool = False,
    min_assets: int | None = None,
    max_loss: float | None = None,
) -> FactorData:
    """Align a factor with prices, compute forward returns and buckets.

    Parameters
    ----------
    factor:
        ``date x asset`` frame or ``(date, asset)`` Series. Every factor date
        must be in ``prices.index`` and every asset a column of ``prices``.
    prices:
        ``date x asset`` positive prices; may extend past the factor dates.
    periods:
        Forward-return horizons in price bars.
    quantiles, bins:
        Bucketing, see :func:`quantize`.
    groups, by_group:
        Asset -> group mapping (dict/Series) or ``date x asset`` frame of groups;
        ``by_group`` buckets within groups.
    min_assets:
        Dates with fewer clean assets are dropped. Default: the number of
        buckets (and at least 2).
    max_loss:
        If given (0..1), raise when more than this fraction of the finite
        factor observations is dropped.

    Returns
    -------
    :class:`FactorData`. ``dropped`` counts (date, asset) cells:
    ``non_finite_factor`` (NaN or +-inf factor, including the empty cells of
    a wide frame), then among finite factor values those lost to
    ``no_forward_return`` (some horizon's forward return is missing),
    ``below_min_assets`` (their date had too few names) and ``not_bucketed``
    (outside explicit bin edges / quantile range, or alone in a by-group
    bucket), and ``kept``. ``max_loss`` compares the last three losses with
    the number of finite factor values.
    """
    quantiles, bins, n_buckets = _check_bucketing(quantiles, bins)
    per = check_int_list(periods, "periods")
    fac, pvals, rows = _align(factor, prices)
    if min_assets is None:
        min_assets = max(2, n_buckets)
    if int(min_assets) != min_assets or min_assets < 1:
        raise FactorInputError(f"min_assets: must be a positive integer, got {min_assets!r}")
    if max_loss is not None and not 0.0 <= max_loss <= 1.0:
        raise FactorInputError(f"max_loss: must be in [0, 1], got {max_loss!r}")

    fwd_vals = {period_column(h): _forward_at(pvals, rows, h) for h in per}

    fv = fac.to_numpy(copy=True)
    finite = np.isfinite(fv)
    n_nonfinite = int((~finite).sum())
    fv[~finite] = np.nan
    has_fwd = np.logical_and.reduce([np.isfinite(v) for v in fwd_vals.values()])
    keep = finite & has_fwd
    n_no_fwd = int((finite & ~has_fwd).sum())

    codes = labels = None
    if groups is not None:
        codes, labels = groups_to_codes(groups, fac.index, fac.columns, keep)
    elif by_group:
        raise FactorInputError("by_group=True needs groups=")

    counts = keep.sum(axis=1)
    small = counts < min_assets
    n_small = int(counts[small].sum())
    keep[small] = False

    vals = np.where(keep, fv, np.nan)
    lab = _labels(vals, quantiles, bins, codes if by_group else None)
    n_outside = int((keep & np.isnan(lab)).sum())
    keep &= ~np.isnan(lab)

    total = int(finite.sum())
    lost = n_no_fwd + n_small + n_outside
    if max_loss is not None and total and lost / total > max_loss:
        raise FactorInputError(
            f"max_loss: {lost / total:.1%} of {total} finite factor observations dropped "
            f"(no forward return {n_no_fwd}, dates below min_assets={min_assets} {n_small}, "
            f"not bucketed {n_outside}) exceeds {max_loss:.1%}"
        )

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            np.where(keep, a, np.nan), index=fac.index, columns=fac.columns, copy=False
        )

    return FactorData(
        factor=frame(vals),
        forward_returns={k: frame(v) for k, v in fwd_vals.items()},
        quantile=frame(lab),
        periods=per,
        n_quantiles=n_buckets,
        group_codes=codes,
        group_labels=labels,
        dropped={
            "non_finite_factor": n_nonfinite,
            "no_forward_return": n_no_fwd,
            "below_min_assets": n_small,
            "not_bucketed": n_outside,
            "kept": int(keep.sum()),
        },
    )


# --------------------------------------------------------------------------- neutralisation


def neutralize(
    factor: pd.DataFrame | pd.Series,
    groups: GroupsLike | None = None,
    size: pd.DataFrame | None = None,
    *,
    log_size: bool = True,
) -> pd.DataFrame:
    """Remove group and/or size exposure from a factor, date by date.

    Each date's cross-section is regressed (OLS) on group dummies (when
    ``groups`` is given) and on size (when ``size`` is given, ``log(size)`` if
    ``log_size``); the residual is returned. With groups only this is the
    factor minus its (date, group) mean; with neither it is the factor minus
    its date mean. Computed with the Frisch-Waugh identity, vectorized over
    dates. Cells with a missing factor, group or size stay NaN. A (date,
    group) cell with a single asset has residual 0 by construction.

    Returns a ``date x asset`` float frame aligned to ``factor``.
    """
    fac = as_wide(factor, "factor")
    f = fac.to_numpy(copy=True)
    f[~np.isfinite(f)] = np.nan
    valid = ~np.isnan(f)
    s = None
    if size is not None:
        sz = as_wide(size, "size").reindex(index=fac.index, columns=fac.columns)
        s = sz.to_numpy(copy=True)
        if log_size:
            bad = valid & ~np.isnan(s) & ~(s > 0)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise FactorInputError(
                    f"size: value {s[r, c]!r} at {fac.index[r]!r}, {fac.columns[c]!r} "
                    "must be > 0 for log_size=True"
                )
            with np.errstate(all="ignore"):
                s = np.log(s)
        s[~np.isfinite(s)] = np.nan
        valid &= ~np.isnan(s)
    if groups is not None:
        codes, _ = groups_to_codes(groups, fac.index, fac.columns, valid)
    else:
        codes = np.zeros(f.shape, dtype=np.int64)

    def demean(x: np.ndarray) -> np.ndarray:
        out = np.full(x.shape, np.nan)
        for g in np.unique(codes[valid]):
            m = valid & (codes == g)
            cnt = m.sum(axis=1)
            with np.errstate(all="ignore"):
                mean = np.where(m, x, 0.0).sum(axis=1) / cnt
            out = np.where(m, x - mean[:, None], out)
        return out

    fd = demean(f)
    if s is not None:
        sd = demean(s)
        num = np.nansum(fd * sd, axis=1)
        den = np.nansum(sd * sd, axis=1)
        with np.errstate(all="ignore"):
            beta = np.where(den > 0, num / den, 0.0)
        fd = fd - beta[:, None] * sd
    return pd.DataFrame(fd, index=fac.index, columns=fac.columns)
