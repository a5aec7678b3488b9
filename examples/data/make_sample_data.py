"""Regenerate the bundled sample data (deterministic: same bytes on every run).

Daily bars on weekdays 2019-01-01..2023-12-29 for four symbols, geometric Brownian motion
closes (seeded numpy PCG64), opens gapped from the previous close, highs/lows widened by a
random fraction of the day's range. Prices rounded to 0.001, volumes to whole units.

Trade ticks (`ticks.csv`: time, symbol, price, size) for one symbol over two hours of one
morning: exponential gaps between trades stamped to the whole second (so that some trades
share a second, as real prints do), a random walk on a 0.01 price grid, sizes in lots of
100 shares. Drawn from their own seeded generator, so the bar files above do not change.

    uv run python examples/data/make_sample_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SYMBOLS = {  # symbol: (start price, annual drift, annual volatility)
    "600000.SH": (10.0, 0.06, 0.25),
    "000001.SZ": (15.0, 0.02, 0.30),
    "513500.SH": (1.2, 0.12, 0.18),
    "510300.SH": (4.0, 0.05, 0.20),
}
SEED = 20240101
TICK_SEED = 20240304


def make_ticks(rng: np.random.Generator) -> pd.DataFrame:
    start = pd.Timestamp("2024-03-04 09:30:00")
    gaps = rng.exponential(4.0, size=1_800)
    seconds = np.floor(np.cumsum(gaps))
    seconds = seconds[seconds < 2 * 3600]
    n = len(seconds)
    steps = rng.choice([-1, 0, 0, 1], size=n) * (1 + (rng.random(n) < 0.1))
    price = np.round(25.0 + 0.01 * np.cumsum(steps), 2)
    size = 100 * rng.integers(1, 20, size=n)
    times = start + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame(
        {
            "time": times.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": "XYZ",
            "price": price,
            "size": size,
        }
    )


def make_bars(
    symbol: str,
    start: float,
    mu: float,
    sigma: float,
    rng: np.random.Generator,
    index: pd.DatetimeIndex,
) -> pd.DataFrame:
    n = len(index)
    dt = 1.0 / 252.0
    log_ret = (mu - 0.5 * sigma**2) * dt + sigma * np.sqrt(dt) * rng.standard_normal(n)
    close = start * np.exp(np.cumsum(log_ret))
    prev_close = np.concatenate([[start], close[:-1]])
    open_ = prev_close * np.exp(0.3 * sigma * np.sqrt(dt) * rng.standard_normal(n))
    spread = sigma * np.sqrt(dt) * np.abs(rng.standard_normal((2, n)))
    high = np.maximum(open_, close) * (1.0 + spread[0])
    low = np.minimum(open_, close) * (1.0 - spread[1])
    volume = np.round(rng.lognormal(mean=13.0, sigma=0.4, size=n))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "datetime": index.strftime("%Y-%m-%d"),
            "open": np.round(open_, 3),
            "high": np.round(high, 3),
            "low": np.round(low, 3),
            "close": np.round(close, 3),
            "volume": volume.astype(np.int64),
        }
    )


def main() -> None:
    out = Path(__file__).resolve().parent
    rng = np.random.Generator(np.random.PCG64(SEED))
    index = pd.bdate_range("2019-01-01", "2023-12-29")
    frames = [make_bars(s, *params, rng, index) for s, params in SYMBOLS.items()]
    multi = pd.concat(frames, ignore_index=True)
    # Rounding can push open/close a hair outside high/low; re-clamp so every bar is valid.
    multi["high"] = multi[["open", "high", "close"]].max(axis=1)
    multi["low"] = multi[["open", "low", "close"]].min(axis=1)
    multi.to_csv(out / "multi_asset.csv", index=False)
    single = multi[multi["symbol"] == "600000.SH"].drop(columns="symbol")
    single.to_csv(out / "sample.csv", index=False)
    make_ticks(np.random.Generator(np.random.PCG64(TICK_SEED))).to_csv(
        out / "ticks.csv", index=False
    )


if __name__ == "__main__":
    main()
