"""Analyzer demo (the seed's run_analyzers.py): run a close-vs-SMA strategy on the sample data
with the engine (bt-core),
then analyse the run with bt-analysis — drawdown segments, round trips rebuilt from the fills
(FIFO) and checked against the engine's, trades exported to CSV, per-symbol trade statistics,
performance metrics against buy-and-hold, a one-asset factor check (factor quantiles against
the next bar's return) and the HTML tear sheet.

    uv run python examples/run_analyzers.py [--out-dir DIR]

Writes trades.csv, drawdowns.csv, stats.json and report.html into DIR (default: a
``pyrust-bt-analyzers`` folder in the system temp directory).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile

import numpy as np
import pandas as pd

import bt_analysis as ba
from bt_core import Backtest, Strategy
from bt_core.indicators import sma

DATA = pathlib.Path(__file__).parent / "data" / "sample.csv"


class CloseVsSma(Strategy):
    """Scale in while the close is above its SMA, scale out while it is below.

    One lot of ``order_size`` is bought per bar above the mean (up to ``max_lots``) and one
    lot sold per bar below it, so lots opened at different prices are closed one slice at a
    time: the FIFO matching and partial closes of the round-trip analysis at work.
    (Short selling is off by default in the engine, so this demo stays long-only; shorts and
    reversals are covered by the bt-analysis tests.)
    """

    window = 3
    order_size = 100.0
    max_lots = 3

    def on_start(self):
        self.mean = self.I(sma, self.data.close, self.window)
        self.warmup = self.window

    def next(self, bar):
        if bar.close > self.mean[-1] and self.position < self.max_lots * self.order_size:
            return {"action": "BUY", "size": self.order_size}
        if bar.close < self.mean[-1] and self.position > 0:
            return {"action": "SELL", "size": min(self.order_size, self.position)}
        return None


def factor_check(close: pd.Series, window: int, quantiles: int = 3) -> pd.DataFrame:
    """Mean next-bar return per quantile of the factor ``close - SMA(window)`` (one asset, so the
    quantiles are over time; the cross-sectional version is bt_analysis.factor)."""
    factor = close - close.rolling(window).mean()
    forward = close.pct_change().shift(-1)  # return from this close to the next one
    frame = pd.DataFrame({"factor": factor, "forward": forward}).dropna()
    frame["quantile"] = pd.qcut(frame["factor"], quantiles, labels=False) + 1
    table = frame.groupby("quantile")["forward"].agg(["count", "mean", "std"])
    table["rank_ic"] = frame["factor"].corr(frame["forward"], method="spearman")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description="bt-analysis analyzer demo")
    default_out = pathlib.Path(tempfile.gettempdir()) / "pyrust-bt-analyzers"
    parser.add_argument("--out-dir", type=pathlib.Path, default=default_out)
    args = parser.parse_args()
    out: pathlib.Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    result = Backtest(
        DATA, CloseVsSma, cash=100_000, commission=0.0005, slippage_bps=2, symbol="SAMPLE"
    ).run()
    equity = result.equity
    print(result)

    segments = ba.drawdown_segments(equity)
    print("\nTop drawdown segments:")
    print(segments.nsmallest(3, "depth").to_string(index=False))
    segments.to_csv(out / "drawdowns.csv", index=False)

    trips = ba.round_trips(result.fills)
    print(f"\nRound trips rebuilt from {len(result.fills)} fills: {len(trips)} (first 3)")
    print(trips.head(3).to_string(index=False))
    same = len(trips) == len(result.trades) and np.allclose(
        trips["pnl"].to_numpy(), result.trades["pnl"].to_numpy(), rtol=1e-9, atol=1e-9
    )
    print(
        f"net pnl: bt-analysis {trips['pnl'].sum():,.2f} | engine {result.trades['pnl'].sum():,.2f}"
        f" | trade by trade identical: {same}"
    )
    trips.to_csv(out / "trades.csv", index=False)
    print("Trades exported to:", out / "trades.csv")

    print("\nTrades by symbol:")
    print(ba.trade_stats_by_symbol(trips).T.to_string())

    bars = pd.read_csv(DATA, parse_dates=["datetime"])
    close = pd.Series(
        bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["datetime"]).tz_localize("UTC")
    )
    stats = ba.performance_metrics(
        equity, trips, benchmark=close, exposure=result.exposure, risk_free=0.02
    )
    (out / "stats.json").write_text(json.dumps(stats, indent=2, allow_nan=False))
    print("\nPerformance (vs buy-and-hold, 2 % risk-free):")
    for key in (
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "max_drawdown_duration_days",
        "alpha",
        "beta",
        "win_rate",
        "profit_factor",
        "avg_holding_time",
    ):
        print(f"  {key:>27}: {stats[key]}")

    print(f"\nFactor check: close - SMA({CloseVsSma.window}) vs next-bar return, 3 quantiles")
    print(factor_check(close, CloseVsSma.window).to_string())

    path = ba.report(
        equity,
        trips,
        benchmark=close,
        exposure=result.exposure,
        path=out / "report.html",
        title=f"CloseVsSma({CloseVsSma.window}) on sample.csv",
    )
    print("\nTear sheet:", path)


if __name__ == "__main__":
    main()
