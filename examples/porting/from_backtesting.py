"""Ported from backtesting.py: an SMA 10/20 crossover with a 50-bar trend filter, long only.

    uv run python examples/porting/from_backtesting.py

Runs the port on the bundled sample data and prints its statistics; when backtesting.py is
installed (it is in this repository's dev group) it also runs the original below on the same
bars and shows that both give the same trades and the same equity. docs/porting.md explains
each line of the translation.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core import Backtest, Result, Strategy
from bt_core.indicators import sma

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.csv"
CASH, COMMISSION = 100_000.0, 0.001


def load() -> pd.DataFrame:
    """The sample bars: a DatetimeIndex and lower-case open/high/low/close/volume columns."""
    return pd.read_csv(SAMPLE, index_col="datetime", parse_dates=True)


# ----- the port --------------------------------------------------------------------------------
class SmaCrossTrend(Strategy):
    n1 = 10
    n2 = 20
    n_trend = 50
    size = 100.0  # units per entry; passed to buy() explicitly

    def init(self) -> None:  # backtesting.py's init() works here as it is (it is on_start)
        close = self.data.close
        self.ma1 = self.I(sma, close, self.n1)  # computed once, in Rust
        self.ma2 = self.I(sma, close, self.n2)
        self.trend = self.I(sma, close, self.n_trend)
        # backtesting.py calls next() from one bar after its slowest indicator has a value.
        self.warmup = self.n_trend

    def next(self, bar: Any) -> None:
        # crossover(a, b) is a[-2] < b[-2] and a[-1] > b[-1]: a.crossed_above(b) here.
        if self.ma1.crossed_above(self.ma2) and self.data.close[-1] > self.trend[-1]:
            if self.position == 0:  # backtesting.py: `if not self.position`
                self.buy(self.size)
        elif self.ma1.crossed_below(self.ma2):
            self.close()  # backtesting.py: self.position.close()


def ours(df: pd.DataFrame) -> Result:
    return Backtest(df, SmaCrossTrend, cash=CASH, commission=COMMISSION).run()


# ----- the original, for the comparison ----------------------------------------------------------
def peer(df: pd.DataFrame) -> dict[str, Any]:
    """The same strategy in backtesting.py; its trades and equity in our column names."""
    from backtesting import Backtest as PeerBacktest
    from backtesting import Strategy as PeerStrategy
    from backtesting.lib import crossover

    def SMA(values: Any, n: int) -> np.ndarray:  # noqa: N802 - backtesting.py's docs' spelling
        return pd.Series(values).rolling(n).mean().to_numpy()

    class Original(PeerStrategy):
        n1 = 10
        n2 = 20
        n_trend = 50
        size = 100

        def init(self) -> None:
            close = self.data.Close
            self.ma1 = self.I(SMA, close, self.n1)
            self.ma2 = self.I(SMA, close, self.n2)
            self.trend = self.I(SMA, close, self.n_trend)

        def next(self) -> None:
            if crossover(self.ma1, self.ma2) and self.data.Close[-1] > self.trend[-1]:
                if not self.position:
                    self.buy(size=self.size)
            elif crossover(self.ma2, self.ma1):
                self.position.close()

    data = df.rename(columns=str.capitalize)  # backtesting.py wants Open, High, Low, Close
    bt = PeerBacktest(data, Original, cash=CASH, commission=COMMISSION)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open": expected, ours too
        stats = bt.run()
    t = stats["_trades"].sort_values("EntryTime")
    trades = pd.DataFrame(
        {
            "entry_time": t["EntryTime"].to_numpy(),
            "exit_time": t["ExitTime"].to_numpy(),
            "entry_price": t["EntryPrice"].to_numpy(float),
            "exit_price": t["ExitPrice"].to_numpy(float),
            "size": t["Size"].to_numpy(float),
        }
    )
    return {"trades": trades, "equity": stats["_equity_curve"]["Equity"].to_numpy(float)}


def main() -> None:
    df = load()
    result = ours(df)
    s = result.stats
    print(result)
    print(
        f"pyrust-bt: final equity {s['final_equity']:,.2f}, {s['n_trades']} round trips, "
        f"max drawdown {s['max_drawdown']:.2%}"
    )
    try:
        theirs = peer(df)
    except ImportError:
        print("backtesting.py is not installed: pip install backtesting to compare")
        return
    mine = result.trades
    same_trades = len(mine) == len(theirs["trades"]) and all(
        np.array_equal(mine[c].dt.tz_localize(None).to_numpy(), theirs["trades"][c].to_numpy())
        for c in ("entry_time", "exit_time")
    )
    gap = np.max(np.abs(result.equity.to_numpy() / theirs["equity"] - 1))
    print(f"backtesting.py: final equity {theirs['equity'][-1]:,.2f}")
    print(f"same trades: {same_trades}; largest relative equity gap {gap:.1e}")


if __name__ == "__main__":
    main()
