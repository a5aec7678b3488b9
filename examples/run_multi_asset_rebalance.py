"""Monthly equal-weight rebalancing over the sample symbols with one call per month:
``Strategy.rebalance({symbol: weight, ...}, cash_buffer=...)`` sends the sells before the
buys, sizes each trade by value at the fill price, and caps the buys at what cash pays for.
China A-share style costs: a commission with a 5 CNY minimum per order and a stamp duty on
sells (its rate halved on 2023-08-28; the sample data ends before, so 0.1 % applies).

    uv run python examples/run_multi_asset_rebalance.py
"""

from pathlib import Path

import numpy as np

from bt_core import Backtest, Strategy
from bt_core.config import FeeLine

DATA = Path(__file__).parent / "data" / "multi_asset.csv"

STAMP_DUTY = (
    FeeLine(name="stamp_duty", rate=0.001, side="sell", kind="tax", until="2023-08-28"),
    FeeLine(name="stamp_duty", rate=0.0005, side="sell", kind="tax", **{"from": "2023-08-28"}),
)


class MonthlyRebalance(Strategy):
    cash_buffer = 0.02  # kept in cash for costs and overnight gaps

    def on_start(self):
        month = self.times.year * 12 + self.times.month
        # Decide on the last bar of each month; the orders fill at the next month's open.
        self.month_ends = set(np.flatnonzero(np.r_[month[1:] != month[:-1], False]))

    def next(self, bar):
        if bar.i in self.month_ends:
            weight = 1 / len(self.symbols)
            self.rebalance({s: weight for s in self.symbols}, cash_buffer=self.cash_buffer)


if __name__ == "__main__":
    bt = Backtest(
        DATA,
        MonthlyRebalance,
        cash=1_000_000,
        commission=0.0003,
        commission_min=5.0,
        fees=STAMP_DUTY,
    )
    res = bt.run()
    print(res)
    print(res.ledger[["position", "last_price", "commission", "tax"]])
    weights = res.ledger["position"] * res.ledger["last_price"] / res.final_equity
    print("final weights:", weights.round(3).to_dict())
    keys = ("cagr", "sharpe", "max_drawdown", "total_commission", "total_tax")
    print({k: res.stats[k] for k in keys})
    print("orders:", res.stats["n_orders"], "rejected:", res.stats["n_rejected"])
