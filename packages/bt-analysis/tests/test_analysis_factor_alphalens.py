"""Cross-checks of bt_analysis.factor against alphalens-reloaded (test-only reference).

alphalens is called with ``filter_zscore=None`` (we never filter) and
``max_loss=1`` (we report drops instead of raising); everything else default.
Panels are small because alphalens is slow.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from bt_analysis.factor import (
    FactorData,
    factor_ic,
    factor_rank_autocorrelation,
    mean_return_by_quantile,
    prepare_factor_data,
    quantile_spread,
    quantile_turnover,
    quantize,
)

al_utils = pytest.importorskip("alphalens.utils")
al_perf = pytest.importorskip("alphalens.performance")

TOL = 1e-9


def make_panel(
    n_dates: int = 70, n_assets: int = 23, seed: int = 0, nan_frac: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Business-day prices (random walk) and a factor correlated with future returns."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    assets = [f"A{i:02d}" for i in range(n_assets)]
    rets = rng.normal(0.0, 0.02, (n_dates, n_assets))
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=assets)
    nxt = np.vstack([rets[1:], np.zeros((1, n_assets))])
    factor = pd.DataFrame(nxt + rng.normal(0, 0.03, nxt.shape), index=dates, columns=assets)
    if nan_frac:
        factor = factor.mask(rng.random(factor.shape) < nan_frac)
    return factor.iloc[:-10], prices


def alphalens_clean(factor: pd.DataFrame, prices: pd.DataFrame, **kw: object) -> pd.DataFrame:
    kw.setdefault("periods", (1, 5))
    kw.setdefault("filter_zscore", None)
    kw.setdefault("max_loss", 1.0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return al_utils.get_clean_factor_and_forward_returns(factor.stack(), prices, **kw)


def to_ours(cols: pd.Index) -> dict[str, str]:
    return {c: f"fwd_{pd.Timedelta(c).days}" for c in cols if c.endswith("D")}


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, FactorData]:
    # 23 names, 5 buckets: gcd(22, 5) = 1, so no name sits exactly on a qcut edge.
    factor, prices = make_panel()
    al = alphalens_clean(factor, prices)
    fd = prepare_factor_data(factor, prices, periods=(1, 5), quantiles=5)
    return factor, prices, al, fd


def test_clean_frame_labels_and_forward_returns_equal_alphalens(panel) -> None:
    _, _, al, fd = panel
    ours = fd.to_long()
    assert ours.index.equals(al.index)
    assert (ours["factor_quantile"].to_numpy() == al["factor_quantile"].to_numpy()).all()
    np.testing.assert_allclose(ours["fwd_1"], al["1D"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours["fwd_5"], al["5D"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours["factor"], al["factor"], rtol=0, atol=0)


def test_rank_ic_series_equal_alphalens(panel) -> None:
    _, _, al, fd = panel
    ref = al_perf.factor_information_coefficient(al).rename(columns=to_ours(al.columns))
    ours = factor_ic(fd, "spearman")
    assert ours.index.equals(ref.index)
    np.testing.assert_allclose(ours.to_numpy(), ref[ours.columns].to_numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("demeaned", [True, False])
def test_mean_return_by_quantile_equal_alphalens(panel, demeaned: bool) -> None:
    _, _, al, fd = panel
    ref_m, ref_s = al_perf.mean_return_by_quantile(al, demeaned=demeaned)
    m, s = mean_return_by_quantile(fd, demeaned=demeaned)
    assert list(m.index) == list(ref_m.index)
    np.testing.assert_allclose(m.to_numpy(), ref_m[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(s.to_numpy(), ref_s[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    ref_m, ref_s = al_perf.mean_return_by_quantile(al, by_date=True, demeaned=demeaned)
    m, s = mean_return_by_quantile(fd, by_date=True, demeaned=demeaned)
    assert m.index.equals(ref_m.index)
    np.testing.assert_allclose(m.to_numpy(), ref_m[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(s.to_numpy(), ref_s[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)


def test_spread_is_alphalens_times_two(panel) -> None:
    # Deliberate difference: alphalens-reloaded >= 0.5 halves the spread.
    _, _, al, fd = panel
    ref_m, ref_s = al_perf.mean_return_by_quantile(al, by_date=True)
    ref_spread, ref_se = al_perf.compute_mean_returns_spread(ref_m, 5, 1, ref_s)
    m, s = mean_return_by_quantile(fd, by_date=True)
    spread, se = quantile_spread(m, s)
    np.testing.assert_allclose(spread["fwd_1"], 2 * ref_spread["1D"], rtol=0, atol=TOL)
    assert se is not None
    np.testing.assert_allclose(se["fwd_5"], 2 * ref_se["5D"], rtol=0, atol=TOL)


def test_turnover_and_rank_autocorrelation_equal_alphalens(panel) -> None:
    _, _, al, fd = panel
    ours = quantile_turnover(fd, period=1)
    for q in (1, 3, 5):
        ref = al_perf.quantile_turnover(al["factor_quantile"], q, 1)
        np.testing.assert_allclose(
            ours[q].reindex(ref.index).to_numpy(), ref.to_numpy(), rtol=0, atol=TOL
        )
    for period in (1, 3):
        ref = al_perf.factor_rank_autocorrelation(al, period)
        got = factor_rank_autocorrelation(fd, period).reindex(ref.index)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=TOL)


def test_missing_factor_values_match_alphalens_and_are_dropped() -> None:
    factor, prices = make_panel(seed=3, nan_frac=0.15)
    al = alphalens_clean(factor, prices)
    fd = prepare_factor_data(factor, prices, periods=(1, 5), quantiles=5)
    ours = fd.to_long()
    assert ours.index.equals(al.index)  # NaN factors dropped, not zero-filled
    assert len(ours) == int(factor.notna().sum().sum())
    # Labels equal except where a name sits exactly on a float qcut edge (see core docs).
    n = ours.groupby(level="date").size().reindex(ours.index.get_level_values("date")).to_numpy()
    exact = np.array([math.gcd(int(k) - 1, 5) == 1 for k in n])
    a = ours["factor_quantile"].to_numpy()
    b = al["factor_quantile"].to_numpy()
    assert (a[exact] == b[exact]).all()
    assert ((a == b) | (b == a + 1))[~exact].all()
    # Statistics that do not depend on the labels agree everywhere.
    ref = al_perf.factor_information_coefficient(al).rename(columns=to_ours(al.columns))
    np.testing.assert_allclose(
        factor_ic(fd).to_numpy(), ref[["fwd_1", "fwd_5"]].to_numpy(), rtol=0, atol=TOL
    )
    # With alphalens' own labels, our aggregation equals alphalens' exactly.
    fd_al = FactorData.from_long(al, return_columns={"1D": 1, "5D": 5})
    ref_m, ref_s = al_perf.mean_return_by_quantile(al)
    m, s = mean_return_by_quantile(fd_al)
    np.testing.assert_allclose(m.to_numpy(), ref_m[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(s.to_numpy(), ref_s[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)


def test_qcut_float_edge_case_is_documented_difference() -> None:
    """19 names, 6 buckets: qcut can give 4/3/3/3/2/4; ours is always 4/3/3/3/3/3."""
    rng = np.random.default_rng(0)
    seen_qcut_imbalance = False
    for _ in range(400):
        x = rng.standard_normal(19)
        ref = pd.qcut(x, 6, labels=False) + 1
        ours = quantize(pd.DataFrame([x]), quantiles=6).to_numpy()[0]
        sizes = np.bincount(ours.astype(int), minlength=7)[1:]
        assert sizes.tolist() == [4, 3, 3, 3, 3, 3]
        diff = ours != ref
        if diff.any():
            rank = np.argsort(np.argsort(x))
            # only the name exactly on edge k*(n-1)/q = 15, moved one bucket up by qcut
            assert (rank[diff] * 6 % 18 == 0).all()
            assert (ref[diff] == ours[diff] + 1).all()
            seen_qcut_imbalance |= np.bincount(ref, minlength=7)[1:].tolist() == [4, 3, 3, 3, 2, 4]
    assert seen_qcut_imbalance


def test_by_group_binning_ic_and_returns_equal_alphalens() -> None:
    factor, prices = make_panel(seed=5, n_assets=24)
    groups = {a: ("tech" if i % 2 else "bank") for i, a in enumerate(factor.columns)}
    # 12 names per group, 3 buckets: gcd(11, 3) = 1.
    al = alphalens_clean(factor, prices, groupby=groups, binning_by_group=True, quantiles=3)
    fd = prepare_factor_data(factor, prices, (1, 5), 3, groups=groups, by_group=True)
    ours = fd.to_long()
    assert (ours["factor_quantile"].to_numpy() == al["factor_quantile"].to_numpy()).all()
    assert (ours["group"].astype(str).to_numpy() == al["group"].astype(str).to_numpy()).all()
    ref = al_perf.factor_information_coefficient(al, by_group=True)
    got = factor_ic(fd, by_group=True)
    np.testing.assert_allclose(got.to_numpy(), ref[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    ref = al_perf.factor_information_coefficient(al, group_adjust=True)
    got = factor_ic(fd, group_adjust=True)
    np.testing.assert_allclose(got.to_numpy(), ref[["1D", "5D"]].to_numpy(), rtol=0, atol=TOL)
    for kw in ({"by_group": True}, {"group_adjust": True}):
        ref_m, ref_s = al_perf.mean_return_by_quantile(al, **kw)
        m, s = mean_return_by_quantile(fd, **kw)
        np.testing.assert_allclose(m.to_numpy(), ref_m[["1D", "5D"]].to_numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(s.to_numpy(), ref_s[["1D", "5D"]].to_numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize(
    "kw",
    [{"bins": 4, "quantiles": None}, {"bins": [-1.0, -0.02, 0.0, 0.02, 1.0], "quantiles": None}],
)
def test_fixed_bins_equal_alphalens(kw: dict) -> None:
    factor, prices = make_panel(seed=7)
    al = alphalens_clean(factor, prices, **kw)
    fd = prepare_factor_data(factor, prices, (1, 5), min_assets=1, **kw)
    ours = fd.to_long()
    assert ours.index.equals(al.index)
    assert (ours["factor_quantile"].to_numpy() == al["factor_quantile"].to_numpy()).all()


def test_custom_quantile_probabilities_equal_alphalens() -> None:
    factor, prices = make_panel(seed=9)
    probs = [0.0, 0.2, 0.5, 0.8, 1.0]
    al = alphalens_clean(factor, prices, quantiles=probs)
    fd = prepare_factor_data(factor, prices, (1, 5), quantiles=probs)
    ours = fd.to_long()
    assert ours.index.equals(al.index)
    assert (ours["factor_quantile"].to_numpy() == al["factor_quantile"].to_numpy()).all()
