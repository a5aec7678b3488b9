"""Input checks and conversions shared by the factor modules.

Every check raises :class:`FactorInputError` (a ``ValueError``) naming the
argument and, where it applies, the date and asset that are wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bt_analysis._validation import AnalysisInputError

__all__ = ["FactorInputError"]


class FactorInputError(AnalysisInputError):
    """Bad input to a factor-analysis function (names the argument and location).

    A ``ValueError`` (via the package-wide :class:`bt_analysis.AnalysisInputError`).
    """


def _check_index(index: pd.Index, what: str) -> None:
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise FactorInputError(f"{what}: duplicate date {dup!r} in the index")
    if not index.is_monotonic_increasing:
        values = np.asarray(index)
        pos = int(np.flatnonzero(values[1:] < values[:-1])[0]) + 1
        raise FactorInputError(
            f"{what}: dates are not sorted ascending (first out of order near {index[pos]!r})"
        )


def as_wide(obj: pd.DataFrame | pd.Series, what: str) -> pd.DataFrame:
    """Return a float ``date x asset`` frame from a wide frame or a (date, asset) Series."""
    if isinstance(obj, pd.Series):
        if not isinstance(obj.index, pd.MultiIndex) or obj.index.nlevels != 2:
            raise FactorInputError(
                f"{what}: a Series must have a 2-level (date, asset) MultiIndex, "
                f"got index {type(obj.index).__name__} with {obj.index.nlevels} level(s)"
            )
        if obj.index.has_duplicates:
            dup = obj.index[obj.index.duplicated()][0]
            raise FactorInputError(f"{what}: duplicate (date, asset) entry {dup!r}")
        wide = obj.unstack(level=1)
    elif isinstance(obj, pd.DataFrame):
        wide = obj
    else:
        raise FactorInputError(
            f"{what}: expected a date x asset DataFrame or a (date, asset) Series, "
            f"got {type(obj).__name__}"
        )
    if wide.columns.has_duplicates:
        dup_col = wide.columns[wide.columns.duplicated()][0]
        raise FactorInputError(f"{what}: duplicate asset column {dup_col!r}")
    _check_index(wide.index, what)
    bad = [(c, dt) for c, dt in wide.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if bad:
        raise FactorInputError(f"{what}: column {bad[0][0]!r} has non-numeric dtype {bad[0][1]}")
    # Row-major (date-major) storage: every hot loop works along rows of a
    # date x asset array, and pandas' own copy would hand back a column-major one.
    # (always a private copy: later edits of the caller's frame cannot leak in)
    values = np.array(wide.to_numpy(dtype=np.float64, na_value=np.nan), order="C")
    out = pd.DataFrame(values, index=wide.index.copy(), columns=wide.columns.copy(), copy=False)
    out.index.name = "date"
    out.columns.name = "asset"
    return out


def check_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Validate a ``date x asset`` price frame: positive and finite where present."""
    if not isinstance(prices, pd.DataFrame):
        raise FactorInputError(
            f"prices: expected a date x asset DataFrame, got {type(prices).__name__}"
        )
    wide = as_wide(prices, "prices")
    vals = wide.to_numpy()
    bad = ~np.isnan(vals) & ~(np.isfinite(vals) & (vals > 0))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise FactorInputError(
            f"prices: value {vals[r, c]!r} at date {wide.index[r]!r}, asset "
            f"{wide.columns[c]!r} is not a positive finite price"
        )
    return wide


def check_int_list(values: Any, what: str, *, minimum: int = 1) -> tuple[int, ...]:
    """Return a sorted tuple of unique ints >= ``minimum`` or raise."""
    if isinstance(values, (int, np.integer)):
        values = (values,)
    values = list(values) if not isinstance(values, str) else values
    try:
        out = tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError) as exc:
        raise FactorInputError(f"{what}: expected integers, got {values!r}") from exc
    if not out:
        raise FactorInputError(f"{what}: must not be empty")
    if any(v < minimum for v in out) or any(int(v) != v for v in values):
        raise FactorInputError(
            f"{what}: every value must be an integer >= {minimum}, got {values!r}"
        )
    return out


def groups_to_codes(
    groups: Mapping[Any, Any] | pd.Series | pd.DataFrame,
    dates: pd.Index,
    assets: pd.Index,
    needed: np.ndarray,
) -> tuple[np.ndarray, pd.Index]:
    """Encode groups as an int ``date x asset`` array (-1 = no group) and their labels.

    ``groups`` is an asset -> group mapping (dict or Series, constant over time)
    or a ``date x asset`` frame. ``needed`` marks cells that must have a group;
    a missing group there is an error (never a silent drop).
    """
    if isinstance(groups, pd.DataFrame):
        frame = groups.reindex(index=dates, columns=assets)
        missing_dates = dates.difference(groups.index)
        if len(missing_dates) and needed[dates.get_indexer(missing_dates)].any():
            raise FactorInputError(f"groups: no row for date {missing_dates[0]!r}")
        stacked = frame.to_numpy(dtype=object).ravel()
        isna = pd.isna(stacked)
        codes_flat, labels = pd.factorize(pd.Series(stacked), sort=True)
        codes = codes_flat.reshape(frame.shape)
        codes[isna.reshape(frame.shape)] = -1
    else:
        if isinstance(groups, Mapping):
            series = pd.Series(dict(groups), dtype=object)
        elif isinstance(groups, pd.Series):
            if groups.index.has_duplicates:
                raise FactorInputError(
                    f"groups: duplicate asset {groups.index[groups.index.duplicated()][0]!r}"
                )
            series = groups.astype(object)
        else:
            raise FactorInputError(
                "groups: expected a dict/Series asset -> group or a date x asset DataFrame, "
                f"got {type(groups).__name__}"
            )
        per_asset = series.reindex(assets)
        codes_a, labels = pd.factorize(per_asset, sort=True)
        codes_a = np.where(per_asset.isna().to_numpy(), -1, codes_a)
        codes = np.broadcast_to(codes_a, (len(dates), len(assets))).copy()
    lacking = needed & (codes < 0)
    if lacking.any():
        r, c = np.argwhere(lacking)[0]
        raise FactorInputError(
            f"groups: asset {assets[c]!r} has a factor value on {dates[r]!r} but no group"
        )
    return codes.astype(np.int64), pd.Index(labels, name="group")
