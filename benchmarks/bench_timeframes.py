"""What multiple timeframes cost: building the coarse bars of ``--bars`` minute bars under
each rule (once per run, in Rust), aligning them for the vectorized modes, and reading a
coarse line on every bar of an event-driven run beside reading a data line.

    uv run python benchmarks/bench_timeframes.py                  # 1M bars, best of 3
    uv run python benchmarks/bench_timeframes.py --bars 200000 --repeat 5

Times are the best of ``--repeat`` (the machine is shared: the minimum is the least
disturbed). The per-bar figures are whole runs divided by the bars, so they include the
engine's loop and the call into ``next``; the empty strategy shows that floor.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

import bt_engine
from bt_core import Backtest, Strategy, align_timeframe, load_data


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


class Empty(Strategy):
    warmup = 0

    def next(self, bar):
        pass


class ReadsData(Strategy):
    warmup = 0

    def on_start(self):
        self.c = self.data.close

    def next(self, bar):
        self.c[-1]


class ReadsHourly(Strategy):
    warmup = 0

    def on_start(self):
        self.hc = self.timeframe("1h").close  # hold the line: one attribute read per bar

    def next(self, bar):
        hc = self.hc
        if len(hc):
            hc[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.bars
    idx = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC")
    c = 100 + np.cumsum(np.random.default_rng(1).normal(0, 0.01, n))
    md = load_data(
        pd.DataFrame(
            {"open": c, "high": c + 0.01, "low": c - 0.01, "close": c, "volume": 1.0}, index=idx
        )
    )
    print(f"{n:,} minute bars, best of {args.repeat}")
    for rule in ("1h", "1D", "1W", "1M", "60bars"):
        t = best_of(lambda r=rule: bt_engine.Timeframe(md.handle, r), args.repeat)
        k = bt_engine.Timeframe(md.handle, rule).n_bars(0)
        print(f"  build {rule:>7}: {t * 1e3:8.1f} ms  ({k:,} coarse bars)")
    t = best_of(lambda: align_timeframe(md, "1h"), args.repeat)
    print(f"  align_timeframe 1h: {t * 1e3:.1f} ms")
    for strat in (Empty, ReadsData, ReadsHourly):
        t = best_of(lambda s=strat: Backtest(md, s).run(), args.repeat)
        print(f"  {strat.__name__:>12}: {t / n * 1e9:6.0f} ns/bar (whole run)")


if __name__ == "__main__":
    main()
