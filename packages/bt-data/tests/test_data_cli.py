"""The bt-data command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from bt_data import BarStore
from bt_data.cli import app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "data"
runner = CliRunner()


def test_app_is_a_typer_app() -> None:
    assert isinstance(app, typer.Typer)


def test_import_info_coverage_gaps_backfill_export(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.duckdb")
    res = runner.invoke(
        app,
        [
            "import",
            str(EXAMPLES / "sample.csv"),
            "--symbol",
            "600000.SH",
            "--period",
            "1d",
            "--db",
            db,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1304 bars" in res.output
    res = runner.invoke(app, ["info", "--db", db, "--check"])
    assert res.exit_code == 0 and "integrity: OK" in res.output
    res = runner.invoke(app, ["coverage", "--db", db])
    assert res.exit_code == 0 and "600000.SH" in res.output

    # Remove a month, then backfill it from a files folder made from the same sample.
    store = BarStore(db)
    store.delete("600000.SH", period="1d", start="2021-03-01", end="2021-03-31")
    res = runner.invoke(
        app, ["gaps", "600000.SH", "--start", "2021-01-01", "--end", "2021-06-30", "--db", db]
    )
    assert res.exit_code == 0 and "1 gap(s)" in res.output
    files = tmp_path / "files"
    files.mkdir()
    (files / "600000.SH.csv").write_text((EXAMPLES / "sample.csv").read_text())
    res = runner.invoke(
        app,
        [
            "backfill",
            "600000.SH",
            "--start",
            "2021-01-01",
            "--end",
            "2021-06-30",
            "--provider",
            "files",
            "--files-dir",
            str(files),
            "--calendar",
            "weekday",
            "--no-progress",
            "--db",
            db,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1 request(s), 23 bars written" in res.output
    out = tmp_path / "out.parquet"
    res = runner.invoke(app, ["export", str(out), "-s", "600000.SH", "--db", db])
    assert res.exit_code == 0 and "wrote 1304 bars" in res.output
    exported = pd.read_parquet(out)
    original = pd.read_csv(EXAMPLES / "sample.csv")
    assert exported["close"].tolist() == original["close"].tolist()


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.duckdb")
    bad = tmp_path / "bad.csv"
    bad.write_text("datetime,open,high,low,close\n2020-01-02,1,2,0.5,1\n")
    res = runner.invoke(app, ["import", str(bad), "--symbol", "X", "--db", db])
    assert res.exit_code == 1
    assert "missing required column(s) volume" in res.output
    res = runner.invoke(app, ["import", str(bad), "--symbol", "X", "--period", "1M", "--db", db])
    assert res.exit_code == 1 and "case-sensitive" in res.output
    res = runner.invoke(app, ["backfill", "600000.SH", "--start", "2020-01-01", "--db", db])
    assert res.exit_code == 1 and "xtquant" in res.output


def test_env_var_selects_the_database(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("BT_DATA_DB", str(db))
    res = runner.invoke(app, ["import", str(EXAMPLES / "multi_asset.csv")])
    assert res.exit_code == 0, res.output
    assert BarStore(db).count() == len(pd.read_csv(EXAMPLES / "multi_asset.csv"))
