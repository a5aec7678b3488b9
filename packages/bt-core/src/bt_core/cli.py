"""The ``bt`` command: run backtests from the shell; ``bt data ...`` when bt-data is installed."""

from __future__ import annotations

import ast
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bt_core.backtest import BUILTINS, Backtest, RejectedOrdersWarning
from bt_core.config import RunConfig
from bt_core.data import load_data
from bt_core.errors import BtCoreError, ParameterError
from bt_core.loading import load_strategy
from bt_core.strategy import Strategy

app = typer.Typer(
    name="bt",
    help="pyrust-bt: hybrid Rust/Python backtesting. `bt run STRATEGY --data FILE`.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

# Runs with at least this many bar x symbol cells show a progress bar by default.
PROGRESS_CELLS = 200_000


def _error(message: str) -> None:
    """One literal line on stderr (no rich markup, no wrapping)."""
    print(f"error: {message}", file=sys.stderr)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(key: str, raw: str, default: Any) -> Any:
    """``raw`` (command-line text) as a value of the default's type; an error otherwise."""
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ParameterError(
            f"parameter {key} expects true or false, got {raw!r}", parameter=key
        )
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ParameterError(
                f"parameter {key} expects an integer (default {default}), got {raw!r}",
                parameter=key,
            ) from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ParameterError(
                f"parameter {key} expects a number (default {default}), got {raw!r}",
                parameter=key,
            ) from None
        if not math.isfinite(value):
            raise ParameterError(f"parameter {key} must be finite, got {raw!r}", parameter=key)
        return value
    if isinstance(default, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_params(items: list[str], strategy: type[Strategy] | str) -> dict[str, Any]:
    defaults = BUILTINS[strategy] if isinstance(strategy, str) else strategy.parameters()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param expects key=value, got {item!r}", parameter="param")
        # Unknown names are left to the strategy's own check, which lists the known ones.
        out[key] = _coerce(key, raw, defaults[key]) if key in defaults else raw
    return out


_PERCENT = {
    "total_return",
    "buy_hold_return",
    "cagr",
    "annual_volatility",
    "max_drawdown",
    "exposure",
    "time_in_market",
    "win_rate",
    "avg_return_pct",
    "var_95",
    "cvar_95",
    "benchmark_total_return",
    "rejected_share",
}
#: The table `bt run` prints by default (`--all` prints every statistic).
SHORT_STATS = (
    "start",
    "end",
    "n_bars",
    "initial_equity",
    "final_equity",
    "total_return",
    "buy_hold_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration_days",
    "exposure",
    "n_trades",
    "win_rate",
    "profit_factor",
    "avg_holding_time",
    "total_commission",
    "n_orders",
    "n_rejected",
)


def _fmt(key: str, v: Any, stats: dict[str, Any]) -> str:
    if v is None:
        return "-"
    if key in _PERCENT and isinstance(v, (int, float)):
        return f"{v * 100:,.2f} %"
    if key == "avg_holding_time" and isinstance(v, (int, float)):
        bars = stats.get("avg_holding_bars")
        return f"{v:,.2f} days" + (f" ({bars:,.1f} bars)" if bars is not None else "")
    if key == "max_drawdown_duration_days" and isinstance(v, (int, float)):
        bars = stats.get("max_drawdown_duration_bars")
        return f"{v:,.0f} days" + (f" ({bars:,} bars)" if bars is not None else "")
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.2f}"
    return str(v)


def _stats_table(stats: dict[str, Any], title: str, *, everything: bool = False) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = list(stats) if everything else [k for k in SHORT_STATS if k in stats]
    for k in keys:
        table.add_row(k, _fmt(k, stats[k], stats))
    return table


def _benchmark(spec: str, bt_symbols: tuple[str, ...], data: Any) -> Any:
    """``--benchmark``: a symbol of the data (its closes) or a price file (its closes)."""
    if spec in bt_symbols:
        return load_data(data).frame(spec)["close"]
    path = Path(spec)
    if not path.exists():
        raise ParameterError(
            f"--benchmark {spec!r} is neither a symbol of the data ({', '.join(bt_symbols)}) "
            "nor a file",
            parameter="benchmark",
        )
    md = load_data(path)
    if len(md.symbols) != 1:
        raise ParameterError(
            f"--benchmark file {spec} holds {len(md.symbols)} symbols; give a file of one",
            parameter="benchmark",
        )
    return md.frame(md.symbols[0])["close"]


@app.command()
def run(
    strategy: Annotated[
        str,
        typer.Argument(
            help="A .py file defining one Strategy subclass, or a built-in (sma_cross)."
        ),
    ],
    data: Annotated[Path, typer.Option("--data", "-d", help="CSV or Parquet bars (wide or long).")],
    symbol: Annotated[
        str | None,
        typer.Option(help="Symbol name for single-symbol data / pick one from long data."),
    ] = None,
    class_name: Annotated[
        str | None, typer.Option("--class", help="Strategy class when the file defines several.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Strategy parameter key=value (repeatable)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run settings from a TOML file (keys of bt_core.RunConfig, at the top level "
            "or in a [run] table); options given on the command line override them.",
        ),
    ] = None,
    cash: Annotated[float | None, typer.Option(help="Starting cash [100000].")] = None,
    commission: Annotated[
        float | None, typer.Option(help="Commission, fraction of notional [0].")
    ] = None,
    commission_min: Annotated[
        float | None, typer.Option(help="Minimum commission per fill [0].")
    ] = None,
    commission_fixed: Annotated[
        float | None, typer.Option(help="Fixed commission per fill [0].")
    ] = None,
    slippage_bps: Annotated[
        float | None, typer.Option(help="Slippage in basis points [0].")
    ] = None,
    fill_on: Annotated[
        str | None,
        typer.Option(help="next_open (default, no look-ahead) or close (optimistic)."),
    ] = None,
    periods_per_year: Annotated[
        float | None,
        typer.Option(help="For annualised stats; inferred from the bar spacing when omitted."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for equity/fills/orders/trades CSVs + stats.json."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Also write report.html (needs plotly).")] = False,
    progress: Annotated[
        bool | None, typer.Option(help="Force the progress bar on/off (default: on for long runs).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print stats as JSON instead of a table.")
    ] = False,
    benchmark: Annotated[
        str | None,
        typer.Option(
            help="Benchmark for alpha/beta: a symbol of the data or a price file (CSV/Parquet)."
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Print every statistic, not the short table.")
    ] = False,
    plot: Annotated[
        bool, typer.Option(help="Also write plot.html: price, trades, equity, drawdown.")
    ] = False,
) -> None:
    """Run a backtest, print its statistics and write its tables."""
    try:
        strat = load_strategy(strategy, class_name)
        params = _parse_params(param or [], strat)
        settings = {
            "cash": cash,
            "commission": commission,
            "commission_min": commission_min,
            "commission_fixed": commission_fixed,
            "slippage_bps": slippage_bps,
            "fill_on": fill_on,
            "periods_per_year": periods_per_year,
        }
        run_config = (
            RunConfig.from_toml(config, **settings)
            if config is not None
            else RunConfig.build(None, **settings)
        )
        md = load_data(data, symbol=symbol)
        bench = _benchmark(benchmark, md.symbols, md) if benchmark else None
        bt = Backtest(md, strat, config=run_config, benchmark=bench)
        cells = bt.data.n_bars * len(bt.data.symbols)
        show = progress if progress is not None else cells >= PROGRESS_CELLS
        if show and not isinstance(strat, str):
            with Progress(
                TextColumn("backtest"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} bars"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("run", total=bt.data.n_bars)
                result = _quiet_run(
                    bt, progress=lambda done, total: bar.update(task, completed=done), **params
                )
        else:
            result = _quiet_run(bt, **params)
        stats = result.stats
    except (BtCoreError, ValueError) as e:
        _error(_hint(str(e), symbol))
        raise typer.Exit(code=2) from e
    name = result.strategy
    if as_json:
        console.print_json(json.dumps(stats, allow_nan=False))
    else:
        title = f"{name} on {data.name} ({', '.join(bt.data.symbols)})"
        console.print(_stats_table(stats, title, everything=show_all))
    for line in result.rejection_summary():
        print(line, file=sys.stderr)
    out_dir = out if out is not None else Path("out") / f"{name}-{data.stem}"
    try:
        paths = result.save(out_dir)
    except OSError as e:
        _error(f"cannot write the results to {out_dir}: {e.strerror or e}")
        raise typer.Exit(code=2) from e
    extras = []
    if report:
        extras.append(("report", lambda: result.report(out_dir / "report.html")))
    if plot:
        extras.append(("plot", lambda: result.plot(path=out_dir / "plot.html")))
    for what, make in extras:
        try:
            paths[what] = make()
        except ImportError as e:  # plotly is an optional extra
            print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
            _error(f"no {what}: {e}")
            raise typer.Exit(code=2) from e
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)


def _quiet_run(bt: Backtest, **kwargs: Any) -> Any:
    """bt.run without its RejectedOrdersWarning: the command reports rejections itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        return bt.run(**kwargs)


def _hint(message: str, symbol: str | None) -> str:
    """Point a single-symbol strategy on multi-symbol data at --symbol."""
    if symbol is None and "symbols" in message and "self.data[" in message:
        return message + "; or run it on one symbol with --symbol NAME"
    return message


@app.command()
def builtins() -> None:
    """List the built-in Rust strategies and their parameters."""
    for name, params in BUILTINS.items():
        console.print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in params.items()))


#: The distributions of pyrust-bt, for `bt version`.
PACKAGES = (
    "bt-core",
    "bt-engine",
    "bt-analysis",
    "pyrust-bt-data",
    "bt-server",
    "bt-app",
    "pyrust-bt",
)


@app.command()
def version() -> None:
    """Print the version of every installed pyrust-bt package."""
    from importlib import metadata

    for dist in PACKAGES:
        try:
            v = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v = "not installed"
        print(f"{dist} {v}")


def _mount_data_commands() -> None:
    try:
        from bt_data.cli import app as data_app
    except ImportError:  # bt-data is optional: `bt data` exists only when it is installed
        return
    app.add_typer(
        data_app,
        name="data",
        help="Market data store (bt-data): import, coverage, backfill, export.",
    )


def _mount_server_commands() -> None:
    try:
        from bt_server.cli import serve
    except ImportError:  # bt-server is optional: `bt serve` exists only when it is installed
        return
    app.command(
        "serve", help="Start the backtest server (bt-server): HTTP API, workers, run store."
    )(serve)


def _mount_app_commands() -> None:
    try:
        from bt_app.cli import run_app
    except ImportError:  # bt-app is optional: `bt app` exists only when it is installed
        return
    app.command(
        "app",
        help="Start the web app (bt-app, Streamlit); --with-server also starts a local server.",
    )(run_app)


_mount_data_commands()
_mount_server_commands()
_mount_app_commands()

import bt_core.cli_optimize  # noqa: E402, F401 - registers `bt optimize` on app


def main() -> None:
    app()
