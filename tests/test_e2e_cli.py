"""End to end: the `bt` command and the example scripts, as a new user runs them."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bt_core.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
MULTI = ROOT / "examples" / "data" / "multi_asset.csv"
SMA = ROOT / "examples" / "strategies" / "sma_cross.py"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_help_documents_the_commands():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("run", "builtins", "version"):
        assert cmd in res.output
    res = invoke("run", "--help")
    assert "--data" in res.output and "--param" in res.output and "--fill-on" in res.output


def test_readme_main_command_writes_tables(tmp_path):
    res = invoke("run", SMA, "--data", SAMPLE, "--commission", "0.0005", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert "sharpe" in res.output and "max_drawdown" in res.output
    equity = pd.read_csv(tmp_path / "equity.csv")
    assert len(equity) == len(pd.read_csv(SAMPLE))
    fills = pd.read_csv(tmp_path / "fills.csv")
    trades = pd.read_csv(tmp_path / "trades.csv")
    assert len(fills) > 0 and len(trades) > 0
    assert set(fills.columns) >= {"order_id", "symbol", "datetime", "side", "size", "price"}
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["n_trades"] == len(trades)
    assert stats["final_equity"] == pytest.approx(equity["equity"].iloc[-1], rel=1e-12)


def test_builtin_and_python_strategy_agree_through_the_cli(tmp_path):
    a, b = tmp_path / "py", tmp_path / "rs"
    common = ["--data", SAMPLE, "--commission", "0.0005", "--json"]
    r1 = invoke("run", SMA, *common, "-p", "order_size=1", "--out", a)
    r2 = invoke("run", "sma_cross", *common, "-p", "size=1", "--out", b)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    e1 = pd.read_csv(a / "equity.csv")["equity"].to_numpy()
    e2 = pd.read_csv(b / "equity.csv")["equity"].to_numpy()
    assert (e1 == e2).all()


def test_params_are_parsed_and_typed(tmp_path):
    res = invoke(
        "run", SMA, "--data", SAMPLE, "-p", "fast=5", "-p", "slow=20", "--json", "--out", tmp_path
    )
    assert res.exit_code == 0, res.output
    fast = invoke("run", SMA, "--data", SAMPLE, "--json", "--out", tmp_path / "b")
    assert json.loads(res.stdout)["n_trades"] != json.loads(fast.stdout)["n_trades"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "nope=3"], "unknown parameter 'nope'"),
        (["--cash", "-5"], "cash"),
        (["--fill-on", "tomorrow"], "fill_on"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(tmp_path, args, message):
    res = runner.invoke(
        app, ["run", str(SMA), "--data", str(SAMPLE), "--out", str(tmp_path), *args]
    )
    assert res.exit_code == 2
    assert message in res.output


def test_bad_data_file_is_reported(tmp_path):
    bad = tmp_path / "bad.csv"
    df = pd.read_csv(SAMPLE).drop(columns=["low"])
    df.to_csv(bad, index=False)
    res = runner.invoke(app, ["run", str(SMA), "--data", str(bad), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "missing columns ['low']" in res.output
    res = runner.invoke(app, ["run", str(SMA), "--data", str(tmp_path / "none.csv")])
    assert res.exit_code == 2 and "not found" in res.output


def test_strategy_file_with_two_classes_needs_class(tmp_path):
    f = tmp_path / "two.py"
    f.write_text(
        "from bt_core import Strategy\n"
        "class A(Strategy):\n    pass\n"
        "class B(Strategy):\n"
        "    def next(self, bar):\n"
        "        return 'BUY' if bar.i == 3 else None\n"
    )
    res = runner.invoke(app, ["run", str(f), "--data", str(SAMPLE)])
    assert res.exit_code == 2 and "--class" in res.output
    res = invoke("run", f, "--data", SAMPLE, "--class", "B", "--json", "--out", tmp_path / "o")
    assert res.exit_code == 0
    fills = pd.read_csv(tmp_path / "o" / "fills.csv")
    assert len(fills) == 1 and fills["side"].iloc[0] == "buy"


def test_strategy_exception_names_the_bar(tmp_path):
    f = tmp_path / "boom.py"
    f.write_text(
        "from bt_core import Strategy\n"
        "class Boom(Strategy):\n"
        "    def next(self, bar):\n"
        "        if bar.i == 7:\n            raise ZeroDivisionError('boom')\n"
    )
    res = runner.invoke(app, ["run", str(f), "--data", str(SAMPLE), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "bar 7 (2019-01-10" in res.output and "ZeroDivisionError" in res.output


def test_multi_asset_long_csv_runs(tmp_path):
    res = invoke("run", "sma_cross", "--data", MULTI, "--json", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    fills = pd.read_csv(tmp_path / "fills.csv")
    assert set(fills["symbol"]) == {"600000.SH", "000001.SZ", "513500.SH", "510300.SH"}


def run_example(name: str, capsys) -> str:
    old = sys.argv
    sys.argv = [name]
    try:
        runpy.run_path(str(ROOT / "examples" / name), run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr().out


def test_example_mvp(capsys):
    out = run_example("run_mvp.py", capsys)
    assert "Result(strategy='MeanReversion'" in out and "sharpe" in out


def test_example_vectorized_matches_builtin(capsys):
    out = run_example("run_vectorized.py", capsys)
    assert "identical equity curves: True" in out


def test_example_multi_asset_event_and_weights_agree(capsys):
    out = run_example("run_multi_asset.py", capsys)
    assert "same final equity: True" in out


def test_example_monthly_rebalance_trades_every_symbol(capsys):
    out = run_example("run_multi_asset_rebalance.py", capsys)
    assert "rejected: 0" in out
    weights = eval(out.split("final weights: ")[1].splitlines()[0])  # a printed dict
    assert len(weights) == 4 and 0.9 < sum(weights.values()) <= 1.0


def test_report_without_plotly_is_a_clear_error(tmp_path, monkeypatch):
    # Simulate an install without the optional `bt-core[report]` extra.
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    res = runner.invoke(
        app, ["run", str(SMA), "--data", str(SAMPLE), "--out", str(tmp_path), "--report"]
    )
    assert res.exit_code == 2
    assert "no report" in res.output and "bt-core[report]" in res.output
    assert (tmp_path / "stats.json").exists()  # the tables were written before the report


def test_report_is_written(tmp_path):
    res = invoke("run", SMA, "--data", SAMPLE, "--out", tmp_path, "--report")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text()
    assert "<html" in html.lower() and "plotly" in html.lower()


def test_run_settings_from_a_config_file(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[run]\ncash = 50000\ncommission = 0.001\n")
    res = invoke("run", "sma_cross", "--data", SAMPLE, "--config", cfg, "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "a" / "stats.json").read_text())
    assert stats["initial_equity"] == 50_000
    # An option on the command line overrides the file.
    res = invoke(
        "run", "sma_cross", "--data", SAMPLE, "--config", cfg, "--cash", "70000",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "stats.json").read_text())["initial_equity"] == 70_000


def test_bad_config_file_is_a_one_line_error(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("cahs = 5\n")
    res = runner.invoke(app, ["run", "sma_cross", "--data", str(SAMPLE), "--config", str(cfg)])
    assert res.exit_code == 2
    assert "unknown run setting" in res.output and "cahs" in res.output
    assert "Traceback" not in res.output
