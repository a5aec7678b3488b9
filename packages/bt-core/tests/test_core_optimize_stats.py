"""Overfitting statistics against the papers' worked examples and independent computations;
walk-forward and purged/combinatorial cross-validation windows never leak."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bt_core import Backtest, ParameterError, load_data
from bt_core.optimize import (
    CombinatorialPurgedKFold,
    PurgedKFold,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo,
    pbo_from_blocks,
    probabilistic_sharpe_ratio,
    walk_forward,
    windows,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ----- deflated Sharpe ratio ---------------------------------------------------------------


def test_deflated_sharpe_worked_example_of_the_paper() -> None:
    # Bailey & López de Prado (2014), section "A numerical example": annualised SR 2.5 over
    # 5 years of daily returns, 100 trials with annualised variance 1/2, skew -3, kurtosis 10.
    d = deflated_sharpe_ratio(
        sr=2.5 / math.sqrt(250),
        n_trials=100,
        var_sharpe=0.5 / 250,
        n_obs=1250,
        skew=-3.0,
        kurtosis=10.0,
    )
    assert d.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert d.dsr == pytest.approx(0.9004, abs=5e-4)


def test_deflated_sharpe_against_an_independent_computation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, v = int(rng.integers(2, 5000)), float(rng.uniform(1e-5, 1e-2))
        sr, t = float(rng.normal(0.05, 0.05)), int(rng.integers(50, 5000))
        skew, kurt = float(rng.normal(0, 1)), float(rng.uniform(2, 12))
        g = np.euler_gamma
        sr0 = math.sqrt(v) * (
            (1 - g) * sps.norm.ppf(1 - 1 / n) + g * sps.norm.ppf(1 - 1 / (n * math.e))
        )
        z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
        d = deflated_sharpe_ratio(sr, n, v, t, skew, kurt)
        assert d.sr0 == pytest.approx(sr0, rel=1e-9)
        assert d.dsr == pytest.approx(float(sps.norm.cdf(z)), abs=1e-9)
    assert expected_max_sharpe(1, 0.3) == 0.0
    # Normal returns (skew 0, raw kurtosis 3) against a zero benchmark: Φ(SR sqrt(T-1) / ...).
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(
        sps.norm.cdf(0.1 * 10 / math.sqrt(1 + 0.5 * 0.01))
    )
    with pytest.raises(ParameterError, match="n_trials must be >= 1"):
        expected_max_sharpe(0, 0.1)


def test_sweep_feeds_per_bar_sharpe_and_raw_kurtosis(make_ohlc: Any) -> None:
    bt = Backtest(make_ohlc(500, seed=4), "sma_cross")
    res = bt.optimize({"fast": [3, 5, 8], "slow": [15, 30]}, n_jobs=1)
    d = res.deflated_sharpe()
    r = res.best_result().equity.pct_change().dropna().to_numpy()
    assert d.sr == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-10)
    assert d.kurtosis == pytest.approx(sps.kurtosis(r, fisher=False), rel=1e-9)
    assert d.skew == pytest.approx(sps.skew(r), rel=1e-9)
    assert d.n_obs == len(r) and d.n_trials == 6
    srs = [row.diag.sr for row in res.rows]
    assert d.var_sharpe == pytest.approx(np.var(srs, ddof=1))
    # Per bar, not annualised: the table's sharpe is this times sqrt(periods per year).
    assert res.best_stats["sharpe"] == pytest.approx(d.sr * math.sqrt(365), rel=1e-9)
    out = res.overfitting()
    assert 0 <= out["deflated_sharpe"] <= 1 and 0 <= out["pbo"] <= 1


@pytest.mark.parametrize("n", [2, 3, 17, 100_003])
def test_row_diagnostics_equal_a_direct_computation(n: int) -> None:
    # The diagnostics make the returns from the curve a block at a time; every figure must
    # be what the array of returns gives.
    from bt_core.optimize._work import Job, diagnostics, moments

    rng = np.random.default_rng(n)
    equity = 1e4 * np.cumprod(1.0 + rng.normal(0.0003, 0.01, n))
    r = equity[1:] / equity[:-1] - 1.0
    d = diagnostics(equity, Job(strategy="sma_cross", config=None, blocks=4))  # type: ignore[arg-type]
    assert d.n_obs == r.size
    assert np.array_equal(d.blocks, np.array([moments(b) for b in np.array_split(r, 4)]))
    dev = r - r.mean()
    if r.size > 1:
        assert d.sr == r.mean() / math.sqrt(float((dev * dev).sum()) / (r.size - 1))
    else:
        assert math.isnan(d.sr)
    if r.size > 2:
        assert d.skew == pytest.approx(sps.skew(r), rel=1e-9)
        assert d.kurtosis == pytest.approx(sps.kurtosis(r, fisher=False), rel=1e-9)


# ----- probability of backtest overfitting -----------------------------------------------------


def _blocks(ret: np.ndarray, s: int) -> np.ndarray:
    out = np.empty((ret.shape[1], s, 3))
    for b, rows in enumerate(np.array_split(np.arange(ret.shape[0]), s)):
        x = ret[rows]
        out[:, b, 0], out[:, b, 1] = len(rows), x.mean(axis=0)
        out[:, b, 2] = ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    return out


def test_pbo_hand_worked_examples() -> None:
    # Two trials, two blocks: A is good in block 0 and bad in block 1, B the opposite, so
    # the in-sample winner is always the out-of-sample loser: rank 1 of 2, ω = 1/3, λ < 0.
    a = np.r_[np.full(50, 0.01), np.full(50, -0.01)] + np.tile([1e-3, -1e-3], 50)
    b = -a
    p = pbo(np.c_[a, b], n_blocks=2)
    assert p.pbo == 1.0 and p.logits == pytest.approx([math.log(0.5)] * 2)
    # A trial better than the other in both halves: never overfit (ω = 2/3, λ = ln 2).
    c = a * 0.5 + 0.02
    q = pbo(np.c_[c, b], n_blocks=2)
    assert q.pbo == 0.0 and q.logits == pytest.approx([math.log(2)] * 2)


def test_pbo_against_a_brute_force_computation() -> None:
    rng = np.random.default_rng(3)
    ret = rng.normal(0, 0.01, (240, 7)) + rng.normal(0, 0.002, 7)
    s = 6

    def sharpe(m: np.ndarray) -> np.ndarray:
        return m.mean(axis=0) / m.std(axis=0, ddof=1)

    slow = pbo(ret, n_blocks=s, metric=sharpe)  # concatenated rows, numpy's std
    fast = pbo_from_blocks(_blocks(ret, s))  # merged block moments
    assert fast.pbo == slow.pbo and len(fast.logits) == math.comb(s, s // 2)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=1e-12)
    np.testing.assert_allclose(fast.oos_of_best, slow.oos_of_best, rtol=1e-9)
    # By hand for the first split: blocks 0..2 in sample.
    rows = np.array_split(np.arange(240), s)
    is_rows, oos_rows = np.concatenate(rows[:3]), np.concatenate(rows[3:])
    best = int(np.argmax(sharpe(ret[is_rows])))
    oos = sharpe(ret[oos_rows])
    w = (sps.rankdata(oos)[best]) / (7 + 1)
    assert fast.logits[0] == pytest.approx(math.log(w / (1 - w)))


def test_pbo_of_noise_is_about_one_half_and_of_an_edge_is_small() -> None:
    rng = np.random.default_rng(11)
    # One noise matrix can have persistent chance "edges"; over many, PBO centres on 1/2.
    mean = np.mean([pbo(rng.normal(0, 0.01, (400, 20)), n_blocks=8).pbo for _ in range(30)])
    assert 0.35 < mean < 0.65
    noise = rng.normal(0, 0.01, (2000, 40))
    edge = noise.copy()
    edge[:, 0] += 0.003  # one trial with a true, persistent edge
    assert pbo(edge, n_blocks=10).pbo < 0.05
    with pytest.raises(ParameterError, match="even"):
        pbo(noise, n_blocks=5)


# ----- cross-validation windows ----------------------------------------------------------


@pytest.mark.parametrize(
    "cv",
    [
        PurgedKFold(5, purge=7, embargo=11),
        PurgedKFold(4, purge=0.02, embargo=0.03),
        CombinatorialPurgedKFold(6, 2, purge=5, embargo=9),
        CombinatorialPurgedKFold(5, 3, purge=0, embargo=0),
    ],
)
def test_cv_train_sets_never_touch_test_purge_or_embargo(cv: Any) -> None:
    n = 1003
    groups = cv.groups(n)
    purge = math.ceil(cv.purge * n) if 0 < cv.purge < 1 else int(cv.purge)
    embargo = math.ceil(cv.embargo * n) if 0 < cv.embargo < 1 else int(cv.embargo)
    splits = list(cv.split(n))
    assert len(splits) == cv.n_splits
    for (train, test), tg in zip(splits, cv.test_groups(), strict=True):
        assert np.array_equal(test, np.concatenate([groups[g] for g in tg]))
        assert not np.intersect1d(train, test).size
        for g in tg:
            lo, hi = groups[g][0], groups[g][-1] + 1
            banned = np.arange(max(0, lo - purge), min(n, hi + embargo))
            assert not np.intersect1d(train, banned).size
        # Everything else is train: nothing more than the purge and embargo is dropped.
        removed = np.setdiff1d(np.arange(n), np.union1d(train, test))
        assert removed.size <= len(tg) * (purge + embargo)


def test_cpcv_paths_cover_every_group_once() -> None:
    cv = CombinatorialPurgedKFold(6, 2)
    assert cv.n_splits == 15 and cv.n_paths == 5
    tests = cv.test_groups()
    used = []
    for path in cv.paths():
        assert len(path) == 6
        for g, s in enumerate(path):
            assert g in tests[s]
            used.append((g, s))
    assert len(set(used)) == len(used) == 6 * 5  # each (group, split) in one path only


def test_cross_validated_sweep(make_ohlc: Any) -> None:
    bt = Backtest(make_ohlc(600, seed=8), "sma_cross")
    cv = CombinatorialPurgedKFold(6, 2, purge=30, embargo=5)
    res = bt.optimize({"fast": [3, 5, 8], "slow": [20, 40]}, n_jobs=1, cv=cv)
    out = res.cv()
    assert len(out.splits) == 15 and len(out.paths) == 5
    r = res.rows[0]
    returns = bt.run(**r.params).equity.pct_change().dropna().to_numpy()
    train, _ = next(cv.split(len(returns)))
    x = returns[train]
    m = r.diag.cv["train"][0]
    assert m[0] == len(x) and m[1] == pytest.approx(x.mean())
    assert m[2] == pytest.approx(((x - x.mean()) ** 2).sum())
    assert 0 <= out.overfit_rate <= 1


# ----- walk-forward ------------------------------------------------------------------------------


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("train, test", [(100, 30), ("6M", "2M"), ("120b", "1M"), ("1Y", "3M")])
def test_walk_forward_windows_never_overlap(train: Any, test: Any, anchored: bool) -> None:
    index = pd.date_range("2020-01-01", periods=700, freq="D", tz="UTC")
    wins = windows(index, train, test, anchored=anchored)
    assert len(wins) >= 2
    for k, w in enumerate(wins):
        assert w.is_start < w.is_stop == w.oos_start < w.oos_stop <= len(index)
        assert w.is_start == 0 if anchored else True
        if k:
            prev = wins[k - 1]
            assert w.oos_start == prev.oos_stop  # out-of-sample windows tile the data
            assert w.is_stop <= w.oos_start
    if isinstance(test, int):
        assert all(w.oos_stop - w.oos_start == test for w in wins)
    with pytest.raises(ParameterError, match="too short"):
        windows(index, 690, 30)
    with pytest.raises(ParameterError, match="bad length"):
        windows(index, "6Q", 30)


def test_walk_forward_analysis(make_ohlc: Any) -> None:
    md = load_data(make_ohlc(500, seed=21))
    bt = Backtest(md, "sma_cross")
    wf = walk_forward(bt, {"fast": [3, 5, 8], "slow": [15, 30]}, train=200, test=100, n_jobs=1)
    t = wf.table
    assert len(t) == 3 and list(t["window"]) == [0, 1, 2]
    assert (t["is_end"] < t["oos_start"]).all()
    eq = wf.oos_equity
    assert eq.index.is_monotonic_increasing and eq.index[0] == md.index[200]
    assert eq.iloc[0] == bt.config.cash and len(eq) == 300
    # Each window's out-of-sample row is a plain run of the chosen set on that window.
    from bt_core.optimize._work import slice_data

    w0 = t.iloc[0]
    one = Backtest(slice_data(md, 200, 300), "sma_cross").run(fast=int(w0.fast), slow=int(w0.slow))
    assert one.stats["sharpe"] == w0.oos_score or (
        one.stats["sharpe"] is None and math.isnan(w0.oos_score)
    )
    # The in-sample choice is the best of the in-sample grid.
    assert wf.results[0].best_params == {"fast": w0.fast, "slow": w0.slow}


def test_combinations_count_matches_cscv() -> None:
    rng = np.random.default_rng(1)
    p = pbo(rng.normal(0, 1, (64, 3)), n_blocks=8)
    assert len(p.logits) == len(list(combinations(range(8), 4)))
