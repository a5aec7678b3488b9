"""Ported from vectorbt: a 10/30 moving-average crossover as entry/exit signals, 100 units.

    uv run python examples/porting/from_vectorbt.py

vectorbt's ``Portfolio.from_signals`` fills a signal on the bar that raised it, at that
bar's close, by default. That is a price the signal has already seen, so pyrust-bt's default
is the next bar's open; both are shown here:

- ``ours(df)``: decided on bar t, filled at bar t+1's open (our default). The vectorbt
  equivalent passes ``price=open`` and the signals shifted one bar later.
- ``ours_same_bar(df)``: ``fill_on="close"``, vectorbt's default, optimistic.

When vectorbt is installed (``uv sync --all-packages --group bench``) the originals run on the
same bars and the script shows that both pairs give the same trades and equity.
docs/porting.md explains the translation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core import Backtest, Result
from bt_core.indicators import sma

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.csv"
CASH, COMMISSION, SIZE = 100_000.0, 0.001, 100.0
FAST, SLOW = 10, 30


def load() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, index_col="datetime", parse_dates=True)


# ----- the port --------------------------------------------------------------------------------
def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a[t-1] < b[t-1] and a[t] > b[t] (NaN compares False: no signal during warm-up)."""
    out = np.zeros(len(a), dtype=bool)
    out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


def signals(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """vectorbt: fast.ma_crossed_above(slow) / fast.ma_crossed_below(slow)."""
    close = df["close"].to_numpy()
    fast, slow = sma(close, FAST), sma(close, SLOW)  # vbt.MA.run(close, n).ma; Rust here
    return crossed_above(fast, slow), crossed_above(slow, fast)


def ours(df: pd.DataFrame) -> Result:
    entries, exits = signals(df)
    # run_signals: buy `size` on an entry while flat, sell everything on an exit; the loop is
    # in Rust. Orders decided on bar t fill at bar t+1's open.
    return Backtest(df, cash=CASH, commission=COMMISSION).run_signals(entries, exits, size=SIZE)


def ours_same_bar(df: pd.DataFrame) -> Result:
    entries, exits = signals(df)
    bt = Backtest(df, cash=CASH, commission=COMMISSION, fill_on="close")
    return bt.run_signals(entries, exits, size=SIZE)


# ----- the original, for the comparison ----------------------------------------------------------
def peer(df: pd.DataFrame, *, next_open: bool) -> dict[str, Any]:
    """The same signals in vectorbt; closed trades and per-bar value in our column names."""
    import vectorbt as vbt

    close = df["close"]
    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    extra: dict[str, Any] = {}
    if next_open:
        # Act one bar later, at that bar's open: no price the signal has already seen.
        entries = entries.shift(1, fill_value=False)
        exits = exits.shift(1, fill_value=False)
        extra["price"] = df["open"]
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        size=SIZE,  # units (size_type="amount", its default); vectorbt's own default is all cash
        fees=COMMISSION,  # fraction of each order's value, like our commission
        init_cash=CASH,
        **extra,
    )
    t = pf.trades.records_readable
    t = t[t["Status"] == "Closed"]  # our result.trades holds closed round trips only
    trades = pd.DataFrame(
        {
            "entry_time": t["Entry Timestamp"].to_numpy(),
            "exit_time": t["Exit Timestamp"].to_numpy(),
            "entry_price": t["Avg Entry Price"].to_numpy(float),
            "exit_price": t["Avg Exit Price"].to_numpy(float),
            "size": t["Size"].to_numpy(float),
        }
    )
    return {"trades": trades, "equity": pf.value().to_numpy(float)}


def main() -> None:
    df = load()
    for label, run, next_open in (
        ("next open (default)", ours, True),
        ('same-bar close (fill_on="close")', ours_same_bar, False),
    ):
        result = run(df)
        s = result.stats
        print(
            f"pyrust-bt, {label}: final equity {s['final_equity']:,.2f}, "
            f"{s['n_trades']} round trips"
        )
        try:
            theirs = peer(df, next_open=next_open)
        except ImportError:
            print("  vectorbt is not installed: pip install vectorbt to compare")
            continue
        mine = result.trades
        same = len(mine) == len(theirs["trades"]) and bool(
            np.array_equal(
                mine["entry_time"].dt.tz_localize(None).to_numpy(),
                theirs["trades"]["entry_time"].to_numpy(),
            )
        )
        gap = np.max(np.abs(result.equity.to_numpy() / theirs["equity"] - 1))
        print(
            f"  vectorbt: final equity {theirs['equity'][-1]:,.2f}; same trades: {same}; "
            f"largest relative equity gap {gap:.1e}"
        )


if __name__ == "__main__":
    main()
