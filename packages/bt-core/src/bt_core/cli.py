"""The ``bt`` command: run backtests from the shell; ``bt data ...`` when bt-data is installed."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bt_core.backtest import BUILTINS, Backtest
from bt_core.config import RunConfig
from bt_core.errors import ActionError, DataError, ParameterError, StrategyError
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


def _load_strategy(spec: str, class_name: str | None) -> type[Strategy] | str:
    name = spec.removeprefix("builtin:")
    if spec.startswith("builtin:") or (name in BUILTINS and not Path(spec).exists()):
        if name not in BUILTINS:
            raise typer.BadParameter(f"unknown built-in {name!r}; available: {', '.join(BUILTINS)}")
        return name
    path = Path(spec)
    if not path.is_file():
        raise typer.BadParameter(
            f"{spec} is neither a Python file nor a built-in ({', '.join(BUILTINS)})"
        )
    mod_name = f"_bt_strategy_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(mod_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise typer.BadParameter(f"cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[mod_name] = module
    loader_spec.loader.exec_module(module)
    found = {
        n: c
        for n, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, Strategy) and c is not Strategy and c.__module__ == mod_name
    }
    if class_name:
        if class_name not in found:
            raise typer.BadParameter(
                f"no Strategy subclass {class_name!r} in {path}; "
                f"found: {', '.join(found) or 'none'}"
            )
        return found[class_name]
    if len(found) != 1:
        raise typer.BadParameter(
            f"{path} defines {len(found)} Strategy subclasses ({', '.join(found) or 'none'}); "
            "choose one with --class"
        )
    return next(iter(found.values()))


def _parse_params(items: list[str], strategy: type[Strategy] | str) -> dict[str, Any]:
    defaults = BUILTINS[strategy] if isinstance(strategy, str) else strategy.parameters()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"--param expects key=value, got {item!r}")
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        default = defaults.get(key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.2f}"
    return str(v)


def _stats_table(stats: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in stats.items():
        table.add_row(k, _fmt(v))
    return table


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
) -> None:
    """Run a backtest, print its statistics and write its tables."""
    try:
        strat = _load_strategy(strategy, class_name)
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
        bt = Backtest(data, strat, config=run_config, symbol=symbol)
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
                result = bt.run(
                    progress=lambda done, total: bar.update(task, completed=done), **params
                )
        else:
            result = bt.run(**params)
    except (DataError, ParameterError, ActionError, StrategyError) as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(code=2) from e
    name = result.strategy
    try:
        stats = result.stats
    except ValueError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(code=2) from e
    if as_json:
        console.print_json(json.dumps(stats, allow_nan=False))
    else:
        console.print(_stats_table(stats, f"{name} on {data.name} ({', '.join(bt.data.symbols)})"))
    out_dir = out if out is not None else Path("out") / f"{name}-{data.stem}"
    paths = result.save(out_dir)
    if report:
        try:
            paths["report"] = result.report(out_dir / "report.html")
        except ImportError as e:  # plotly is the optional `bt-analysis[report]` extra
            err_console.print(escape("wrote " + ", ".join(str(p) for p in paths.values())))
            err_console.print(f"[red]error:[/red] no report: {escape(str(e))}")
            raise typer.Exit(code=2) from e
    err_console.print(escape("wrote " + ", ".join(str(p) for p in paths.values())))


@app.command()
def builtins() -> None:
    """List the built-in Rust strategies and their parameters."""
    for name, params in BUILTINS.items():
        console.print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in params.items()))


@app.command()
def version() -> None:
    """Print the versions of the pyrust-bt packages."""
    import bt_analysis
    import bt_core
    import bt_engine

    console.print(
        f"bt-core {bt_core.__version__}, bt-engine {bt_engine.__version__}, "
        f"bt-analysis {bt_analysis.__version__}"
    )


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


_mount_data_commands()


def main() -> None:
    app()
