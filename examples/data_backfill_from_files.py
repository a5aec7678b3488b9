"""Fill a DuckDB store from a folder of per-symbol files through MarketDataService.

    uv run python examples/data_backfill_from_files.py [--db PATH] [--keep DIR]

What it shows, with no QMT at all:

1. A "vendor folder" with one CSV per symbol is made from ``examples/data/multi_asset.csv``.
2. The store starts with holes: only 2019–2020 and 2022 for some symbols, nothing for one.
3. ``find_gaps`` lists every missing interval (start, middle, end) against the calendar.
4. ``get_bars`` fetches just those intervals from the ``FileProvider`` (one request per gap,
   progress bar on), writes them back, and returns the bars.
5. Running it again finds nothing missing and makes no request.

The database defaults to a temporary file (pass ``--db`` to keep one). The 2019-01-01 holiday is
in the sample files (it is synthetic data), so the weekday calendar is exact here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from bt_data import BarStore, FileProvider, MarketDataService, WeekdayCalendar

DATA = Path(__file__).parent / "data" / "multi_asset.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="DuckDB file (default: a temporary one)")
    parser.add_argument("--keep", type=Path, help="write the vendor folder here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "vendor"
        folder.mkdir(parents=True, exist_ok=True)
        bars = pd.read_csv(DATA)
        for symbol, frame in bars.groupby("symbol"):
            frame.drop(columns="symbol").to_csv(folder / f"{symbol}.csv", index=False)
        symbols = sorted(bars["symbol"].unique())
        print(f"vendor folder {folder}: {', '.join(p.name for p in sorted(folder.iterdir()))}")

        store = BarStore(args.db or Path(tmp) / "backtest.duckdb")
        # Start with holes: keep 2019-2020 and 2022 of all but the last symbol.
        partial = bars[bars["symbol"] != symbols[-1]]
        partial = partial[~partial["datetime"].str[:4].isin(["2021", "2023"])]
        store.write(partial, period="1d", source="partial sample")

        service = MarketDataService(store, FileProvider(folder), WeekdayCalendar(), progress=True)
        gaps = service.find_gaps(symbols, "2019-01-01", "2023-12-31")
        print(f"\n{len(gaps)} gap(s) before backfill:")
        for gap in gaps:
            print(f"  {gap.symbol}  {gap.start:%Y-%m-%d} .. {gap.end:%Y-%m-%d}  ({gap.bars} bars)")

        result = service.get_bars(symbols, "2019-01-01", "2023-12-31")
        print(f"\nget_bars returned {len(result)} bars for {len(symbols)} symbols")
        print(store.coverage().to_string(index=False))

        again = service.backfill(symbols, "2019-01-01", "2023-12-31")
        print(f"\nsecond run: {len(again.gaps)} gap(s), {again.requests} request(s)")
        expected = len(bars)
        assert len(result) == expected, (len(result), expected)
        store.check_integrity()


if __name__ == "__main__":
    main()
