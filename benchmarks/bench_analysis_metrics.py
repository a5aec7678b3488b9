"""bt-analysis metrics vs empyrical-reloaded on the same returns, in the same process.

    uv run python benchmarks/bench_analysis_metrics.py [--repeat 5]

For each size, times ``bt_analysis.performance_metrics`` on an equity curve (which also builds
the drawdown-segment table and the JSON-safe dict) against the equivalent empyrical calls on the
returns of that curve (total return, CAGR, volatility, Sharpe, Sortino, Calmar, Omega, max
drawdown, tail ratio, VaR, CVaR, skew, kurtosis, stability, alpha/beta), and prints the best of
``--repeat`` runs and the ratio. Also times ``round_trips`` on synthetic fills (no peer).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import empyrical as ep
import numpy as np
import pandas as pd
import scipy.stats

import bt_analysis as ba


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def empyrical_set(r: np.ndarray, b: np.ndarray, ppy: float) -> dict[str, float]:
    return {
        "total_return": ep.cum_returns_final(r),
        "cagr": ep.annual_return(r, annualization=ppy),
        "vol": ep.annual_volatility(r, annualization=ppy),
        "sharpe": ep.sharpe_ratio(r, annualization=ppy),
        "sortino": ep.sortino_ratio(r, annualization=ppy),
        "calmar": ep.calmar_ratio(r, annualization=ppy),
        "omega": ep.omega_ratio(r, annualization=ppy),
        "mdd": ep.max_drawdown(r),
        "tail": ep.tail_ratio(r),
        "var": ep.value_at_risk(r),
        "cvar": ep.conditional_value_at_risk(r),
        "skew": scipy.stats.skew(r),
        "kurt": scipy.stats.kurtosis(r),
        "stability": ep.stability_of_timeseries(r),
        "alpha_beta": ep.alpha_beta(r, b, annualization=ppy),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'bars':>10} {'bt-analysis':>12} {'empyrical':>12} {'ratio':>7}")
    for n, freq, ppy in ((2_500, "B", 252.0), (250_000, "min", 1440 * 365.0)):
        index = pd.date_range("2020-01-01", periods=n, freq=freq, tz="UTC")
        r = rng.normal(2e-4, 0.01, n - 1)
        b = 0.5 * r + rng.normal(0, 0.008, n - 1)
        equity = pd.Series(1e6 * np.cumprod(np.concatenate(([1.0], 1 + r))), index=index)
        bench = pd.Series(100 * np.cumprod(np.concatenate(([1.0], 1 + b))), index=index)
        ours = best_of(
            lambda e=equity, bm=bench, p=ppy: ba.performance_metrics(
                e, benchmark=bm, periods_per_year=p
            ),
            args.repeat,
        )
        peer = best_of(lambda r=r, b=b, p=ppy: empyrical_set(r, b, p), args.repeat)
        print(f"{n:>10,} {ours * 1e3:>10.2f}ms {peer * 1e3:>10.2f}ms {peer / ours:>6.2f}x")

    m = 20_000
    sides = np.where(rng.random(m) < 0.5, "buy", "sell")
    fills = pd.DataFrame(
        {
            "order_id": np.arange(m),
            "symbol": rng.choice(["A", "B", "C", "D"], m),
            "datetime": pd.date_range("2020-01-01", periods=m, freq="min", tz="UTC"),
            "side": sides,
            "size": rng.integers(1, 10, m).astype(float),
            "price": 100 + rng.normal(0, 1, m),
            "commission": 0.5,
        }
    )
    t = best_of(lambda: ba.round_trips(fills), max(1, args.repeat // 2))
    print(f"round_trips: {m:,} fills in {t * 1e3:.1f} ms ({m / t:,.0f} fills/s, no peer)")


if __name__ == "__main__":
    main()
