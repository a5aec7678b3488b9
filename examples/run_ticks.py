"""Trade ticks through the engine: each tick is a one-price bar; the strategy decides on
minute bars built from them (`self.timeframe("1min")`) and trades at the next tick.

The same decisions made vectorized (`timeframe_bars` + `run_signals`) give the same trades.

uv run python examples/run_ticks.py
"""

from pathlib import Path

import numpy as np

from bt_core import Backtest, Strategy, load_ticks, timeframe_bars
from bt_core.indicators import sma

TICKS = Path(__file__).parent / "data" / "ticks.csv"


class MinuteCross(Strategy):
    fast = 3  # minutes
    slow = 10

    def on_start(self):
        self.minutes = self.timeframe("1min")  # a minute shows once a tick at or after its end
        self.fast_ma = self.I(sma, self.minutes.close, self.fast)  # on the minute closes
        self.slow_ma = self.I(sma, self.minutes.close, self.slow)

    def next(self, bar):
        # A crossing of minute lines is reported on the one tick where that minute appears.
        if self.fast_ma.crossed_above(self.slow_ma) and self.position == 0:
            self.buy()
        elif self.fast_ma.crossed_below(self.slow_ma):
            self.close()


def vectorized_signals(ticks, fast: int, slow: int):
    """The same decisions as arrays: the minute averages as each tick sees them."""
    minutes = timeframe_bars(ticks, "1min")
    f = sma(minutes["close"].to_numpy(), fast)
    s = sma(minutes["close"].to_numpy(), slow)
    # The newest minute visible at each tick (-1: none yet).
    k = np.searchsorted(minutes["visible_from"].to_numpy(), np.arange(ticks.n_bars), "right") - 1
    f_now = np.where(k >= 0, f[np.maximum(k, 0)], np.nan)
    s_now = np.where(k >= 0, s[np.maximum(k, 0)], np.nan)
    f_prev, s_prev = np.r_[np.nan, f_now[:-1]], np.r_[np.nan, s_now[:-1]]
    entries = (f_prev < s_prev) & (f_now > s_now)
    exits = (f_prev > s_prev) & (f_now < s_now)
    return entries, exits


if __name__ == "__main__":
    # Some trades share a second: merge them into one bar each (never dropped silently).
    ticks = load_ticks(TICKS, same_time="merge")
    print(f"ticks: {ticks.n_bars} bars from {ticks.index[0]} to {ticks.index[-1]}")
    print("minute bars:", len(timeframe_bars(ticks, "1min")))
    bt = Backtest(ticks, MinuteCross, cash=100_000, commission=0.0005)
    event = bt.run()
    print(event)
    entries, exits = vectorized_signals(ticks, MinuteCross.fast, MinuteCross.slow)
    signals = bt.run_signals(entries, exits)
    print("trades:", len(event.trades))
    print("event-driven and signals agree:", bool((event.equity == signals.equity).all()))
