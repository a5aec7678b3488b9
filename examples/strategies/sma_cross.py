"""SMA crossover, long-only: buy on a golden cross, close on a death cross.

uv run bt run examples/strategies/sma_cross.py --data examples/data/sample.csv
"""

from bt_core import Strategy
from bt_core.indicators import sma


class SmaCross(Strategy):
    fast = 10
    slow = 30
    order_size = 100.0

    def on_start(self) -> None:
        close = self.data.close
        self.fast_ma = self.I(sma, close, self.fast)
        self.slow_ma = self.I(sma, close, self.slow)
        self.warmup = self.slow  # both averages exist from bar slow-1; a cross needs two

    def next(self, bar):
        f, s = self.fast_ma, self.slow_ma
        if f[-2] < s[-2] and f[-1] > s[-1]:
            if self.position == 0:
                self.buy()
        elif f[-2] > s[-2] and f[-1] < s[-1]:
            self.close()
