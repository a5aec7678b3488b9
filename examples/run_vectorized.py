"""Vectorized modes: signal arrays and the built-in Rust SMA cross (no Python per bar).

uv run python examples/run_vectorized.py
"""

from pathlib import Path

import numpy as np

from bt_core import Backtest
from bt_core.indicators import sma

DATA = Path(__file__).parent / "data" / "sample.csv"

if __name__ == "__main__":
    bt = Backtest(DATA, "sma_cross", cash=100_000, commission=0.0005)
    close = bt.data.fields["close"][:, 0]
    fast, slow = sma(close, 10), sma(close, 30)
    above = fast > slow
    prev_below = np.r_[False, fast[:-1] < slow[:-1]]
    prev_above = np.r_[False, fast[:-1] > slow[:-1]]
    entries = prev_below & above
    exits = prev_above & (fast < slow)
    signals = bt.run_signals(entries, exits, size=100)
    builtin = bt.run(fast=10, slow=30, size=100)
    print("signals:", signals)
    print("builtin:", builtin)
    print("identical equity curves:", bool((signals.equity == builtin.equity).all()))
