"""SMA crossover, long-only: buy on a golden cross, close on a death cross.

uv run bt run examples/strategies/sma_cross.py --data examples/data/sample.csv
"""

from bt_core import Strategy
from bt_core.indicators import sma


class SmaCross(Strategy):
    fast = 10
    slow = 30

    def on_start(self) -> None:
        close = self.data.close
        self.fast_ma = self.I(sma, close, self.fast)
        self.slow_ma = self.I(sma, close, self.slow)
        # next() starts once both averages have a value (bar slow-1); no warm-up to set.

    def next(self, bar):
        # crossed_above(x) is fast[-2] < x[-2] and fast[-1] > x[-1], in one call into Rust.
        if self.fast_ma.crossed_above(self.slow_ma):
            if self.position == 0:
                self.buy()  # all of equity (costs included) at the next open
        elif self.fast_ma.crossed_below(self.slow_ma):
            self.close()
