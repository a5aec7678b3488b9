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
Contenders run interleaved; prints best-of-``repeat`` wall seconds, rows/s, CPU seconds (all
threads of this process) and ratios against the peer, and the 1-minute load average before and
after: other processes on a 2-core machine move wall times a lot, CPU times much less.
Nothing is asserted.
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


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process incl. DuckDB's threads) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def race(
    contenders: dict[str, Callable[[int], object]], repeat: int
) -> dict[str, tuple[float, float]]:
    """Best (wall, cpu) per contender; rounds interleave contenders so that load from other
    processes hits them alike."""
    out = {name: (float("inf"), float("inf")) for name in contenders}
    for i in range(repeat):
        for name, fn in contenders.items():
            wall, cpu = timed(lambda fn=fn, i=i: fn(i))
            out[name] = (min(out[name][0], wall), min(out[name][1], cpu))
    return out


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

        imports = race(
            {
                "bt-data BarStore.import_csv (fresh db)": ours,
                "peer: pandas.read_csv + plain INSERT": peer,
                "bt-data re-import (every row replaced)": reimport,
                "alt design: DuckDB PRIMARY KEY + INSERT OR REPLACE": pk_design,
            },
            args.repeat,
        )
        assert store.count() == n

        def read_ours(_: int) -> None:
            assert len(store.read(period="1m")) == n

        def read_arrow(_: int) -> None:
            assert store.read_arrow(period="1m").num_rows == n

        def read_peer(_: int) -> None:
            con = duckdb.connect(str(root / "peer0.duckdb"), read_only=True)
            assert len(con.execute("SELECT * FROM bars ORDER BY symbol, datetime").df()) == n
            con.close()

        reads = race(
            {
                "bt-data BarStore.read -> pandas": read_ours,
                "bt-data BarStore.read_arrow -> Arrow": read_arrow,
                "peer: plain DuckDB SELECT .df()": read_peer,
            },
            args.repeat,
        )

    def report(title: str, results: dict[str, tuple[float, float]], peer: str) -> None:
        print(title)
        ref_wall, ref_cpu = results[peer]
        for name, (wall, cpu) in results.items():
            ratio = (
                ""
                if name == peer
                else f"  x{ref_wall / wall:4.2f} wall, x{ref_cpu / cpu:4.2f} cpu vs peer"
            )
            print(f"  {name:<52} {wall:6.3f} s {n / wall:>11,.0f} rows/s  cpu {cpu:6.3f} s{ratio}")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start {load0:.2f}, at end {load:.2f}")
    report(
        f"import ({n:,} rows, best of {args.repeat})",
        imports,
        "peer: pandas.read_csv + plain INSERT",
    )
    report("read (all rows, sorted)", reads, "peer: plain DuckDB SELECT .df()")


if __name__ == "__main__":
    main()
