"""Across packages: bars go into the bt-data store and come back out into a bt-core backtest."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bt_core import Backtest
from bt_data import BarStore

ROOT = Path(__file__).resolve().parents[1]
MULTI = ROOT / "examples" / "data" / "multi_asset.csv"


def test_store_round_trip_gives_the_same_backtest(tmp_path):
    store = BarStore(tmp_path / "bars.duckdb")
    store.import_csv(MULTI, period="1d")
    bars = store.read(period="1d")
    assert set(bars.columns) >= {"symbol", "datetime", "open", "high", "low", "close", "volume"}
    # The store's canonical long format is accepted by bt-core as it is.
    from_store = Backtest(bars.drop(columns="amount"), "sma_cross", commission=0.0005).run()
    from_csv = Backtest(MULTI, "sma_cross", commission=0.0005).run()
    assert from_store.equity.index.equals(from_csv.equity.index)
    assert np.array_equal(from_store.equity.to_numpy(), from_csv.equity.to_numpy())

    # The store returns symbols sorted by name, the CSV in file order: compare trades by key.
    def by_key(t: pd.DataFrame) -> pd.DataFrame:
        return t.sort_values(["exit_time", "symbol", "entry_time"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(by_key(from_store.trades), by_key(from_csv.trades))


def run_example(name: str, argv: list[str], capsys) -> str:
    old = sys.argv
    sys.argv = [name, *argv]
    try:
        runpy.run_path(str(ROOT / "examples" / name), run_name="__main__")
    except SystemExit as e:
        assert e.code in (0, None), f"{name} exited with {e.code}"
    finally:
        sys.argv = old
    return capsys.readouterr().out


def test_example_import_csv_to_db(tmp_path, capsys):
    db = tmp_path / "bt.duckdb"
    run_example(
        "import_csv_to_db.py",
        [str(ROOT / "examples" / "data" / "sample.csv"), "--symbol", "513500.SH", "--db", str(db)],
        capsys,
    )
    cov = BarStore(db).coverage()
    assert list(cov["symbol"]) == ["513500.SH"]
    assert int(cov["count"].iloc[0]) == len(pd.read_csv(ROOT / "examples" / "data" / "sample.csv"))


def test_example_backfill_from_files(tmp_path, capsys):
    out = run_example("data_backfill_from_files.py", ["--db", str(tmp_path / "b.duckdb")], capsys)
    assert "gap(s) before backfill" in out
    assert "second run: 0 gap(s), 0 request(s)" in out
