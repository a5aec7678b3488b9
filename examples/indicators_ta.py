"""Indicators from the `ta` library through ``self.I``: MACD, ADX and the stochastic oscillator.

    uv run python examples/indicators_ta.py                        # prints the stats
    uv run bt run examples/indicators_ta.py --data examples/data/sample.csv

Needs the optional extra: ``pip install 'bt-core[ta]'`` (in this repository it is in the dev
group). The rule: enter on a MACD cross above its signal line while ADX says the market
trends; leave on a MACD cross below, or when the stochastic %K says the move is overbought.

``ta`` works on pandas Series; ``bt_core.ta.ta_indicator`` wraps a ``ta`` function or class so
that ``self.I`` can call it with the data's arrays. The values are computed once, before the
first bar, and revealed bar by bar: ``self.adx[-1]`` is ADX at the current bar, never later.
"""

from __future__ import annotations

from pathlib import Path

import ta

from bt_core import Backtest, Strategy
from bt_core.ta import ta_indicator

SAMPLE = Path(__file__).resolve().parent / "data" / "sample.csv"


class MacdAdxStoch(Strategy):
    fast = 12
    slow = 26
    signal = 9
    adx_window = 14
    adx_min = 20.0
    stoch_exit = 80.0
    size = 1000.0  # units per entry, given explicitly to buy()

    def on_start(self) -> None:
        d = self.data
        # One ta class, three lines: MACD's .macd(), .macd_signal(), .macd_diff() methods.
        self.macd, self.macd_signal, self.macd_hist = self.I(
            ta_indicator(ta.trend.MACD, "macd", "macd_signal", "macd_diff"),
            d.close,
            window_fast=self.fast,
            window_slow=self.slow,
            window_sign=self.signal,
        )
        # ta's function API: one Series in, one out.
        self.adx = self.I(
            ta_indicator(ta.trend.adx), d.high, d.low, d.close, window=self.adx_window
        )
        self.stoch_k = self.I(ta_indicator(ta.momentum.stoch), d.high, d.low, d.close)
        # ta's ADX is 0 (not NaN) for its first 2 x window - 1 bars, so no automatic warm-up
        # can see that it is not ready yet: say when the rule may first look at it.
        self.warmup = max(self.slow + self.signal, 2 * self.adx_window)

    def next(self, bar) -> None:
        if self.position == 0:
            if self.macd.crossed_above(self.macd_signal) and self.adx[-1] > self.adx_min:
                self.buy(self.size)
        elif self.macd.crossed_below(self.macd_signal) or self.stoch_k[-1] > self.stoch_exit:
            self.close()


def main() -> None:
    result = Backtest(SAMPLE, MacdAdxStoch, cash=100_000, commission=0.0005).run()
    s = result.stats
    print(result)
    print(
        f"total return {s['total_return']:.2%}, sharpe {s['sharpe']:.2f}, "
        f"max drawdown {s['max_drawdown']:.2%}, {s['n_trades']} round trips"
    )


if __name__ == "__main__":
    main()
