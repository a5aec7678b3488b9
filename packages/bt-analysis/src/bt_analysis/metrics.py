"""Performance metrics of an equity curve (bt-core's ``result.stats``)."""

from __future__ import annotations

import math
from typing import Any, TypeAlias, cast

import numpy as np
import pandas as pd

from bt_analysis import stats as st
from bt_analysis._json import json_safe
from bt_analysis._summary import curve_returns, drawdown_summary, equity_return_stats, moment_sums
from bt_analysis._validation import (
    AnalysisInputError,
    bad_value,
    check_datetime_index,
    check_equity,
    check_series_values,
    ns_stamps,
)
from bt_analysis.periods import infer_periods_per_year, per_period_rate
from bt_analysis.trades import trade_metrics

__all__ = [
    "METRIC_KEYS",
    "MetricValue",
    "performance_metrics",
    "return_moments",
    "returns_from_equity",
]

MetricValue: TypeAlias = "float | int | str | None"

#: Every key :func:`performance_metrics` returns, in order. Keys that do not apply (no
#: benchmark, no exposure, no trades) are present with the value ``None``.
METRIC_KEYS: tuple[str, ...] = (
    "start",
    "end",
    "n_bars",
    "periods_per_year",
    "initial_equity",
    "final_equity",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "omega",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "max_drawdown_duration_days",
    "max_drawdown_peak",
    "max_drawdown_valley",
    "max_drawdown_recovery",
    "tail_ratio",
    "var_95",
    "cvar_95",
    "skew",
    "kurtosis",
    "stability",
    "risk_free",
    "alpha",
    "beta",
    "benchmark_total_return",
    "exposure",
    "time_in_market",
    "n_trades",
    "n_wins",
    "n_losses",
    "win_rate",
    "gross_profit",
    "gross_loss",
    "net_pnl",
    "total_commission",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "payoff_ratio",
    "best_trade",
    "worst_trade",
    "avg_return_pct",
    "avg_holding_time",
)

_TRADE_KEYS = METRIC_KEYS[METRIC_KEYS.index("n_trades") :]


def returns_from_equity(equity: pd.Series) -> pd.Series:
    """Simple per-bar returns ``equity[t] / equity[t-1] - 1``, indexed by ``equity.index[1:]``
    (one fewer value than the equity curve; the first bar has no return).

    ``equity`` must be a Series on a strictly increasing DatetimeIndex with finite, strictly
    positive values; otherwise :class:`bt_analysis.AnalysisInputError` names the bad bar.
    """
    series, values = check_equity(equity)
    return pd.Series(values[1:] / values[:-1] - 1.0, index=series.index[1:], name="returns")


def return_moments(values: np.ndarray) -> tuple[int, float, float, float, float]:
    """``(n, mean, m2, m3, m4)`` of the simple returns ``values[t] / values[t-1] - 1`` of an
    equity curve: their number, their mean, and the sums of their deviations from the mean
    squared, cubed and to the fourth power (so the sample std is ``sqrt(m2 / (n - 1))`` and
    the biased skewness ``(m3 / n) / (m2 / n) ** 1.5``). The mean and each sum equal numpy's
    on the array of returns bit for bit, but the returns are made a block at a time: memory
    for a block, not for an array of the curve's length.

    ``values``: a 1-D array of at least 2 finite, strictly positive values.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise AnalysisInputError(
            f"values must be a 1-D equity curve of at least 2 points, got shape {v.shape}"
        )
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        pos = int(np.argmax(bad))
        raise AnalysisInputError(f"values must be finite and > 0; position {pos} is {v[pos]}")
    del bad
    n = v.size - 1
    mean, m2, m3, m4 = moment_sums(curve_returns(v), n)
    return n, float(mean), float(m2), float(m3), float(m4)


def _iso(ts: object) -> str | None:
    if ts is None or ts is pd.NaT or (isinstance(ts, float) and math.isnan(ts)):
        return None
    return pd.Timestamp(ts).isoformat()  # type: ignore[arg-type]


def _check_ppy(periods_per_year: float | None, index: pd.DatetimeIndex) -> float:
    if periods_per_year is None:
        return infer_periods_per_year(index)
    ppy = float(periods_per_year)
    if not math.isfinite(ppy) or ppy <= 0:
        raise AnalysisInputError(f"periods_per_year must be finite and > 0, got {periods_per_year}")
    return ppy


# Figures that depend on the number of periods per year.
_ANNUALISED_KEYS = (
    "periods_per_year",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "alpha",
)


def _benchmark_stats(
    equity: pd.Series, benchmark: pd.Series, ppy: float, rf_per_period: float
) -> dict[str, MetricValue]:
    if not isinstance(benchmark, pd.Series):
        raise AnalysisInputError(
            f"benchmark must be a pandas Series of prices or equity, got {type(benchmark).__name__}"
        )
    check_datetime_index(benchmark.index, "benchmark")
    eq_tz = cast(pd.DatetimeIndex, equity.index).tz
    bench_tz = cast(pd.DatetimeIndex, benchmark.index).tz
    if (eq_tz is None) != (bench_tz is None):
        raise AnalysisInputError(
            f"benchmark index time zone ({bench_tz}) does not match equity index time "
            f"zone ({eq_tz}); both must be tz-aware or both naive"
        )
    common = equity.index.intersection(benchmark.index)
    if len(common) == 0:
        raise AnalysisInputError("benchmark shares no timestamp with equity; cannot align them")
    bench = benchmark.loc[common]
    bench_values = check_series_values(bench, "benchmark", positive=True)
    eq_values = equity.loc[common].to_numpy(dtype=np.float64)
    r = eq_values[1:] / eq_values[:-1] - 1.0
    b = bench_values[1:] / bench_values[:-1] - 1.0
    alpha, beta = st.alpha_beta(r, b, ppy, rf_per_period)
    return {
        "alpha": alpha,
        "beta": beta,
        "benchmark_total_return": float(bench_values[-1] / bench_values[0] - 1.0),
    }


def _exposure_stats(equity: pd.Series, exposure: pd.Series) -> dict[str, MetricValue]:
    if not isinstance(exposure, pd.Series):
        raise AnalysisInputError(
            f"exposure must be a pandas Series (gross exposure / equity per bar), got "
            f"{type(exposure).__name__}"
        )
    if exposure.index is equity.index:
        # The same (already checked) index, as bt-core builds it: nothing to align.
        aligned = exposure
    else:
        check_datetime_index(exposure.index, "exposure")
        missing = equity.index.difference(exposure.index)
        if len(missing):
            raise AnalysisInputError(
                f"exposure has no value for {len(missing)} equity timestamp(s), first {missing[0]}"
            )
        aligned = exposure.loc[equity.index]
    values = check_series_values(aligned, "exposure", non_negative=True)
    return exposure_figures(values.size, float(values.sum()), int(np.count_nonzero(values)))


def exposure_figures(
    n: int,
    total: float,
    nonzero: int,
    first_bad: tuple[int, float] | None = None,
    index: Any = None,
) -> dict[str, MetricValue]:
    """``exposure`` (the mean) and ``time_in_market`` (the share of bars above 0) of an
    exposure curve, from its figures: its length ``n``, its sum (numpy's, for the mean to be
    ``np.mean``'s), how many values are not 0, and the first value that is not a finite
    number >= 0 as (position, value), an error naming its label in ``index``.

    ``performance_metrics`` computes these from the curve; an engine that streams them
    instead of keeping the curve (a parameter sweep) gets the same numbers from here.
    """
    if first_bad is not None:
        pos, value = first_bad
        at = index[pos] if index is not None else pos
        raise bad_value("exposure", float(value), at, int(pos))
    if n <= 0:
        return {"exposure": math.nan, "time_in_market": math.nan}
    # Values >= 0: those above 0 are the ones that are not 0.
    return {"exposure": total / n, "time_in_market": nonzero / n}


def performance_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    benchmark: pd.Series | None = None,
    exposure: pd.Series | None = None,
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    annualize: bool = True,
) -> dict[str, MetricValue]:
    """Performance statistics of an equity curve, as a JSON-safe dict.

    Args:
        equity: account equity per bar (currency), a Series on a strictly increasing
            DatetimeIndex (UTC tz-aware or naive) with finite, strictly positive values.
        trades: round trips (:data:`bt_analysis.trades.TRADE_COLUMNS`, at least ``pnl``).
        benchmark: benchmark prices or equity. Inner-aligned with ``equity`` on timestamps;
            alpha and beta use the returns of both over the common timestamps.
        exposure: gross exposure as a fraction of equity per bar (>= 0); must have a value for
            every equity timestamp (extra timestamps are ignored).
        periods_per_year: bars per year; ``None`` infers it with
            :func:`bt_analysis.infer_periods_per_year`.
        risk_free: annual risk-free rate; converted per bar as
            ``(1 + risk_free) ** (1 / periods_per_year) - 1`` and used by Sharpe, Sortino
            (as required return), Omega (as threshold) and alpha.
        annualize: False when the number of bars per year is unknown (e.g. a single day of
            intraday bars): every figure that needs it (periods_per_year, cagr,
            annual_volatility, sharpe, sortino, calmar, alpha, and omega with a non-zero
            risk-free rate) is None instead of a guess; ``periods_per_year`` is then ignored.

    Returns (every key of :data:`METRIC_KEYS`, always; ``None`` where undefined or not
    applicable, never NaN or inf):
        start, end: ISO timestamps of the first and last bar; n_bars: equity points (returns
        are ``n_bars - 1``); periods_per_year; initial_equity, final_equity;
        total_return (fraction); cagr (geometric, ``n_bars - 1`` returns / periods_per_year
        years); annual_volatility; sharpe; sortino; calmar; omega;
        max_drawdown (negative fraction, 0.0 without drawdown);
        max_drawdown_duration_bars / _days: the longest drawdown, peak to recovery (or to the
        last bar if still open), in bars and calendar days (see :mod:`bt_analysis.drawdown`;
        flat equity at a peak is not a drawdown); max_drawdown_peak / _valley / _recovery:
        ISO timestamps of the deepest drawdown (recovery None if not recovered);
        tail_ratio; var_95, cvar_95 (historical, per-bar returns); skew; kurtosis (excess);
        stability (R² of cumulative log returns); risk_free (the annual rate used);
        alpha, beta, benchmark_total_return (with a benchmark);
        exposure (mean), time_in_market (fraction of bars with exposure > 0) (with exposure);
        and the trade keys of :func:`bt_analysis.trades.trade_metrics` (with trades).

    Raises:
        AnalysisInputError (ValueError): bad equity/benchmark/exposure/trades, or
            ``periods_per_year`` None with fewer than 2 bars.
    """
    series, values = check_equity(equity)
    index = cast(pd.DatetimeIndex, series.index)
    # Without annualisation any positive placeholder works: every figure it touches is
    # replaced by None below.
    ppy = _check_ppy(periods_per_year, index) if annualize else 1.0
    rf_pp = per_period_rate(risk_free, ppy)
    dd = drawdown_summary(values, ns_stamps(index))

    out: dict[str, MetricValue] = dict.fromkeys(METRIC_KEYS)
    out.update(
        {
            "start": _iso(index[0]),
            "end": _iso(index[-1]),
            "n_bars": int(values.size),
            "periods_per_year": ppy,
            "initial_equity": float(values[0]),
            "final_equity": float(values[-1]),
            "total_return": float(values[-1] / values[0] - 1.0),
            **equity_return_stats(values, ppy, rf_pp),
            "max_drawdown": dd["depth"],
            "max_drawdown_duration_bars": dd["length_bars"],
            "max_drawdown_duration_days": dd["length_days"],
            "risk_free": float(risk_free),
        }
    )
    for key in ("peak", "valley", "recovery"):
        pos = dd[key]
        out[f"max_drawdown_{key}"] = None if pos is None else _iso(index[cast(int, pos)])
    if benchmark is not None:
        out.update(_benchmark_stats(series, benchmark, ppy, rf_pp))
    if exposure is not None:
        out.update(_exposure_stats(series, exposure))
    if trades is not None:
        tm = trade_metrics(trades)
        out.update({k: tm[k] for k in _TRADE_KEYS})
    if not annualize:
        needs_ppy = [*_ANNUALISED_KEYS, *(["omega"] if risk_free != 0 else [])]
        out.update(dict.fromkeys(needs_ppy))
    safe: dict[str, MetricValue] = json_safe(out)
    return safe
