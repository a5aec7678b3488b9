"""The outcome of one run: equity, fills, orders, trades, ledger and statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import bt_analysis

if TYPE_CHECKING:
    from bt_engine import Engine


def _utc(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True))


def _text(values: Any) -> pd.Series:
    """A text column that stays text (not float64) even when it is empty."""
    return pd.Series(values, dtype=object).astype(str)


class RunOutput:
    """The engine's columnar output of one run, from which the result tables are built.

    The columns are fetched from the engine on first use: a parameter sweep that reads only
    equity or stats never builds the order, fill and trade columns.
    """

    def __init__(
        self, engine: Engine, index: pd.DatetimeIndex, ts: np.ndarray, symbols: np.ndarray
    ) -> None:
        self._engine = engine
        self.index = index
        self.ts = ts
        self.symbols = symbols  # object array of names, indexed by the engine's symbol numbers

    @cached_property
    def exposure(self) -> np.ndarray:
        return self._engine.exposure_curve()

    _COLUMNS = ("exposure", "fills", "orders", "trades", "ledger")

    def __getstate__(self) -> dict[str, Any]:
        # The engine does not cross processes: a pickled output carries its columns instead.
        state = {k: getattr(self, k) for k in self._COLUMNS}
        state.update(index=self.index, ts=np.array(self.ts), symbols=self.symbols)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._engine = None  # type: ignore[assignment]
        self.__dict__.update(state)

    @cached_property
    def fills(self) -> dict[str, Any]:
        return self._engine.fills()

    @cached_property
    def orders(self) -> dict[str, Any]:
        return self._engine.order_columns()

    @cached_property
    def trades(self) -> dict[str, Any]:
        return self._engine.trades()

    @cached_property
    def ledger(self) -> dict[str, Any]:
        return self._engine.ledger()


@dataclass
class Result:
    """Everything a run produced. The tables and ``stats`` are built on first access."""

    equity: pd.Series
    params: dict[str, Any]
    config: dict[str, Any]
    strategy: str
    given_periods_per_year: float | None = None
    benchmark: pd.Series | None = field(default=None, repr=False)
    output: RunOutput | None = field(default=None, repr=False)

    def _out(self) -> RunOutput:
        if self.output is None:
            raise ValueError("this Result carries no engine output")
        return self.output

    @cached_property
    def exposure(self) -> pd.Series:
        """Gross exposure per bar as a fraction of equity."""
        return pd.Series(self._out().exposure, index=self.equity.index, name="exposure")

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Every execution: order_id, symbol, datetime, side, size, price, commission, slippage."""
        out = self._out()
        f = out.fills
        return pd.DataFrame(
            {
                "order_id": f["order_id"].astype(np.int64),
                "symbol": _text(out.symbols[f["symbol"]]),
                "datetime": _utc(f["ts"]),
                "side": _text(f["side"]),
                "size": f["size"],
                "price": f["price"],
                "commission": f["commission"],
                "slippage": f["slippage"],
            }
        )

    @cached_property
    def orders(self) -> pd.DataFrame:
        """Every order with its final status; a rejection has a stable ``reason_code``
        (e.g. ``insufficient_cash``) beside the human ``reason``."""
        out = self._out()
        o = out.orders
        closed_bar = o["closed_bar"]
        closed = np.full(len(closed_bar), np.iinfo(np.int64).min, dtype=np.int64)  # NaT
        has_closed = closed_bar >= 0
        closed[has_closed] = out.ts[closed_bar[has_closed]]
        return pd.DataFrame(
            {
                "order_id": o["order_id"].astype(np.int64),
                "symbol": _text(out.symbols[o["symbol"]]),
                "side": _text(o["side"]),
                "type": _text(o["type"]),
                "tif": _text(o["tif"]),
                "size": o["size"],
                "filled": o["filled"],
                "limit_price": o["limit_price"],
                "avg_price": o["avg_price"],
                "status": _text(o["status"]),
                "reason_code": pd.Series(o["reason_code"], dtype=object),
                "reason": pd.Series(o["reason"], dtype=object),
                "submitted": _utc(out.ts[o["submitted_bar"]]),
                "closed": _utc(closed),
            }
        )

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Closed round trips (FIFO lots), net of the commissions allocated to them."""
        out = self._out()
        t = out.trades
        gross = t["gross_pnl"]
        pnl = gross - t["commission"]
        entry_time, exit_time = _utc(t["entry_ts"]), _utc(t["exit_ts"])
        return pd.DataFrame(
            {
                "symbol": _text(out.symbols[t["symbol"]]),
                "side": _text(np.where(t["direction"] > 0, "long", "short").tolist()),
                "size": t["size"],
                "entry_time": entry_time,
                "exit_time": exit_time,
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "gross_pnl": gross,
                "commission": t["commission"],
                "pnl": pnl,
                "return_pct": pnl / (t["entry_price"] * t["size"]),
                "duration": exit_time - entry_time,
                "bars_held": t["exit_bar"] - t["entry_bar"],
            }
        )

    @cached_property
    def ledger(self) -> pd.DataFrame:
        """Final per-symbol ledger: position, avg_cost, last_price, realized (net of costs),
        unrealized, commission, slippage."""
        out = self._out()
        keys = (
            "position",
            "avg_cost",
            "last_price",
            "realized",
            "unrealized",
            "commission",
            "slippage",
        )
        return pd.DataFrame(
            {k: out.ledger[k] for k in keys},
            index=pd.Index([str(s) for s in out.symbols], name="symbol"),
        )

    @cached_property
    def periods_per_year(self) -> float | None:
        """Given to Backtest, else inferred from the bar spacing (on first use: a run never
        pays for it); None when the spacing does not tell (e.g. one day of minute bars)."""
        if self.given_periods_per_year is not None:
            return self.given_periods_per_year
        if len(self.equity) < 2:
            return None
        try:
            return bt_analysis.infer_periods_per_year(pd.DatetimeIndex(self.equity.index))
        except ValueError:
            return None

    @cached_property
    def stats(self) -> dict[str, Any]:
        """Performance and trade metrics (JSON-safe: None where a value is undefined)."""
        # Unknown periods per year (e.g. one day of intraday bars): annualised figures are
        # None rather than a guess; pass Backtest(..., periods_per_year=...) to get them.
        return bt_analysis.performance_metrics(
            self.equity,
            self.trades,
            benchmark=self.benchmark,
            exposure=self.exposure,
            periods_per_year=self.periods_per_year,
            annualize=self.periods_per_year is not None,
        )

    @property
    def final_equity(self) -> float:
        return float(self.equity.iloc[-1])

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe data: stats, params, config, equity curve and the tables."""

        def table(df: pd.DataFrame) -> list[dict[str, Any]]:
            out = df.copy()
            for c in out.columns:
                if isinstance(
                    out[c].dtype, pd.DatetimeTZDtype
                ) or pd.api.types.is_datetime64_any_dtype(out[c]):
                    out[c] = out[c].map(lambda t: None if pd.isna(t) else t.isoformat())
                elif pd.api.types.is_timedelta64_dtype(out[c]):
                    out[c] = out[c].dt.total_seconds()
            return [{str(k): v for k, v in row.items()} for row in out.to_dict(orient="records")]

        return bt_analysis.json_safe(
            {
                "strategy": self.strategy,
                "params": self.params,
                "config": self.config,
                "stats": self.stats,
                "equity": {
                    "datetime": [t.isoformat() for t in self.equity.index],
                    "equity": self.equity.to_numpy().tolist(),
                },
                "fills": table(self.fills),
                "orders": table(self.orders),
                "trades": table(self.trades),
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict`; NaN and infinities never appear."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write equity/fills/orders/trades CSVs and stats.json into ``directory``.

        Everything is rendered in memory first and each file is written to a temporary name
        and renamed, so an error leaves no half-written set and no truncated file.
        """
        texts = {
            "equity.csv": self.equity.to_frame().to_csv(index_label="datetime"),
            "fills.csv": self.fills.to_csv(index=False),
            "orders.csv": self.orders.to_csv(index=False),
            "trades.csv": self.trades.to_csv(index=False),
            "stats.json": json.dumps(bt_analysis.json_safe(self.stats), indent=2, allow_nan=False),
        }
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, text in texts.items():
            path = d / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
            paths[name.split(".")[0]] = path
        return paths

    def report(self, path: str | Path = "report.html", *, title: str | None = None) -> Path:
        """A self-contained HTML tear sheet (needs the ``bt-analysis[report]`` extra: plotly)."""
        return bt_analysis.report(
            self.equity,
            self.trades,
            benchmark=self.benchmark,
            path=path,
            title=title or f"{self.strategy} backtest",
            periods_per_year=self.periods_per_year,
        )

    def __repr__(self) -> str:
        out = self._out()
        return (
            f"Result(strategy={self.strategy!r}, bars={len(self.equity)}, "
            f"final_equity={self.final_equity:.2f}, fills={len(out.fills['size'])}, "
            f"trades={len(out.trades['size'])})"
        )
