"""What a Python strategy pays per bar for features it does not use: this checkout against
another one, in the same session, alternating between them.

    uv run python benchmarks/bench_strategy_overhead.py                      # this checkout
    uv run python benchmarks/bench_strategy_overhead.py --against ../old     # ratios vs ../old

``--against`` names a checkout with its own built ``.venv`` (``uv sync --all-packages`` there);
each round runs every strategy once under each interpreter in turn, and the figure kept is the
best of ``--rounds`` rounds (the machine is shared: the minimum is the least disturbed run).
The strategies use only what bt-core has had from the start (``Backtest``, ``Strategy``,
``self.I``, ``buy``/``close``), so an old checkout runs the same code. Printed per strategy:
ns per bar in each checkout, and this checkout's speed as a percentage of the other's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STRATEGIES = ("empty", "reads", "cross", "trades", "churn")
DESCRIPTION = {
    "empty": "empty next()",
    "reads": "reads a line and the position",
    "cross": "two SMA crossings, no orders",
    "trades": "SMA cross that trades (about 1 order per 25 bars)",
    "churn": "an order on every bar (buy, then close)",
}


def _worker(bars: int) -> dict[str, float]:
    """One timed run of each strategy in this interpreter: ns per bar."""
    import numpy as np
    import pandas as pd

    from bt_core import Backtest, Strategy
    from bt_core.indicators import sma

    close = 100 * np.exp(np.cumsum(np.random.default_rng(42).normal(0, 0.001, bars)))
    df = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
        index=pd.date_range("2020-01-01", periods=bars, freq="min"),
    )

    class Empty(Strategy):
        def next(self, bar):
            pass

    class Reads(Strategy):
        def on_start(self):
            self.c = self.data.close

        def next(self, bar):
            self.c[-1]
            _ = self.position  # a property: reading it is the work

    class Cross(Strategy):
        def on_start(self):
            self.f = self.I(sma, self.data.close, 10)
            self.s = self.I(sma, self.data.close, 30)

        def next(self, bar):
            self.f.crossed_above(self.s)
            self.f.crossed_below(self.s)

    class Trades(Cross):
        def next(self, bar):
            if self.f.crossed_above(self.s):
                if self.position == 0:
                    self.buy()
            elif self.f.crossed_below(self.s):
                self.close()

    class Churn(Strategy):
        def next(self, bar):
            if self.position == 0:
                self.buy()
            else:
                self.close()

    classes = dict(zip(STRATEGIES, (Empty, Reads, Cross, Trades, Churn), strict=True))
    out = {}
    for name, cls in classes.items():
        bt = Backtest(df, cls, commission=0.0005)
        bt.run()  # warm: imports, first-call caches
        t0 = time.perf_counter()
        bt.run()
        out[name] = (time.perf_counter() - t0) * 1e9 / bars
    return out


def _run(python: str, bars: int) -> dict[str, float]:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [python, __file__, "--worker", "--bars", str(bars)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another checkout, with a built .venv")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.bars)))
        return
    runners = {"this": sys.executable}
    if args.against is not None:
        other = args.against / ".venv" / "bin" / "python"
        if not other.exists():
            sys.exit(f"--against {args.against}: no {other} (run `uv sync --all-packages` there)")
        runners["other"] = str(other)
    best: dict[str, dict[str, float]] = {k: {} for k in runners}
    for r in range(args.rounds):
        for who, python in runners.items():
            for name, ns in _run(python, args.bars).items():
                best[who][name] = min(ns, best[who].get(name, float("inf")))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{args.bars:,} minute bars, best of {args.rounds} rounds, ns per bar")
    head = f"{'strategy':<52}{'this':>8}"
    if "other" in best:
        head += f"{'other':>8}{'speed':>8}"
    print(head)
    for name in STRATEGIES:
        line = f"{DESCRIPTION[name]:<52}{best['this'][name]:>8.0f}"
        if "other" in best:
            ratio = best["other"][name] / best["this"][name]
            line += f"{best['other'][name]:>8.0f}{ratio:>8.0%}"
        print(line)
    if "other" in best:
        print("speed: this checkout's speed as a share of the other's (100 % = as fast)")


if __name__ == "__main__":
    main()
