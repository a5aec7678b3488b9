"""Multi-asset: monthly equal-weight rebalancing over four symbols, two ways.

1. Event-driven in Python (orders sized from the current equity and closes).
2. Vectorized target weights (`run_weights`), the whole loop in Rust.
Both decide on the last bar of each month and fill at the next open, so they agree.

    uv run python examples/run_multi_asset.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bt_core import Backtest, Strategy

DATA = Path(__file__).parent / "data" / "multi_asset.csv"
TARGET = 0.24  # per symbol: 4 x 24% leaves a cash buffer for costs and overnight gaps


class MonthlyEqualWeight(Strategy):
    target = TARGET

    def on_start(self):
        # The last bar of each month: the next bar starts a new month.
        month = self.times.year * 12 + self.times.month
        self.month_ends = set(np.flatnonzero(np.r_[month[1:] != month[:-1], False]))

    def next(self, bar):
        if bar.i not in self.month_ends:
            return None
        equity = self.equity
        orders = []
        for s, sym in enumerate(self.symbols):
            price = bar.get("close", s)
            if np.isnan(price):
                continue
            delta = self.target * equity / price - self.position_of(sym)
            if abs(delta) > 1e-9:
                orders.append(
                    {"action": "BUY" if delta > 0 else "SELL", "size": abs(delta), "symbol": sym}
                )
        # Sells first so that they free cash before the buys fill.
        return sorted(orders, key=lambda o: o["action"] != "SELL")


if __name__ == "__main__":
    bt = Backtest(DATA, MonthlyEqualWeight, cash=1_000_000, commission=0.0003)
    event = bt.run()
    idx = bt.data.index
    month = idx.year * 12 + idx.month
    last_of_month = np.r_[month[1:] != month[:-1], False]
    weights = pd.DataFrame(np.nan, index=idx, columns=list(bt.data.symbols))
    weights[last_of_month] = TARGET
    vectorized = bt.run_weights(weights)
    print("event-driven:", event)
    print("vectorized:  ", vectorized)
    print("same final equity:", np.isclose(event.final_equity, vectorized.final_equity, rtol=1e-12))
    print(event.ledger)
    print({k: event.stats[k] for k in ("cagr", "sharpe", "max_drawdown", "exposure")})
