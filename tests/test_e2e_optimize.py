"""End to end: `bt optimize` as a user runs it (a strategy file, ranges on the command line,
walk-forward, the report) and the optimizer's example scripts."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bt_core import Backtest
from bt_core.cli import app
from bt_core.cli_optimize import constraint_of
from bt_core.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
SMA = ROOT / "examples" / "strategies" / "sma_cross.py"

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_optimize_a_strategy_file_writes_the_table_and_the_report(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    res = invoke(
        "optimize",
        SMA,
        "--data",
        SAMPLE,
        "--param",
        "fast=5:15:5",
        "--param",
        "slow=20:60:20",
        "--constraint",
        "fast < slow",
        "--maximize",
        "sharpe",
        "--jobs",
        "2",
        "--out",
        tmp_path,
        "--report",
        "--top",
        "3",
    )
    assert res.exit_code == 0, res.output
    assert "grid search, 9 trials" in res.output and "deflated Sharpe ratio" in res.output
    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == 9 and {"fast", "slow", "score", "sharpe", "error"} <= set(table.columns)
    assert table["score"].tolist() == sorted(table["score"], reverse=True)
    # The top row is the plain run of its parameters.
    top = table.iloc[0]
    from bt_core.loading import load_strategy

    single = Backtest(SAMPLE, load_strategy(str(SMA))).run(fast=int(top.fast), slow=int(top.slow))
    assert single.stats["sharpe"] == pytest.approx(top.sharpe, rel=1e-12)
    html = (tmp_path / "report.html").read_text()
    assert '"type":"heatmap"' in html  # two parameters: a heatmap of the score
    assert "Deflated Sharpe ratio" in html and "Probability of backtest overfitting" in html


def test_walk_forward_bayes_and_parquet(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    res = invoke(
        "optimize",
        "sma_cross",
        "--data",
        SAMPLE,
        "--param",
        "fast=3:20",
        "--param",
        "slow=20:80:10",
        "--param",
        "size=100",
        "--constraint",
        "fast < slow",
        "--method",
        "bayes",
        "--trials",
        "6",
        "--seed",
        "3",
        "--jobs",
        "1",
        "--walk-forward",
        "12:6",
        "--out",
        tmp_path,
        "--format",
        "parquet",
        "--report",
        "--backend",
        "rust",
    )
    assert res.exit_code == 0, res.output
    assert "walk-forward" in res.output
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 6
    wf = pd.read_csv(tmp_path / "walk_forward.csv")
    assert len(wf) >= 3 and (pd.to_datetime(wf["is_end"]) < pd.to_datetime(wf["oos_start"])).all()
    eq = pd.read_csv(tmp_path / "oos_equity.csv")
    assert eq["oos_equity"].iloc[0] == 100_000
    html = (tmp_path / "report.html").read_text()
    assert "Walk-forward" in html and '"type":"heatmap"' in html  # size is held: 2 plotted


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "fast=5:50:0"], "parameter fast: step must be > 0, got 0"),
        (["--param", "fats=5:50:5"], "unknown parameter(s) ['fats'] for sma_cross"),
        (["--param", "fast=5:x"], "'x' is not a number"),
        (["--param", "fast=1:5", "--constraint", "fast < slow"], "'slow' is not a searched"),
        (["--param", "fast=1:5", "--constraint", "__import__('os')"], "is not allowed"),
        (["--param", "fast=1:5", "--walk-forward", "12"], "--walk-forward expects IS:OOS"),
        ([], "search space is empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    res = invoke("optimize", "sma_cross", "--data", SAMPLE, "--out", tmp_path, *args)
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_constraint_expressions() -> None:
    c = constraint_of("fast < slow and slow - fast >= 10", ["fast", "slow"])
    assert c({"fast": 5, "slow": 15}) and not c({"fast": 5, "slow": 14})
    with pytest.raises(ParameterError, match="not an expression"):
        constraint_of("fast <", ["fast"])


@pytest.mark.parametrize(
    "script", ["run_grid_search.py", "run_walk_forward.py", "run_bayes_search.py"]
)
def test_example_scripts_run(
    script: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [script])
    runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert {
        "run_grid_search.py": "best parameters",
        "run_walk_forward.py": "walk-forward efficiency",
        "run_bayes_search.py": "Pareto front",
    }[script] in out
