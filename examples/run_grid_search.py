"""Grid search of the SMA cross on the sample data, as the seed's run_grid_search.py did, but
ranked correctly (NaN and failed sets last) and on every core.

    uv run python examples/run_grid_search.py

Every row is the statistics of a plain run of that parameter set (bit for bit), so the best
row can be re-run with ``res.best_result()``.
"""

from pathlib import Path

from bt_core import Backtest

DATA = Path(__file__).parent / "data" / "sample.csv"


def main() -> None:
    bt = Backtest(DATA, "sma_cross", cash=100_000, commission=0.0005)
    res = bt.optimize(
        {"fast": range(5, 31, 5), "slow": range(20, 121, 20), "size": [100.0]},
        constraint=lambda p: p["fast"] < p["slow"],
        maximize="sharpe",
        n_jobs=2,
    )
    cols = ["fast", "slow", "score", "total_return", "max_drawdown", "n_trades"]
    print(res.table[cols].head(10).to_string(index=False))
    print("best parameters:", res.best_params)
    best = res.best_result()
    print(f"best run: final equity {best.final_equity:,.2f}, sharpe {best.stats['sharpe']:.3f}")
    o = res.overfitting()
    print(
        f"deflated Sharpe ratio {o['deflated_sharpe']:.3f} over {o['n_trials']} trials; "
        f"probability of backtest overfitting {o['pbo']:.2f}"
    )


if __name__ == "__main__":
    main()
