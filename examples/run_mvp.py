"""Minimal backtest: a Python strategy on the bundled sample data.

uv run python examples/run_mvp.py
"""

from pathlib import Path

from bt_core import Backtest, Strategy
from bt_core.indicators import sma

DATA = Path(__file__).parent / "data" / "sample.csv"


class MeanReversion(Strategy):
    """Buy when the close is 5% under its 20-bar mean, sell when it is back above it."""

    window = 20
    band = 0.05
    order_size = 500.0

    def on_start(self):
        self.mean = self.I(sma, self.data.close, self.window)
        self.warmup = self.window

    def next(self, bar):
        mean = self.mean[-1]
        if self.position == 0 and bar.close < mean * (1 - self.band):
            return "BUY"
        if self.position > 0 and bar.close > mean:
            return {"action": "SELL", "size": self.position}
        return None


if __name__ == "__main__":
    result = Backtest(DATA, MeanReversion, cash=100_000, commission=0.0005, slippage_bps=2).run()
    print(result)
    for key in ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "win_rate"):
        print(f"{key:>14}: {result.stats[key]}")
    print(result.trades[["entry_time", "exit_time", "entry_price", "exit_price", "pnl"]].head())
