"""performance_metrics: keys, JSON safety, edge cases, benchmark/exposure alignment, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import bt_analysis as ba


def test_every_documented_key_is_present_and_the_dict_is_json_safe(sample_close) -> None:
    equity = 1e5 * sample_close / sample_close.iloc[0]
    trades = pd.DataFrame({"pnl": [5.0, -2.0], "duration": pd.to_timedelta(["2D", "3D"])})
    exposure = pd.Series(0.5, index=sample_close.index)
    m = ba.performance_metrics(equity, trades, benchmark=sample_close, exposure=exposure)
    assert tuple(m) == ba.METRIC_KEYS
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    for value in m.values():
        assert value is None or type(value) in (int, float, str)
    assert m["periods_per_year"] == 252.0  # inferred from weekday daily bars
    assert m["n_bars"] == len(sample_close)
    assert m["start"] == "2019-01-01T00:00:00+00:00"
    assert m["final_equity"] == pytest.approx(equity.iloc[-1])
    # equity proportional to the benchmark: beta 1, alpha 0
    assert m["beta"] == pytest.approx(1.0, abs=1e-9)
    assert m["alpha"] == pytest.approx(0.0, abs=1e-9)
    assert m["exposure"] == 0.5 and m["time_in_market"] == 1.0
    assert m["n_trades"] == 2 and m["avg_holding_time"] == 2.5


def test_keys_that_do_not_apply_are_none(equity_from_returns) -> None:
    m = ba.performance_metrics(equity_from_returns(np.array([0.01, -0.02, 0.03])))
    for key in ("alpha", "beta", "benchmark_total_return", "exposure", "n_trades", "win_rate"):
        assert m[key] is None


def test_one_observation(equity_from_returns) -> None:
    equity = equity_from_returns(np.array([]), start=1000.0)
    with pytest.raises(ValueError, match="need at least 2"):
        ba.performance_metrics(equity)
    m = ba.performance_metrics(equity, periods_per_year=252)
    assert m["total_return"] == 0.0 and m["n_bars"] == 1 and m["final_equity"] == 1000.0
    assert m["sharpe"] is None and m["cagr"] is None and m["annual_volatility"] is None
    assert m["max_drawdown"] == 0.0
    json.dumps(m, allow_nan=False)


def test_constant_equity(equity_from_returns) -> None:
    m = ba.performance_metrics(equity_from_returns(np.zeros(30)))
    assert m["total_return"] == 0.0 and m["cagr"] == 0.0 and m["annual_volatility"] == 0.0
    # 0 / 0: undefined, reported as None rather than NaN
    assert m["sharpe"] is None and m["sortino"] is None and m["calmar"] is None
    assert m["skew"] is None and m["stability"] is None
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_duration_bars"] == 0


def test_steady_gains_give_infinite_ratios_reported_as_none(equity_from_returns) -> None:
    m = ba.performance_metrics(equity_from_returns(np.full(20, 0.01)))
    assert m["sharpe"] is None  # mean / 0 = inf in empyrical; JSON cannot carry it
    assert m["sortino"] is None
    assert m["cagr"] == pytest.approx(1.01**252 - 1)


def test_all_losses(equity_from_returns) -> None:
    r = np.array([-0.01, -0.02, -0.005, -0.03])
    equity = equity_from_returns(r)
    m = ba.performance_metrics(equity, periods_per_year=252)
    assert m["total_return"] == pytest.approx(np.prod(1 + r) - 1)
    assert m["max_drawdown"] == pytest.approx(np.prod(1 + r) - 1)
    assert m["max_drawdown_duration_bars"] == 4
    assert m["max_drawdown_recovery"] is None
    assert m["omega"] == 0.0
    assert m["sharpe"] < 0  # type: ignore[operator]


def test_risk_free_moves_sharpe_by_the_per_bar_rate(equity_from_returns) -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, 300)
    equity = equity_from_returns(r)
    m = ba.performance_metrics(equity, risk_free=0.05)
    rf = 1.05 ** (1 / 252) - 1
    by_hand = (r - rf).mean() / (r - rf).std(ddof=1) * math.sqrt(252)
    assert m["sharpe"] == pytest.approx(by_hand, rel=1e-9)
    assert m["risk_free"] == 0.05


def test_cagr_uses_bar_count_over_periods_per_year(equity_from_returns) -> None:
    # 504 returns of weekday bars = 2 years at 252 per year: CAGR = sqrt(total growth) - 1
    r = np.full(504, 0.0005)
    m = ba.performance_metrics(equity_from_returns(r))
    assert m["cagr"] == pytest.approx(math.sqrt(1.0005**504) - 1, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    r=hst.lists(hst.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=50),
    ppy=hst.sampled_from([None, 252.0, 12.0]),
)
def test_any_positive_curve_gives_a_json_safe_dict(r, ppy, equity_from_returns) -> None:
    m = ba.performance_metrics(equity_from_returns(np.array(r)), periods_per_year=ppy)
    json.dumps(m, allow_nan=False)
    assert m["max_drawdown"] <= 0  # type: ignore[operator]


def test_benchmark_is_inner_aligned_and_checked(sample_close, equity_from_returns) -> None:
    equity = 1e5 * sample_close / sample_close.iloc[0]
    partial = sample_close.iloc[::2]  # every other bar: returns over 2-bar steps
    m = ba.performance_metrics(equity, benchmark=partial)
    assert m["beta"] == pytest.approx(1.0, abs=1e-9)
    assert m["benchmark_total_return"] == pytest.approx(partial.iloc[-1] / partial.iloc[0] - 1)
    with pytest.raises(ValueError, match="time zone"):
        ba.performance_metrics(equity, benchmark=sample_close.tz_localize(None))
    with pytest.raises(ValueError, match="no timestamp"):
        ba.performance_metrics(equity, benchmark=sample_close.shift(1, freq=pd.Timedelta(hours=1)))
    bad = sample_close.copy()
    bad.iloc[10] = np.nan
    with pytest.raises(ValueError, match=r"benchmark has a non-finite value.*2019-01-15"):
        ba.performance_metrics(equity, benchmark=bad)


def test_exposure_must_cover_every_bar_and_be_non_negative(sample_close) -> None:
    equity = 1e5 * sample_close / sample_close.iloc[0]
    with pytest.raises(ValueError, match="no value for 1 equity timestamp"):
        ba.performance_metrics(equity, exposure=pd.Series(1.0, index=sample_close.index[1:]))
    negative = pd.Series(1.0, index=sample_close.index)
    negative.iloc[3] = -0.1
    with pytest.raises(ValueError, match="exposure must be >= 0"):
        ba.performance_metrics(equity, exposure=negative)
    half = pd.Series(np.where(np.arange(len(equity)) % 2 == 0, 0.0, 1.5), index=equity.index)
    m = ba.performance_metrics(equity, exposure=half)
    assert m["exposure"] == pytest.approx(half.mean())
    assert m["time_in_market"] == (half > 0).mean()  # a count over the bars: exact
    signed_zero = pd.Series(np.where(np.arange(len(equity)) % 3 == 0, -0.0, 0.25), equity.index)
    m = ba.performance_metrics(equity, exposure=signed_zero)
    assert m["time_in_market"] == (signed_zero > 0).mean()


@pytest.mark.parametrize(
    ("exposure", "message"),
    [
        ([0.5, np.nan, 0.5, -1.0], r"non-finite value \(nan\).*position 1"),
        ([0.5, 0.5, np.inf, -1.0], r"non-finite value \(inf\).*position 2"),
        ([0.5, 0.5, 0.5, -np.inf], r"non-finite value \(-inf\).*position 3"),
        ([0.5, -0.1, 0.5, -1.0], r"exposure must be >= 0, got -0.1 .*position 1"),
    ],
)
def test_bad_exposure_names_the_first_bad_bar(exposure, message) -> None:
    index = pd.bdate_range("2024-01-01", periods=len(exposure))
    equity = pd.Series([100.0, 101.0, 102.0, 103.0], index=index)
    with pytest.raises(ValueError, match=message):
        ba.performance_metrics(equity, exposure=pd.Series(exposure, index=index))


@pytest.mark.parametrize(
    ("equity", "message"),
    [
        ([100.0, -5.0, 10.0], r"strictly positive.*got -5.0 at 2024-01-02"),
        ([100.0, 0.0, 10.0], r"strictly positive.*got 0.0 at 2024-01-02"),
        ([100.0, np.inf], "non-finite"),
        ([100.0, 5.0, np.nan, -1.0], r"non-finite value \(nan\) at 2024-01-03"),
        ([-np.inf, 5.0], r"non-finite value \(-inf\) at 2024-01-01"),
    ],
)
def test_bad_equity_values(equity, message) -> None:
    series = pd.Series(equity, index=pd.bdate_range("2024-01-01", periods=len(equity)))
    with pytest.raises(ValueError, match=message):
        ba.performance_metrics(series, periods_per_year=252)


def test_bad_equity_types_and_index() -> None:
    with pytest.raises(ValueError, match="pandas Series"):
        ba.performance_metrics([1.0, 2.0])  # type: ignore[arg-type]
    unsorted = pd.Series(
        [1.0, 2.0, 3.0], index=pd.DatetimeIndex(["2024-01-02", "2024-01-01", "2024-01-03"])
    )
    with pytest.raises(ValueError, match="unsorted timestamp 2024-01-01"):
        ba.performance_metrics(unsorted)
    with pytest.raises(ValueError, match="periods_per_year"):
        ba.performance_metrics(
            pd.Series([1.0, 2.0], index=pd.bdate_range("2024-01-01", periods=2)), periods_per_year=0
        )
    with pytest.raises(ValueError, match="> -1"):
        ba.performance_metrics(
            pd.Series([1.0, 2.0], index=pd.bdate_range("2024-01-01", periods=2)), risk_free=-2
        )


def test_returns_from_equity() -> None:
    eq = pd.Series([100.0, 110.0, 99.0], index=pd.bdate_range("2024-01-01", periods=3, tz="UTC"))
    r = ba.returns_from_equity(eq)
    assert r.index.equals(eq.index[1:])
    np.testing.assert_allclose(r.to_numpy(), [0.1, -0.1])


def test_json_safe() -> None:
    obj = {
        "a": float("nan"),
        "b": [np.float64(1.5), np.inf, -np.inf, np.int64(3), np.bool_(True)],
        "c": (pd.Timestamp("2024-01-01", tz="UTC"), pd.NaT, pd.Timedelta(hours=1)),
        pd.Timestamp("2024-01-02"): np.array([1.0, np.nan]),
        "d": {"nested": np.float32(np.nan), "na": pd.NA},
    }
    out = ba.json_safe(obj)
    assert out == {
        "a": None,
        "b": [1.5, None, None, 3, True],
        "c": ["2024-01-01T00:00:00+00:00", None, 3600.0],
        "2024-01-02T00:00:00": [1.0, None],
        "d": {"nested": None, "na": None},
    }
    assert type(out["b"][0]) is float and type(out["b"][3]) is int and type(out["b"][4]) is bool
    json.dumps(out, allow_nan=False)


def test_without_annualisation_the_annualised_figures_are_none() -> None:
    idx = pd.date_range("2024-01-02 01:30", periods=30, freq="min", tz="UTC")  # one day
    eq = pd.Series(100.0 + np.arange(30) % 7, index=idx)
    with pytest.raises(ValueError):
        ba.performance_metrics(eq)  # one date: bars per year cannot be inferred
    m = ba.performance_metrics(eq, annualize=False, risk_free=0.02)
    for k in (
        "periods_per_year",
        "cagr",
        "annual_volatility",
        "sharpe",
        "sortino",
        "calmar",
        "omega",
    ):
        assert m[k] is None, k
    assert m["total_return"] == pytest.approx(eq.iloc[-1] / eq.iloc[0] - 1, rel=1e-15)
    assert m["max_drawdown"] < 0
    assert m["omega"] is None
    assert ba.performance_metrics(eq, annualize=False)["omega"] is not None
