"""Invariants, conventions and input errors of bt_analysis.factor (no reference library)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from bt_analysis.factor import (
    FactorInputError,
    factor_ic,
    factor_summary,
    forward_returns,
    group_ic_summary,
    ic_decay,
    ic_summary,
    mean_return_by_quantile,
    monotonicity,
    neutralize,
    prepare_factor_data,
    quantize,
)


def make_panel(
    n_dates: int = 40, n_assets: int = 15, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_dates)
    assets = [f"S{i:02d}" for i in range(n_assets)]
    prices = pd.DataFrame(
        50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_dates, n_assets)), axis=0)),
        index=dates,
        columns=assets,
    )
    factor = pd.DataFrame(rng.normal(size=(n_dates, n_assets)), index=dates, columns=assets)
    return factor, prices


# ----------------------------------------------------------------------------- buckets


def test_ten_names_five_buckets_two_each() -> None:
    f = pd.DataFrame([np.arange(10.0)[::-1]], columns=list("abcdefghij"))
    lab = quantize(f, 5).to_numpy()[0]
    assert np.bincount(lab.astype(int))[1:].tolist() == [2, 2, 2, 2, 2]
    # highest factor -> bucket 5 (a has 9.0)
    assert lab[0] == 5 and lab[-1] == 1


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
        min_size=2,
        max_size=80,
        unique=True,
    ),
    q=st.integers(1, 12),
)
def test_bucket_sizes_differ_by_at_most_one(values: list[float], q: int) -> None:
    lab = quantize(pd.DataFrame([values]), q).to_numpy()[0]
    sizes = np.bincount(lab.astype(int), minlength=q + 1)[1:]
    assert sizes.sum() == len(values)
    assert sizes.max() - sizes.min() <= 1 or len(values) < q
    # buckets follow the factor order
    order = np.argsort(values)
    assert (np.diff(lab[order]) >= 0).all()


@settings(max_examples=80, deadline=None)
@given(
    base=st.lists(st.integers(-5, 5), min_size=2, max_size=40),
    q=st.integers(2, 6),
)
def test_ties_share_a_bucket(base: list[int], q: int) -> None:
    x = np.array(base, dtype=float)
    lab = quantize(pd.DataFrame([x]), q).to_numpy()[0]
    for v in np.unique(x):
        assert len(np.unique(lab[x == v])) == 1


def test_quantize_accepts_long_series_and_keeps_nan() -> None:
    factor, _ = make_panel(n_dates=3, n_assets=10)
    factor.iloc[0, 0] = np.nan
    wide = quantize(factor, 5)
    long = quantize(factor.stack(), 5)
    pd.testing.assert_frame_equal(wide, long.reindex(index=wide.index, columns=wide.columns))
    assert np.isnan(wide.iloc[0, 0])
    assert wide.iloc[0].notna().sum() == 9


# ----------------------------------------------------------------------------- forward returns


def test_forward_returns_per_asset_never_across_assets() -> None:
    _, prices = make_panel(n_dates=12, n_assets=4)
    prices.iloc[5, 1] = np.nan  # a missing price only touches that asset
    fr = forward_returns(prices, (1, 3))
    p = prices.to_numpy()
    for j, a in enumerate(prices.columns):
        exp1 = p[1:, j] / p[:-1, j] - 1
        got = fr["fwd_1"].xs(a, level="asset").reindex(prices.index[:-1]).to_numpy()
        np.testing.assert_allclose(got, exp1, rtol=0, atol=1e-15, equal_nan=True)
    # permuting the asset columns permutes the result, nothing else
    perm = prices[prices.columns[::-1]]
    fr2 = forward_returns(perm, (1, 3))
    pd.testing.assert_frame_equal(fr.sort_index(), fr2.sort_index(), check_like=True)
    assert np.isnan(fr.loc[(prices.index[4], "S01"), "fwd_1"])
    assert np.isnan(fr.loc[(prices.index[2], "S01"), "fwd_3"])
    assert np.isfinite(fr.loc[(prices.index[4], "S02"), "fwd_1"])


def test_missing_factor_values_are_dropped_not_zero() -> None:
    factor, prices = make_panel()
    f2 = factor.copy()
    f2.iloc[:, 0] = np.nan
    fd = prepare_factor_data(f2, prices, (1,), quantiles=4)
    long = fd.to_long()
    assert "S00" not in set(long.index.get_level_values("asset"))
    ref = prepare_factor_data(factor.drop(columns="S00"), prices, (1,), quantiles=4)
    pd.testing.assert_frame_equal(factor_ic(fd), factor_ic(ref))
    # a zero-filled factor would give a different IC
    zero = prepare_factor_data(f2.fillna(0.0), prices, (1,), quantiles=4)
    assert not np.allclose(factor_ic(zero).to_numpy(), factor_ic(fd).to_numpy())
    assert fd.dropped["non_finite_factor"] == len(factor)


def test_min_assets_per_date_enforced() -> None:
    factor, prices = make_panel(n_assets=10)
    factor.iloc[3, 3:] = np.nan  # only 3 names on date 3
    fd = prepare_factor_data(factor, prices, (1,), quantiles=2, min_assets=5)
    assert not fd.mask[3].any()
    assert fd.dropped["below_min_assets"] == 3
    assert factor.index[3] not in factor_ic(fd).index
    fd2 = prepare_factor_data(factor, prices, (1,), quantiles=2, min_assets=3)
    assert fd2.mask[3].sum() == 3
    with pytest.raises(FactorInputError, match="max_loss"):
        prepare_factor_data(factor, prices, (1,), quantiles=2, min_assets=11, max_loss=0.5)


# ----------------------------------------------------------------------------- IC


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_ic_bounds_and_rank_ic_invariant_under_monotone_transform(seed: int) -> None:
    factor, prices = make_panel(n_dates=20, n_assets=12, seed=seed)
    fd = prepare_factor_data(factor, prices, (1, 3), quantiles=3)
    for method in ("pearson", "spearman"):
        ic = factor_ic(fd, method).to_numpy()
        assert np.nanmin(ic) >= -1.0 and np.nanmax(ic) <= 1.0
    transformed = np.exp(3 * factor) + 7.0  # strictly increasing
    fd2 = prepare_factor_data(transformed, prices, (1, 3), quantiles=3)
    np.testing.assert_allclose(
        factor_ic(fd2, "spearman").to_numpy(), factor_ic(fd, "spearman").to_numpy(), atol=1e-12
    )
    assert (fd2.quantile.fillna(0) == fd.quantile.fillna(0)).all().all()


def test_pearson_ic_matches_scipy_per_date() -> None:
    factor, prices = make_panel()
    fd = prepare_factor_data(factor, prices, (2,), quantiles=3)
    ic = factor_ic(fd, "pearson")["fwd_2"]
    long = fd.to_long()
    for d in ic.index[:5]:
        sub = long.xs(d, level="date")
        assert ic[d] == pytest.approx(sps.pearsonr(sub["factor"], sub["fwd_2"])[0], abs=1e-12)


def test_ic_summary_matches_scipy_ttest() -> None:
    rng = np.random.default_rng(1)
    ic = pd.DataFrame({"fwd_1": rng.normal(0.03, 0.1, 200)})
    ic.iloc[5] = np.nan
    s = ic_summary(ic).loc["fwd_1"]
    x = ic["fwd_1"].dropna()
    t = sps.ttest_1samp(x, 0.0)
    assert s["t_stat"] == pytest.approx(t.statistic, rel=1e-12)
    assert s["p_value"] == pytest.approx(t.pvalue, rel=1e-9)
    assert s["icir"] == pytest.approx(x.mean() / x.std(ddof=1), rel=1e-12)
    assert s["n"] == 199


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_ic_decay_matches_one_panel_per_horizon(method: str) -> None:
    factor, prices = make_panel()
    prices.iloc[20:23, 2] = np.nan  # a hole touches each horizon differently
    factor.iloc[5, 1] = np.nan
    dec = ic_decay(factor, prices, horizons=(4, 1, 7), method=method)  # type: ignore[arg-type]
    assert list(dec.index) == [1, 4, 7]
    for h in (1, 4, 7):
        fd = prepare_factor_data(factor, prices, (h,), quantiles=1, min_assets=2)
        ref = ic_summary(factor_ic(fd, method)).iloc[0]  # type: ignore[arg-type]
        np.testing.assert_allclose(dec.loc[h].to_numpy(float), ref.to_numpy(float), atol=1e-12)


def test_planted_signal_has_positive_ic_and_monotone_returns() -> None:
    rng = np.random.default_rng(2)
    n_dates, n_assets = 120, 40
    rets = rng.normal(0, 0.01, (n_dates, n_assets))
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    prices = pd.DataFrame(np.exp(np.cumsum(rets, 0)) * 10, index=dates)
    prices.columns = [f"X{i}" for i in range(n_assets)]
    nxt = np.vstack([rets[1:], np.zeros((1, n_assets))])
    factor = pd.DataFrame(
        nxt + rng.normal(0, 0.005, nxt.shape), index=dates, columns=prices.columns
    )
    fd = prepare_factor_data(factor.iloc[:-1], prices, (1,), quantiles=5)
    assert factor_ic(fd).mean()["fwd_1"] > 0.5
    mean, _ = mean_return_by_quantile(fd)
    assert monotonicity(mean)["fwd_1"] == pytest.approx(1.0)
    summary = factor_summary(fd)
    json.dumps(summary, allow_nan=False)
    assert summary["spread"]["fwd_1"] > 0


# --------------------------------------------------------------- groups and neutralisation


def test_by_group_ic_and_group_summary() -> None:
    factor, prices = make_panel(n_assets=12)
    groups = pd.Series({a: "g1" if i < 6 else "g2" for i, a in enumerate(factor.columns)})
    fd = prepare_factor_data(factor, prices, (1,), quantiles=2, groups=groups)
    ic = factor_ic(fd, by_group=True)
    assert set(ic.index.get_level_values("group")) == {"g1", "g2"}
    long = fd.to_long()
    d = ic.index.get_level_values("date")[0]
    sub = long.xs(d, level="date")
    sub = sub[sub["group"] == "g2"]
    ref = sps.spearmanr(sub["factor"], sub["fwd_1"])[0]
    assert ic.loc[(d, "g2"), "fwd_1"] == pytest.approx(ref, abs=1e-12)
    gs = group_ic_summary(fd)
    assert gs.loc[("g1", "fwd_1"), "n"] == len(ic.xs("g1", level="group"))


def test_dated_group_frame_is_accepted_and_missing_group_is_an_error() -> None:
    factor, prices = make_panel(n_assets=6)
    g = pd.DataFrame("a", index=factor.index, columns=factor.columns)
    g.iloc[10:, 0] = "b"  # reclassified mid-sample
    fd = prepare_factor_data(factor, prices, (1,), quantiles=2, groups=g)
    long = fd.to_long()
    assert long.loc[(factor.index[12], "S00"), "group"] == "b"
    with pytest.raises(FactorInputError, match="S05"):
        prepare_factor_data(factor, prices, (1,), groups={a: "x" for a in factor.columns[:5]})


def test_neutralize_matches_per_date_least_squares() -> None:
    factor, _ = make_panel(n_dates=6, n_assets=14, seed=4)
    rng = np.random.default_rng(4)
    size = pd.DataFrame(np.exp(rng.normal(10, 1, factor.shape)), index=factor.index)
    size.columns = factor.columns
    groups = {a: f"g{i % 3}" for i, a in enumerate(factor.columns)}
    factor.iloc[2, 5] = np.nan
    res = neutralize(factor, groups=groups, size=size)
    for i, d in enumerate(factor.index):
        ok = factor.iloc[i].notna().to_numpy()
        y = factor.iloc[i].to_numpy()[ok]
        dummies = pd.get_dummies(pd.Series(groups)[factor.columns[ok]]).to_numpy(float)
        x = np.column_stack([dummies, np.log(size.iloc[i].to_numpy()[ok])])
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        np.testing.assert_allclose(res.loc[d].to_numpy()[ok], y - x @ beta, atol=1e-10)
    assert np.isnan(res.iloc[2, 5])
    only_groups = neutralize(factor, groups=groups)
    sums = only_groups.T.groupby(pd.Series(groups)).sum().to_numpy()
    np.testing.assert_allclose(sums, 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors() -> None:
    factor, prices = make_panel(n_dates=10, n_assets=5)
    with pytest.raises(FactorInputError, match="not sorted"):
        prepare_factor_data(factor.iloc[::-1], prices)
    with pytest.raises(FactorInputError, match="duplicate date"):
        prepare_factor_data(pd.concat([factor, factor.iloc[[0]]]), prices)
    bad = prices.copy()
    bad.iloc[2, 1] = -1.0
    with pytest.raises(FactorInputError, match=r"S01.*positive"):
        prepare_factor_data(factor, bad)
    with pytest.raises(FactorInputError, match="not in prices.index"):
        prepare_factor_data(factor, prices.iloc[2:])
    with pytest.raises(FactorInputError, match="not a column of prices"):
        prepare_factor_data(factor, prices.drop(columns="S03"))
    with pytest.raises(FactorInputError, match="exactly one"):
        prepare_factor_data(factor, prices, quantiles=5, bins=3)
    with pytest.raises(FactorInputError, match="periods"):
        prepare_factor_data(factor, prices, periods=(0,))
    with pytest.raises(FactorInputError, match="non-numeric"):
        prepare_factor_data(factor.astype(str), prices)
    with pytest.raises(FactorInputError, match="MultiIndex"):
        prepare_factor_data(factor.iloc[0], prices)
    with pytest.raises(FactorInputError, match="by_group"):
        prepare_factor_data(factor, prices, by_group=True)
    assert issubclass(FactorInputError, ValueError)
