"""Import and read throughput of bt-data's BarStore, against pandas + a plain insert.

Generates a CSV of ``--rows`` minute bars (default 1,000,000: 100 symbols x 10,000 bars) in a
temporary directory, then times, each on a fresh database file:

* ``bt-data import_csv``: DuckDB's CSV reader -> staging -> validation -> upsert, durable on disk.
* peer ``pandas.read_csv + plain INSERT``: pandas parses, DuckDB inserts the DataFrame into a
  table with the same columns (no validation, no upsert).
* ``bt-data re-import``: the same file again, so every row replaces a stored one.
* the design not taken: DuckDB's CSV reader straight into a table whose ``PRIMARY KEY`` index
  enforces the key (``INSERT OR REPLACE``, no validation), to show what the index costs.
* reads: ``BarStore.read`` (all rows -> canonical pandas DataFrame) vs. a plain DuckDB
  ``SELECT ... .df()`` of the same table, and ``read_arrow``.

Run:  uv run python benchmarks/bench_data_import.py [--rows 1000000] [--repeat 5]
Contenders run interleaved; prints best-of-``repeat`` wall seconds, rows/s and ratios, and the
1-minute load average before and after (other processes on a 2-core machine move the figures a
lot: compare ratios from one run). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bt_data import BarStore


def make_csv(path: Path, rows: int, symbols: int = 100) -> None:
    per = rows // symbols
    rng = np.random.default_rng(7)
    stamps = pd.date_range("2020-01-02 01:31", periods=per, freq="min").strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    close = 10 + rng.random(per * symbols)
    frame = pd.DataFrame(
        {
            "symbol": np.repeat([f"{600000 + i:06d}.SH" for i in range(symbols)], per),
            "datetime": np.tile(np.asarray(stamps), symbols),
            "open": np.round(close + rng.normal(0, 0.01, close.size), 3),
            "high": np.round(close + 0.05, 3),
            "low": np.round(close - 0.05, 3),
            "close": np.round(close, 3),
            "volume": rng.integers(100, 100_000, close.size),
            "amount": np.round(close * 1000, 2),
        }
    )
    frame.to_csv(path, index=False)


def best(fn: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "bars.csv"
        t0 = time.perf_counter()
        make_csv(csv, args.rows)
        with open(csv) as fh:
            n = sum(1 for _ in fh) - 1
        print(
            f"generated {n:,} rows ({csv.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - t0:.1f} s; cpu count {os.cpu_count()}"
        )

        def ours(i: int) -> None:
            store = BarStore(root / f"ours{i}.duckdb")
            assert store.import_csv(csv, period="1m") == n

        def peer(i: int) -> None:
            df = pd.read_csv(csv)
            con = duckdb.connect(str(root / f"peer{i}.duckdb"))
            con.execute(
                "CREATE TABLE bars (symbol VARCHAR, datetime TIMESTAMP, open DOUBLE, high DOUBLE,"
                " low DOUBLE, close DOUBLE, volume DOUBLE, amount DOUBLE)"
            )
            con.register("df", df)
            con.execute(
                "INSERT INTO bars SELECT symbol, CAST(datetime AS TIMESTAMP), open, high,"
                " low, close, volume, amount FROM df"
            )
            con.close()

        def pk_design(i: int) -> None:
            # The design bt-data did not take: DuckDB enforcing the key with a PRIMARY KEY
            # index (INSERT OR REPLACE), reading the same CSV with the same reader.
            con = duckdb.connect(str(root / f"pk{i}.duckdb"))
            con.execute(
                "CREATE TABLE bars (symbol VARCHAR, period VARCHAR, adjust VARCHAR, "
                "ts TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, "
                "volume DOUBLE, amount DOUBLE, PRIMARY KEY (symbol, period, adjust, ts))"
            )
            con.execute(
                "INSERT OR REPLACE INTO bars SELECT symbol, '1m', 'none', "
                "CAST(datetime AS TIMESTAMP), open, high, low, close, volume, amount "
                f"FROM read_csv('{csv.as_posix()}', header = true)"
            )
            con.close()

        store = BarStore(root / "reimport.duckdb")
        store.import_csv(csv, period="1m")

        def reimport(_: int) -> None:
            assert store.import_csv(csv, period="1m") == n

        # Interleave the contenders so that load from other processes hits them alike.
        t_ours = t_peer = t_re = t_pk = float("inf")
        for i in range(args.repeat):
            t_ours = min(t_ours, best(lambda _, i=i: ours(i), 1))
            t_peer = min(t_peer, best(lambda _, i=i: peer(i), 1))
            t_re = min(t_re, best(reimport, 1))
            t_pk = min(t_pk, best(lambda _, i=i: pk_design(i), 1))
        assert store.count() == n

        def read_ours(_: int) -> None:
            assert len(store.read(period="1m")) == n

        def read_arrow(_: int) -> None:
            assert store.read_arrow(period="1m").num_rows == n

        def read_peer(_: int) -> None:
            con = duckdb.connect(str(root / "peer0.duckdb"), read_only=True)
            assert len(con.execute("SELECT * FROM bars ORDER BY symbol, datetime").df()) == n
            con.close()

        r_ours = r_arrow = r_peer = float("inf")
        for _ in range(args.repeat):
            r_ours = min(r_ours, best(read_ours, 1))
            r_arrow = min(r_arrow, best(read_arrow, 1))
            r_peer = min(r_peer, best(read_peer, 1))

    def line(name: str, secs: float, ref: float | None = None) -> str:
        ratio = f"  x{ref / secs:5.2f} vs peer" if ref else ""
        return f"  {name:<52} {secs:7.3f} s  {n / secs:>12,.0f} rows/s{ratio}"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start {load0:.2f}, at end {load:.2f}")
    print(f"import ({n:,} rows, best of {args.repeat})")
    print(line("bt-data BarStore.import_csv (fresh db)", t_ours, t_peer))
    print(line("peer: pandas.read_csv + plain INSERT", t_peer))
    print(line("bt-data re-import (every row replaced)", t_re, t_peer))
    print(line("alt design: DuckDB PRIMARY KEY + INSERT OR REPLACE", t_pk, t_peer))
    print("read (all rows, sorted)")
    print(line("bt-data BarStore.read -> pandas", r_ours, r_peer))
    print(line("bt-data BarStore.read_arrow -> Arrow", r_arrow, r_peer))
    print(line("peer: plain DuckDB SELECT .df()", r_peer))


if __name__ == "__main__":
    main()
