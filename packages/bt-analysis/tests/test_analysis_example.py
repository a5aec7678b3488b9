"""examples/run_analyzers.py runs end to end (engine run -> bt-analysis), and the round trips
bt-analysis rebuilds from the engine's fills equal the engine's own trades, trade by trade."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("bt_core", reason="the example runs the engine through bt-core")

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "run_analyzers.py"


def test_run_analyzers_example(tmp_path: pathlib.Path) -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "trade by trade identical: True" in run.stdout
    for name in ("trades.csv", "drawdowns.csv", "stats.json", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    stats = json.loads((tmp_path / "stats.json").read_text())
    trades = pd.read_csv(tmp_path / "trades.csv")
    assert stats["n_trades"] == len(trades) > 10
    assert stats["net_pnl"] == pytest.approx(trades["pnl"].sum())
