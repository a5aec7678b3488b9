"""The China A-share preset on generated data: T+1, lots, price limits, suspension and the
dated costs around the stamp duty cut of 2023-08-28.

uv run python examples/run_cn_ashare.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bt_core import Backtest, Strategy

SYMBOLS = ("600000.SH", "688981.SH", "300750.SZ")


def sample_bars(seed: int = 7) -> pd.DataFrame:
    """Daily bars from 2023-08-01: a random walk on the tick grid, each day within the
    board's limit of the previous close; 688981.SH locked at limit-up on its 6th day and
    300750.SZ suspended (no volume) on its 10th."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2023-08-01", "2023-09-15")
    frames = []
    for sym, start, band in zip(SYMBOLS, (10.0, 50.0, 200.0), (0.1, 0.2, 0.2), strict=True):
        close = [start]
        for _ in days[1:]:
            move = float(np.clip(rng.normal(0, 0.02), -band * 0.9, band * 0.9))
            close.append(round(close[-1] * (1 + move), 2))
        c = np.array(close)
        o = np.r_[c[0], c[:-1]]
        h = np.maximum(o, c) + 0.01
        lo = np.minimum(o, c) - 0.01
        v = np.full(len(c), 1e6)
        if sym == "688981.SH":
            c[5] = o[5] = h[5] = lo[5] = round(c[4] * 1.2, 2)  # locked at limit-up
            o[6] = c[5]
            h[6] = max(h[6], o[6])
            lo[6] = min(lo[6], o[6])
        if sym == "300750.SZ":
            v[9] = 0.0  # suspended: no volume (the prices repeat the last close)
            o[9] = h[9] = lo[9] = c[9] = c[8]
            o[10] = c[9]
            h[10] = max(h[10], o[10])
            lo[10] = min(lo[10], o[10])
        frames.append(
            pd.DataFrame(
                {
                    "datetime": days,
                    "symbol": sym,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": v,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


class Rotate(Strategy):
    """Buys a third of equity of each symbol every fifth bar and sells what is sellable the
    bar after; also tries to sell on the day of a buy, which T+1 rejects."""

    def next(self, bar: Any) -> None:
        for sym in self.symbols:
            if self.i % 5 == 0:
                self.order_target_percent(0.3, symbol=sym)
                self.sell(100, symbol=sym)  # the same day as the buy: rejected, code t_plus
            elif self.i % 5 == 1 and self.sellable(sym) > 0:
                self.sell(self.sellable(sym), symbol=sym)


if __name__ == "__main__":
    bt = Backtest(sample_bars(), Rotate, cash=1_000_000, fill_on="close", market="cn_ashare")
    result = bt.run()
    fills = result.fills
    print(result)
    print(fills[["datetime", "symbol", "side", "size", "price", "commission", "tax"]].head(8))
    print("rejections:", result.orders["reason_code"].value_counts().to_dict())
    duty = fills[fills["side"] == "sell"].assign(rate=lambda f: f["tax"] / (f["size"] * f["price"]))
    print("stamp duty rate by date:", duty.set_index("datetime")["rate"].round(6).to_dict())
