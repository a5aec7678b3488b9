"""The porting guide's examples (docs/porting.md) are tests: each ported strategy runs, and where
the peer library is installed, gives the peer's trades and equity on the same bars.

backtesting.py is in the dev group, so CI compares it; backtrader and vectorbt are in the
``bench`` group only (``uv sync --all-packages --group bench``), so those comparisons are
skipped, by name, where they are missing. Equity agrees to 1e-9 relative, not bit for bit:
each library adds cash and P&L in its own order.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTING = ROOT / "examples" / "porting"
SAMPLE = ROOT / "examples" / "data" / "sample.csv"


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def example(name: str) -> ModuleType:
    path = PORTING / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"porting_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass or pickle inside would look it up
    spec.loader.exec_module(module)
    return module


def naive(times: pd.Series) -> np.ndarray:
    return times.dt.tz_localize(None).to_numpy()


def assert_same_trades(ours: pd.DataFrame, theirs: pd.DataFrame, price_rtol: float = 0) -> None:
    """Same round trips: times and sizes exactly; prices exactly unless the peer reports an
    average (value / size), which may differ from the bar's price in the last bit."""
    assert len(ours) == len(theirs) > 10  # enough round trips to mean something
    np.testing.assert_array_equal(naive(ours["entry_time"]), theirs["entry_time"].to_numpy())
    np.testing.assert_array_equal(naive(ours["exit_time"]), theirs["exit_time"].to_numpy())
    for col in ("entry_price", "exit_price"):
        np.testing.assert_allclose(ours[col], theirs[col], rtol=price_rtol, atol=0, err_msg=col)
    np.testing.assert_array_equal(ours["size"], theirs["size"])


def assert_same_equity(ours: pd.Series, theirs: np.ndarray, cash: float) -> None:
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-9, atol=0)
    # The P&L is small beside the cash: compare it on its own scale too.
    np.testing.assert_allclose(ours.to_numpy() - cash, theirs - cash, rtol=1e-9, atol=1e-7)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, index_col="datetime", parse_dates=True)


@pytest.mark.parametrize("name", ["from_backtesting", "from_backtrader", "from_vectorbt"])
def test_each_port_runs_as_a_script(name: str, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [name])
    runpy.run_path(str(PORTING / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "pyrust-bt" in out and "round trips" in out
    # With the peer installed the script compares; the comparison must come out equal.
    assert "same trades: False" not in out and "same fills: False" not in out


@pytest.mark.skipif(not installed("backtesting"), reason="backtesting.py is not installed")
def test_backtesting_py_port_gives_the_peers_trades_and_equity(bars: pd.DataFrame) -> None:
    m = example("from_backtesting")
    ours, theirs = m.ours(bars), m.peer(bars)
    assert_same_trades(ours.trades, theirs["trades"])
    assert_same_equity(ours.equity, theirs["equity"], m.CASH)


@pytest.mark.skipif(not installed("backtrader"), reason="backtrader is not installed (bench group)")
def test_backtrader_port_gives_the_peers_fills_and_equity(bars: pd.DataFrame) -> None:
    m = example("from_backtrader")
    ours, theirs = m.ours(bars), m.peer(bars)
    f, g = ours.fills, theirs["fills"]
    assert len(f) == len(g) > 20
    np.testing.assert_array_equal(naive(f["datetime"]), g["datetime"].to_numpy("datetime64[ns]"))
    assert f["side"].tolist() == g["side"].tolist()
    np.testing.assert_array_equal(f["size"], g["size"].to_numpy(float))
    # backtrader's executed price is value / size: the bar's open up to the last bit.
    np.testing.assert_allclose(f["price"], g["price"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(f["commission"], g["commission"], rtol=1e-12, atol=0)
    assert_same_equity(ours.equity, theirs["equity"], m.CASH)
    # Every fill is at the open of the bar after the decision (no cheat-on-open).
    opens = bars["open"].reindex(g["datetime"]).to_numpy()
    np.testing.assert_allclose(g["price"], opens, rtol=1e-12)


@pytest.mark.skipif(not installed("vectorbt"), reason="vectorbt is not installed (bench group)")
@pytest.mark.parametrize("next_open", [True, False], ids=["next-open", "same-bar-close"])
def test_vectorbt_port_gives_the_peers_trades_and_equity(
    bars: pd.DataFrame, next_open: bool
) -> None:
    m = example("from_vectorbt")
    ours = m.ours(bars) if next_open else m.ours_same_bar(bars)
    theirs = m.peer(bars, next_open=next_open)
    assert_same_trades(ours.trades, theirs["trades"], price_rtol=1e-12)  # vectorbt: averages
    assert_same_equity(ours.equity, theirs["equity"], m.CASH)
    price = "open" if next_open else "close"
    entry = bars[price].reindex(ours.trades["entry_time"].dt.tz_localize(None)).to_numpy()
    np.testing.assert_array_equal(ours.trades["entry_price"], entry)


def test_the_two_vectorbt_ports_differ_only_in_fill_timing(bars: pd.DataFrame) -> None:
    m = example("from_vectorbt")
    late, early = m.ours(bars), m.ours_same_bar(bars)
    entries, _ = m.signals(bars)
    decided = np.flatnonzero(entries)
    e_early = early.trades["entry_time"]
    e_late = late.trades["entry_time"]
    assert len(e_late) == len(e_early) > 10
    # Same decisions; the same-bar fill is on the signal bar, the default one bar later.
    assert set(bars.index.get_indexer(naive(e_early))) <= set(decided)
    np.testing.assert_array_equal(
        bars.index.get_indexer(naive(e_late)), bars.index.get_indexer(naive(e_early)) + 1
    )


@pytest.mark.skipif(not installed("ta"), reason="the ta indicator library (bt-core[ta]) is missing")
def test_indicators_ta_example_runs(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sys, "argv", ["indicators_ta.py"])
    runpy.run_path(str(ROOT / "examples" / "indicators_ta.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Result(strategy='MacdAdxStoch'" in out and "round trips" in out

    from typer.testing import CliRunner

    from bt_core.cli import app

    res = CliRunner().invoke(
        app,
        ["run", str(ROOT / "examples" / "indicators_ta.py"), "--data", str(SAMPLE), "--json",
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "trades.csv").exists()
    assert len(pd.read_csv(tmp_path / "trades.csv")) > 5
