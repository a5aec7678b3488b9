"""Round trips from fills (FIFO) and trade statistics.

Fills (what the engine produces), one row per execution:
    order_id:int (optional), symbol:str, datetime:datetime64[ns, UTC], side:'buy'|'sell'
    (case-insensitive), size:float (> 0 units), price:float (> 0), commission:float (>= 0,
    currency).

Round trips ("trades"), one row per closed lot slice:
    symbol, side ('long'|'short'), size, entry_time, exit_time, entry_price, exit_price,
    gross_pnl, commission, pnl (= gross_pnl - commission, net), return_pct
    (= pnl / (entry_price * size)), duration (exit_time - entry_time, Timedelta).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bt_analysis._validation import AnalysisInputError

__all__ = ["FILL_COLUMNS", "TRADE_COLUMNS", "round_trips", "trade_metrics", "trade_stats_by_symbol"]

FILL_COLUMNS = ["order_id", "symbol", "datetime", "side", "size", "price", "commission"]
TRADE_COLUMNS = [
    "symbol",
    "side",
    "size",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "commission",
    "pnl",
    "return_pct",
    "duration",
]
# A lot whose remaining size is below this fraction of its opening size is closed: sizes that
# should cancel exactly (0.3 - 0.1 - 0.2) leave a ~1e-17 residue in floating point.
_REL_SIZE_TOL = 1e-9


@dataclass
class _Lot:
    direction: int  # +1 long, -1 short
    size: float
    opened_size: float
    entry_time: pd.Timestamp
    entry_price: float
    commission: float  # entry commission not yet allocated to a closed slice


def _validate_fills(fills: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(fills, pd.DataFrame):
        raise AnalysisInputError(f"fills must be a pandas DataFrame, got {type(fills).__name__}")
    missing = [c for c in FILL_COLUMNS if c not in fills.columns and c != "order_id"]
    if missing:
        raise AnalysisInputError(
            f"fills is missing column(s) {missing}; expected {FILL_COLUMNS} (order_id optional)"
        )
    times = fills["datetime"]
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise AnalysisInputError(
            f"fills column 'datetime' must be datetime64 (UTC), got dtype {times.dtype}"
        )
    if times.isna().any():
        row = fills.index[int(np.flatnonzero(times.isna().to_numpy())[0])]
        raise AnalysisInputError(f"fills column 'datetime' is missing (NaT) at row {row!r}")
    symbols = fills["symbol"]
    if symbols.isna().any():
        row = fills.index[int(np.flatnonzero(symbols.isna().to_numpy())[0])]
        raise AnalysisInputError(f"fills column 'symbol' is missing at row {row!r}")
    sides = fills["side"].astype(str).str.lower()
    bad_side = ~sides.isin(["buy", "sell"])
    if bad_side.any():
        pos = int(np.flatnonzero(bad_side.to_numpy())[0])
        raise AnalysisInputError(
            f"fills column 'side' must be 'buy' or 'sell', got {fills['side'].iloc[pos]!r} "
            f"at row {fills.index[pos]!r}"
        )
    for col, rule in (("size", "positive"), ("price", "positive"), ("commission", "non_negative")):
        try:
            vals = fills[col].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise AnalysisInputError(f"fills column {col!r} must be numeric") from exc
        bad = ~np.isfinite(vals) | ((vals <= 0) if rule == "positive" else (vals < 0))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            need = "> 0" if rule == "positive" else ">= 0"
            raise AnalysisInputError(
                f"fills column {col!r} must be finite and {need}, got {vals[pos]} at row "
                f"{fills.index[pos]!r} (symbol {fills['symbol'].iloc[pos]!r})"
            )
    out = pd.DataFrame(
        {
            "symbol": symbols.astype(str).to_numpy(dtype=object),
            "datetime": times.reset_index(drop=True),
            "side": sides.to_numpy(dtype=object),
            "size": fills["size"].to_numpy(dtype=np.float64),
            "price": fills["price"].to_numpy(dtype=np.float64),
            "commission": fills["commission"].to_numpy(dtype=np.float64),
        }
    )
    # Fills at the same timestamp keep their given order (the engine's execution order).
    return out.sort_values("datetime", kind="stable").reset_index(drop=True)


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """Match fills into round trips, first in first out, per symbol.

    * A buy first closes open short lots (oldest first), then opens a long lot with what is
      left; a sell does the same the other way round. So a fill larger than the open position
      reverses it (closes everything, opens the remainder on the other side).
    * A partial close splits the lot: one round trip for the closed slice, the rest stays open.
    * Commission of a fill is allocated pro rata by size to the lots it opens or closes; a
      round trip carries its entry share plus its exit share.
    * Lots still open after the last fill are not round trips and do not appear.

    Fills are processed in time order (stable: same-time fills keep their row order, which for
    the engine's fills is the execution order). The result has :data:`TRADE_COLUMNS` and a
    fresh RangeIndex, one row per closed slice in the order the slices closed: by exit time,
    exits at the same time in the order of their fills, the lots of one fill oldest first --
    the order of the engine's ``result.trades``. Bad fills raise
    :class:`bt_analysis.AnalysisInputError` naming the row.
    """
    clean = _validate_fills(fills)
    records: list[dict[str, Any]] = []
    books: dict[str, deque[_Lot]] = {}
    for symbol, time, side, size, price, commission in zip(
        clean["symbol"].tolist(),
        clean["datetime"].tolist(),
        clean["side"].tolist(),
        clean["size"].tolist(),
        clean["price"].tolist(),
        clean["commission"].tolist(),
        strict=True,
    ):
        book = books.setdefault(symbol, deque())
        direction = 1 if side == "buy" else -1
        remaining = size
        commission_per_unit = commission / size
        while book and book[0].direction != direction and remaining > _REL_SIZE_TOL * size:
            lot = book[0]
            qty = min(remaining, lot.size)
            entry_share = lot.commission * (qty / lot.size)
            exit_share = commission_per_unit * qty
            gross = (price - lot.entry_price) * qty * lot.direction
            cost = entry_share + exit_share
            pnl = gross - cost
            records.append(
                {
                    "symbol": symbol,
                    "side": "long" if lot.direction == 1 else "short",
                    "size": qty,
                    "entry_time": lot.entry_time,
                    "exit_time": time,
                    "entry_price": lot.entry_price,
                    "exit_price": price,
                    "gross_pnl": gross,
                    "commission": cost,
                    "pnl": pnl,
                    "return_pct": pnl / (lot.entry_price * qty),
                }
            )
            lot.size -= qty
            lot.commission -= entry_share
            remaining -= qty
            if lot.size <= _REL_SIZE_TOL * lot.opened_size:
                book.popleft()
        if remaining > _REL_SIZE_TOL * size:
            book.append(
                _Lot(
                    direction=direction,
                    size=remaining,
                    opened_size=remaining,
                    entry_time=time,
                    entry_price=price,
                    commission=commission_per_unit * remaining,
                )
            )
    time_dtype = clean["datetime"].dtype
    if not records:
        empty = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in TRADE_COLUMNS})
        # The text dtype pandas infers for a filled table (str on pandas 3, object before).
        empty["symbol"] = pd.Series(dtype=object).astype(str)
        empty["side"] = pd.Series(dtype=object).astype(str)
        empty["entry_time"] = pd.Series(dtype=time_dtype)
        empty["exit_time"] = pd.Series(dtype=time_dtype)
        empty["duration"] = pd.Series(dtype="timedelta64[ns]")
        return empty[TRADE_COLUMNS]
    trades = pd.DataFrame.from_records(records)
    trades["entry_time"] = pd.Series(pd.DatetimeIndex(trades["entry_time"], dtype=str(time_dtype)))
    trades["exit_time"] = pd.Series(pd.DatetimeIndex(trades["exit_time"], dtype=str(time_dtype)))
    trades["duration"] = trades["exit_time"] - trades["entry_time"]
    # No re-sort: the records are already in exit-time order (fills were processed in time
    # order), and sorting same-time exits by symbol would lose the execution order.
    return trades[TRADE_COLUMNS]


def _require_pnl(trades: pd.DataFrame) -> np.ndarray:
    if not isinstance(trades, pd.DataFrame):
        raise AnalysisInputError(f"trades must be a pandas DataFrame, got {type(trades).__name__}")
    if "pnl" not in trades.columns:
        raise AnalysisInputError(
            f"trades has no 'pnl' column; expected the round-trip columns {TRADE_COLUMNS}"
        )
    try:
        pnl = trades["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError("trades column 'pnl' must be numeric") from exc
    bad = ~np.isfinite(pnl)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise AnalysisInputError(
            f"trades column 'pnl' must be finite, got {pnl[pos]} at row {trades.index[pos]!r}"
        )
    return pnl


def _holding_days(trades: pd.DataFrame) -> np.ndarray | None:
    if "duration" in trades.columns:
        durations = pd.to_timedelta(trades["duration"])
    elif {"entry_time", "exit_time"} <= set(trades.columns):
        durations = pd.to_datetime(trades["exit_time"]) - pd.to_datetime(trades["entry_time"])
    else:
        return None
    return (durations / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def trade_metrics(trades: pd.DataFrame) -> dict[str, float | int | None]:
    """Statistics of round trips (needs a ``pnl`` column; ``duration`` or entry/exit times for
    the holding time; ``return_pct`` for the average trade return).

    Keys (currency values in the account currency, net of commission):
        n_trades, n_wins (pnl > 0), n_losses (pnl < 0), win_rate (n_wins / n_trades; a
        break-even trade is neither a win nor a loss but counts in n_trades), gross_profit,
        gross_loss (<= 0), net_pnl, total_commission, profit_factor (gross_profit /
        |gross_loss|; **None when there is no losing trade**, never inf), expectancy (mean pnl
        per trade), avg_win, avg_loss (mean pnl of winners / losers; None if there are none),
        payoff_ratio (avg_win / |avg_loss|, None if either is missing), best_trade,
        worst_trade (max / min pnl), avg_return_pct (mean return_pct), avg_holding_time (mean
        duration in days, float).

    With no trades every ratio is None and the counts are 0.
    """
    pnl = _require_pnl(trades)
    n = int(pnl.size)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_profit = float(wins.sum())
    gross_loss = float(losses.sum())
    out: dict[str, float | int | None] = {
        "n_trades": n,
        "n_wins": int(wins.size),
        "n_losses": int(losses.size),
        "win_rate": wins.size / n if n else None,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "net_pnl": float(pnl.sum()),
        "total_commission": (
            float(trades["commission"].astype(np.float64).sum())
            if "commission" in trades.columns
            else None
        ),
        "profit_factor": gross_profit / -gross_loss if losses.size else None,
        "expectancy": float(pnl.mean()) if n else None,
        "avg_win": float(wins.mean()) if wins.size else None,
        "avg_loss": float(losses.mean()) if losses.size else None,
        "payoff_ratio": (
            float(wins.mean()) / -float(losses.mean()) if wins.size and losses.size else None
        ),
        "best_trade": float(pnl.max()) if n else None,
        "worst_trade": float(pnl.min()) if n else None,
        "avg_return_pct": (
            float(trades["return_pct"].astype(np.float64).mean())
            if n and "return_pct" in trades.columns
            else None
        ),
        "avg_holding_time": None,
    }
    days = _holding_days(trades)
    if n and days is not None and not np.isnan(days).all():
        out["avg_holding_time"] = float(np.nanmean(days))
    # A trade table can hold NaN commission/return columns; keep the output JSON-safe.
    for key, value in out.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
    return out


def trade_stats_by_symbol(trades: pd.DataFrame) -> pd.DataFrame:
    """:func:`trade_metrics` per symbol: one row per symbol (sorted), one column per key.
    Ratios that are undefined for a symbol (e.g. profit_factor without losers) are NaN in the
    table (use :func:`bt_analysis.json_safe` on ``.to_dict()`` for JSON)."""
    _require_pnl(trades)
    if "symbol" not in trades.columns:
        raise AnalysisInputError("trades has no 'symbol' column; cannot group by symbol")
    rows = {
        str(symbol): trade_metrics(group)
        for symbol, group in trades.groupby("symbol", sort=True, observed=True)
    }
    columns = list(trade_metrics(trades.iloc[0:0]).keys())
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "symbol"
    return table.astype({c: "float64" for c in columns if not c.startswith("n_")})
