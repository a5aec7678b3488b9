"""CrossSectionFactorBacktester against a slow explicit simulation and alphalens; its statistics
against bt_analysis.stats."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import bt_analysis as ba
from bt_analysis import stats as bst
from bt_analysis.factor import CrossSectionFactorBacktester, FactorInputError


def make_panel(
    n_dates: int = 40, n_assets: int = 12, seed: int = 0, holes: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=n_dates)
    assets = [f"Z{i:02d}" for i in range(n_assets)]
    prices = pd.DataFrame(
        20 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_dates, n_assets)), axis=0)),
        index=dates,
        columns=assets,
    )
    factor = pd.DataFrame(rng.normal(size=(n_dates, n_assets)), index=dates, columns=assets)
    if holes:
        prices.iloc[:6, 0] = np.nan  # listed later
        prices.iloc[15:19, 1] = np.nan  # suspended
        factor = factor.mask(rng.random(factor.shape) < 0.1)
    return factor, prices


def reference(
    factor: pd.DataFrame,
    prices: pd.DataFrame,
    q: int,
    every: int,
    weighting: str,
    cost_bps: float,
    min_assets: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explicit share-by-share simulation, one date and one asset at a time."""
    c = cost_bps / 1e4
    px = prices.ffill()
    dates = prices.index
    fac = factor.reindex(index=dates, columns=prices.columns)

    def eligible(t: int) -> list[str]:
        return [
            a
            for a in prices.columns
            if np.isfinite(fac.iloc[t][a]) and np.isfinite(prices.iloc[t][a])
        ]

    first = next(t for t in range(len(dates)) if len(eligible(t)) >= min_assets)
    books = [f"Q{k + 1}" for k in range(q)] + ["universe"]
    shares: dict[str, dict[str, float]] = {b: {} for b in books}
    value = {b: 0.0 for b in books}
    rets: dict[str, list[float]] = {b: [] for b in books}
    tos: dict[str, list[float]] = {b: [] for b in books}
    for t in range(first, len(dates)):
        p = px.iloc[t]
        now = {b: sum(n * p[a] for a, n in shares[b].items()) for b in books}
        gross = {
            b: (now[b] / value[b] - 1.0 if value[b] > 0 else 0.0) if t > first else 0.0
            for b in books
        }
        el = eligible(t)
        if (t - first) % every == 0 and len(el) >= min_assets:
            f = fac.iloc[t][el]
            ranks = sps.rankdata(f.to_numpy(), method="min") - 1
            n = len(el)
            labels = [max(1, math.ceil(r * q / (n - 1))) for r in ranks]
            mu = float(f.mean())
            raw = {a: (1.0 if weighting == "equal" else abs(f[a] - mu)) for a in el}
            members = {
                b: [a for a, lab in zip(el, labels, strict=True) if b == f"Q{lab}"] for b in books
            }
            members["universe"] = el
            for b in books:
                tot = sum(raw[a] for a in members[b])
                target = {a: raw[a] / tot for a in members[b]}
                cur = {a: n_ * p[a] / now[b] for a, n_ in shares[b].items()} if now[b] > 0 else {}
                to = sum(abs(target.get(a, 0.0) - cur.get(a, 0.0)) for a in set(target) | set(cur))
                base = 1.0 if t == first else now[b]
                after = base * (1 - c * to)
                shares[b] = {a: w * after / p[a] for a, w in target.items()}
                value[b] = after
                rets[b].append((1 + gross[b]) * (1 - c * to) - 1)
                tos[b].append(to)
        else:
            for b in books:
                value[b] = now[b]
                rets[b].append(gross[b])
    idx = dates[first:]
    return pd.DataFrame(rets, index=idx), pd.DataFrame(tos)


@pytest.mark.parametrize(
    ("every", "weighting", "cost", "holes"),
    [(1, "equal", 0.0, False), (3, "equal", 25.0, True), (4, "factor", 10.0, True)],
)
def test_matches_explicit_simulation(every: int, weighting: str, cost: float, holes: bool) -> None:
    factor, prices = make_panel(holes=holes, seed=every)
    res = CrossSectionFactorBacktester(
        factor, prices, quantiles=4, rebalance=every, weighting=weighting, cost_bps=cost
    ).run()
    ref_r, ref_to = reference(factor, prices, 4, every, weighting, cost, 4)
    cols = ["Q1", "Q2", "Q3", "Q4", "universe"]
    np.testing.assert_allclose(res.returns[cols].to_numpy(), ref_r[cols].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(res.turnover[cols].to_numpy(), ref_to[cols].to_numpy(), atol=1e-12)
    assert res.returns.index.equals(ref_r.index)
    eq = (1 + ref_r[cols]).cumprod()
    np.testing.assert_allclose(res.equity[cols].to_numpy(), eq.to_numpy(), rtol=1e-12)


def test_long_short_is_top_minus_bottom_minus_both_legs_costs() -> None:
    factor, prices = make_panel(seed=11)
    gross = CrossSectionFactorBacktester(factor, prices, quantiles=3, rebalance=2).run()
    net = CrossSectionFactorBacktester(factor, prices, quantiles=3, rebalance=2, cost_bps=30).run()
    r = gross.returns
    np.testing.assert_allclose(r["long_short"], r["Q3"] - r["Q1"], atol=1e-15)
    c = 30 / 1e4
    to = net.turnover
    extra = (r["long_short"] - net.returns["long_short"]).loc[to.index]
    expected = c * (to["Q3"] * (1 + r["Q3"].loc[to.index]) + to["Q1"] * (1 + r["Q1"].loc[to.index]))
    np.testing.assert_allclose(extra, expected, atol=1e-15)
    assert (net.equity.iloc[-1] <= gross.equity.iloc[-1] + 1e-15).all()


def test_daily_equal_weight_quantiles_equal_alphalens_forward_means() -> None:
    al_utils = pytest.importorskip("alphalens.utils")
    al_perf = pytest.importorskip("alphalens.performance")
    factor, prices = make_panel(n_dates=50, n_assets=21, seed=2)  # gcd(20, 5) > 1: use 4 buckets
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        al = al_utils.get_clean_factor_and_forward_returns(
            factor.iloc[:-1].stack(), prices, quantiles=4, periods=(1,), filter_zscore=None
        )
    ref, _ = al_perf.mean_return_by_quantile(al, by_date=True, demeaned=False)
    ref = ref["1D"].unstack("factor_quantile")
    res = CrossSectionFactorBacktester(factor, prices, quantiles=4, rebalance=1).run()
    # the bucket formed on date t earns its 1-bar forward return on date t+1
    ours = res.returns[["Q1", "Q2", "Q3", "Q4"]].shift(-1).loc[ref.index]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 5000), every=st.integers(1, 5), q=st.integers(2, 5))
def test_turnover_bounds_and_cost_identity(seed: int, every: int, q: int) -> None:
    factor, prices = make_panel(n_dates=25, n_assets=10, seed=seed, holes=True)
    res = CrossSectionFactorBacktester(
        factor, prices, quantiles=q, rebalance=every, cost_bps=15, weighting="factor"
    ).run()
    to = res.turnover.drop(columns="long_short")
    assert ((to >= -1e-12) & (to <= 2 + 1e-12)).all().all()
    assert (to.iloc[0] == 1.0).all()
    np.testing.assert_allclose(res.costs["Q1"], 15 / 1e4 * res.turnover["Q1"], atol=1e-15)
    assert np.isfinite(res.returns.to_numpy()).all()
    assert (res.counts.sum(axis=1) <= 10).all()


def test_skipped_rebalance_keeps_holdings_and_errors() -> None:
    factor, prices = make_panel(n_dates=12, n_assets=6)
    factor.iloc[4, 1:] = np.nan  # date 4 has 1 eligible name
    res = CrossSectionFactorBacktester(factor, prices, quantiles=2, rebalance=2).run()
    assert list(res.skipped_rebalances) == [factor.index[4]]
    assert factor.index[4] not in res.turnover.index
    json.dumps(res.to_dict(), allow_nan=False)
    stats = res.stats()
    assert set(stats.index) == {"Q1", "Q2", "long_short", "universe"}
    eq = res.equity["Q2"]
    n_periods = len(eq) - 1
    assert stats.loc["Q2", "annual_return"] == pytest.approx(
        eq.iloc[-1] ** (252 / n_periods) - 1, rel=1e-12
    )
    with pytest.raises(FactorInputError, match="quantiles"):
        CrossSectionFactorBacktester(factor, prices, quantiles=1)
    with pytest.raises(FactorInputError, match="rebalance"):
        CrossSectionFactorBacktester(factor, prices, rebalance=0)
    with pytest.raises(FactorInputError, match="weighting"):
        CrossSectionFactorBacktester(factor, prices, weighting="cap")  # type: ignore[arg-type]
    with pytest.raises(FactorInputError, match="cost_bps"):
        CrossSectionFactorBacktester(factor, prices, cost_bps=-1)
    with pytest.raises(FactorInputError, match="min_assets"):
        CrossSectionFactorBacktester(factor, prices, quantiles=2, min_assets=99).run()


@pytest.mark.parametrize(("every", "weighting"), [(1, "equal"), (3, "factor")])
def test_chunked_processing_gives_identical_results(
    every: int, weighting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factor, prices = make_panel(n_dates=30, holes=True, seed=5)

    def run() -> pd.DataFrame:
        bt = CrossSectionFactorBacktester(
            factor, prices, quantiles=3, rebalance=every, weighting=weighting, cost_bps=7
        )
        res = bt.run()
        return pd.concat([res.returns, res.turnover.add_prefix("to_")], axis=1)

    whole = run()
    for rows_per_chunk in (1, 2, 7):
        monkeypatch.setattr(
            CrossSectionFactorBacktester, "_chunk_cells", rows_per_chunk * prices.shape[1]
        )
        pd.testing.assert_frame_equal(run(), whole, rtol=0, atol=1e-14)


def _on_dates(
    factor: pd.DataFrame, prices: pd.DataFrame, dates: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return factor.set_axis(dates, axis=0), prices.set_axis(dates, axis=0)


def _periods_by_hand(r: pd.Series) -> np.ndarray:
    # The entry row (first rebalance, cost only, no time elapsed) belongs to the first period.
    v = r.to_numpy()
    return np.concatenate([[(1 + v[0]) * (1 + v[1]) - 1], v[2:]])


@pytest.mark.parametrize(
    ("freq", "ppy"),
    [("B", 252.0), ("W-FRI", 52.0), ("MS", 12.0)],
    ids=["daily", "weekly", "monthly"],
)
@pytest.mark.parametrize("cost", [0.0, 20.0])
def test_stats_are_the_metric_functions_of_the_period_returns(
    freq: str, ppy: float, cost: float
) -> None:
    factor, prices = _on_dates(
        *make_panel(n_dates=40, seed=3, holes=True),
        pd.date_range("2021-01-01", periods=40, freq=freq, tz="UTC"),
    )
    bt = CrossSectionFactorBacktester(factor, prices, quantiles=4, rebalance=3, cost_bps=cost)
    assert bt.periods_per_year == ppy
    res = bt.run()
    assert res.params["periods_per_year"] == ppy
    stats = res.stats()
    for col in res.returns.columns:
        periods = _periods_by_hand(res.returns[col])
        np.testing.assert_allclose(res.period_returns()[col].to_numpy(), periods, rtol=1e-15)
        row = stats.loc[col]
        assert row["annual_return"] == pytest.approx(bst.cagr(periods, ppy), rel=1e-12)
        assert row["annual_return"] == pytest.approx(
            res.equity[col].iloc[-1] ** (ppy / (len(res.returns) - 1)) - 1, rel=1e-9
        )
        assert row["annual_volatility"] == pytest.approx(
            bst.annual_volatility(periods, ppy), rel=1e-12
        )
        assert row["annual_volatility"] == pytest.approx(
            np.std(periods, ddof=1) * np.sqrt(ppy), rel=1e-9
        )
        assert row["sharpe"] == pytest.approx(bst.sharpe_ratio(periods, ppy), rel=1e-12)
        assert row["max_drawdown"] == pytest.approx(
            bst.max_drawdown(res.returns[col].to_numpy()), rel=1e-12
        )
        assert row["total_return"] == pytest.approx(res.equity[col].iloc[-1] - 1, rel=1e-12)
        # The same figures as performance_metrics on the curve valued at 1 before the entry
        # (it infers the periods per year from the dates on its own).
        curve = pd.Series(np.concatenate([[1.0], np.cumprod(1 + periods)]), index=res.returns.index)
        m = ba.performance_metrics(curve)
        assert m["periods_per_year"] == ppy
        assert row["annual_return"] == pytest.approx(m["cagr"], rel=1e-9)
        assert row["annual_volatility"] == pytest.approx(m["annual_volatility"], rel=1e-9)
        assert row["sharpe"] == pytest.approx(m["sharpe"], rel=1e-9)
        # The entry cost is a loss from 1 that this curve (no mark after the cost) skips.
        assert row["max_drawdown"] <= m["max_drawdown"] + 1e-15  # type: ignore[operator]
        if cost == 0.0:
            assert row["max_drawdown"] == pytest.approx(m["max_drawdown"], rel=1e-12, abs=0)


def test_entry_cost_counts_in_the_max_drawdown() -> None:
    dates = pd.bdate_range("2024-01-01", periods=3)
    prices = pd.DataFrame({"a": [10.0, 10.05, 10.1], "b": [20.0, 20.1, 20.2]}, index=dates)
    factor = pd.DataFrame({"a": [1.0] * 3, "b": [2.0] * 3}, index=dates)
    res = CrossSectionFactorBacktester(factor, prices, quantiles=2, cost_bps=100).run()
    # Bucket Q1 pays 1 % on entry, then gains 0.5 % a day: the worst point is right after
    # the entry, 1 % below the starting capital.
    assert res.stats().loc["Q1", "max_drawdown"] == pytest.approx(-0.01, rel=1e-12)


def test_user_periods_per_year_overrides_the_inferred_one() -> None:
    factor, prices = make_panel(n_dates=30, seed=4)
    inferred = CrossSectionFactorBacktester(factor, prices, quantiles=3).run().stats()
    given = CrossSectionFactorBacktester(factor, prices, quantiles=3, periods_per_year=52).run()
    assert given.params["periods_per_year"] == 52.0
    ratio = given.stats()["annual_volatility"] / inferred["annual_volatility"]
    np.testing.assert_allclose(ratio, np.sqrt(52 / 252), rtol=1e-12)


@pytest.mark.parametrize(
    "dates",
    [
        pd.RangeIndex(20),  # period numbers, no calendar
        pd.date_range("2024-03-04 09:30", periods=20, freq="min", tz="UTC"),  # part of one day
        pd.date_range("1900-01-01", periods=20, freq="2YS"),  # years apart
    ],
    ids=["integers", "one-intraday-day", "two-yearly"],
)
def test_unknown_spacing_gives_nan_annualised_figures_not_a_guess(dates: pd.Index) -> None:
    factor, prices = _on_dates(*make_panel(n_dates=20, seed=6), dates)
    bt = CrossSectionFactorBacktester(factor, prices, quantiles=3, rebalance=2, cost_bps=5)
    assert bt.periods_per_year is None
    res = bt.run()
    assert res.params["periods_per_year"] is None
    stats = res.stats()
    assert stats[["annual_return", "annual_volatility", "sharpe"]].isna().all().all()
    for col in ("total_return", "max_drawdown", "mean_turnover", "total_cost"):
        assert np.isfinite(stats[col]).all(), col
    np.testing.assert_allclose(stats["total_return"], res.equity.iloc[-1] - 1, rtol=1e-12)
    payload = res.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["stats"]["Q1"]["sharpe"] is None
    assert payload["params"]["periods_per_year"] is None
    given = CrossSectionFactorBacktester(
        factor, prices, quantiles=3, rebalance=2, cost_bps=5, periods_per_year=100
    ).run()
    assert np.isfinite(given.stats()[["annual_return", "annual_volatility"]]).all().all()


def test_single_date_backtest_has_no_period() -> None:
    factor, prices = make_panel(n_dates=8, seed=7)
    factor.iloc[:-1] = np.nan  # the first (and only) rebalance is on the last date
    res = CrossSectionFactorBacktester(factor, prices, quantiles=2, cost_bps=10).run()
    assert len(res.returns) == 1 and res.period_returns().empty
    stats = res.stats()
    assert stats[["annual_return", "annual_volatility", "sharpe"]].isna().all().all()
    # only the entry cost: one leg's turnover for a bucket, both legs' for the long-short
    expected = pd.Series(-10 / 1e4, index=stats.index)
    expected["long_short"] = -2 * 10 / 1e4
    np.testing.assert_allclose(stats["total_return"], expected, rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -52, math.inf, math.nan, True, "252"])
def test_bad_periods_per_year_is_an_error(bad: object) -> None:
    factor, prices = make_panel(n_dates=10)
    with pytest.raises(FactorInputError, match="periods_per_year"):
        CrossSectionFactorBacktester(factor, prices, periods_per_year=bad)  # type: ignore[arg-type]
