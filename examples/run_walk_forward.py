"""Walk-forward analysis of a Python SMA-cross strategy: optimise on 12 months, trade the
chosen parameters on the next 6, roll forward; prints the per-window in-sample vs
out-of-sample table and the stitched out-of-sample equity.

    uv run python examples/run_walk_forward.py
"""

import sys
from pathlib import Path

from bt_core import Backtest
from bt_core.optimize import walk_forward

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "strategies"))

from sma_cross import SmaCross  # noqa: E402  (the example strategy file)


def main() -> None:
    bt = Backtest(HERE / "data" / "sample.csv", SmaCross, cash=100_000, commission=0.0005)
    wf = walk_forward(
        bt,
        {"fast": [5, 10, 15, 20], "slow": [30, 50, 80]},
        train="12M",
        test="6M",
        maximize="sharpe",
        n_jobs=2,
    )
    cols = ["oos_start", "oos_end", "fast", "slow", "is_score", "oos_score", "oos_total_return"]
    print(wf.table[cols].to_string(index=False))
    eq = wf.oos_equity
    print(
        f"out-of-sample: {eq.index[0].date()} to {eq.index[-1].date()}, "
        f"equity {eq.iloc[0]:,.0f} -> {eq.iloc[-1]:,.2f}; "
        f"walk-forward efficiency {wf.efficiency:.2f}"
    )


if __name__ == "__main__":
    main()
