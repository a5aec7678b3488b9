"""Import a CSV of bars into the DuckDB bar store (the seed's ``import_csv_to_db.py``).

    uv run python examples/import_csv_to_db.py examples/data/sample.csv --symbol 513500.SH \\
        --period 1d --db data/backtest.duckdb

Without ``--symbol`` the file needs a ``symbol`` column (e.g. ``examples/data/multi_asset.csv``).
The default path goes straight through DuckDB's CSV reader (fast, validated, upsert in one
transaction). ``--via-pandas`` parses the file with pandas first so you can inspect it, then
writes the DataFrame through the same validation and upsert. The database defaults to
``$BT_DATA_DB`` or ``data/backtest.duckdb``; the same thing as a command: ``bt-data import``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from bt_data import ADJUSTS, PERIODS, BarStore, DataValidationError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "csv", type=Path, nargs="?", default=Path(__file__).parent / "data" / "sample.csv"
    )
    parser.add_argument("--symbol", help="symbol of a single-symbol file (e.g. 513500.SH)")
    parser.add_argument("--period", default="1d", choices=PERIODS)
    parser.add_argument("--adjust", default="none", choices=ADJUSTS)
    parser.add_argument("--db", help="DuckDB file (default $BT_DATA_DB or data/backtest.duckdb)")
    parser.add_argument("--tz", default="UTC", help="time zone of naive times in the file")
    parser.add_argument("--date-format", help="strptime format, epoch_ms or epoch_s")
    parser.add_argument(
        "--via-pandas",
        action="store_true",
        help="parse with pandas first (for inspection), then write",
    )
    args = parser.parse_args()
    if args.symbol is None and args.csv.name == "sample.csv":
        args.symbol = "SAMPLE"

    store = BarStore(args.db)
    t0 = time.perf_counter()
    try:
        if args.via_pandas:
            frame = pd.read_csv(args.csv)
            print(frame.head().to_string(index=False))
            if args.date_format:
                fmt = args.date_format
                unit = {"epoch_ms": "ms", "epoch_s": "s"}.get(fmt)
                frame["datetime"] = (
                    pd.to_datetime(frame["datetime"], unit=unit)
                    if unit
                    else pd.to_datetime(frame["datetime"].astype(str), format=fmt)
                )
            else:
                frame["datetime"] = pd.to_datetime(frame["datetime"])
            n = store.write(
                frame,
                period=args.period,
                adjust=args.adjust,
                symbol=args.symbol,
                tz=args.tz,
                source=str(args.csv),
            )
        else:
            n = store.import_csv(
                args.csv,
                period=args.period,
                adjust=args.adjust,
                symbol=args.symbol,
                date_format=args.date_format,
                tz=args.tz,
            )
    except DataValidationError as exc:
        print(f"not imported: {exc}")
        return 1
    print(
        f"imported {n} bars from {args.csv} into {store.path} in {time.perf_counter() - t0:.2f} s"
    )
    print(store.coverage(period=args.period, adjust=args.adjust).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
