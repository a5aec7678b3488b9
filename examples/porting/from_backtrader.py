"""Ported from backtrader: the close crossing its 20-bar SMA, long only, 100 units a trade.

    uv run python examples/porting/from_backtrader.py

Runs the port on the bundled sample data and prints its statistics; when backtrader is
installed (``uv sync --all-packages --group bench``) it also runs the original below on the
same bars and shows that both give the same fills and the same equity. docs/porting.md
explains each line of the translation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core import Backtest, Result, Strategy
from bt_core.indicators import sma

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.csv"
CASH, COMMISSION = 100_000.0, 0.001


def load() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, index_col="datetime", parse_dates=True)


# ----- the port --------------------------------------------------------------------------------
class SmaCloseCross(Strategy):
    period = 20  # backtrader: params = (("period", 20), ("stake", 100))
    stake = 100.0

    def on_start(self) -> None:  # backtrader's __init__, where indicators are declared
        self.sma = self.I(sma, self.data.close, self.period)
        # backtrader's first next() is on the bar where every indicator's minimum period is
        # met: SMA(20) needs 20 bars and CrossOver one more, so bar index 20.
        self.warmup = self.period
        self.log: list[tuple[str, str, float, float]] = []

    def next(self, bar: Any) -> None:
        close = self.data.close
        if self.position == 0:  # backtrader: `if not self.position`
            if close.crossed_above(self.sma):  # CrossOver(close, sma) > 0
                self.buy(self.stake)  # self.buy(size=self.p.stake)
        elif close.crossed_below(self.sma):  # CrossOver(close, sma) < 0
            self.close()

    def on_trade(self, fill: Any) -> None:  # backtrader: notify_order with order.Completed
        self.log.append((str(self.now.date()), fill.side, fill.size, fill.price))


def ours(df: pd.DataFrame) -> Result:
    return Backtest(df, SmaCloseCross, cash=CASH, commission=COMMISSION).run()


# ----- the original, for the comparison ----------------------------------------------------------
def peer(df: pd.DataFrame) -> dict[str, Any]:
    """The same strategy in backtrader; its fills and per-bar broker value."""
    import backtrader as bt

    class Original(bt.Strategy):
        params = (("period", 20), ("stake", 100))

        def __init__(self) -> None:
            self.sma = bt.indicators.SMA(self.data.close, period=self.p.period)
            self.cross = bt.indicators.CrossOver(self.data.close, self.sma)
            self.fills: list[dict[str, Any]] = []
            self.values: list[float] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills.append(
                    {
                        "datetime": bt.num2date(order.executed.dt),
                        "side": "buy" if order.isbuy() else "sell",
                        "size": abs(order.executed.size),
                        "price": order.executed.price,
                        "commission": order.executed.comm,
                    }
                )

        def prenext(self) -> None:  # bars before the minimum period: record the value only
            self.values.append(self.broker.getvalue())

        def next(self) -> None:
            self.values.append(self.broker.getvalue())
            if not self.position:
                if self.cross > 0:
                    self.buy(size=self.p.stake)
            elif self.cross < 0:
                self.close()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Original)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)  # 0.001 = 0.1 % of the value
    strat = cerebro.run()[0]
    return {"fills": pd.DataFrame(strat.fills), "equity": np.asarray(strat.values)}


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
        print("backtrader is not installed: pip install backtrader to compare")
        return
    f, g = result.fills, theirs["fills"]
    same_fills = len(f) == len(g) and bool(
        (f["datetime"].dt.tz_localize(None).to_numpy() == g["datetime"].to_numpy()).all()
        # backtrader's executed price is an average (value / size): equal to the bar's open
        # up to the last bit, not always bit for bit.
        and np.allclose(f["price"].to_numpy(), g["price"].to_numpy(), rtol=1e-12, atol=0)
    )
    gap = np.max(np.abs(result.equity.to_numpy() / theirs["equity"] - 1))
    print(f"backtrader: final equity {theirs['equity'][-1]:,.2f}")
    print(f"same fills: {same_fills}; largest relative equity gap {gap:.1e}")


if __name__ == "__main__":
    main()
