"""What one parameter set of a sweep costs besides the engine: ``Result.stats`` (bt-analysis'
``performance_metrics`` with trades and exposure, the inferred periods per year) and the
optimizer's per-trial diagnostics, on one SMA-cross run of ``--bars`` bars.

    uv run python benchmarks/bench_result_stats.py                  # 1M bars, best of 7
    uv run python benchmarks/bench_result_stats.py --bars 200k --repeat 15

Times are the best of ``--repeat`` (the machine is shared: the minimum is the least
disturbed); memory is the peak of numpy's and Python's allocations (tracemalloc) while the
statistics of one fresh result are computed, above what the result held before.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _peers  # noqa: E402
from bench_optimize import parse_bars  # noqa: E402

import bt_analysis  # noqa: E402
from bt_core import Backtest, load_data  # noqa: E402
from bt_core.optimize._work import Job, diagnostics  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bars", default="1M")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    n = parse_bars(args.bars)
    md = load_data(_peers.make_data(n))
    bt = Backtest(md, "sma_cross", cash=_peers.CASH, commission=_peers.COMMISSION)
    job = Job(strategy="sma_cross", config=bt.config)

    def fresh() -> object:
        return bt.run(fast=10, slow=60, size=1.0)

    def trades_table() -> None:
        r = fresh()
        t0 = time.perf_counter()
        r.trades  # noqa: B018
        trade_timings.append(time.perf_counter() - t0)

    def stats() -> None:
        r = fresh()
        r.trades  # noqa: B018 - built before the clock starts: not part of the statistics
        r.exposure  # noqa: B018
        t0 = time.perf_counter()
        r.stats  # noqa: B018
        timings.append(time.perf_counter() - t0)

    result = fresh()
    eq, trades, expo = result.equity, result.trades, result.exposure
    ppy = result.periods_per_year
    timings: list[float] = []
    trade_timings: list[float] = []
    for _ in range(args.repeat):
        stats()
        trades_table()
    rows = {
        "engine run (sma_cross)": best_of(fresh, args.repeat),
        "Result.trades (table)": min(trade_timings),
        "Result.stats": min(timings),
        "  performance_metrics": best_of(
            lambda: bt_analysis.performance_metrics(
                eq, trades, exposure=expo, periods_per_year=ppy
            ),
            args.repeat,
        ),
        "  infer_periods_per_year": best_of(
            lambda: bt_analysis.infer_periods_per_year(eq.index), args.repeat
        ),
        "optimizer diagnostics": best_of(lambda: diagnostics(eq.to_numpy(), job), args.repeat),
    }
    r = fresh()
    r.trades  # noqa: B018
    r.exposure  # noqa: B018
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    r.stats  # noqa: B018
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(f"{n:,} bars, {result.stats['n_trades']} trades; best of {args.repeat}")
    for name, seconds in rows.items():
        print(f"  {name:28s} {seconds * 1e3:8.1f} ms")
    print(f"  {'Result.stats peak memory':28s} {peak / 2**20:8.1f} MiB")


if __name__ == "__main__":
    main()
