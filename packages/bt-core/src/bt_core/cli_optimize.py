"""``bt optimize``: a parameter search (or walk-forward analysis) from the shell.

    bt optimize STRATEGY.py --data bars.csv --param fast=5:50:5 --param slow=20:200:10 \\
        --constraint "fast < slow" --maximize sharpe --jobs 2 [--method bayes --trials 200] \\
        [--backend ray] [--walk-forward 12:3] [--report]

prints the best sets, writes the full table (CSV, or Parquet with ``--format parquet``) and,
with ``--report``, an HTML report. The same command runs on a Ray cluster with
``--backend ray`` when ``RAY_ADDRESS`` names it.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bt_core.backtest import Backtest
from bt_core.cli import _error, app, console, err_console
from bt_core.config import RunConfig
from bt_core.errors import BtCoreError, ParameterError
from bt_core.loading import load_strategy
from bt_core.optimize import Space, optimize, walk_forward
from bt_core.optimize.result import score_columns

_SHOWN = ("total_return", "sharpe", "max_drawdown", "n_trades", "win_rate")
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.And,
    ast.Or,
    ast.Not,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.USub,
    ast.Pow,
)


def constraint_of(expr: str, names: list[str]) -> Any:
    """``"fast < slow and slow - fast >= 10"`` -> callable(params) -> bool. Only arithmetic,
    comparisons, and/or/not over the parameter names and numbers are allowed."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ParameterError(
            f"--constraint {expr!r} is not an expression: {e.msg}", parameter="constraint"
        ) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ParameterError(
                f"--constraint {expr!r}: {type(node).__name__} is not allowed (use parameter "
                "names, numbers, arithmetic, comparisons, and/or/not)",
                parameter="constraint",
            )
        if isinstance(node, ast.Name) and node.id not in names:
            raise ParameterError(
                f"--constraint {expr!r}: {node.id!r} is not a searched parameter "
                f"({', '.join(names)})",
                parameter="constraint",
            )
    code = compile(tree, "<constraint>", "eval")

    def check(params: dict[str, Any]) -> bool:
        return bool(eval(code, {"__builtins__": {}}, dict(params)))  # noqa: S307 - checked AST

    return check


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}"
    return str(v)


def optimize_command(
    strategy: Annotated[
        str, typer.Argument(help="A .py file with a Strategy subclass, or a built-in (sma_cross).")
    ],
    data: Annotated[Path, typer.Option("--data", "-d", help="CSV or Parquet bars.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="name=range: 5:50:5 (inclusive), 0.1:0.9:0.1, log:0.001:1, a,b,c (repeatable).",
        ),
    ] = None,
    maximize: Annotated[
        list[str] | None,
        typer.Option(
            help="Statistic to maximise (repeatable: multi-objective with --method bayes)."
        ),
    ] = None,
    minimize: Annotated[
        list[str] | None, typer.Option(help="Statistic to minimise (repeatable).")
    ] = None,
    constraint: Annotated[
        str | None,
        typer.Option(help='Keep only sets satisfying this expression, e.g. "fast < slow".'),
    ] = None,
    method: Annotated[str, typer.Option(help="grid, random or bayes.")] = "grid",
    trials: Annotated[int | None, typer.Option(help="Trials for random/bayes [100].")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Workers (default: all cores; 1: no pool).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="process, thread, ray (RAY_ADDRESS or local) or rust (built-ins).")
    ] = "process",
    seed: Annotated[int | None, typer.Option(help="Seed for random/bayes.")] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="optuna storage URL (e.g. sqlite:///study.db): persist and resume the study."
        ),
    ] = None,
    study_name: Annotated[str | None, typer.Option(help="Study name in --storage.")] = None,
    walk_forward_spec: Annotated[
        str | None,
        typer.Option(
            "--walk-forward",
            help="IS:OOS window lengths: months (12:3), or with units 252b:63b, 1Y:3M, 90D:30D.",
        ),
    ] = None,
    anchored: Annotated[bool, typer.Option(help="Anchored walk-forward windows.")] = False,
    folds: Annotated[
        int | None,
        typer.Option(help="Bayesian: score each trial on N contiguous folds, pruning early."),
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol name / pick from long data.")] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="Strategy class.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run settings (TOML).")] = None,
    cash: Annotated[float | None, typer.Option(help="Starting cash.")] = None,
    commission: Annotated[float | None, typer.Option(help="Commission rate.")] = None,
    slippage_bps: Annotated[float | None, typer.Option(help="Slippage, bps.")] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    report: Annotated[bool, typer.Option(help="Also write report.html (needs plotly).")] = False,
    progress: Annotated[bool | None, typer.Option(help="Progress bar on/off.")] = None,
) -> None:
    """Search a strategy's parameters; print the best, write the table (and a report)."""
    try:
        if fmt not in ("csv", "parquet"):
            raise ParameterError(
                f"--format must be csv or parquet, got {fmt!r}", parameter="format"
            )
        strat = load_strategy(strategy, class_name)
        space = Space.from_strings(param or [])
        settings = {"cash": cash, "commission": commission, "slippage_bps": slippage_bps}
        run_config = (
            RunConfig.from_toml(config, **settings)
            if config is not None
            else RunConfig.build(None, **settings)
        )
        bt = Backtest(data, strat, config=run_config, symbol=symbol)
        kwargs: dict[str, Any] = {
            "method": method,
            "maximize": (maximize[0] if len(maximize) == 1 else maximize) if maximize else None,
            "minimize": (minimize[0] if len(minimize) == 1 else minimize) if minimize else None,
            "constraint": constraint_of(constraint, space.names) if constraint else None,
            "n_trials": trials,
            "n_jobs": jobs,
            "backend": backend,
            "seed": seed,
            "storage": storage,
            "study_name": study_name,
            "progress": progress,
        }
        if folds is not None:
            kwargs["folds"] = folds
        name = strat if isinstance(strat, str) else strat.__name__
        out_dir = out if out is not None else Path("out") / f"optimize-{name}-{data.stem}"
        wf = None
        if walk_forward_spec:
            is_len, sep, oos_len = walk_forward_spec.partition(":")
            if not sep or not is_len.strip() or not oos_len.strip():
                raise ParameterError(
                    f"--walk-forward expects IS:OOS (e.g. 12:3), got {walk_forward_spec!r}",
                    parameter="walk_forward",
                )
            wf = walk_forward(
                bt, space, train=is_len.strip(), test=oos_len.strip(), anchored=anchored, **kwargs
            )
        res = optimize(bt, space, **kwargs)
    except (BtCoreError, ImportError) as e:
        _error(str(e))
        raise typer.Exit(code=2) from e
    score = score_columns(res.objectives)[0]
    cols = ["trial", *res.param_names, score, *[c for c in _SHOWN if c != score], "error"]
    table = Table(
        title=f"{name}: {res.method} search, {res.n_trials} trials "
        f"({res.n_failed} failed){' - interrupted' if res.interrupted else ''}"
    )
    for c in cols:
        table.add_column(c, justify="right")
    for _, r in res.table.head(top).iterrows():
        table.add_row(*[_fmt(r[c]) for c in cols])
    console.print(table)
    o = res.overfitting()
    if "deflated_sharpe" in o:
        console.print(
            f"deflated Sharpe ratio {_fmt(o['deflated_sharpe'])} ({o['n_trials']} trials)"
        )
    if "pbo" in o:
        console.print(f"probability of backtest overfitting {_fmt(o['pbo'])}")
    paths = [res.save(out_dir / f"results.{fmt}")]
    if wf is not None:
        wt = Table(title=f"walk-forward (efficiency {_fmt(wf.efficiency)})")
        shown = ["window", "oos_start", "oos_end", *res.param_names, "is_score", "oos_score"]
        for c in shown:
            wt.add_column(c, justify="right")
        for _, r in wf.table.iterrows():
            wt.add_row(*[_fmt(r[c]) for c in shown])
        console.print(wt)
        wf.table.to_csv(out_dir / "walk_forward.csv", index=False)
        wf.oos_equity.to_frame().to_csv(out_dir / "oos_equity.csv", index_label="datetime")
        paths += [out_dir / "walk_forward.csv", out_dir / "oos_equity.csv"]
    if report:
        try:
            paths.append(res.report(out_dir / "report.html", walk_forward=wf))
        except ImportError as e:
            err_console.print("wrote " + ", ".join(str(p) for p in paths), markup=False)
            _error(f"no report: {e}")
            raise typer.Exit(code=2) from e
    err_console.print("wrote " + ", ".join(str(p) for p in paths), markup=False)


# `bt_core.cli` imports this module last, so that `bt optimize` is one of its commands.
app.command(name="optimize")(optimize_command)

__all__ = ["constraint_of", "optimize_command"]
