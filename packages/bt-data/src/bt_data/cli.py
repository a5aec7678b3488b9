"""The ``bt-data`` command (also mounted as ``bt data`` by bt-core's ``bt`` command).

Commands: ``import``, ``info``, ``coverage``, ``gaps``, ``backfill``, ``export``. The database
is ``--db``, else ``$BT_DATA_DB``, else ``data/backtest.duckdb``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .calendars import WeekdayCalendar
from .errors import BtDataError, NotAStoreError, StoreReadOnlyError
from .periods import ADJUSTS, PERIODS
from .providers.base import DataProvider
from .providers.files import FileProvider
from .providers.xtdata import XtDataProvider
from .query import BarQuery
from .service import MarketDataService
from .store import DB_ENV_VAR, DEFAULT_DB_PATH, BarStore

app = typer.Typer(
    name="bt-data",
    help="pyrust-bt market data: DuckDB bar store, imports, gap backfill from QMT/xtdata or files.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)
T = TypeVar("T")

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DB_ENV_VAR,
        help=f"DuckDB file (default {DEFAULT_DB_PATH}, or ${DB_ENV_VAR}).",
        show_default=False,
    ),
]
Period = Annotated[str, typer.Option("--period", "-p", help=f"One of: {', '.join(PERIODS)}.")]
Adjust = Annotated[str, typer.Option("--adjust", "-a", help=f"One of: {', '.join(ADJUSTS)}.")]
Start = Annotated[str | None, typer.Option("--start", help="Inclusive start (2020-01-02).")]
End = Annotated[str | None, typer.Option("--end", help="Inclusive end; a date covers its day.")]


#: Exit status when the --db store itself cannot be used as asked (not a store, or read-only).
EXIT_STORE = 2


def _fail(message: object, status: int) -> NoReturn:
    """Print ``error: <message>`` as ONE line (long paths are not wrapped, DuckDB's multi-line
    messages are joined) and exit with ``status``. The text is literal: no rich markup."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    _err.print(Text("error:", style="bold red") + Text(f" {text}"), soft_wrap=True)
    raise typer.Exit(status)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn expected failures into a red one-line message: exit status 2 for a --db path that
    is not a store or is read-only, 1 for everything else (bad input, provider, disk)."""
    try:
        yield
    except (NotAStoreError, StoreReadOnlyError) as exc:
        _fail(exc, EXIT_STORE)
    except (BtDataError, ValueError, OSError, ImportError, duckdb.Error) as exc:
        _fail(exc, 1)


def _run(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()


def _table(df: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    return table


def _parse_map(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(
                f"--map {pair!r}: expected SOURCE=CANONICAL, e.g. date=datetime"
            )
        src, dst = pair.split("=", 1)
        out[src.strip()] = dst.strip()
    return out


@app.command("import")
def import_files(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet files.")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", "-s", help="Symbol of a single-symbol file.")
    ] = None,
    period: Period = "1d",
    adjust: Adjust = "none",
    column_map: Annotated[
        list[str] | None, typer.Option("--map", help="SOURCE=CANONICAL column, repeatable.")
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="strptime format, epoch_ms or epoch_s (default: ISO)."),
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of naive times in the files.")] = "UTC",
    db: Db = None,
) -> None:
    """Import CSV/Parquet files (upsert: corrected bars replace stored ones)."""
    columns = _parse_map(column_map)
    store = _run(lambda: BarStore(db))
    total = 0
    for path in paths:
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            _fail(f"{path}: expected a .csv or .parquet file", 1)
        reader = store.import_csv if suffix == ".csv" else store.import_parquet
        n = _run(
            lambda p=path, r=reader: r(  # type: ignore[misc]
                p,
                period=period,
                adjust=adjust,
                symbol=symbol,
                columns=columns,
                date_format=date_format,
                tz=tz,
            )
        )
        total += n
        _out.print(f"{path}: {n} bars ({period}, {adjust})")
    _out.print(f"imported {total} bars into {store.path}")


@app.command()
def info(
    db: Db = None,
    check: Annotated[bool, typer.Option("--check", help="Also verify key uniqueness.")] = False,
) -> None:
    """Summary of the store: schema, symbols, bars per period and adjustment."""
    store = _run(lambda: BarStore(db))
    cov = _run(store.coverage)
    version, symbols, bars = _run(lambda: (store.schema_version(), store.symbols(), store.count()))
    _out.print(f"store {store.path} (schema v{version})")
    _out.print(f"{len(symbols)} symbols, {bars} bars")
    if len(cov):
        summary = cov.groupby(["period", "adjust"], as_index=False).agg(
            symbols=("symbol", "nunique"),
            bars=("count", "sum"),
            first=("first", "min"),
            last=("last", "max"),
        )
        _out.print(_table(summary, "bars by period and adjustment"))
    if check:
        _run(store.check_integrity)
        _out.print("integrity: OK (no duplicate keys, no key both stored and absent)")


@app.command()
def coverage(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols (default: all).")] = None,
    period: Annotated[str | None, typer.Option("--period", "-p")] = None,
    adjust: Annotated[str | None, typer.Option("--adjust", "-a")] = None,
    db: Db = None,
) -> None:
    """First/last bar and count per symbol, period and adjustment (all unless given)."""
    # Filters, not a BarQuery: without --period/--adjust this lists every period and
    # adjustment, and a BarQuery is one of each. The symbols follow the BarQuery rules.
    store = _run(lambda: BarStore(db))
    cov = _run(lambda: store.coverage(symbols or None, period, adjust))
    _out.print(_table(cov, f"coverage of {store.path}"))


def _provider(name: str, files_dir: Path | None) -> DataProvider:
    if name == "files":
        if files_dir is None:
            raise typer.BadParameter("--provider files needs --files-dir")
        return _run(lambda: FileProvider(files_dir))
    if name == "xtdata":
        return XtDataProvider()
    raise typer.BadParameter(f"--provider {name!r}: expected 'xtdata' or 'files'")


Provider = Annotated[
    str, typer.Option("--provider", help="Where missing bars come from: xtdata or files.")
]
FilesDir = Annotated[
    Path | None, typer.Option("--files-dir", help="Folder of per-symbol files (--provider files).")
]
Calendar = Annotated[
    str,
    typer.Option("--calendar", help="auto (provider's trading dates, else weekdays) or weekday."),
]


def _service(
    db: str | None, provider: str, files_dir: Path | None, calendar: str, progress: bool
) -> MarketDataService:
    if calendar not in ("auto", "weekday"):
        raise typer.BadParameter(f"--calendar {calendar!r}: expected auto or weekday")
    store = _run(lambda: BarStore(db))
    prov = _provider(provider, files_dir)
    cal = WeekdayCalendar() if calendar == "weekday" else None
    return MarketDataService(store, prov, cal, progress=progress)


@app.command()
def gaps(
    symbols: Annotated[list[str], typer.Argument(help="Symbols, e.g. 600000.SH.")],
    start: Annotated[str, typer.Option("--start", help="Inclusive start.")],
    end: End = None,
    period: Period = "1d",
    adjust: Adjust = "none",
    calendar: Calendar = "weekday",
    db: Db = None,
) -> None:
    """List missing intervals (calendar minus stored minus known-absent) without fetching."""
    query = _run(lambda: BarQuery(symbols, start, end, period, adjust))
    store = _run(lambda: BarStore(db))
    cal = WeekdayCalendar() if calendar == "weekday" else None
    svc = MarketDataService(store, None, cal)
    found = _run(lambda: svc.find_gaps(query))
    df = pd.DataFrame(
        [(g.symbol, g.start, g.end, g.bars) for g in found],
        columns=["symbol", "start", "end", "bars"],
    )
    _out.print(_table(df, f"{len(found)} gap(s)"))


@app.command()
def backfill(
    symbols: Annotated[list[str], typer.Argument(help="Symbols, e.g. 600000.SH 000001.SZ.")],
    start: Annotated[str, typer.Option("--start", help="Inclusive start.")],
    end: End = None,
    period: Period = "1d",
    adjust: Adjust = "none",
    provider: Provider = "xtdata",
    files_dir: FilesDir = None,
    calendar: Calendar = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    db: Db = None,
) -> None:
    """Fetch only the missing intervals from the provider and store them."""
    query = _run(lambda: BarQuery(symbols, start, end, period, adjust))
    svc = _service(db, provider, files_dir, calendar, progress)
    report = _run(lambda: svc.backfill(query))
    _out.print(
        f"{len(report.gaps)} gap(s), {report.requests} request(s), "
        f"{report.bars_written} bars written, {report.absent_recorded} bar(s) recorded absent"
    )


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output .csv or .parquet file.")],
    symbols: Annotated[list[str] | None, typer.Option("--symbol", "-s")] = None,
    start: Start = None,
    end: End = None,
    period: Period = "1d",
    adjust: Adjust = "none",
    db: Db = None,
) -> None:
    """Write stored bars in the canonical long format to CSV or Parquet."""
    query = _run(lambda: BarQuery(symbols or None, start, end, period, adjust))
    store = _run(lambda: BarStore(db))
    n = _run(lambda: store.export(out, query))
    _out.print(f"wrote {n} bars to {os.fspath(out)}")


def main() -> None:
    """Entry point of the ``bt-data`` console script."""
    app()


if __name__ == "__main__":
    main()
