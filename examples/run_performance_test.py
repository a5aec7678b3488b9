"""Throughput of the three ways to drive the engine on generated data.

    uv run python examples/run_performance_test.py [n_bars]

For the comparison with backtesting.py, backtrader and vectorbt see benchmarks/bench_sma_cross.py.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bt_core import Backtest

sys.path.insert(0, str(Path(__file__).parent / "strategies"))
from sma_cross import SmaCross  # noqa: E402


def make_data(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1.0,
        },
        index=pd.date_range("2000-01-01", periods=n, freq="min", tz="UTC"),
    )


def timed(label: str, n: int, fn) -> None:
    t = time.perf_counter()
    result = fn()
    dt = time.perf_counter() - t
    print(f"{label:<22} {n / dt:>14,.0f} bars/s  final equity {result.final_equity:,.4f}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    df = make_data(n)
    print(f"{n:,} bars, SMA 10/30 cross, 1 unit, commission 5 bps, next-open fills")
    timed(
        "python event-driven",
        n,
        lambda: Backtest(df, SmaCross, cash=1e6, commission=0.0005).run(order_size=1),
    )
    timed(
        "built-in (Rust)",
        n,
        lambda: Backtest(df, "sma_cross", cash=1e6, commission=0.0005).run(size=1),
    )
