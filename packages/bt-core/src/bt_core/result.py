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
from bt_core._optional import require
from bt_core.data import inferred_periods_per_year
from bt_core.errors import ParameterError

if TYPE_CHECKING:
    from bt_core.data import MarketData
    from bt_engine import Engine


def _utc(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True))


#: A trade's side by ``direction > 0``: rows refer to these two strings, not a string each.
_SIDES = np.array(["short", "long"], dtype=object)


def _text(values: Any) -> pd.Series:
    """A text column that stays text (not float64) even when it is empty."""
    return pd.Series(values, dtype=object).astype(str)


class RunOutput:
    """The engine's columnar output of one run, from which the result tables are built.

    The columns are fetched from the engine on first use: a parameter sweep that reads only
    equity or stats never builds the order, fill and trade columns.
    """

    def __init__(
        self, engine: Engine, market_data: MarketData, *, exposure_curve: bool = True
    ) -> None:
        self._engine = engine
        #: Whether the engine kept the exposure curve (a sweep's run keeps its figures only).
        self.exposure_curve = exposure_curve
        #: The bars of the run (None after unpickling: the engine's data stays behind).
        self.market_data: MarketData | None = market_data
        self.index = market_data.index
        self.ts = market_data.ts
        # Object array of names, indexed by the engine's symbol numbers.
        self.symbols = np.array(market_data.symbols, dtype=object)

    @cached_property
    def buy_hold_return(self) -> float | None:
        """Return of holding the data over the run (see :attr:`MarketData.buy_hold_return`)."""
        return None if self.market_data is None else self.market_data.buy_hold_return

    @cached_property
    def rejections(self) -> dict[str, tuple[int, str]]:
        return self._engine.rejections()

    @cached_property
    def n_orders(self) -> int:
        return self._engine.n_orders

    @cached_property
    def exposure(self) -> np.ndarray:
        if not self.exposure_curve:
            raise ParameterError(
                "this run kept no exposure curve (a parameter sweep's run keeps only its "
                "figures, in stats); run the parameters with Backtest.run to get it",
                parameter="exposure_curve",
            )
        return self._engine.exposure_curve()

    @cached_property
    def exposure_summary(self) -> tuple[int, float, int, tuple[int, float] | None]:
        """The exposure curve's figures (see ``bt_analysis.exposure_figures``), which the
        engine has whether or not it kept the curve."""
        return self._engine.exposure_summary()

    _COLUMNS = (
        "exposure",
        "exposure_summary",
        "fills",
        "orders",
        "trades",
        "ledger",
        "buy_hold_return",
        "rejections",
        "n_orders",
        "margin_calls",
    )

    def __getstate__(self) -> dict[str, Any]:
        # The engine and its data do not cross processes: a pickled output carries its
        # columns instead.
        state = {
            k: getattr(self, k)
            for k in self._COLUMNS
            if k != "exposure" or self.exposure_curve
        }
        state.update(
            index=self.index,
            ts=np.array(self.ts),
            symbols=self.symbols,
            exposure_curve=self.exposure_curve,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._engine = None  # type: ignore[assignment]
        self.market_data = None
        self.__dict__.update(state)

    @cached_property
    def fills(self) -> dict[str, Any]:
        return self._engine.fills()

    @cached_property
    def fill_costs(self) -> dict[str, Any]:
        """Commission, tax and slippage per fill: what ``stats`` needs of the fills (a third
        of their columns), from the fill table when it is already built."""
        if "fills" in self.__dict__ or self._engine is None:
            return {k: self.fills[k] for k in ("commission", "tax", "slippage")}
        return self._engine.fill_costs()

    @cached_property
    def orders(self) -> dict[str, Any]:
        return self._engine.order_columns()

    @cached_property
    def trades(self) -> dict[str, Any]:
        return self._engine.trades()

    @cached_property
    def ledger(self) -> dict[str, Any]:
        return self._engine.ledger()

    @cached_property
    def margin_calls(self) -> dict[str, Any]:
        return self._engine.margin_calls()


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
        """Gross exposure per bar as a fraction of equity (read-only, like ``equity``)."""
        # A view of the engine's record, as equity is: pandas would copy a numpy array by
        # default, 8 MB per million bars for every set of a sweep.
        return pd.Series(
            self._out().exposure, index=self.equity.index, name="exposure", copy=False
        )

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Every execution: order_id, symbol, datetime, side, size, price, commission (broker
        and exchange fees), tax, slippage (its cost in cash, already in the price)."""
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
                "tax": f["tax"],
                "slippage": f["slippage"],
            }
        )

    @cached_property
    def orders(self) -> pd.DataFrame:
        """Every order with its final status; a rejection (or a cancellation by a rule: IOC,
        FOK, OCO, a bracket's exit) has a stable ``reason_code`` (e.g. ``insufficient_cash``)
        beside the human ``reason``. ``parent_id`` links a bracket exit to its entry and an
        OTO child to its parent (-1: none), ``oco_group`` names an OCO group (-1: none);
        ``liquidation`` marks the orders a margin call sent."""
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
                "stop_price": o["stop_price"],
                "avg_price": o["avg_price"],
                "status": _text(o["status"]),
                "reason_code": pd.Series(o["reason_code"], dtype=object),
                "reason": pd.Series(o["reason"], dtype=object),
                "submitted": _utc(out.ts[o["submitted_bar"]]),
                "closed": _utc(closed),
                "parent_id": o["parent_id"].astype(np.int64),
                "oco_group": o["oco_group"].astype(np.int64),
                "commission": o["commission"],
                "tax": o["tax"],
                "liquidation": o["liquidation"].astype(bool),
            }
        )

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Closed round trips (FIFO lots), net of the fees (commissions and taxes) allocated to
        them."""
        out = self._out()
        t = out.trades
        gross = t["gross_pnl"]
        pnl = gross - t["commission"]
        entry_time, exit_time = _utc(t["entry_ts"]), _utc(t["exit_ts"])
        return pd.DataFrame(
            {
                "symbol": _text(out.symbols[t["symbol"]]),
                "side": _text(_SIDES[(t["direction"] > 0).view(np.int8)]),
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
        unrealized, commission, tax, slippage, borrow (the financing paid on shorts, also in
        realized)."""
        out = self._out()
        keys = (
            "position",
            "avg_cost",
            "last_price",
            "realized",
            "unrealized",
            "commission",
            "tax",
            "slippage",
            "borrow",
        )
        return pd.DataFrame(
            {k: out.ledger[k] for k in keys},
            index=pd.Index([str(s) for s in out.symbols], name="symbol"),
        )

    @cached_property
    def margin_calls(self) -> pd.DataFrame:
        """Margin calls: at the close of ``time`` equity was below ``required`` (the
        maintenance margin of the positions); ``order_ids`` are the liquidation orders sent
        for the next bar's open, largest requirement first."""
        m = self._out().margin_calls
        return pd.DataFrame(
            {
                "time": _utc(np.asarray(m["ts"], dtype=np.int64)),
                "equity": m["equity"],
                "required": m["required"],
                "order_ids": pd.Series(m["order_ids"], dtype=object),
            }
        )

    @cached_property
    def periods_per_year(self) -> float | None:
        """Given to Backtest, else inferred from the bar spacing (on first use: a run never
        pays for it); None when the spacing does not tell (e.g. one day of minute bars)."""
        if self.given_periods_per_year is not None:
            return self.given_periods_per_year
        md = self.output.market_data if self.output is not None else None
        if md is not None and self.equity.index is md.index:
            # The data's own index: inferred once for every run on it (a sweep's sets).
            return md.periods_per_year
        return inferred_periods_per_year(pd.DatetimeIndex(self.equity.index))

    @cached_property
    def stats(self) -> dict[str, Any]:
        """Performance and trade metrics (JSON-safe: None where a value is undefined), with
        buy and hold of the same data and the orders' fate beside them."""
        # Unknown periods per year (e.g. one day of intraday bars): annualised figures are
        # None rather than a guess; pass Backtest(..., periods_per_year=...) to get them.
        out = self._out()
        stats = bt_analysis.performance_metrics(
            self.equity,
            self.trades,
            benchmark=self.benchmark,
            periods_per_year=self.periods_per_year,
            annualize=self.periods_per_year is not None,
        )
        # From the engine's figures of the curve rather than the curve, so that a sweep's
        # run (which keeps only the figures) has the same stats as a single run.
        n, total, nonzero, bad = out.exposure_summary
        stats.update(bt_analysis.exposure_figures(n, total, nonzero, bad, self.equity.index))
        bars_held = self.trades["bars_held"]
        n_rejected = sum(n for n, _ in out.rejections.values())
        stats.update(
            buy_hold_return=out.buy_hold_return,
            avg_holding_bars=float(bars_held.mean()) if len(bars_held) else None,
            n_orders=out.n_orders,
            total_commission=float(np.sum(out.fill_costs["commission"])),
            total_tax=float(np.sum(out.fill_costs["tax"])),
            total_slippage=float(np.sum(out.fill_costs["slippage"])),
            total_borrow=float(np.sum(out.ledger["borrow"])),
            n_margin_calls=len(out.margin_calls["bar"]),
            n_rejected=n_rejected,
            rejected_share=n_rejected / out.n_orders if out.n_orders else None,
        )
        return bt_analysis.json_safe(stats)

    def rejection_summary(self) -> list[str]:
        """Lines saying which orders were rejected and why (by reason code, with the first
        message of each), and a warning when most orders were rejected; empty when none were."""
        out = self._out()
        if not out.rejections:
            return []
        total = sum(n for n, _ in out.rejections.values())
        lines = [f"rejected orders: {total} of {out.n_orders}"]
        for code, (n, first) in sorted(out.rejections.items(), key=lambda kv: -kv[1][0]):
            lines.append(f"  {code}: {n} (first: {first})")
        if total * 2 > out.n_orders:
            lines.append(
                "warning: most orders were rejected; the statistics describe a strategy that "
                "barely traded (see result.orders['reason_code'])"
            )
        return lines

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
        # Every file is written under a temporary name first; only when all are written are
        # they renamed, so a failure (full disk, read-only directory) leaves the previous set.
        tmps: list[tuple[Path, Path]] = []
        try:
            for name, text in texts.items():
                path = d / name
                tmp = path.with_name(f".{name}.tmp")
                tmps.append((tmp, path))
                tmp.write_text(text)
        except OSError:
            for tmp, _ in tmps:
                tmp.unlink(missing_ok=True)
            raise
        paths: dict[str, Path] = {}
        for tmp, path in tmps:
            tmp.replace(path)
            paths[path.name.split(".")[0]] = path
        return paths

    def report(self, path: str | Path = "report.html", *, title: str | None = None) -> Path:
        """A self-contained HTML tear sheet (needs the ``bt-core[report]`` extra: plotly)."""
        # Checked here so that the message names bt-core's extra, not bt-analysis's.
        require("plotly.graph_objects", extra="report", feature="Result.report")
        return bt_analysis.report(
            self.equity,
            self.trades,
            benchmark=self.benchmark,
            path=path,
            title=title or f"{self.strategy} backtest",
            periods_per_year=self.periods_per_year,
        )

    def plot(
        self,
        symbol: str | None = None,
        *,
        path: str | Path | None = None,
        show: bool = False,
        title: str | None = None,
    ) -> Any:
        """One interactive plotly figure of the run: the price of ``symbol`` with the trades,
        equity against buy and hold, drawdown and volume; saved as a self-contained HTML file
        when ``path`` is given (returned then), shown in a notebook when ``show``. Needs the
        ``bt-core[report]`` extra (plotly)."""
        from bt_core.plot import plot_result

        fig = plot_result(self, symbol, path=path, show=show, title=title)
        return Path(path) if path is not None else fig

    def _repr_html_(self) -> str:
        from bt_core.plot import result_html

        return result_html(self)

    def __repr__(self) -> str:
        out = self._out()
        return (
            f"Result(strategy={self.strategy!r}, bars={len(self.equity)}, "
            f"final_equity={self.final_equity:.2f}, fills={len(out.fills['size'])}, "
            f"trades={len(out.trades['size'])})"
        )
