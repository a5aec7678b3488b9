"""The outcome of one run: equity, fills, orders, trades, ledger and statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import bt_analysis


@dataclass
class Result:
    """Everything a run produced. ``stats`` is computed on first access by bt-analysis."""

    equity: pd.Series
    exposure: pd.Series
    fills: pd.DataFrame
    orders: pd.DataFrame
    trades: pd.DataFrame
    ledger: pd.DataFrame
    params: dict[str, Any]
    config: dict[str, Any]
    strategy: str
    given_periods_per_year: float | None = None
    benchmark: pd.Series | None = field(default=None, repr=False)

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
        """Write equity/fills/orders/trades CSVs and stats.json into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {
            "equity": d / "equity.csv",
            "fills": d / "fills.csv",
            "orders": d / "orders.csv",
            "trades": d / "trades.csv",
            "stats": d / "stats.json",
        }
        self.equity.to_frame().to_csv(paths["equity"], index_label="datetime")
        self.fills.to_csv(paths["fills"], index=False)
        self.orders.to_csv(paths["orders"], index=False)
        self.trades.to_csv(paths["trades"], index=False)
        paths["stats"].write_text(
            json.dumps(bt_analysis.json_safe(self.stats), indent=2, allow_nan=False)
        )
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
        return (
            f"Result(strategy={self.strategy!r}, bars={len(self.equity)}, "
            f"final_equity={self.final_equity:.2f}, fills={len(self.fills)}, "
            f"trades={len(self.trades)})"
        )


def _utc(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True))
