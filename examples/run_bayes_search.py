"""Bayesian search (optuna TPE) of the SMA cross, persisted in a SQLite study: run it twice
and the second run continues the same study instead of starting over. Then a
multi-objective search (NSGA-II): maximise the return, minimise the drawdown.

    uv run python examples/run_bayes_search.py
"""

import tempfile
from pathlib import Path

from bt_core import Backtest
from bt_core.optimize import Int

DATA = Path(__file__).parent / "data" / "sample.csv"


def main() -> None:
    bt = Backtest(DATA, "sma_cross", cash=100_000, commission=0.0005)
    space = {"fast": Int(2, 40), "slow": Int(10, 200, 5), "size": [100.0]}
    keep_fast_below_slow = lambda p: p["fast"] < p["slow"]  # noqa: E731
    with tempfile.TemporaryDirectory() as d:
        storage = f"sqlite:///{Path(d) / 'study.db'}"
        first = bt.optimize(
            space,
            "bayes",
            n_trials=20,
            seed=42,
            storage=storage,
            constraint=keep_fast_below_slow,
            n_jobs=2,
        )
        more = bt.optimize(
            space,
            "bayes",
            n_trials=40,
            seed=42,
            storage=storage,
            constraint=keep_fast_below_slow,
            n_jobs=2,
        )
        print(f"first session: {first.n_trials} trials, resumed: {more.n_trials} in the study")
    print(
        more.table[["trial", "fast", "slow", "score", "total_return"]]
        .head(5)
        .to_string(index=False)
    )
    print("best:", more.best_params)
    mo = bt.optimize(
        space,
        "bayes",
        maximize="total_return",
        minimize="max_drawdown",
        n_trials=30,
        seed=1,
        constraint=keep_fast_below_slow,
        n_jobs=2,
    )
    front = mo.pareto_front[["fast", "slow", "total_return", "max_drawdown"]]
    print(f"Pareto front ({len(front)} sets):")
    print(front.to_string(index=False))


if __name__ == "__main__":
    main()
